"""``unrolled train``: one command, one option set per task.

``--task`` picks the task module (classify.py, forecast.py, lm.py, translate.py, speech.py); only that task's options exist on the
command line (``unrolled train --task lm --help`` shows what applies to language models), and an option of
another task is a usage error that says whose it is. The options every task shares (the output directory,
the recurrent layer's shape, the optimizer's basics) are added by each task from its estimator's parameters,
so each default is the estimator's.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unrolled.cli.common import (
    Command,
    CommandExit,
    Streams,
    UsageError,
    add_engine_options,
    check_out_dir,
    new_parser,
    positive_int,
)

# --task -> (module of unrolled.cli, one-line summary)
TASKS: dict[str, tuple[str, str]] = {
    "classify": ("classify", "text classification on a labelled file (the default)"),
    "forecast": ("forecast", "time-series forecasting on one column of a CSV series"),
    "lm": ("lm", "character- or word-level language modelling of a text"),
    "translate": ("translate", "sentence translation from aligned sentence pairs"),
    "speech": ("speech", "speech recognition from WAV files (spoken digits; connected digits with CTC)"),
}
DEFAULT_TASK = "classify"

TRAIN_HELP = """\
Train a model and write its checkpoint directory (model.safetensors, config.json, and vocab.json for text
models). Each task has its own options: unrolled train --task TASK --help lists them.

While it trains, the best model so far and the state to continue from are kept in OUT.partial (written at
each epoch end, every --checkpoint-every steps, and on Ctrl-C or SIGTERM, which stop at the next step and exit
130 or 143); OUT is written only when training ends. After an interruption or a crash,
unrolled train --resume OUT continues with the same options and ends with the same weights as a run never
interrupted (the NumPy engine in one process).

tasks:
{tasks}
"""

RESUME_OPTIONS = ("--quiet", "--json", "--debug")  # what --resume takes besides the directory


def _task_module(task: str):
    return importlib.import_module(f"unrolled.cli.{TASKS[task][0]}")


def train_parser(task: str) -> tuple[argparse.ArgumentParser, Command]:
    """The parser of ``unrolled train --task TASK`` and the task's command."""
    width = max(map(len, TASKS))
    listing = "\n".join(f"  {name:<{width}}  {summary}" for name, (_, summary) in TASKS.items())
    command = _task_module(task).TRAIN
    parser = new_parser("unrolled train", TRAIN_HELP.format(tasks=listing) + "\n" + command.description)
    parser.add_argument("--task", choices=list(TASKS), default=DEFAULT_TASK,
                        help=f"what to train (default: {DEFAULT_TASK}); this help shows --task {task}'s options")
    parser.add_argument("--out", required=True, metavar="DIR", help="checkpoint directory to write")
    command.add_arguments(parser)
    add_engine_options(parser)
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("--json", action="store_true", help="print the training summary as JSON")
    resume = parser.add_argument_group("interruptions")
    resume.add_argument("--checkpoint-every", type=positive_int, metavar="N",
                        help="also save the state to resume from every N steps (default: at each epoch end)")
    resume.add_argument("--resume", metavar="DIR",
                        help="continue the interrupted run of --out DIR (or its DIR.partial) with its options; "
                             f"only {', '.join(RESUME_OPTIONS)} may be given with it")
    return parser, command


def parse_train(argv: Sequence[str]) -> tuple[argparse.Namespace, Command]:
    """Find --task, then parse with that task's parser; options of other tasks are refused by name.
    ``--resume DIR`` parses the interrupted run's options instead."""
    finder = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    finder.add_argument("--task", default=DEFAULT_TASK)
    finder.add_argument("--resume")
    known, _ = finder.parse_known_args(argv)
    if known.resume is not None and not {"-h", "--help"} & set(argv):
        return _parse_resume(known.resume, argv)
    task = known.task if known.task in TASKS else DEFAULT_TASK  # a bad --task is the full parser's error
    parser, command = train_parser(task)
    args, rest = parser.parse_known_args(argv)
    if rest:
        _refuse(parser, task, rest)
    args.train_argv = list(argv)
    return args, _resumable(command)


