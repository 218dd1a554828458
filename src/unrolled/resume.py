"""Resumable training: the state a run leaves beside its best model so far, the callback that writes it, and
the signal handling that stops a run at a step boundary.

While ``unrolled train --out DIR`` runs, its progress lives in ``DIR.partial``: a checkpoint of the best model
so far (``unrolled predict --model DIR.partial`` works) plus two files that hold everything needed to go on::

    training-state.safetensors   the weights now, the best weights, the optimizer's moments, the task's arrays
    training-state.json          epoch, step, position in the epoch, generator states, early-stopping state,
                                 history, the optimizer's counters (and, from the CLI, the command to resume)

It is written atomically (:func:`unrolled.checkpoint.save_checkpoint`) at each epoch end, every
``checkpoint_every`` steps and when a signal stops the run; ``DIR`` itself is only written when training ends,
so ``DIR`` always holds either the previous model or a complete new one. A resumed run draws the same batches
and noise and ends with a ``model.safetensors`` identical, bit for bit, to that of a run never interrupted.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from unrolled.checkpoint import (
    STATE_FILE,
    STATE_TENSORS_FILE,
    CheckpointError,
    read_safetensors,
    recover_interrupted_save,
)
from unrolled.train import LoopState, TrainHistory

__all__ = [
    "STATE_FILE",
    "STATE_TENSORS_FILE",
    "Checkpointer",
    "StopSignals",
    "find_resumable",
    "partial_path",
    "read_training_state",
    "state_files",
]

STATE_FORMAT = "unrolled-training-state"
STATE_VERSION = 1
PARTIAL_SUFFIX = ".partial"


def partial_path(out: str | Path) -> Path:
    """Where a run writing ``out`` keeps its progress: ``out.partial`` beside it."""
    out = Path(out)
    return out.with_name(out.name + PARTIAL_SUFFIX)


def find_resumable(path: str | Path) -> Path:
    """The directory holding a run's state: ``path`` itself, or the ``path.partial`` of an ``--out`` path;
    a one-line :class:`CheckpointError` when there is none."""
    path = Path(path)
    for candidate in (path, partial_path(path)):
        recover_interrupted_save(candidate, stale_after=0.0)  # resuming saves there next: no save is running
        if (candidate / STATE_FILE).is_file():
            return candidate
    if (path / "config.json").is_file():
        raise CheckpointError(f"{path}: a finished model; there is no interrupted run to resume (its progress "
                              f"would be in {partial_path(path)})", path=path)
    raise CheckpointError(f"{path}: no interrupted run to resume (neither {path / STATE_FILE} nor "
                          f"{partial_path(path) / STATE_FILE} exists)", path=path)


# --- the state as files ----------------------------------------------------------------------------------


def state_files(state: LoopState, extra: Mapping[str, Any] | None = None
                ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``state`` as (tensors for training-state.safetensors, the JSON object of training-state.json);
    ``extra``: more JSON fields (the CLI's command)."""
    tensors: dict[str, np.ndarray] = {f"params/{k}": v for k, v in state.params.items()}
    if state.best_params is not None:
        tensors.update({f"best/{k}": v for k, v in state.best_params.items()})
    counters: dict[str, dict[str, int]] = {}
    for key, fields in state.optimizer["state"].items():
        for field, value in fields.items():
            if isinstance(value, np.ndarray):
                tensors[f"optimizer/{key}/{field}"] = value
            else:
                counters.setdefault(key, {})[field] = int(value)
    task = {}
    for moment, values in (("task_epoch", state.task_epoch), ("task", state.task)):
        task[moment] = {}
        for key, value in values.items():
            if isinstance(value, np.ndarray):
                tensors[f"{moment}/{key}"] = value
                task[moment][key] = {"tensor": f"{moment}/{key}"}
            else:
                task[moment][key] = {"value": value}
    meta = {
        "format": STATE_FORMAT, "format_version": STATE_VERSION,
        "epoch": state.epoch, "position": state.position, "step": state.step, "total_steps": state.total_steps,
        "epoch_rng": state.epoch_rng, "rng": state.rng, "noise_rng": state.noise_rng,
        "epoch_losses": state.epoch_losses, "epoch_seconds": state.epoch_seconds, "seconds": state.seconds,
        "history": state.history.to_json(), "epochs_without_gain": state.epochs_without_gain,
        "has_best": state.best_params is not None, "finished": state.finished, "first_loss": state.first_loss,
        "optimizer": {"name": state.optimizer["optimizer"], "hyperparams": state.optimizer["hyperparams"],
                      "counters": counters},
        **task, **(extra or {}),
    }
    return tensors, meta


