"""What the command modules share: the command record, errors and exit codes, option types, options derived
from an estimator's parameters, the training progress reporter, and small file helpers.

This module imports only the standard library at import time, so that building a command's parser stays
cheap; the library modules a helper needs are imported inside it.
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, TextIO


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


class UsageError(Exception):
    """A combination of options that argparse cannot check (exit code 2)."""


class CommandExit(Exception):
    """End the command with this exit code after writing ``message`` (a line, or "") on stderr."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Streams:
    out: TextIO
    err: TextIO
    stdin: TextIO


@dataclass(frozen=True)
class Command:
    """One ``unrolled`` command: its help text (with an example), its options and what it runs."""

    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Streams], None]


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line that points at --help (rather than the whole usage block)."""

    def error(self, message: str):
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def new_parser(prog: str, description: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A command's parser: raw-text description (for the examples), ``--debug`` accepted here too."""
    parser = Parser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs
    )
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    return parser


# --- option types -----------------------------------------------------------------------------------------


def _number_type(convert, accepts, expected: str):
    """An argparse ``type``: ``convert`` the text, then require ``accepts(value)``; the error says ``expected``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    parse.__name__ = expected  # what argparse names in "invalid <type> value"
    return parse


positive_int = _number_type(int, lambda v: v >= 1, "a positive integer")
nonnegative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0")
probability = _number_type(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")
positive_float = _number_type(float, lambda v: v > 0 and math.isfinite(v), "a positive number")
nonnegative_float = _number_type(float, lambda v: v >= 0 and math.isfinite(v), "a number >= 0")
fraction = _number_type(float, lambda v: 0.0 < v < 1.0, "a number in (0, 1)")
port_number = _number_type(int, lambda v: 1 <= v <= 65535, "a port number from 1 to 65535")


def bounded_int(low: int, high: int):
    """An argparse ``type`` for integers in [low, high]."""
    return _number_type(int, lambda v: low <= v <= high, f"an integer from {low} to {high:,}")


def label_names(text: str) -> dict[str, str]:
    """'0=negative,1=positive' -> {'0': 'negative', '1': 'positive'}."""
    mapping = {}
    for part in text.split(","):
        raw, sep, name = part.partition("=")
        if not sep or not raw.strip() or not name.strip():
            raise argparse.ArgumentTypeError(f"expected LABEL=NAME pairs separated by commas, got {part!r}")
        if raw.strip() in mapping:
            raise argparse.ArgumentTypeError(f"label {raw.strip()!r} is named twice")
        if name.strip() in mapping.values():
            raise argparse.ArgumentTypeError(f"two labels are named {name.strip()!r}; each needs its own name")
        mapping[raw.strip()] = name.strip()
    return mapping


# --- options that are an estimator's parameters ---------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A command-line option that sets one parameter of an estimator.

    The option's dest is the parameter's name, its main flag the name with dashes (``hidden_size`` ->
    ``--hidden-size``), ``aliases`` the older short flags; its default is read from the estimator's
    signature, so the estimator is the one source of every default. ``flag`` replaces the main flag where
    the option reads better inverted (``--cased`` sets ``lowercase=False``). ``detect_given``: the parsed
    value stays None when the option is not given (so a command can tell, e.g. to take the embedding size
    from a word-vector file); :func:`param_values` then fills in the estimator's default.
    """

    name: str
    help: str
    type: Callable[[str], Any] | None = None
    choices: Sequence[str] | None = None
    aliases: tuple[str, ...] = ()
    flag: str | None = None
    metavar: str | None = None
    detect_given: bool = False


def recurrent_params(dropout_help: str) -> tuple[Param, ...]:
    """The recurrent layer's options, the same in every task (the cells come from the registry)."""
    from unrolled.nn.cells import CELL_NAMES

    return (
        Param("cell", "recurrent cell", choices=CELL_NAMES),
        Param("hidden_size", "hidden size", positive_int, aliases=("--hidden",), metavar="H"),
        Param("num_layers", "recurrent layers", positive_int, aliases=("--layers",), metavar="L"),
        Param("dropout", dropout_help, probability),
    )


