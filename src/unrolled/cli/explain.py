"""Seeing inside: ``unrolled walkthrough`` (the seed's example, every number) and ``unrolled explain`` (a
per-step trace of a text through a trained classifier or language model)."""

from __future__ import annotations

import argparse

from unrolled.cli.common import (
    Command,
    Streams,
    UsageError,
    model_option,
    named_for_the_user,
    nonnegative_int,
    positive_float,
    positive_int,
    write_json,
)
from unrolled.pretrained import DEFAULT_EXPLAIN

WALKTHROUGH_HELP = """\
The canonical example with every number shown: "I love this" (embedding size 4, hidden size 4, h_0 = 0,
classes positive/negative, true label positive) through an RNN — the forward pass step by step, the
softmax and the cross-entropy loss, backpropagation through time by hand, one SGD step, and the lower
loss after it. Numbers come from the engine's own step functions.

example:
  unrolled walkthrough
  unrolled walkthrough --cell lstm --precision 6
  unrolled walkthrough --save-weights mine.json     # write the weights as a template, edit, then:
  unrolled walkthrough --weights mine.json --json
"""

EXPLAIN_HELP = """\
Trace one sentence through a trained classifier, step by step: each token and its vector, the hidden
state, the class probabilities if the sentence ended at that step and the change each step caused, the
gradient flow over time (|dL/dh_t| and |dL/dx_t|, which shows vanishing gradients on long inputs), and
the mean gate activations of a GRU or LSTM. --json gives the full trace, --plot a figure.
With a language model: per step the hidden state, the top-5 next-token guesses and the probability given
to the token that came next. With a translator: per output token its probability and the top-5
alternatives, and the attention over the source tokens (a table; --plot draws the heatmap).

example:
  unrolled explain --model models/sst2-rnn "a gorgeous , witty , seductive movie ."
  unrolled explain --model models/de-en "Ein Mann fährt Fahrrad." --plot attention.png
  unrolled explain --model models/sst2-rnn "not bad at all" --label positive --plot trace.png
  unrolled explain --model models/sst2-rnn --file review.txt      # a long text (--file - reads stdin)
"""


def add_walkthrough_arguments(parser: argparse.ArgumentParser) -> None:
    from unrolled.walkthrough import CELLS

    parser.add_argument("--cell", choices=CELLS, default="rnn", help="cell to walk through (default: rnn)")
    parser.add_argument("--weights", metavar="FILE", help="weights from a JSON file (see --save-weights)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the default weights (default: 0)")
    parser.add_argument("--lr", type=positive_float, default=0.5, help="learning rate of the SGD step (default: 0.5)")
    parser.add_argument("--precision", type=int, default=4, choices=range(0, 13), metavar="N",
                        help="decimals shown (0-12, default: 4)")
    parser.add_argument("--save-weights", metavar="FILE", help="also write the weights used to FILE as JSON")
    parser.add_argument("--json", action="store_true", help="print every number as JSON")


def run_walkthrough(args: argparse.Namespace, streams: Streams) -> None:
    from unrolled import walkthrough

    weights = walkthrough.load_weights(args.weights, cell=args.cell) if args.weights else None
    walk = walkthrough.run_walkthrough(cell=args.cell, weights=weights, seed=args.seed, lr=args.lr)
    if args.save_weights:
        walkthrough.save_weights(args.save_weights, walk.weights, cell=args.cell)
    if args.json:
        write_json(walk.to_json(), streams.out)
    else:
        text = walkthrough.render_text(walk, precision=args.precision)
        streams.out.write(text if text.endswith("\n") else text + "\n")


def add_explain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", metavar="TEXT", nargs="?",
                        help="the sentence (a speech recognizer: a WAV file); or --file")
    parser.add_argument("--file", metavar="FILE",
                        help="read the text from FILE (UTF-8; - for standard input), for texts too long to pass "
                             "as an argument")
    model_option(parser, DEFAULT_EXPLAIN, "a classifier, a language model, a translator or a speech recognizer")
    parser.add_argument("--label", help="class the loss is taken against (default: the predicted one)")
    parser.add_argument("--precision", type=int, default=3, choices=range(0, 13), metavar="N",
                        help="decimals shown (0-12, default: 3)")
    parser.add_argument("--plot", metavar="FILE", help="also draw the trace (PNG/SVG/PDF; needs matplotlib)")
    parser.add_argument("--json", action="store_true", help="print the full trace as JSON")
    parser.add_argument("--beam", type=positive_int, default=5,
                        help="translator, speech recognizer (ctc): beam size (default: 5)")