def read_training_state(directory: str | Path) -> tuple[LoopState, dict[str, Any]]:
    """The :class:`LoopState` saved in ``directory`` (a ``.partial`` checkpoint) and the whole JSON object
    (with the CLI's fields); one-line :class:`CheckpointError` naming the file for anything missing or broken."""
    directory = Path(directory)
    meta_path, tensors_path = directory / STATE_FILE, directory / STATE_TENSORS_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CheckpointError(f"{meta_path}: cannot be read: {exc.strerror or exc}", path=meta_path) from None
    except ValueError as exc:
        raise CheckpointError(f"{meta_path}: invalid JSON ({' '.join(str(exc).split())})", path=meta_path) from None
    if not isinstance(meta, dict) or meta.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{meta_path}: not an unrolled training state", path=meta_path)
    if meta.get("format_version") != STATE_VERSION:
        raise CheckpointError(f"{meta_path}: format_version {meta.get('format_version')!r}, this unrolled reads "
                              f"{STATE_VERSION}", path=meta_path, field="format_version")
    tensors = read_safetensors(tensors_path)
    try:
        state = _loop_state(meta, tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{meta_path}: incomplete or inconsistent training state ({exc!r})",
                              path=meta_path) from None
    return state, meta


def _loop_state(meta: dict[str, Any], tensors: dict[str, np.ndarray]) -> LoopState:
    def group(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    optimizer_state: dict[str, dict[str, Any]] = {}
    for name, value in group("optimizer/").items():
        key, field = name.rsplit("/", 1)
        optimizer_state.setdefault(key, {})[field] = value
    for key, fields in meta["optimizer"]["counters"].items():
        optimizer_state.setdefault(key, {}).update(fields)
    hyperparams = dict(meta["optimizer"]["hyperparams"])
    if "betas" in hyperparams:
        hyperparams["betas"] = tuple(hyperparams["betas"])

    def task(moment: str) -> dict[str, Any]:
        return {key: tensors[item["tensor"]] if "tensor" in item else item["value"]
                for key, item in meta[moment].items()}

    return LoopState(
        epoch=int(meta["epoch"]), position=int(meta["position"]), step=int(meta["step"]),
        total_steps=meta["total_steps"], epoch_rng=meta["epoch_rng"], rng=meta["rng"],
        noise_rng=meta["noise_rng"], epoch_losses=[float(x) for x in meta["epoch_losses"]],
        epoch_seconds=float(meta["epoch_seconds"]), seconds=float(meta["seconds"]),
        history=TrainHistory.from_json(meta["history"]), epochs_without_gain=int(meta["epochs_without_gain"]),
        params=group("params/"), best_params=group("best/") if meta["has_best"] else None,
        optimizer={"optimizer": meta["optimizer"]["name"], "hyperparams": hyperparams, "state": optimizer_state},
        task_epoch=task("task_epoch"), task=task("task"), finished=bool(meta["finished"]),
        first_loss=meta["first_loss"],
    )


# --- the callback ------------------------------------------------------------------------------------------


class Checkpointer:
    """A training callback that keeps a run resumable: at each epoch end, every ``checkpoint_every`` steps and
    when ``interrupt`` stops the run, ``model`` writes the best model so far and the state into ``directory``
    (see the module docstring). ``resume_state``: a :class:`LoopState` to continue from. ``extra``: JSON fields
    for training-state.json; ``config_extra``: fields for the checkpoint's config.json."""

    def __init__(self, model, directory: str | Path, *, checkpoint_every: int | None = None,
                 resume_state: LoopState | None = None, interrupt: StopSignals | None = None,
                 extra: Mapping[str, Any] | None = None, config_extra: Mapping[str, Any] | None = None) -> None:
        self.model, self.directory = model, Path(directory)
        self.checkpoint_every, self.resume_state, self.interrupt = checkpoint_every, resume_state, interrupt
        self.extra, self.config_extra = dict(extra or {}), dict(config_extra or {})
        self.last: LoopState | None = None  # the last state written

    def on_checkpoint(self, state: LoopState) -> None:
        self.model._save_progress(self.directory, state, extra=self.config_extra,
                                  training_state=state_files(state, self.extra))
        self.last = state


class StopSignals:
    """While active (``with StopSignals() as stop:``), SIGINT and SIGTERM set ``requested`` to the signal's
    number instead of killing the process, so that training stops at the next step boundary with its state
    saved (pass it as ``Checkpointer(interrupt=…)``); a second signal interrupts at once (KeyboardInterrupt).
    The previous handlers come back on exit. Outside the main thread it does nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame) -> None:
        if self.requested is not None:
            raise KeyboardInterrupt
        self.requested = signum

    def __enter__(self) -> StopSignals:
        try:
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread: signals stay as they are
            self._previous.clear()
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