def optimizer_params(batch_help: str = "batch size") -> tuple[Param, ...]:
    """The training loop's options that every task has."""
    return (
        Param("epochs", "epochs", positive_int),
        Param("batch_size", batch_help, positive_int),
        Param("lr", "learning rate", positive_float),
        Param("clip_norm", "max gradient norm", positive_float),
    )


SEED_PARAM = Param("random_state", "random seed (an integer >= 0)", nonnegative_int, aliases=("--seed",))


def estimator_defaults(estimator: type) -> dict[str, Any]:
    """The keyword defaults of ``estimator.__init__`` (scikit-learn style: every parameter has one)."""
    return {p.name: p.default for p in inspect.signature(estimator.__init__).parameters.values()
            if p.kind == p.KEYWORD_ONLY}


def add_params(group, estimator: type, params: Sequence[Param]) -> None:
    """Add one option per parameter to ``group``, default and help naming the Python parameter."""
    defaults = estimator_defaults(estimator)
    for param in params:
        default = defaults[param.name]
        flags = [param.flag or "--" + param.name.replace("_", "-"), *param.aliases]
        where = f"{estimator.__name__}({param.name}=…)"
        if isinstance(default, bool):
            action = "store_false" if default else "store_true"
            group.add_argument(*flags, dest=param.name, action=action, default=default,
                               help=f"{param.help} [{where}]")
            continue
        shown = "none" if default is None else default
        group.add_argument(*flags, dest=param.name, type=param.type, choices=param.choices,
                           default=None if param.detect_given else default, metavar=param.metavar,
                           help=f"{param.help} (default: {shown}) [{where}]")


def param_values(args: argparse.Namespace, estimator: type, params: Sequence[Param]) -> dict[str, Any]:
    """The estimator's keyword arguments from the parsed options."""
    defaults = estimator_defaults(estimator)
    values = {param.name: getattr(args, param.name) for param in params}
    for param in params:
        if param.detect_given and values[param.name] is None:
            values[param.name] = defaults[param.name]
    return values


# --- shared helpers ---------------------------------------------------------------------------------------


ENGINE_HELP = """\
engine:
  --engine torch runs the same training through PyTorch (autograd and torch's optimizers on the model's twin;
  pip install 'unrolled[torch]') and writes the same checkpoint, which predict, explain and the rest read
  with the NumPy engine. --device cuda (or cuda:N) trains on a GPU. Data-parallel training:
  torchrun --nproc_per_node=N -m unrolled train ... (either engine; one thread per process; rank 0 prints
  and writes the checkpoint; docs/scaling.md)."""


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engine", ENGINE_HELP.split("\n", 1)[1])
    group.add_argument("--engine", choices=["numpy", "torch"], default="numpy",
                       help="the training engine (default: numpy)")
    group.add_argument("--device", default=None, metavar="DEVICE",
                       help="cpu, cuda or cuda:N, for --engine torch (default: cpu)")


@dataclass(frozen=True)
class Runtime:
    """How a training run runs: the engine, the device and, under torchrun, the process group."""

    engine: str
    device: str | None
    distributed: Any  # unrolled.distributed.Distributed or None

    @property
    def is_main(self) -> bool:
        """Rank 0 (or the only process): the one that prints and writes the checkpoint."""
        return self.distributed is None or self.distributed.is_main

    @property
    def fit_options(self) -> dict[str, Any]:
        return {"engine": self.engine, "device": self.device, "distributed": self.distributed}


