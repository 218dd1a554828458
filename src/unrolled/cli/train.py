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
from collections.abc import Sequence

from unrolled.cli.common import Command, UsageError, add_engine_options, new_parser

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

tasks:
{tasks}
"""


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
    return parser, command


def parse_train(argv: Sequence[str]) -> tuple[argparse.Namespace, Command]:
    """Find --task, then parse with that task's parser; options of other tasks are refused by name."""
    finder = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    finder.add_argument("--task", default=DEFAULT_TASK)
    known, _ = finder.parse_known_args(argv)
    task = known.task if known.task in TASKS else DEFAULT_TASK  # a bad --task is the full parser's error
    parser, command = train_parser(task)
    args, rest = parser.parse_known_args(argv)
    if rest:
        _refuse(parser, task, rest)
    return args, command


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
