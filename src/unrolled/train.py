"""The one training loop, shared by every task: the classifier (``RNNClassifier.fit``), the forecaster
(``RNNForecaster.fit``), the language model (``RNNLanguageModel.fit``, whose batches are the windows of
truncated BPTT over one stream), the translator and the speech recognizer; the demo runs its own few
full-batch steps (``unrolled.demo``).

A task hands the loop three things: the parameters (a dict of arrays, updated in place), a function that
makes the epoch's batches, and a function that returns the loss and the gradients of one batch. The loop
owns the rest: the optimizer, gradient clipping by global norm, the learning-rate schedule, evaluation on
the dev set after each epoch, early stopping on the dev metric, keeping the best weights, and callbacks.
It never prints: progress reaches the caller through callbacks.

One step is the engine's: the NumPy engine (the task's hand-written gradients and :mod:`unrolled.optim`), or the
torch engine (:mod:`unrolled.torch.engine`: the network's PyTorch twin, autograd and ``torch.optim``, given a
:class:`TorchTask`). With a :class:`unrolled.distributed.Distributed` group each rank trains on its rows of
every batch and the gradients are all-reduced, so W processes train as one with the same global batch.

Determinism: all randomness (batch order, dropout) comes from one ``numpy.random.Generator`` seeded with
``TrainConfig.seed``, so the same seed and data give identical weights. Distributed, the batch order comes
from that seed in every rank and the noise from a per-rank stream.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from unrolled.nn import allocator
from unrolled.nn._validation import check_choice, check_nonnegative_int, check_positive_int, check_positive_number
from unrolled.nn.embedding import SparseRows
from unrolled.optim import SGD, Adam, AdamW, clip_grad_norm, constant, warmup_cosine_decay, warmup_linear_decay

Params = dict[str, np.ndarray]
Grads = dict[str, np.ndarray | SparseRows]
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "warmup_linear", "warmup_cosine")


class TrainingError(RuntimeError):
    """Training cannot go on (for example the loss became NaN); the message says where and what to try."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | adamw | sgd
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0  # L2 for adam/sgd, decoupled for adamw
    clip_norm: float | None = 5.0  # max global gradient norm; None disables clipping
    schedule: str = "constant"  # constant | warmup_linear | warmup_cosine
    warmup_steps: int = 0
    patience: int | None = 3  # stop after this many epochs without a better dev metric; None never stops
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            check_positive_int(name, getattr(self, name))
        check_positive_number("lr", self.lr)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: expected a number >= 0, got {self.weight_decay!r}")
        check_positive_number("clip_norm", self.clip_norm, allow_none=True)
        check_nonnegative_int("warmup_steps", self.warmup_steps)
        check_positive_int("patience", self.patience, allow_none=True)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based
    train_loss: float  # mean batch loss over the epoch
    dev_metric: float | None  # None without a dev set
    lr: float  # learning rate of the epoch's last step
    seconds: float  # wall time of the epoch, evaluation included
    improved: bool  # the dev metric is the best so far (always True without a dev set)