def run_explain(args: argparse.Namespace, streams: Streams) -> None:
    from unrolled.checkpoint import checkpoint_kind
    from unrolled.pretrained import model_path

    if (args.text is None) == (args.file is None):
        both = ", not both" if args.text is not None else ""
        raise UsageError(f"give the text to explain as TEXT or with --file FILE (- for standard input){both}")
    if args.plot:
        from unrolled.plot import check_plot_path

        check_plot_path(args.plot, f"--plot {args.plot}")
    path = model_path(args.model)
    kind = checkpoint_kind(path)
    if kind == "speech_recognizer" and args.file is not None:
        raise UsageError("--file reads a text; a speech recognizer explains the WAV file given as TEXT")
    given = {"label": "--label"}  # the library's names for what the user gave
    if args.file is not None:
        given["text"] = "standard input" if args.file == "-" else args.file
        args.text = _read_text_file(args.file, streams)
    with named_for_the_user(given):
        return _explain(args, path, kind, streams)


MAX_STDIN = 16 * 2**20  # bytes of standard input --file - reads at most


def _read_text_file(name: str, streams: Streams) -> str:
    """The text of --file: a UTF-8 file, or standard input for "-"; one line naming it for anything else."""
    if name != "-":
        from unrolled.data.readers import read_text

        return read_text(name)
    source = streams.stdin.buffer if hasattr(streams.stdin, "buffer") else streams.stdin
    raw = source.read(MAX_STDIN + 1)  # more than any text explain traces (20,000 tokens), and bounded
    if len(raw) > MAX_STDIN:
        raise ValueError(f"standard input: more than {MAX_STDIN // 2**20} MiB; explain traces one text of at most "
                         "20,000 tokens")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"standard input: not UTF-8 text (byte {error.start + 1})") from None
    if "\x00" in raw:
        raise ValueError("standard input: contains NUL bytes: a binary file, not text")
    if not raw.strip():
        raise ValueError("standard input: empty: no text")
    return raw.removeprefix("\ufeff")


def _explain(args: argparse.Namespace, path, kind: str, streams: Streams) -> None:
    if kind == "language_model":
        return _explain_lm(args, path, streams)
    if kind == "translator":
        from unrolled.cli.translate import run_explain as explain_translator

        if args.label:
            raise UsageError("--label applies to classifiers; a translator explains the tokens it chooses")
        return explain_translator(args, streams, path)
    if kind == "speech_recognizer":
        from unrolled.cli.speech import run_explain as explain_speech

        if args.label:
            raise UsageError("--label applies to classifiers of text; a speech recognizer explains its transcript")
        return explain_speech(args, streams, path)
    from unrolled.explain import explain, render_text
    from unrolled.models.classifier import RNNClassifier

    trace = explain(RNNClassifier.load(path), args.text, label=args.label)
    if args.plot:
        from unrolled.plot import plot_trace

        plot_trace(trace, args.plot)
    if args.json:
        write_json(trace.to_json(), streams.out)
    else:
        text = render_text(trace, precision=args.precision)
        streams.out.write(text if text.endswith("\n") else text + "\n")
        if args.plot:
            streams.out.write(f"plot: {args.plot}\n")


def _explain_lm(args: argparse.Namespace, path, streams: Streams) -> None:
    from unrolled.explain_lm import explain_lm, render_lm_text
    from unrolled.models.language_model import RNNLanguageModel

    if args.label or args.plot:
        raise UsageError("--label and --plot apply to classifiers; a language model's trace has neither")
    trace = explain_lm(RNNLanguageModel.load(path), args.text)
    if args.json:
        write_json(trace.to_json(), streams.out)
    else:
        streams.out.write(render_lm_text(trace, precision=args.precision))


COMMANDS = {
    "walkthrough": Command(WALKTHROUGH_HELP, add_walkthrough_arguments, run_walkthrough),
    "explain": Command(EXPLAIN_HELP, add_explain_arguments, run_explain),
}
