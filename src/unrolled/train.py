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

Resuming: a callback with ``on_checkpoint(state)`` receives a :class:`LoopState` (weights, optimizer moments,
step, generator states, the position in the epoch, early-stopping state, history) at each epoch end, every
``checkpoint_every`` steps, and when ``interrupt`` asks the loop to stop; one whose ``resume_state`` is a
saved :class:`LoopState` makes the loop continue from it, so that an interrupted and resumed run ends with
the same weights, bit for bit, as one that ran straight through (:mod:`unrolled.resume` saves and reads it).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from unrolled.history import EpochResult, TrainHistory  # noqa: F401  (part of this module's API)
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


class TrainingDiverged(TrainingError):
    """The training loss became NaN or infinite, or ``DIVERGED_RATIO`` times the first step's, or the weights
    did (``loss`` is then None); ``epoch``, ``step`` (1-based) and ``lr`` (that step's learning rate) say
    where."""

    def __init__(self, loss: float | None, epoch: int, step: int, lr: float) -> None:
        what = "the weights became NaN or infinite" if loss is None else f"the training loss became {loss}"
        super().__init__(f"{what} at epoch {epoch}, step {step} (learning rate {lr:g}); try a lower learning "
                         "rate or gradient clipping")
        self.what, self.loss, self.epoch, self.step, self.lr = what, loss, epoch, step, lr


def _weights_diverged(params: Params) -> bool:
    return any(p.dtype.kind == "f" and not np.isfinite(p).all() for p in params.values())


class TrainingInterrupted(Exception):
    """Training stopped at a step boundary because ``interrupt`` asked it to (a signal); the checkpoint
    callbacks have been given the state to resume from. ``signal``: the signal number; ``state``: that
    state."""

    def __init__(self, signal: int, state: LoopState) -> None:
        super().__init__(f"training interrupted at epoch {state.epoch}, step {state.step}")
        self.signal, self.state = signal, state


@dataclass
class LoopState:
    """Where a run is: enough to continue it exactly (see :mod:`unrolled.resume` for the files).

    epoch: the epoch in progress (1-based); position: its batches done; step: all steps done
    epoch_rng / rng: the generator's state before the epoch's batches were drawn, and now (the batches are
        drawn again from ``epoch_rng`` on resume, then the generator is set to ``rng``)
    noise_rng: a rank's own noise stream (distributed, which is not resumable yet: always None)
    task_epoch / task: the task's own state (``task_state``) at the same two moments
    params / best_params: the weights now, and those of the best dev epoch (None without a dev metric yet)
    """

    epoch: int
    position: int
    step: int
    total_steps: int | None
    epoch_rng: dict[str, Any]
    rng: dict[str, Any]
    noise_rng: dict[str, Any] | None
    epoch_losses: list[float]
    epoch_seconds: float
    seconds: float
    history: TrainHistory
    epochs_without_gain: int
    params: Params
    best_params: Params | None
    optimizer: dict[str, Any]
    task_epoch: dict[str, Any]
    task: dict[str, Any]
    finished: bool = False  # the last epoch ended (nothing left to train; the model is being saved)
    first_loss: float | None = None  # the run's first step's loss, the yardstick of divergence


@dataclass(frozen=True)
class TaskState:
    """A task's state that outlives a step, for resuming (the language model's carried hidden state, the
    steps left under ``max_steps``): ``get()`` -> a dict of arrays, numbers, strings and None; ``set(d)``
    puts it back."""

    get: Callable[[], dict[str, Any]]
    set: Callable[[dict[str, Any]], None]


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
DIVERGED_RATIO = 1e6  # a loss this many times the first step's (or 1) has diverged, even while still finite


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

    def __init__(self, params: Params, batch_loss, config: TrainConfig, distributed,
                 lr_scales: Mapping[str, float] | None = None) -> None:
        self.batch_loss, self.config, self.distributed = batch_loss, config, distributed
        self.optimizer = make_optimizer(config, params)
        self.lr_scales = lr_scales

    def start_epoch(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)

    def step(self, batch: object, share: float, rng: np.random.Generator, lr: float) -> float:
        loss, grads = self.batch_loss(batch, rng)
        if self.distributed is not None:
            loss, grads = self.distributed.reduce_gradients(loss, grads, share)
        if not math.isfinite(loss):
            return loss  # the loop stops with its message; no update
        if self.config.clip_norm is not None:
            clip_grad_norm(grads, self.config.clip_norm)
        self.optimizer.step(grads, lr=lr, lr_scales=self.lr_scales)
        return loss

    def sync(self) -> None:
        pass  # the NumPy engine trains the parameter arrays themselves


