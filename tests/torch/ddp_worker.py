"""Run by tests/torch/test_distributed.py, alone or under torchrun: train a small float64 classifier network
with unrolled.train.fit and write the final weights (rank 0) to OUT.npz.

    python ddp_worker.py ENGINE OUT [die]

Batches of 7 rows over 36 examples: uneven shards over 2 ranks and a last batch of one row, where one rank
has nothing of its own (weight 0). ``die``: rank 1 exits abruptly at its third step. ``stop``: only rank 0 holds a callback that asks to stop
after step 3 (the ranks must still stop together); the number of steps run goes to OUT.steps.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from unrolled.data.batching import pad_batch
from unrolled.distributed import from_environment
from unrolled.models.classifier_net import (
    ClassifierNetConfig,
    classifier_backward,
    classifier_forward,
    init_classifier_params,
)
from unrolled.train import TorchTask, TrainConfig, fit


class DieAtStep3:
    def on_batch_end(self, step, loss):
        if step == 3:
            os._exit(3)


class StopAtStep3:
    stop_training = False

    def __init__(self):
        self.steps = 0

    def on_batch_end(self, step, loss):
        self.steps = step
        self.stop_training = step >= 3


class CountSteps:
    def __init__(self):
        self.steps = 0

    def on_batch_end(self, step, loss):
        self.steps = step


def main(engine: str, out: str, mode: str = "train") -> None:
    distributed = from_environment()
    if distributed is not None:
        distributed.start()
    rng = np.random.default_rng(0)
    examples = [rng.integers(1, 30, int(rng.integers(1, 10))) for _ in range(36)]
    targets = rng.integers(0, 3, 36)
    config = ClassifierNetConfig(vocab_size=30, embedding_dim=5, hidden_size=6, num_classes=3, cell="lstm",
                                 bidirectional=True, pooling="max")
    params = init_classifier_params(config, np.random.default_rng(1), dtype=np.float64)

    def make_batches(rng):
        order = rng.permutation(len(examples))
        return [order[i : i + 7] for i in range(0, len(order), 7)]

    def inputs(batch, rng):
        ids, mask = pad_batch([examples[i] for i in batch], pad_id=0)
        return {"ids": ids, "mask": mask, "targets": targets[batch]}

    def batch_loss(batch, rng):
        b = inputs(batch, rng)
        _, loss, cache = classifier_forward(params, config, b["ids"], mask=b["mask"], targets=b["targets"],
                                            training=True, rng=rng)
        return loss, classifier_backward(cache)

    rank = 0 if distributed is None else distributed.rank
    callbacks = [DieAtStep3()] if mode == "die" and rank == 1 else []
    if mode == "stop":
        callbacks = [StopAtStep3() if rank == 0 else CountSteps()]
    train_config = TrainConfig(epochs=3, batch_size=7, lr=0.01, patience=None, seed=4)
    fit(params, make_batches, batch_loss, train_config, engine=engine, distributed=distributed,
        torch_task=TorchTask(config, inputs, "classifier"), callbacks=callbacks)
    if distributed is None or distributed.is_main:
        np.savez(out, **params)
    if mode == "stop":
        with open(f"{out}.steps{rank}", "w") as f:
            f.write(str(callbacks[0].steps))
    if distributed is not None:
        distributed.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
