"""The ``unrolled`` command. It only orchestrates library calls and prints; exit codes: 0 ok, 2 usage
error, 1 runtime error with a one-line message (``--debug``, before or after the command, shows the
traceback; an exception nobody expected is one line too, marked as a bug), 130 or 143 for training stopped
by Ctrl-C or SIGTERM (its state kept, see ``unrolled train --help``).

One module per task, each holding its commands (``Command``: help, options, run):

    demo.py      demo                      classify.py   train --task classify, evaluate, predict
    train.py     train (the --task switch)  forecast.py   train --task forecast, forecast
    explain.py   explain, walkthrough       lm.py         train --task lm, generate
    datasets.py  datasets, train --dataset  translate.py  train --task translate, translate
    export.py    export (ONNX)              speech.py     train --task speech, transcribe
    serve.py     serve (HTTP API, explorer)
    common.py    what they share (options, progress, errors)

Only the module of the command being run is imported, and only its parser is built, so ``unrolled --help``
and ``predict`` start fast; the command modules import the library inside their functions. The modules
import ``common``; besides, ``train`` imports the task module it switches to, ``classify`` the dataset
options of ``datasets``, and ``classify`` (evaluate) and ``explain`` import ``translate`` or ``speech`` for a translator's or a
speech recognizer's checkpoint (tests/test_imports.py checks there is no cycle).
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from typing import TextIO

from unrolled import __version__
from unrolled.cli.common import CommandExit, ExitCode, Parser, Streams, UsageError, new_parser

# command -> (module of unrolled.cli that has it, one-line summary for `unrolled --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "train a tiny sentiment RNN on embedded sentences"),
    "train": ("train", "train a classifier, forecaster, language model, translator or speech recognizer"),
    "evaluate": ("classify", "evaluate a classifier, a translator (BLEU) or a speech recognizer on a file"),
    "predict": ("classify", "predict labels of texts"),
    "walkthrough": ("explain", "the seed's example, every number of forward, loss and BPTT"),
    "explain": ("explain", "trace a text through a model, step by step"),
    "forecast": ("forecast", "forecast the next values of a series"),
    "generate": ("lm", "generate text with a language model"),
    "translate": ("translate", "translate sentences with a trained translator"),
    "transcribe": ("speech", "transcribe WAV files with a speech recognizer"),
    "datasets": ("datasets", "list, describe and download public datasets"),
    "export": ("export", "export a classifier or language model to ONNX (onnxruntime)"),
    "serve": ("serve", "serve models over HTTP: a JSON API and the explorer pages"),
}


def _top_parser() -> argparse.ArgumentParser:
    width = max(map(len, COMMANDS))
    listing = "\n".join(f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items())
    parser = Parser(
        prog="unrolled",
        description="Recurrent neural networks you can see through.",
        epilog=f"commands:\n{listing}\n\nexample: unrolled demo    (each command has --help with examples)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"unrolled {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser.add_argument("command", nargs="?", choices=list(COMMANDS), metavar="COMMAND", help="one of the commands below")
    parser.add_argument("options", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def command_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    """The parser of one command and the command itself (its module imported on demand)."""
    module = importlib.import_module(f"unrolled.cli.{COMMANDS[name][0]}")
    command = module.COMMANDS[name]
    parser = new_parser(f"unrolled {name}", command.description)
    command.add_arguments(parser)
    return parser, command


def parse(argv: Sequence[str] | None) -> tuple[argparse.Namespace | None, object | None]:
    """(args, command), or (None, None) for no command at all; argparse's SystemExit passes through."""
    top = _top_parser().parse_args(argv)
    if top.command is None:
        return None, None
    if top.command == "train":
        from unrolled.cli.train import parse_train

        args, command = parse_train(top.options)
    else:
        parser, command = command_parser(top.command)
        args = parser.parse_args(top.options)
    args.command = top.command
    args.debug = top.debug or getattr(args, "debug", False)
    return args, command


def main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    streams = Streams(out or sys.stdout, err or sys.stderr, stdin or sys.stdin)
    previous_sigterm = _terminate_cleanly()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = lambda message, *rest: streams.err.write(  # one line, no source excerpt
                f"unrolled: warning: {_one_line(message)}\n")
            return _main(argv, streams)
    except _Terminated:  # SIGTERM outside training (which stops at a step boundary instead)
        streams.err.write("unrolled: terminated\n")
        return 128 + signal.SIGTERM
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)


def _main(argv: Sequence[str] | None, streams: Streams) -> int:
    try:
        args, command = parse(argv)
    except SystemExit as exit_:  # argparse exits 2 on usage errors and 0 on --help/--version
        return int(exit_.code or 0)
    except UsageError as error:  # found while choosing a train task's options
        streams.err.write(f"unrolled train: error: {error}\n")
        return ExitCode.USAGE
    except (ValueError, OSError) as error:  # --resume DIR that holds no run to resume
        if "--debug" in (argv or sys.argv[1:]):
            raise
        streams.err.write(f"unrolled: error: {_one_line(error)}\n")
        return ExitCode.ERROR
    if args is None:
        _top_parser().print_help(streams.out)
        return ExitCode.USAGE
    return _run(args, command, streams)


def entry() -> None:
    """The ``unrolled`` program (the console script and ``python -m unrolled``): :func:`main`, then the exit.
    A Ctrl-C or SIGTERM that main does not handle still ends the process without a traceback: while a
    command starts (its imports) with 130 or 143; once main has returned (its work done, the interpreter
    shutting down) with main's own exit code, since nothing was cut short."""
    code = ExitCode.INTERRUPTED
    try:
        code = main()
    except KeyboardInterrupt:
        sys.stderr.write("unrolled: interrupted\n")
    except _Terminated:
        code = 128 + signal.SIGTERM
        sys.stderr.write("unrolled: terminated\n")
    finally:
        _exit_on_signals(code)
        global _EXITING
        _EXITING = True
    if _may_skip_teardown():
        _exit_after_atexit(code)
    raise SystemExit(code)