def _parse_resume(directory: str, argv: Sequence[str]) -> tuple[argparse.Namespace, Command]:
    """The options of the run whose state ``directory`` holds, with --quiet/--json/--debug as given now."""
    from unrolled.resume import find_resumable, read_training_state

    others = [a for a in argv if a.startswith("--") and a.split("=", 1)[0] not in (*RESUME_OPTIONS, "--resume")]
    if others:
        raise UsageError(f"{others[0].split('=', 1)[0]}: --resume continues with the interrupted run's options; "
                         f"only {', '.join(RESUME_OPTIONS)} may be given with it")
    found = find_resumable(directory)
    state, meta = read_training_state(found)
    record = meta.get("command")
    if not isinstance(record, dict) or not isinstance(record.get("argv"), list):
        raise UsageError(f"{found}: its state does not record the command that started it (not written by "
                         "unrolled train); resume it from Python with unrolled.resume")
    saved_argv = [str(a) for a in record["argv"]]
    args, command = parse_train([a for a in saved_argv if a not in RESUME_OPTIONS]
                                + [a for a in argv if a in RESUME_OPTIONS])
    args.resume_from = ResumePlan(found.absolute(), state, record)
    return args, command


@dataclass
class ResumePlan:
    """How a resumable run keeps its progress: the .partial directory, the state it continues from (None
    for a new run), the record of its command (options, working directory, input files), and, while it
    trains, the signal flag (``unrolled.resume.StopSignals``)."""

    partial: Path
    state: Any
    record: dict[str, Any]
    signals: Any = None


def _resumable(command: Command) -> Command:
    """A task's training command, run so that an interruption loses nothing (:func:`run_resumable`)."""
    return Command(command.description, command.add_arguments,
                   lambda args, streams: run_resumable(command.run, args, streams))


def run_resumable(task_run, args: argparse.Namespace, streams: Streams) -> None:
    """Run a task's training with the output paths checked before any work, Ctrl-C and SIGTERM turned into
    a stop at the next step (exit 130/143) with the state in OUT.partial, and OUT.partial removed once OUT
    holds the finished model. A resumed run works in the directory the run started in."""
    resume_from = getattr(args, "resume_from", None)
    previous = os.getcwd()
    try:
        if resume_from is not None and resume_from.record.get("cwd") not in (None, previous):
            os.chdir(resume_from.record["cwd"])  # relative paths mean what they meant when the run started
        _run_checked(task_run, args, streams, resume_from)
    finally:
        os.chdir(previous)


def _run_checked(task_run, args: argparse.Namespace, streams: Streams, resume_from) -> None:
    from unrolled.distributed import from_environment
    from unrolled.resume import StopSignals, partial_path
    from unrolled.train import TrainingDiverged, TrainingInterrupted

    _check_output_paths(args)
    if args.engine != "numpy" or from_environment() is not None:
        if resume_from is not None:
            raise UsageError("--resume: only a single-process run of the NumPy engine can be resumed")
        if args.checkpoint_every:
            raise UsageError("--checkpoint-every: only a single-process run of the NumPy engine saves its state")
        args.resume_plan = None
        return task_run(args, streams)
    plan = resume_from
    if plan is None:
        plan = ResumePlan(partial_path(args.out), None,
                          {"argv": args.train_argv, "cwd": os.getcwd(), "files": _input_files(args)})
        _refuse_to_overwrite_a_run(plan.partial, Path(args.out))
    else:
        _check_same_inputs(plan.record, plan.partial)
        if not args.quiet and not args.json:
            streams.err.write(f"resuming {plan.partial}: epoch {plan.state.epoch}, step {plan.state.step}"
                              f"{' (finished; saving the model)' if plan.state.finished else ''}\n")
    partial = plan.partial
    with StopSignals() as plan.signals:
        args.resume_plan = plan
        try:
            task_run(args, streams)
        except TrainingDiverged as diverged:
            raise ValueError(_diverged_message(diverged, args, partial)) from None
        except TrainingInterrupted as stop:
            name = signal.Signals(stop.signal).name
            raise CommandExit(128 + stop.signal,
                              f"unrolled train: interrupted by {name} at epoch {stop.state.epoch}, step "
                              f"{stop.state.step}: the best model so far and the state to continue from are in "
                              f"{partial}; continue with: unrolled train --resume {args.out}") from None
        _remove_partial(partial, streams)  # signals still deferred: the removal is never cut short


def _diverged_message(diverged, args: argparse.Namespace, partial: Path) -> str:
    """The loss diverged: say so with the flags to change; keep the best model so far only when an epoch
    ended (a run that diverged in its first epoch has nothing worth keeping, and its state would block a retry)."""
    import shutil

    from unrolled.resume import read_training_state

    kept = ""
    try:
        state, _ = read_training_state(partial)
        epochs = state.history.epochs
    except ValueError:
        epochs = []
    if epochs:
        kept = (f"; the model of epoch {epochs[-1].epoch} is kept in {partial} (remove it before training "
                "again)")
    else:
        shutil.rmtree(partial, ignore_errors=True)
    advice = [f"a lower --lr (it is {args.lr:g})"]
    if getattr(args, "weight_decay", 0):
        advice.append(f"a lower --weight-decay (it is {args.weight_decay:g})")
    if getattr(args, "clip_norm", None):
        advice.append(f"a smaller --clip-norm (it is {args.clip_norm:g})")
    return (f"training diverged: {diverged.what} at epoch {diverged.epoch}, step {diverged.step} with learning "
            f"rate {diverged.lr:g}; try {' or '.join(advice)}{kept}")