def training_runtime(args: argparse.Namespace) -> Runtime:
    """Check --engine/--device before any work, and join torchrun's process group when there is one."""
    from unrolled.distributed import from_environment
    from unrolled.train import check_engine

    if args.engine == "numpy" and args.device not in (None, "cpu"):
        raise UsageError(f"--device {args.device}: needs --engine torch (the NumPy engine runs on the CPU)")
    try:
        check_engine(args.engine, args.device)  # torch missing: a runtime error (exit 1) that says what to install
    except ValueError as error:
        message = str(error)
        if message.startswith("device: "):
            raise UsageError("--device " + message[len("device: "):]) from None
        raise
    distributed = from_environment()
    if distributed is not None:
        distributed.start(args.device if args.engine == "torch" else None)
    return Runtime(args.engine, args.device, distributed)


def progress_callbacks(args: argparse.Namespace, model) -> list[object]:
    """The callbacks that keep a run resumable (``unrolled.resume.Checkpointer`` writing ``--out``'s
    ``.partial``), for a single-process NumPy-engine run; none otherwise (torch engine, torchrun)."""
    if getattr(args, "resume_plan", None) is None:
        return []
    from unrolled.resume import Checkpointer

    plan = args.resume_plan
    return [Checkpointer(model, plan.partial, checkpoint_every=args.checkpoint_every, resume_state=plan.state,
                         interrupt=plan.signals, extra={"command": plan.record},
                         config_extra={"command": command_line(args)})]


@contextmanager
def named_for_the_user(data: dict[str, str], params: Sequence[Param] = ()):
    """Say a library's ValueError in the command line's words: a message about a data argument
    (``data``: {argument: file}, e.g. {"text": "corpus.txt"}) names the file instead, and the estimator
    parameters it mentions are named by their flags (``batch_size`` -> ``--batch-size``)."""
    import re

    try:
        yield
    except ValueError as error:
        message = str(error)
        for argument, path in data.items():
            if message.startswith(f"{argument}: "):
                message = f"{path}: {message[len(argument) + 2:]}"
                break
        for param in params:
            if param.flag:  # an inverted flag (--cased for lowercase) would say the opposite
                continue
            name, flag = re.escape(param.name), "--" + param.name.replace("_", "-")
            # A one-word name ("optimizer", "window") is also a plain word: it is the parameter only before its
            # value ("bptt 1000000") or after the advice to change it ("lower bptt").
            where = rf"(?<![\w-]){name}(?![\w-])" if "_" in param.name else \
                rf"(?<![\w-]){name}(?= -?\d)|(?<=lower ){name}(?![\w-])|(?<=raise ){name}(?![\w-])"
            message = re.sub(where, flag, message)
        if message == str(error):
            raise
        raise ValueError(message) from None


def command_line(args: argparse.Namespace | None = None) -> list[str] | None:
    """The command as the user typed it, for the checkpoint's record (None when not run as a command); for a
    run continued with --resume, the command that started it."""
    resumed = getattr(args, "resume_from", None)
    if resumed is not None:
        return ["unrolled", "train", *resumed.record["argv"]]
    if sys.argv and Path(sys.argv[0]).name in ("unrolled", "__main__.py"):
        return ["unrolled", *sys.argv[1:]]
    return None


def check_out_dir(path: str) -> Path:
    """Fail before training, not after it, when --out cannot take a checkpoint."""
    from unrolled.checkpoint import check_replaceable

    if not str(path).strip():
        raise UsageError("--out: empty; give the checkpoint directory to write")
    check_replaceable(path)
    return Path(path)


def file_summary(path: str, rows: int, skipped: int) -> dict[str, object]:
    """What a checkpoint records of a data file it was trained on."""
    from unrolled.datasets import sha256_file

    return {"path": str(path), "sha256": sha256_file(path), "rows": rows, "skipped_rows": skipped}


def write_json(value: object, out: TextIO) -> None:
    import json

    json.dump(value, out, indent=2)
    out.write("\n")


def model_option(parser: argparse.ArgumentParser, default: str | None, what: str) -> None:
    """``--model NAME|DIR``: a checkpoint directory or a bundled model name."""
    from unrolled.pretrained import BUNDLED

    bundled = ", ".join(BUNDLED)
    if default is None:
        parser.add_argument("--model", required=True, metavar="DIR", help=f"checkpoint directory of {what}")
    else:
        parser.add_argument("--model", default=default, metavar="NAME|DIR",
                            help=f"checkpoint directory of {what}, or a bundled model: {bundled} (default {default})")