_EXITING = False  # entry's main has returned: the process is on its way out


def _may_skip_teardown() -> bool:
    """Whether the process may end without freeing its objects: no other thread runs (the interpreter would
    wait for it) and torch is not loaded (its objects' destructors end process groups and devices)."""
    return threading.active_count() == 1 and "torch" not in sys.modules


def _exit_after_atexit(code: int) -> None:
    """End the process with ``code`` as the interpreter would, without its teardown: atexit's callbacks run
    (temporary directories, logging, the late-signal guard above) and the standard streams are flushed, then
    ``os._exit``. Freeing every module and object took ~40 ms of `unrolled predict`'s 0.33 s; every command
    writes and closes its files itself (saves are atomic renames), so skipping it loses nothing. (mypy ends
    the same way, for the same reason.) A stream that cannot be flushed (a closed pipe) is left as it is."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, or a closed stream
            pass
    os._exit(code)


def _ignore_late_signals() -> None:
    """Once atexit is done, the interpreter's finalization puts Python's signal handlers back to the default
    action, under which a late SIGINT or SIGTERM would kill a process whose work is done (exit -2 or -15).
    Registered when this module is imported, so that it runs among the last atexit callbacks: from then on
    both signals are ignored and main's exit code stands."""
    if _EXITING:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)


atexit.register(_ignore_late_signals)


def _exit_on_signals(code: int) -> None:
    """From now on SIGINT and SIGTERM end the process at once with ``code``, its output flushed first."""
    def exit_now(number, frame) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, RuntimeError):  # closed, or a flush this signal interrupted
                pass
        os._exit(code)

    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, exit_now)
    except ValueError:  # not the main thread
        pass


class _Terminated(BaseException):
    """SIGTERM, raised where the process is, so that it ends like Ctrl-C does: cleanly, exit 143."""


def _raise_terminated(signum, frame) -> None:
    raise _Terminated


def _terminate_cleanly():
    """Turn SIGTERM into :class:`_Terminated` (the main thread only); the previous handler, or None."""
    try:
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (a caller's thread, a test runner)
        return None


def _run(args: argparse.Namespace, command, streams: Streams) -> int:
    rank = _worker_rank()
    if rank is not None and args.command == "train":
        # Under torchrun only rank 0 prints; every rank says its errors, naming itself.
        streams = Streams(streams.out if rank == 0 else _Discard(), _RankPrefix(streams.err, rank, rank == 0),
                          streams.stdin)
    try:
        command.run(args, streams)
        return ExitCode.OK
    except UsageError as error:
        streams.err.write(f"unrolled {args.command}: error: {error}\n")
        return ExitCode.USAGE
    except BrokenPipeError:  # the reader of our output went away (``| head``): nothing left to say
        _silence_stdout()
        return ExitCode.OK
    except CommandExit as stop:
        if stop.message:
            streams.err.write(stop.message + "\n")
        return stop.code
    except (ValueError, OSError, RuntimeError, ImportError) as error:
        if args.debug:
            raise
        streams.err.write(f"unrolled: error: {_one_line(error)}\n")
        return ExitCode.ERROR
    except KeyboardInterrupt:
        streams.err.write("unrolled: interrupted\n")
        return ExitCode.INTERRUPTED
    except MemoryError:
        if args.debug:
            raise
        streams.err.write("unrolled: error: out of memory; try a smaller model or batch (--hidden-size, "
                          "--batch-size, --max-len)\n")
        return ExitCode.ERROR
    except BaseException as error:  # anything else (TypeError, IndexError, a library's panic): still one line
        if isinstance(error, (SystemExit, GeneratorExit, _Terminated)) or args.debug:
            raise
        streams.err.write(f"unrolled: error: unexpected {type(error).__name__}: {_one_line(error)} (a bug in "
                          "unrolled: rerun with --debug for the traceback and report it)\n")
        return ExitCode.ERROR
    finally:
        _leave_process_group()


def _worker_rank() -> int | None:
    """This process's rank when it is one of several (torchrun), else None."""
    try:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            return int(os.environ.get("RANK", "0"))
    except ValueError:
        return None  # unrolled.distributed names the bad variable when training starts
    return None


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class _RankPrefix(_Discard):
    """Error lines ("unrolled…: error: …") prefixed with the rank; the rest passed on (``passes``) or dropped."""

    def __init__(self, err: TextIO, rank: int, passes: bool) -> None:
        self.err, self.rank, self.passes = err, rank, passes

    def write(self, text: str) -> int:
        if text.startswith("unrolled") and ": error: " in text:
            self.err.write(f"rank {self.rank}: {text}")
            self.err.flush()
        elif self.passes:
            self.err.write(text)
        return len(text)

    def flush(self) -> None:
        self.err.flush()

    def isatty(self) -> bool:
        return self.passes and self.err.isatty()


def _leave_process_group() -> None:
    """End the process group a training run joined (torch warns otherwise); never one a caller started."""
    distributed = sys.modules.get("unrolled.distributed")
    if distributed is not None:
        distributed.leave()


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's flush at exit does not fail on the closed pipe again
    (the recipe of the Python documentation for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (tests): nothing to do
        pass


def _one_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return " ".join(text.split())


__all__ = ["COMMANDS", "ExitCode", "UsageError", "command_parser", "entry", "main", "parse"]