def resume_hooks(callbacks: Sequence[object]) -> tuple[LoopState | None, int | None, object | None]:
    """From the callbacks: the state to resume from, the steps between checkpoints, the interrupt flag
    (an object whose ``requested`` is a signal number once training should stop)."""
    resume = next((c.resume_state for c in callbacks if getattr(c, "resume_state", None) is not None), None)
    every = next((c.checkpoint_every for c in callbacks if getattr(c, "checkpoint_every", None)), None)
    interrupt = next((c.interrupt for c in callbacks if getattr(c, "interrupt", None) is not None), None)
    return resume, every, interrupt


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
    task_state: TaskState | None = None,
    lr_scales: Mapping[str, float] | None = None,
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
    task_state: the task's state beyond ``params`` that a resumed run must get back (:class:`TaskState`)
    lr_scales: parameter name -> a factor on the learning rate (discriminative fine-tuning; the NumPy engine)

    Checkpoints and resuming (the NumPy engine; see the module docstring): callbacks' ``on_checkpoint(state)``,
    ``resume_state``, ``checkpoint_every`` and ``interrupt``; an interrupt raises :class:`TrainingInterrupted`
    after the state of the last whole step has been given to ``on_checkpoint``.
    """
    check_engine(engine, device)
    if distributed is not None:
        distributed.check_batch_size(config.batch_size)
    resume, checkpoint_every, interrupt = resume_hooks(callbacks)
    if resume is not None and (engine != "numpy" or distributed is not None):
        raise ValueError("resume: only a single-process run of the NumPy engine can be resumed")
    if keep_freed_memory:
        allocator.keep_freed_memory()
    rng = np.random.default_rng(config.seed)
    noise_rng = rng  # one stream for a single process, as always: the same seed gives the same weights
    if distributed is not None:
        noise_rng = np.random.default_rng([config.seed, distributed.rank + 1])
    if engine == "torch":
        if lr_scales:
            raise ValueError("lr_scales: per-parameter learning rates are the NumPy engine's (engine='numpy')")
        if torch_task is None:
            raise ValueError("engine: this task has no torch engine")
        from unrolled.torch.engine import TorchStepper

        stepper = TorchStepper(params, torch_task, config, device=device, distributed=distributed)
    else:
        stepper = _NumpyStepper(params, batch_loss, config, distributed, lr_scales)
    resumable = engine == "numpy" and distributed is None  # what a LoopState can hold
    agree = False  # whether the ranks must agree on stopping after each batch (one collective per step)
    if distributed is not None:  # decided once, the same in every rank, whatever callbacks each one holds
        agree = distributed.all_sum([float(any(hasattr(c, "stop_training") for c in callbacks))])[0] > 0
    get_task = task_state.get if task_state is not None else dict
    history = TrainHistory()
    best_params: Params | None = None
    epochs_without_gain = 0
    step = 0
    total_steps: int | None = None
    first_epoch, position, losses, epoch_seconds, seconds = 1, 0, [], 0.0, 0.0
    first_loss: float | None = None
    if resume is not None:
        _check_resume_state(resume, params, config)
        for name, value in resume.params.items():
            params[name][...] = value
        stepper.load_state_dict(resume.optimizer)
        history, epochs_without_gain, step = resume.history, resume.epochs_without_gain, resume.step
        best_params = None if resume.best_params is None else {k: v.copy() for k, v in resume.best_params.items()}
        total_steps, first_epoch, position = resume.total_steps, resume.epoch, resume.position
        losses, epoch_seconds, seconds = list(resume.epoch_losses), resume.epoch_seconds, resume.seconds
        first_loss = resume.first_loss
    started = time.perf_counter() - seconds

    def snapshot(epoch: int, at: int, epoch_rng: dict, task_epoch: dict, epoch_start: float,
                 finished: bool = False) -> LoopState:
        now = time.perf_counter()
        return LoopState(
            epoch=epoch, position=at, step=step, total_steps=total_steps, epoch_rng=epoch_rng,
            rng=rng.bit_generator.state, noise_rng=None, epoch_losses=list(losses),
            epoch_seconds=now - epoch_start, seconds=now - started, history=copy.deepcopy(history),
            epochs_without_gain=epochs_without_gain, params=params, best_params=best_params,
            optimizer=stepper.state_dict(), task_epoch=task_epoch, task=get_task(), finished=finished,
            first_loss=first_loss,
        )

    last_epoch = first_epoch - 1 if resume is not None and resume.finished else config.epochs
    for epoch in range(first_epoch, last_epoch + 1):
        resuming = resume is not None and epoch == first_epoch  # this epoch continues the saved one
        epoch_start = time.perf_counter() - (epoch_seconds if resuming else 0.0)
        epoch_rng, task_epoch = rng.bit_generator.state, get_task()
        if resuming:  # draw the epoch's batches again, from where the saved epoch drew them
            epoch_rng, task_epoch = resume.epoch_rng, resume.task_epoch
            rng.bit_generator.state = epoch_rng
            if task_state is not None:
                task_state.set(task_epoch)
        batches = make_batches(rng)
        if not batches:
            raise TrainingError("no training batches: the training set is empty")
        if not resuming:
            position, losses = 0, []
        elif position > 0:
            rng.bit_generator.state = resume.rng  # where the interrupted run was, after its batches and noise
            if task_state is not None:
                task_state.set(resume.task)
        if total_steps is None:
            total_steps = len(batches) * config.epochs
        if epoch == first_epoch:
            _call(callbacks, "on_train_begin", len(batches), config.epochs)
        stepper.start_epoch()
        lr = learning_rate(config, step - 1, total_steps) if position else config.lr  # the last step's
        for batch in batches[position:]:
            share = 1.0
            if distributed is not None:
                batch, share = distributed.shard(batch, example_weights)
            lr = learning_rate(config, step, total_steps)
            with np.errstate(over="ignore", invalid="ignore"):  # a diverging step is reported below, once
                try:
                    loss = stepper.step(batch, share, noise_rng, lr)
                except ValueError:  # the network refuses non-finite inputs: say why they are
                    if _weights_diverged(params):
                        raise TrainingDiverged(None, epoch, step + 1, lr) from None
                    raise
            first_loss = loss if first_loss is None else first_loss
            if not math.isfinite(loss) or loss > DIVERGED_RATIO * max(first_loss, 1.0):
                raise TrainingDiverged(loss, epoch, step + 1, lr)
            losses.append(loss)
            step += 1
            position += 1
            _call(callbacks, "on_batch_end", step, loss)
            if resumable and interrupt is not None and interrupt.requested:
                state = snapshot(epoch, position, epoch_rng, task_epoch, epoch_start)
                _call(callbacks, "on_checkpoint", state)
                raise TrainingInterrupted(interrupt.requested, state)
            if _stop_requested(callbacks, distributed, agree):
                break
            if (resumable and checkpoint_every and step % checkpoint_every == 0
                    and position < len(batches)):  # the epoch's end has its own checkpoint
                _call(callbacks, "on_checkpoint", snapshot(epoch, position, epoch_rng, task_epoch, epoch_start))

        stepper.sync()
        if _weights_diverged(params):  # the last update overflowed: no model of this run is worth keeping
            raise TrainingDiverged(None, epoch, step, lr)
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
        stop = config.patience is not None and epochs_without_gain >= config.patience or _stop_requested(
            callbacks, distributed, agree)
        history.stopped_early = stop
        if resumable:  # the next epoch starts from here: its batches are drawn from the generator as it is now
            finished = stop or epoch == config.epochs
            losses = []
            state = snapshot(epoch + 1, 0, rng.bit_generator.state, get_task(), time.perf_counter(), finished)
            _call(callbacks, "on_checkpoint", state)
            if interrupt is not None and interrupt.requested and not finished:
                raise TrainingInterrupted(interrupt.requested, state)
        if stop:
            break

    if best_params is not None:
        for name, value in best_params.items():
            params[name][...] = value  # in place: the caller's arrays now hold the best epoch's weights
    history.seconds = time.perf_counter() - started
    return history


def _check_resume_state(state: LoopState, params: Params, config: TrainConfig) -> None:
    """The saved state fits this run: the same parameters with the same shapes, an epoch still to train."""
    for name, value in params.items():
        saved = state.params.get(name)
        if saved is None or saved.shape != value.shape:
            found = "missing" if saved is None else f"of shape {saved.shape}"
            raise ValueError(f"resume: the saved state's parameter {name!r} is {found}, this run's is "
                             f"{value.shape}; it was saved by a different model")
    if set(state.params) != set(params):
        extra = sorted(set(state.params) - set(params))
        raise ValueError(f"resume: the saved state has parameters this model lacks ({', '.join(extra[:3])})")
    if not state.finished and state.epoch > config.epochs:
        raise ValueError(f"resume: the saved run stopped after epoch {state.epoch - 1}, but this run has only "
                         f"{config.epochs} epochs")