def _check_output_paths(args: argparse.Namespace) -> None:
    """Every path the run will write, checked before any work: --out (and its OUT.partial) replaceable and
    their parent writable, --plot's directory writable and matplotlib importable."""
    from unrolled.checkpoint import check_replaceable
    from unrolled.resume import partial_path

    check_out_dir(args.out)
    check_replaceable(partial_path(args.out))
    for path in (Path(args.out), partial_path(args.out)):
        _check_writable_parent(path, "--out")
    plot = getattr(args, "plot", None)
    if plot:
        import importlib.util

        from unrolled.plot import check_plot_path

        check_plot_path(plot, f"--plot {plot}")
        if importlib.util.find_spec("matplotlib") is None:  # drawing comes after training: say it now
            raise ValueError(f"--plot {plot}: needs matplotlib: pip install 'unrolled[plot]'")


def _check_writable_parent(path: Path, flag: str) -> None:
    """The first existing ancestor of ``path`` (the save creates the rest) is a directory one can write in."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{flag} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: cannot write in {parent} (permission denied)")


def _refuse_to_overwrite_a_run(partial: Path, out: Path) -> None:
    """An interrupted run's state is never replaced by a new run: resume it or remove it first."""
    from unrolled.resume import STATE_FILE, read_training_state

    if not (partial / STATE_FILE).is_file():
        return
    try:
        state, _ = read_training_state(partial)
        where = f" (stopped at epoch {state.epoch}, step {state.step})"
    except ValueError:
        where = ""
    raise ValueError(f"{partial}: holds an interrupted run{where}; continue it with: unrolled train --resume {out} "
                     f"- or remove {partial} to start over")


def _input_files(args: argparse.Namespace) -> dict[str, str]:
    """The regular files the options name (data, word vectors), with their sha256, so that a resumed run can
    tell whether they changed."""
    from unrolled.datasets import sha256_file

    files = {}
    for name, value in vars(args).items():
        for item in value if isinstance(value, list) else [value]:
            if name not in ("out", "resume") and isinstance(item, str) and os.path.isfile(item):
                files[str(Path(item).absolute())] = sha256_file(item)
    return files


def _check_same_inputs(record: dict[str, Any], partial: Path) -> None:
    from unrolled.datasets import sha256_file

    for path, digest in (record.get("files") or {}).items():
        if not os.path.isfile(path):
            raise ValueError(f"{path}: the interrupted run in {partial} read this file, which is gone")
        if sha256_file(path) != digest:
            raise ValueError(f"{path}: changed since the interrupted run in {partial} started (sha256 differs); "
                             "resuming would not continue the same training")


def _remove_partial(partial: Path, streams: Streams) -> None:
    import shutil

    from unrolled.checkpoint import recover_interrupted_save

    if partial.exists():
        recover_interrupted_save(partial, stale_after=0.0)  # what killed saves left beside it goes first
        try:
            shutil.rmtree(partial)
        except OSError as exc:
            streams.err.write(f"unrolled train: warning: the model is saved, but {partial} could not be removed: "
                              f"{exc.strerror or exc}\n")


def _refuse(parser: argparse.ArgumentParser, task: str, rest: list[str]) -> None:
    """Name the options of other tasks as such (in the order their tasks list them); argparse's own error
    for anything else."""
    owners: dict[str, tuple[str, int]] = {}
    for other in TASKS:
        if other != task:
            for position, action in enumerate(train_parser(other)[0]._actions):
                for flag in action.option_strings:
                    owners.setdefault(flag, (other, position))
    flags = [arg.split("=", 1)[0] for arg in rest if arg.startswith("--")]
    foreign = sorted({flag for flag in flags if flag in owners}, key=lambda flag: owners[flag][1])
    if foreign and len(foreign) == len(flags):
        raise UsageError(f"{', '.join(foreign)}: not an option of --task {task}")
    parser.error(f"unrecognized arguments: {' '.join(rest)}")


__all__ = ["DEFAULT_TASK", "TASKS", "parse_train", "train_parser"]
