"""``unrolled demo``: the seed's network trained on sixteen embedded sentences, then used."""

from __future__ import annotations

import argparse

from unrolled.cli.common import Command, Streams, bounded_int, nonnegative_int, write_json

DEMO_MAX_EPOCHS = 100_000  # about a minute of the demo's tiny full-batch steps; beyond that it only looks hung

DEMO_TEXTS = ("i love this", "i hate this", "what a boring film")
DEMO_HELP = """\
Train the seed's network (words -> vectors -> RNN -> last state -> softmax) on sixteen embedded
sentences, printing the loss as BPTT learns, then predict the sentiment of your sentences.

example:
  unrolled demo
  unrolled demo --cell lstm --epochs 80 "i love this" "what a boring story"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from unrolled.nn.cells import CELL_NAMES

    parser.add_argument("texts", nargs="*", metavar="TEXT", help="sentences to classify (default: three examples)")
    parser.add_argument("--cell", choices=CELL_NAMES, default="rnn", help="recurrent cell (default: rnn)")
    parser.add_argument("--epochs", type=bounded_int(1, DEMO_MAX_EPOCHS), default=60,
                        help=f"full-batch epochs (default: 60, at most {DEMO_MAX_EPOCHS:,})")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default: 0)")
    parser.add_argument("--json", action="store_true", help="print the history and predictions as JSON")


def run(args: argparse.Namespace, streams: Streams) -> None:
    from unrolled.demo import LABELS, train_demo

    out = streams.out
    texts = args.texts or list(DEMO_TEXTS)
    every = max(1, args.epochs // 10)

    def show(report) -> None:
        if not args.json and (report.epoch % every == 0 or report.epoch == 1):
            out.write(f"epoch {report.epoch:4d}  loss {report.loss:.4f}  train accuracy {report.accuracy:.0%}\n")

    model = train_demo(cell=args.cell, epochs=args.epochs, seed=args.seed, on_epoch=show)
    probs = model.predict_proba(texts)
    if args.json:
        write_json({
            "cell": args.cell,
            "history": [{"epoch": r.epoch, "loss": r.loss, "accuracy": r.accuracy} for r in model.history],
            "predictions": [
                {"text": t, "label": LABELS[int(p.argmax())], "probabilities": dict(zip(LABELS, map(float, p)))}
                for t, p in zip(texts, probs)
            ],
        }, out)
        return
    for text, p in zip(texts, probs):
        out.write(f"{text!r} -> {LABELS[int(p.argmax())]} (P(positive) = {p[1]:.1%})\n")


COMMANDS = {"demo": Command(DEMO_HELP, add_arguments, run)}