# --- progress ---------------------------------------------------------------------------------------------


class Progress:
    """Training progress on ``err``, for every task: on a terminal a live line with the epoch, a bar, the
    steps done, elapsed time, ETA, steps/s and the running loss; otherwise one line per epoch (at most about
    ``MAX_LINES`` lines for long runs: every k-th epoch, the last one and every improvement). ``quiet``:
    nothing. A training callback (``on_train_begin``, ``on_batch_end``, ``on_epoch_end``)."""

    MAX_LINES = 25
    BAR = 24

    def __init__(self, err: TextIO, quiet: bool, metric: str = "dev accuracy", clock=time.perf_counter,
                 tokens: Callable[[], int] | None = None) -> None:
        """``tokens``: the number of tokens trained on so far (shown as tokens/s beside steps/s)."""
        self.err, self.quiet, self.metric, self.clock, self.tokens = err, quiet, metric, clock, tokens
        self.live = not quiet and err.isatty()
        self.steps_per_epoch, self.epochs, self.recent = 1, 1, []
        self.started = self.last_draw = 0.0

    def on_train_begin(self, steps_per_epoch: int, epochs: int) -> None:
        self.steps_per_epoch, self.epochs = steps_per_epoch, epochs
        self.started = self.clock()

    def on_batch_end(self, step: int, loss: float) -> None:
        self.recent = (self.recent + [loss])[-50:]
        now = self.clock()
        if not self.live or (now - self.last_draw < 0.1 and step % self.steps_per_epoch):
            return
        self.last_draw = now
        done = (step - 1) % self.steps_per_epoch + 1
        epoch = (step - 1) // self.steps_per_epoch + 1
        filled = int(self.BAR * done / self.steps_per_epoch)
        elapsed = now - self.started
        rate = step / elapsed if elapsed > 0 else 0.0
        left = (self.steps_per_epoch * self.epochs - step) / rate if rate else float("nan")
        self.err.write(f"\repoch {epoch}/{self.epochs} [{'#' * filled}{'.' * (self.BAR - filled)}] "
                       f"{done}/{self.steps_per_epoch}  {_clock(elapsed)} elapsed, ETA {_clock(left)}, "
                       f"{rate:.1f} steps/s{self._token_rate(elapsed)}  "
                       f"loss {sum(self.recent) / len(self.recent):.4f}\033[K")
        self.err.flush()

    def _token_rate(self, elapsed: float) -> str:
        return f", {self.tokens() / elapsed:,.0f} tokens/s" if self.tokens is not None and elapsed > 0 else ""

    def on_epoch_end(self, result, params) -> None:
        if self.quiet:
            return
        every = max(1, math.ceil(self.epochs / self.MAX_LINES))
        improved = result.improved and result.dev_metric is not None
        if not self.live and not (result.epoch % every == 0 or result.epoch == self.epochs or improved
                                  or result.epoch == 1):
            return
        dev = "" if result.dev_metric is None else f"  {self.metric} {result.dev_metric:.4f}"
        mark = " *" if improved else ""
        self.err.write(("\r\033[K" if self.live else "") +
                       f"epoch {result.epoch}/{self.epochs}  loss {result.train_loss:.4f}{dev}  "
                       f"{result.seconds:.1f}s{self._token_rate(self.clock() - self.started)}{mark}\n")


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


__all__ = [
    "SEED_PARAM", "optimizer_params", "recurrent_params",
    "Command", "CommandExit", "ExitCode", "named_for_the_user", "progress_callbacks", "Param", "Progress", "Streams", "UsageError", "add_params", "check_out_dir",
    "command_line", "estimator_defaults", "file_summary", "fraction", "label_names", "model_option",
    "new_parser", "nonnegative_float", "nonnegative_int", "param_values", "positive_float", "positive_int",
    "probability", "write_json",
]
