"""The ``unrolled`` command. It only orchestrates library calls and prints; exit codes: 0 ok, 2 usage
error, 1 runtime error with a one-line message (``--debug`` shows the traceback)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from enum import IntEnum
from typing import TextIO

from unrolled import __version__


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2


DEMO_HELP = """\
Train the seed's network (words -> vectors -> RNN -> last state -> softmax) on sixteen embedded
sentences, printing the loss as BPTT learns, then predict the sentiment of your sentences.

example:
  unrolled demo
  unrolled demo --cell lstm --epochs 80 "i love this" "what a boring story"
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unrolled",
        description="Recurrent neural networks you can see through.",
        epilog="example: unrolled demo",
    )
    parser.add_argument("--version", action="version", version=f"unrolled {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="train a tiny sentiment RNN on embedded sentences", description=DEMO_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("texts", nargs="*", metavar="TEXT", help='sentences to classify (default: "i love this")')
    demo.add_argument("--cell", choices=("rnn", "gru", "lstm"), default="rnn", help="recurrent cell (default: rnn)")
    demo.add_argument("--epochs", type=_positive_int, default=60, help="full-batch epochs (default: 60)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--json", action="store_true", help="print the history and predictions as JSON")
    return parser


def run_demo(args: argparse.Namespace, out: TextIO) -> None:
    from unrolled.demo import LABELS, train_demo

    texts = args.texts or ["i love this"]
    every = max(1, args.epochs // 10)

    def show(report) -> None:
        if not args.json and (report.epoch % every == 0 or report.epoch == 1):
            out.write(f"epoch {report.epoch:4d}  loss {report.loss:.4f}  train accuracy {report.accuracy:.0%}\n")

    model = train_demo(cell=args.cell, epochs=args.epochs, seed=args.seed, on_epoch=show)
    probs = model.predict_proba(texts)
    if args.json:
        json.dump(
            {
                "cell": args.cell,
                "history": [{"epoch": r.epoch, "loss": r.loss, "accuracy": r.accuracy} for r in model.history],
                "predictions": [
                    {"text": t, "label": LABELS[int(p.argmax())], "probabilities": dict(zip(LABELS, map(float, p)))}
                    for t, p in zip(texts, probs)
                ],
            },
            out,
            indent=2,
        )
        out.write("\n")
        return
    for text, p in zip(texts, probs):
        label = LABELS[int(p.argmax())]
        out.write(f"{text!r} -> {label} (P(positive) = {p[1]:.1%})\n")


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on usage errors and 0 on --help/--version
        return int(exit_.code or 0)
    if args.command is None:
        parser.print_help(out)
        return ExitCode.USAGE
    try:
        if args.command == "demo":
            run_demo(args, out)
        return ExitCode.OK
    except (ValueError, OSError) as error:
        if args.debug:
            raise
        print(f"unrolled: error: {error}", file=sys.stderr)
        return ExitCode.ERROR