@dataclass
class TrainHistory:
    epochs: list[EpochResult] = field(default_factory=list)
    best_epoch: int | None = None
    best_metric: float | None = None
    stopped_early: bool = False
    seconds: float = 0.0

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrainHistory:
        """The inverse of :meth:`to_json` (KeyError/TypeError on a malformed object)."""
        return cls(
            epochs=[EpochResult(**epoch) for epoch in obj["epochs"]], best_epoch=obj["best_epoch"],
            best_metric=obj["best_metric"], stopped_early=obj["stopped_early"], seconds=obj["seconds"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "epochs": [asdict(e) for e in self.epochs],
            "best_epoch": self.best_epoch,
            "best_metric": self.best_metric,
            "stopped_early": self.stopped_early,
            "seconds": self.seconds,
        }


class Callback(Protocol):
    """Any subset of these methods; the loop calls the ones an object has. A callback that sets an
    attribute ``stop_training = True`` ends training after the current batch (a time box, say); the epoch
    still gets its evaluation."""

    def on_train_begin(self, steps_per_epoch: int, epochs: int) -> None: ...
    def on_batch_end(self, step: int, loss: float) -> None: ...
    def on_epoch_end(self, result: EpochResult, params: Params) -> None: ...


def _stop_requested(callbacks: Sequence[object], distributed=None, agree: bool = False) -> bool:
    """A callback asked to stop; with ``agree`` (distributed, and some rank has a callback that can stop),
    decided over the ranks, so that all stop together."""
    stop = any(getattr(callback, "stop_training", False) for callback in callbacks)
    if agree:
        stop = distributed.all_sum([float(stop)])[0] > 0
    return stop


def make_optimizer(config: TrainConfig, params: Params) -> Adam | AdamW | SGD:
    if config.optimizer == "adam":
        return Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """The schedule as a pure function of the 0-based step."""
    if config.schedule == "constant":
        return constant(step, config.lr)
    warmup = min(config.warmup_steps, total_steps)
    decay = warmup_linear_decay if config.schedule == "warmup_linear" else warmup_cosine_decay
    return decay(min(step, total_steps), config.lr, warmup, total_steps)


def _call(callbacks: Sequence[object], method: str, *args: object) -> None:
    for callback in callbacks:
        hook = getattr(callback, method, None)
        if hook is not None:
            hook(*args)


ENGINES = ("numpy", "torch")


@dataclass(frozen=True)
class TorchTask:
    """What the torch engine needs from a task (:mod:`unrolled.torch.engine` builds the rest).

    net_config: the network's config (``model.net_config_``), from which the twin is built
    inputs(batch, rng) -> the batch's NumPy arrays (the same ones the NumPy engine's ``batch_loss`` uses)
    loss: the kind of loss (``unrolled.torch.engine.LOSSES``)
    frozen: parameter names that do not train
    options: the loss's options (label smoothing)
    """

    net_config: Any
    inputs: Callable[[object, np.random.Generator], dict[str, np.ndarray]]
    loss: str
    frozen: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


def check_engine(engine: str, device: str | None) -> None:
    """Refuse an unknown engine, a device without the torch engine, and the torch engine without torch."""
    check_choice("engine", engine, ENGINES)
    if engine == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(f"device: {device!r} needs the torch engine (engine='torch'); the NumPy engine runs "
                             "on the CPU")
        return
    try:
        from unrolled.torch.engine import resolve_device
    except ImportError:
        raise ValueError("engine 'torch' needs PyTorch: pip install 'unrolled[torch]'") from None
    resolve_device(device)


class _NumpyStepper:
    """One training step of the NumPy engine: the task's hand-written gradients, all-reduced over the ranks
    when distributed, clipped, and the optimizer's update."""

    def __init__(self, params: Params, batch_loss, config: TrainConfig, distributed) -> None:
        self.batch_loss, self.config, self.distributed = batch_loss, config, distributed
        self.optimizer = make_optimizer(config, params)

    def start_epoch(self) -> None:
        pass

    def step(self, batch: object, share: float, rng: np.random.Generator, lr: float) -> float:
        loss, grads = self.batch_loss(batch, rng)
        if self.distributed is not None:
            loss, grads = self.distributed.reduce_gradients(loss, grads, share)
        if not math.isfinite(loss):
            return loss  # the loop stops with its message; no update
        if self.config.clip_norm is not None:
            clip_grad_norm(grads, self.config.clip_norm)
        self.optimizer.step(grads, lr=lr)
        return loss

    def sync(self) -> None:
        pass  # the NumPy engine trains the parameter arrays themselves


def fit(
    params: Params,
    make_batches: Callable[[np.random.Generator], Sequence[object]],
    batch_loss: Callable[[object, np.random.Generator], tuple[float, Grads]],
    config: TrainConfig,
    *,
    evaluate: Callable[[], float] | None = None,
    higher_is_better: bool = True,
    callbacks: Sequence[object] = (),
    keep_freed_memory: bool = True,
    engine: str = "numpy",
    device: str | None = None,
    torch_task: TorchTask | None = None,
    distributed=None,
    example_weights: np.ndarray | None = None,
) -> TrainHistory:
    """Train ``params`` in place; at the end they hold the weights of the best dev epoch.

    make_batches(rng) -> the epoch's batches (called once per epoch; shuffling uses rng)
    batch_loss(batch, rng) -> (mean loss, gradients), in training mode (dropout draws from rng)
    evaluate() -> the dev metric after an epoch, or None to keep the last weights
    keep_freed_memory: keep freed memory for the next step (glibc malloc settings for the whole process,
        see :mod:`unrolled.nn.allocator`): each step's big arrays then reuse pages instead of page-faulting
    engine: "numpy" (``batch_loss``) or "torch" (``torch_task`` on ``device``: the twin, autograd and torch's
        optimizers, with the same schedule, clipping and lazy embedding rows; ``params`` are updated from the
        twin before each evaluation and at the end)
    distributed: a :class:`unrolled.distributed.Distributed` (joined by the caller) to train data-parallel:
        each rank takes its rows of every batch (``example_weights``: loss terms per example, for a loss
        averaged over tokens); the batch order comes from ``config.seed``, the noise from a per-rank stream
    """
    check_engine(engine, device)
    if distributed is not None:
        distributed.check_batch_size(config.batch_size)
    if keep_freed_memory:
        allocator.keep_freed_memory()
    rng = np.random.default_rng(config.seed)
    noise_rng = rng  # one stream for a single process, as always: the same seed gives the same weights
    if distributed is not None:
        noise_rng = np.random.default_rng([config.seed, distributed.rank + 1])
    if engine == "torch":
        if torch_task is None:
            raise ValueError("engine: this task has no torch engine")
        from unrolled.torch.engine import TorchStepper

        stepper = TorchStepper(params, torch_task, config, device=device, distributed=distributed)
    else:
        stepper = _NumpyStepper(params, batch_loss, config, distributed)
    agree = False  # whether the ranks must agree on stopping after each batch (one collective per step)
    if distributed is not None:  # decided once, the same in every rank, whatever callbacks each one holds
        agree = distributed.all_sum([float(any(hasattr(c, "stop_training") for c in callbacks))])[0] > 0
    history = TrainHistory()
    started = time.perf_counter()
    best_params: Params | None = None
    epochs_without_gain = 0
    step = 0
    total_steps: int | None = None
    for epoch in range(1, config.epochs + 1):
        epoch_start = time.perf_counter()
        batches = make_batches(rng)
        if not batches:
            raise TrainingError("no training batches: the training set is empty")
        if total_steps is None:
            total_steps = len(batches) * config.epochs
            _call(callbacks, "on_train_begin", len(batches), config.epochs)
        stepper.start_epoch()
        losses = []
        lr = config.lr
        for batch in batches:
            share = 1.0
            if distributed is not None:
                batch, share = distributed.shard(batch, example_weights)
            lr = learning_rate(config, step, total_steps)
            loss = stepper.step(batch, share, noise_rng, lr)
            if not math.isfinite(loss):
                raise TrainingError(
                    f"the training loss became {loss} at epoch {epoch}, step {step + 1}; "
                    "try a lower learning rate or gradient clipping"
                )
            losses.append(loss)
            step += 1
            _call(callbacks, "on_batch_end", step, loss)
            if _stop_requested(callbacks, distributed, agree):
                break

        stepper.sync()
        metric = evaluate() if evaluate is not None else None
        if metric is not None and distributed is not None:
            metric = distributed.from_rank_0(metric)  # one early-stopping decision for all ranks
        if metric is None:
            improved = True
        elif history.best_metric is None:
            improved = True
        else:
            improved = metric > history.best_metric if higher_is_better else metric < history.best_metric
        if improved:
            history.best_epoch, history.best_metric = epoch, metric
            epochs_without_gain = 0
            if metric is not None:
                best_params = {name: value.copy() for name, value in params.items()}
        else:
            epochs_without_gain += 1
        result = EpochResult(epoch, float(np.mean(losses)), metric, lr, time.perf_counter() - epoch_start, improved)
        history.epochs.append(result)
        _call(callbacks, "on_epoch_end", result, params)
        if config.patience is not None and epochs_without_gain >= config.patience or _stop_requested(
                callbacks, distributed, agree):
            history.stopped_early = True
            break

    if best_params is not None:
        for name, value in best_params.items():
            params[name][...] = value  # in place: the caller's arrays now hold the best epoch's weights
    history.seconds = time.perf_counter() - started
    return history
