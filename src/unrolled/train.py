"""The one training loop, shared by every task: the classifier (``RNNClassifier.fit``), the forecaster
(``RNNForecaster.fit``) and the language model (``RNNLanguageModel.fit``, whose batches are the windows of
truncated BPTT over one stream); the demo runs its own few full-batch steps (``unrolled.demo``).

A task hands the loop three things: the parameters (a dict of arrays, updated in place), a function that
makes the epoch's batches, and a function that returns the loss and the gradients of one batch. The loop
owns the rest: the optimizer, gradient clipping by global norm, the learning-rate schedule, evaluation on
the dev set after each epoch, early stopping on the dev metric, keeping the best weights, and callbacks.
It never prints: progress reaches the caller through callbacks.

Determinism: all randomness (batch order, dropout) comes from one ``numpy.random.Generator`` seeded with
``TrainConfig.seed``, so the same seed and data give identical weights.
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


def _stop_requested(callbacks: Sequence[object]) -> bool:
    return any(getattr(callback, "stop_training", False) for callback in callbacks)


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
) -> TrainHistory:
    """Train ``params`` in place; at the end they hold the weights of the best dev epoch.

    make_batches(rng) -> the epoch's batches (called once per epoch; shuffling uses rng)
    batch_loss(batch, rng) -> (mean loss, gradients), in training mode (dropout draws from rng)
    evaluate() -> the dev metric after an epoch, or None to keep the last weights
    keep_freed_memory: keep freed memory for the next step (glibc malloc settings for the whole process,
        see :mod:`unrolled.nn.allocator`): each step's big arrays then reuse pages instead of page-faulting
    """
    if keep_freed_memory:
        allocator.keep_freed_memory()
    rng = np.random.default_rng(config.seed)
    optimizer = make_optimizer(config, params)
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
        losses = []
        lr = config.lr
        for batch in batches:
            loss, grads = batch_loss(batch, rng)
            if not math.isfinite(loss):
                raise TrainingError(
                    f"the training loss became {loss} at epoch {epoch}, step {step + 1}; "
                    "try a lower learning rate or gradient clipping"
                )
            if config.clip_norm is not None:
                clip_grad_norm(grads, config.clip_norm)
            lr = learning_rate(config, step, total_steps)
            optimizer.step(grads, lr=lr)
            losses.append(loss)
            step += 1
            _call(callbacks, "on_batch_end", step, loss)
            if _stop_requested(callbacks):
                break

        metric = evaluate() if evaluate is not None else None
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
        if config.patience is not None and epochs_without_gain >= config.patience or _stop_requested(callbacks):
            history.stopped_early = True
            break

    if best_params is not None:
        for name, value in best_params.items():
            params[name][...] = value  # in place: the caller's arrays now hold the best epoch's weights
    history.seconds = time.perf_counter() - started
    return history
