"""The ``unrolled`` command. It only orchestrates library calls and prints; exit codes: 0 ok, 2 usage
error, 1 runtime error with a one-line message (``--debug`` shows the traceback).

Heavy modules are imported inside the commands, so ``unrolled --help`` and ``predict`` start fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import TextIO

from unrolled import __version__
from unrolled.pretrained import model_path


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2


class UsageError(Exception):
    """A combination of options that argparse cannot check (exit code 2)."""


DEMO_TEXTS = ("i love this", "i hate this", "what a boring film")
DEMO_HELP = """\
Train the seed's network (words -> vectors -> RNN -> last state -> softmax) on sixteen embedded
sentences, printing the loss as BPTT learns, then predict the sentiment of your sentences.

example:
  unrolled demo
  unrolled demo --cell lstm --epochs 80 "i love this" "what a boring story"
"""

TRAIN_HELP = """\
--task classify (the default): train a text classifier on a labelled file (TSV/CSV with a header, or
JSONL; .gz is read transparently). The text column defaults to 'sentence' or 'text', the label column to
'label'. With --dev, the dev accuracy is measured after every epoch, training stops early when it stops
improving (--patience), and the best epoch's weights are kept.

--task forecast: train a forecaster on one column of a CSV series: windows of --window values predict the
next --horizon values. With --test-size N the last N values are held out: the model trains on the rest
and is evaluated on that tail from every forecast origin, beside the naive, seasonal-naive (--season) and
Holt-Winters baselines.

The checkpoint directory holds model.safetensors and config.json (and vocab.json for a classifier).

example:
  unrolled train --train sst2/train.tsv --dev sst2/dev.tsv --cell gru --bidirectional \\
      --label-names 0=negative,1=positive --out models/sst2-gru
  unrolled train --task forecast --csv airline_passengers.csv --column Passengers --date-column Month \\
      --window 24 --horizon 12 --season 12 --log --test-size 24 --out models/airline
"""

EVALUATE_HELP = """\
Evaluate a trained classifier on a labelled file: accuracy, precision/recall/F1 per class and the
confusion matrix.

example:
  unrolled evaluate --model models/sst2-gru sst2/test.tsv
  unrolled evaluate --model models/sst2-gru sst2/test.tsv --json
"""

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
to the token that came next.

example:
  unrolled explain --model models/sst2-rnn "a gorgeous , witty , seductive movie ."
  unrolled explain --model models/sst2-rnn "not bad at all" --label positive --plot trace.png
"""

PREDICT_HELP = """\
Predict the label of each text: one line per text with the label and the class probabilities. With no
text arguments, reads one text per line from standard input.

example:
  unrolled predict --model models/sst2-gru "I love this" "a dull, lifeless film"
  cat reviews.txt | unrolled predict --model models/sst2-gru --json
"""


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

    return parse


_positive_int = _number_type(int, lambda v: v >= 1, "a positive integer")
_probability = _number_type(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")
_positive_float = _number_type(float, lambda v: v > 0, "a positive number")
_fraction = _number_type(float, lambda v: 0.0 < v < 1.0, "a number in (0, 1)")


def _label_names(text: str) -> dict[str, str]:
    """'0=negative,1=positive' -> {'0': 'negative', '1': 'positive'}."""
    mapping = {}
    for part in text.split(","):
        raw, sep, name = part.partition("=")
        if not sep or not raw.strip() or not name.strip():
            raise argparse.ArgumentTypeError(f"expected LABEL=NAME pairs separated by commas, got {part!r}")
        mapping[raw.strip()] = name.strip()
    return mapping


def _add_column_options(parser, label_default: str | None = "label") -> None:
    parser.add_argument("--text-column", help="name of the text column (default: sentence, else text)")
    parser.add_argument("--label-column", default=label_default, help="name of the label column (default: label)")


def build_parser() -> argparse.ArgumentParser:
    from unrolled.cli_forecast import add_forecast_command, add_forecast_training_options  # they import this module
    from unrolled.cli_datasets import add_dataset_training_options, add_datasets_command
    from unrolled.cli_lm import add_generate_command, add_lm_training_options

    parser = argparse.ArgumentParser(
        prog="unrolled",
        description="Recurrent neural networks you can see through.",
        epilog="example: unrolled demo    (each command has --help with examples)",
    )
    parser.add_argument("--version", action="version", version=f"unrolled {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=summary, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
        )

    demo = command("demo", "train a tiny sentiment RNN on embedded sentences", DEMO_HELP)
    demo.add_argument("texts", nargs="*", metavar="TEXT", help="sentences to classify (default: three examples)")
    demo.add_argument("--cell", choices=("rnn", "gru", "lstm"), default="rnn", help="recurrent cell (default: rnn)")
    demo.add_argument("--epochs", type=_positive_int, default=60, help="full-batch epochs (default: 60)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--json", action="store_true", help="print the history and predictions as JSON")

    train = command("train", "train a text classifier on a labelled file", TRAIN_HELP)
    train.add_argument("--task", choices=("classify", "forecast", "lm"), default="classify",
                       help="text classification, time-series forecasting or language modelling (default: classify)")
    train.add_argument("--out", required=True, metavar="DIR", help="checkpoint directory to write")
    text = train.add_argument_group("classify: data and model")
    text.add_argument("--train", metavar="FILE", help="training data (required for classify)")
    text.add_argument("--dev", metavar="FILE", help="dev data for early stopping and model selection")
    add_dataset_training_options(text)
    _add_column_options(text, label_default=None)
    text.add_argument("--label-names", type=_label_names, metavar="MAP",
                      help="display names for the labels, e.g. 0=negative,1=positive")
    text.add_argument("--skip-bad-rows", action="store_true", help="skip malformed rows (reported) instead of failing")
    text.add_argument("--bidirectional", action="store_true", help="read the text in both directions")
    text.add_argument("--embedding-dim", type=_positive_int, help="word vector size (default: 64)")
    text.add_argument("--word-dropout", type=_probability,
                      help="in training, replace each token by <unk> with this probability (default: 0)")
    text.add_argument("--embeddings", metavar="FILE",
                      help="pretrained word vectors, GloVe or word2vec text format, optionally gzip "
                           "(sets --embedding-dim from the file)")
    text.add_argument("--freeze-embeddings", action="store_true", help="keep the --embeddings vectors fixed")
    text.add_argument("--pooling", choices=("last", "max", "mean"),
                      help="final state (last), or max/mean over all steps (default: last)")
    text.add_argument("--min-freq", type=_positive_int, help="rarer words become <unk> (default: 1)")
    text.add_argument("--max-vocab", type=_positive_int, help="vocabulary size limit, specials included")
    text.add_argument("--max-len", type=_positive_int, help="keep at most this many tokens per text")
    text.add_argument("--cased", action="store_true", help="keep letter case (default: lower-case)")
    text.add_argument("--optimizer", choices=("adam", "adamw", "sgd"), help="(default: adam)")
    text.add_argument("--weight-decay", type=float, help="weight decay (default: 0)")
    text.add_argument("--schedule", choices=("constant", "warmup_linear", "warmup_cosine"),
                      help="learning-rate schedule (default: constant)")
    text.add_argument("--warmup-steps", type=int, help="warm-up steps of the schedule (default: 0)")
    text.add_argument("--patience", type=_positive_int,
                      help="with --dev: stop after this many epochs without a better dev accuracy (default: 3)")
    add_forecast_training_options(train)
    add_lm_training_options(train)
    model = train.add_argument_group("model (both tasks)")
    model.add_argument("--cell", choices=("rnn", "gru", "lstm"), help="recurrent cell (default: gru; lstm for lm)")
    model.add_argument("--layers", type=_positive_int, default=1, help="recurrent layers (default: 1)")
    model.add_argument("--hidden", type=_positive_int, help="hidden size (default: 128 classify, 32 forecast)")
    model.add_argument("--dropout", type=_probability, default=0.0,
                       help="dropout on inputs, between layers and before the output layer (default: 0)")
    opt = train.add_argument_group("training (both tasks)")
    opt.add_argument("--epochs", type=_positive_int, help="epochs (default: 10 classify, 300 forecast)")
    opt.add_argument("--batch-size", type=_positive_int, help="batch size (default: 32 classify, 16 forecast)")
    opt.add_argument("--lr", type=_positive_float, help="learning rate (default: 0.002 classify, 0.005 forecast)")
    opt.add_argument("--clip-norm", type=_positive_float, help="max gradient norm (default: 5 classify, 1 forecast)")
    opt.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument("--quiet", action="store_true", help="print nothing but errors")
    train.add_argument("--json", action="store_true", help="print the training summary as JSON")

    evaluate = command("evaluate", "evaluate a classifier on a labelled file", EVALUATE_HELP)
    evaluate.add_argument("--model", default="sst2-best", metavar="NAME|DIR",
                          help="checkpoint directory or bundled model: sst2-best (default), sst2-rnn")
    evaluate.add_argument("file", metavar="FILE", help="labelled data")
    _add_column_options(evaluate)
    evaluate.add_argument("--skip-bad-rows", action="store_true", help="skip malformed rows (reported)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")

    walk = command("walkthrough", "the seed's example, every number of forward, loss and BPTT", WALKTHROUGH_HELP)
    walk.add_argument("--cell", choices=("rnn", "gru", "lstm"), default="rnn", help="cell to walk through (default: rnn)")
    walk.add_argument("--weights", metavar="FILE", help="weights from a JSON file (see --save-weights)")
    walk.add_argument("--seed", type=int, default=0, help="seed of the default weights (default: 0)")
    walk.add_argument("--lr", type=_positive_float, default=0.5, help="learning rate of the SGD step (default: 0.5)")
    walk.add_argument("--precision", type=int, default=4, choices=range(0, 13), metavar="N",
                      help="decimals shown (0-12, default: 4)")
    walk.add_argument("--save-weights", metavar="FILE", help="also write the weights used to FILE as JSON")
    walk.add_argument("--json", action="store_true", help="print every number as JSON")

    explain = command("explain", "trace a sentence through a classifier, step by step", EXPLAIN_HELP)
    explain.add_argument("text", metavar="TEXT", help="the sentence")
    explain.add_argument("--model", default="sst2-rnn", metavar="NAME|DIR",
                         help="checkpoint directory of a classifier or a language model, or a bundled model: "
                              "sst2-rnn (default), sst2-best")
    explain.add_argument("--label", help="class the loss is taken against (default: the predicted one)")
    explain.add_argument("--precision", type=int, default=3, choices=range(0, 13), metavar="N",
                         help="decimals shown (0-12, default: 3)")
    explain.add_argument("--plot", metavar="FILE", help="also draw the trace (PNG/SVG/PDF; needs matplotlib)")
    explain.add_argument("--json", action="store_true", help="print the full trace as JSON")

    add_forecast_command(commands, command)
    add_datasets_command(commands, command)
    add_generate_command(command)

    predict = command("predict", "predict labels of texts", PREDICT_HELP)
    predict.add_argument("--model", default="sst2-best", metavar="NAME|DIR",
                         help="checkpoint directory or bundled model: sst2-best (default), sst2-rnn")
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="texts (default: lines of standard input)")
    predict.add_argument("--json", action="store_true", help="one JSON object per text")
    return parser


# --- commands ---------------------------------------------------------------------------------------------


def run_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    from unrolled.demo import LABELS, train_demo

    texts = args.texts or list(DEMO_TEXTS)
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
        out.write(f"{text!r} -> {LABELS[int(p.argmax())]} (P(positive) = {p[1]:.1%})\n")


def _read_labelled(path: str, args: argparse.Namespace, err: TextIO, quiet: bool = False):
    from unrolled.data.readers import LabelMap, read_dataset

    dataset = read_dataset(
        path, text_column=args.text_column, label_column=args.label_column, skip_bad_rows=args.skip_bad_rows
    )
    LabelMap.fit(dataset.labels, path=path, lines=dataset.lines)  # one kind of label per file, or the line that breaks it
    if dataset.skipped and not quiet:
        err.write(f"skipped {len(dataset.skipped)} bad row(s) of {path}:\n")
        for row in dataset.skipped[:10]:
            err.write(f"  line {row.line}: {row.reason}\n")
        if len(dataset.skipped) > 10:
            err.write(f"  … and {len(dataset.skipped) - 10} more\n")
    if not dataset.texts:
        raise ValueError(f"{path}: no usable rows")
    return dataset


def _file_summary(path: str, rows: int, skipped: int) -> dict[str, object]:
    from unrolled.datasets import sha256_file

    return {"path": str(path), "sha256": sha256_file(path), "rows": rows, "skipped_rows": skipped}


class _CoverageNote:
    """Says, before the first epoch, how much of the vocabulary the --embeddings file covers."""

    def __init__(self, model, err: TextIO, quiet: bool) -> None:
        self.model, self.err, self.quiet = model, err, quiet

    def on_train_begin(self, steps_per_epoch: int, epochs: int) -> None:
        if self.model.embedding_coverage_ is not None and not self.quiet:
            self.err.write(f"--embeddings {self.model.embeddings}: {self.model.embedding_coverage_}\n")


class _Progress:
    """Training progress on stderr: a live bar on a terminal, one line per epoch otherwise."""

    def __init__(self, err: TextIO, quiet: bool, metric: str = "dev accuracy") -> None:
        self.err, self.quiet, self.metric = err, quiet, metric
        self.live = not quiet and err.isatty()
        self.steps_per_epoch, self.epochs, self.losses = 1, 1, []

    def on_train_begin(self, steps_per_epoch: int, epochs: int) -> None:
        self.steps_per_epoch, self.epochs = steps_per_epoch, epochs

    def on_batch_end(self, step: int, loss: float) -> None:
        self.losses.append(loss)
        if self.live:
            done = (step - 1) % self.steps_per_epoch + 1
            epoch = (step - 1) // self.steps_per_epoch + 1
            filled = int(30 * done / self.steps_per_epoch)
            recent = sum(self.losses[-50:]) / len(self.losses[-50:])
            self.err.write(f"\repoch {epoch}/{self.epochs} [{'#' * filled}{'.' * (30 - filled)}] "
                           f"{done}/{self.steps_per_epoch} loss {recent:.4f}")
            self.err.flush()

    def on_epoch_end(self, result, params) -> None:
        if self.quiet:
            return
        dev = "" if result.dev_metric is None else f"  {self.metric} {result.dev_metric:.4f}"
        mark = " *" if result.improved and result.dev_metric is not None else ""
        self.err.write(("\r\033[K" if self.live else "") +
                       f"epoch {result.epoch}/{self.epochs}  loss {result.train_loss:.4f}{dev}  "
                       f"{result.seconds:.1f}s{mark}\n")


CLASSIFY_DEFAULTS = {
    "hidden": 128, "epochs": 10, "batch_size": 32, "lr": 2e-3, "clip_norm": 5.0, "label_column": "label",
    "embedding_dim": 64, "pooling": "last", "min_freq": 1, "optimizer": "adam", "weight_decay": 0.0,
    "schedule": "constant", "warmup_steps": 0, "patience": 3, "cell": "gru", "word_dropout": 0.0,
}
# The options that belong to some tasks only (dest -> those tasks); the others apply to every task.
OPTION_TASKS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        ("train", "dev", "dataset", "data_dir", "phrases", "text_column", "label_column", "label_names",
         "skip_bad_rows", "bidirectional", "pooling", "min_freq", "max_vocab", "max_len", "cased", "optimizer",
         "weight_decay", "schedule", "warmup_steps", "patience", "word_dropout", "embeddings", "freeze_embeddings"),
        ("classify",),
    ),
    "embedding_dim": ("classify", "lm"),
    **dict.fromkeys(
        ("csv", "column", "date_column", "exog", "fill", "window", "horizon", "season", "log", "calendar",
         "test_size", "plot"),
        ("forecast",),
    ),
    **dict.fromkeys(("text", "level", "bptt", "tie_weights", "max_steps", "validation_fraction"), ("lm",)),
}


def with_defaults(args: argparse.Namespace, task: str, defaults: dict[str, object]) -> argparse.Namespace:
    """Refuse the options of other tasks (exit 2), then fill the defaults that depend on the task."""
    given = [
        name for name, tasks in OPTION_TASKS.items() if task not in tasks and getattr(args, name) not in (None, False)
    ]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UsageError(f"{flags}: not an option of --task {task}")
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def command_line() -> list[str] | None:
    """The command as the user typed it, for the checkpoint's record (None when not run as a command)."""
    if sys.argv and Path(sys.argv[0]).name in ("unrolled", "__main__.py"):
        return ["unrolled", *sys.argv[1:]]
    return None


def check_out_dir(path: str) -> Path:
    """Fail before training, not after it, when --out cannot take a checkpoint."""
    from unrolled.checkpoint import check_replaceable

    check_replaceable(path)
    return Path(path)


def run_train(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    if args.task == "forecast":
        from unrolled.cli_forecast import run_train_forecast

        return run_train_forecast(args, out, err)
    if args.task == "lm":
        from unrolled.cli_lm import run_train_lm

        return run_train_lm(args, out, err, _Progress(err, args.quiet or args.json, metric="val loss"))
    from unrolled.cli_datasets import check_dataset_options, load_training_data
    from unrolled.data.readers import LabelMap
    from unrolled.models.classifier import RNNClassifier

    if args.embeddings and args.embedding_dim is None:
        from unrolled.text.embeddings import word_vector_dim

        args.embedding_dim = word_vector_dim(args.embeddings)
    if args.freeze_embeddings and not args.embeddings:
        raise UsageError("--freeze-embeddings needs --embeddings FILE")
    args = with_defaults(args, "classify", CLASSIFY_DEFAULTS)
    check_dataset_options(args)
    if not args.train and not args.dataset:
        raise UsageError("--train FILE or --dataset NAME is required for --task classify")
    out_dir = check_out_dir(args.out)
    dataset = load_training_data(args, err) if args.dataset else None
    if dataset:
        train, dev = dataset.train, dataset.dev
        args.train, args.dev = train.path, dev.path  # the files that error messages below name
        args.label_names = args.label_names or dataset.label_names
    else:
        train = _read_labelled(args.train, args, err, args.quiet)
        dev = _read_labelled(args.dev, args, err, args.quiet) if args.dev else None
    if dev and not args.label_names:  # a dev label the training data lacks: name its line now
        LabelMap.fit(train.labels).encode(dev.labels, path=args.dev, lines=dev.lines)

    def rename(labels: list[str], path: str) -> list[str]:
        if not args.label_names:
            return labels
        unknown = sorted(set(labels) - set(args.label_names))
        if unknown:
            raise ValueError(f"{path}: label {unknown[0]!r} has no name in --label-names")
        return [args.label_names[label] for label in labels]

    if dev and args.label_names:
        known = set(rename(train.labels, args.train))
        for label, line in zip(rename(dev.labels, args.dev), dev.lines):
            if label not in known:
                raise ValueError(f"{args.dev}:{line}: field {args.label_column!r}: label {label!r} does not "
                                 "occur in the training data")

    model = RNNClassifier(
        cell=args.cell, embedding_dim=args.embedding_dim, hidden_size=args.hidden, num_layers=args.layers,
        bidirectional=args.bidirectional, dropout=args.dropout, word_dropout=args.word_dropout,
        embeddings=args.embeddings, freeze_embeddings=args.freeze_embeddings, pooling=args.pooling,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
        weight_decay=args.weight_decay, clip_norm=args.clip_norm,
        schedule=args.schedule, warmup_steps=args.warmup_steps, patience=args.patience if dev else None,
        min_freq=args.min_freq, max_vocab=args.max_vocab, lowercase=not args.cased, max_len=args.max_len,
        random_state=args.seed,
    )
    validation = (dev.texts, rename(dev.labels, args.dev)) if dev else None
    model.fit(train.texts, rename(train.labels, args.train), validation=validation,
              callbacks=[_CoverageNote(model, err, quiet=args.quiet or args.json),
                         _Progress(err, args.quiet or args.json)])

    metrics = {"train_accuracy": model.score(train.texts, rename(train.labels, args.train))}
    if dev:
        metrics["dev_accuracy"] = model.history_.best_metric
    if dataset:
        data = dataset.record
    else:
        data = {"train": _file_summary(args.train, len(train.texts), len(train.skipped))}
        if dev:
            data["dev"] = _file_summary(args.dev, len(dev.texts), len(dev.skipped))
    model.save(out_dir, extra={"metrics": metrics, "data": data, "command": command_line(),
                               "label_names": args.label_names or {}})
    summary = {
        "out": str(out_dir),
        "metrics": metrics,
        "best_epoch": model.history_.best_epoch,
        "epochs_run": len(model.history_.epochs),
        "stopped_early": model.history_.stopped_early,
        "seconds": round(model.training_seconds_, 2),
        "vocab_size": len(model.vocab_),
        "labels": [str(c) for c in model.classes_],
    }
    if model.embedding_coverage_ is not None:
        summary["embedding_coverage"] = model.embedding_coverage_.to_json()
    if args.json:
        json.dump(summary, out, indent=2)
        out.write("\n")
    elif not args.quiet:
        dev_text = f", dev accuracy {metrics['dev_accuracy']:.4f} (epoch {summary['best_epoch']})" if dev else ""
        out.write(f"saved {out_dir}: train accuracy {metrics['train_accuracy']:.4f}{dev_text}, "
                  f"{summary['seconds']:.1f}s\n")


def run_evaluate(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    from unrolled.models.classifier import RNNClassifier

    model = RNNClassifier.load(model_path(args.model))
    data = _read_labelled(args.file, args, err)
    names = model.config_.get("label_names") or {}  # the display names given at training, if any
    labels = [names.get(label, label) for label in data.labels]
    report = model.evaluate(data.texts, labels, path=args.file, lines=data.lines)
    if args.json:
        json.dump({"model": args.model, "file": args.file, **report.to_json()}, out, indent=2)
        out.write("\n")
        return
    out.write(f"{args.file}: {int(report.support.sum())} examples, accuracy {report.accuracy:.4f}\n\n")
    width = max(8, *(len(name) for name in report.labels))
    out.write(f"{'class':<{width}}  precision  recall  f1      support\n")
    for i, name in enumerate(report.labels):
        out.write(f"{name:<{width}}  {report.precision[i]:9.4f}  {report.recall[i]:6.4f}  {report.f1[i]:6.4f}  "
                  f"{report.support[i]:7d}\n")
    out.write(f"\nconfusion matrix (rows: true, columns: predicted)\n{'':<{width}}")
    out.write("".join(f"  {name:>{width}}" for name in report.labels) + "\n")
    for i, name in enumerate(report.labels):
        out.write(f"{name:<{width}}" + "".join(f"  {count:>{width}d}" for count in report.confusion[i]) + "\n")


def run_walkthrough(args: argparse.Namespace, out: TextIO) -> None:
    from unrolled import walkthrough

    weights = walkthrough.load_weights(args.weights, cell=args.cell) if args.weights else None
    walk = walkthrough.run_walkthrough(cell=args.cell, weights=weights, seed=args.seed, lr=args.lr)
    if args.save_weights:
        walkthrough.save_weights(args.save_weights, walk.weights, cell=args.cell)
    if args.json:
        json.dump(walk.to_json(), out, indent=2)
        out.write("\n")
    else:
        text = walkthrough.render_text(walk, precision=args.precision)
        out.write(text if text.endswith("\n") else text + "\n")


def run_explain(args: argparse.Namespace, out: TextIO) -> None:
    from unrolled.checkpoint import checkpoint_kind

    if checkpoint_kind(model_path(args.model)) == "language_model":
        return run_explain_lm(args, out)
    from unrolled.explain import explain, render_text
    from unrolled.models.classifier import RNNClassifier

    model = RNNClassifier.load(model_path(args.model))
    trace = explain(model, args.text, label=args.label)
    if args.plot:
        from unrolled.plot import plot_trace

        plot_trace(trace, args.plot)
    if args.json:
        json.dump(trace.to_json(), out, indent=2)
        out.write("\n")
    else:
        text = render_text(trace, precision=args.precision)
        out.write(text if text.endswith("\n") else text + "\n")
        if args.plot:
            out.write(f"plot: {args.plot}\n")


def run_explain_lm(args: argparse.Namespace, out: TextIO) -> None:
    from unrolled.explain_lm import explain_lm, render_lm_text
    from unrolled.models.language_model import RNNLanguageModel

    if args.label or args.plot:
        raise UsageError("--label and --plot apply to classifiers; a language model's trace has neither")
    trace = explain_lm(RNNLanguageModel.load(model_path(args.model)), args.text)
    if args.json:
        json.dump(trace.to_json(), out, indent=2)
        out.write("\n")
    else:
        out.write(render_lm_text(trace, precision=args.precision))


def _input_texts(args: argparse.Namespace, stdin: TextIO) -> list[tuple[str, str]]:
    """(where, text) pairs from the arguments or standard input; an empty text is an error."""
    if args.texts:
        items = [(f"text {i}", text) for i, text in enumerate(args.texts, 1)]
    else:
        items = [(f"stdin line {i}", line.rstrip("\r\n")) for i, line in enumerate(stdin, 1)]
    for where, text in items:
        if not text.strip():
            raise ValueError(f"{where}: empty text")
    return items


def run_predict(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> None:
    from unrolled.models.classifier import RNNClassifier

    model = RNNClassifier.load(model_path(args.model))
    items = _input_texts(args, stdin)
    if not items:
        raise ValueError("no texts: give them as arguments or one per line on standard input")
    probs = model.predict_proba([text for _, text in items])
    names = [str(c) for c in model.classes_]
    for (_, text), p in zip(items, probs):
        label = names[int(p.argmax())]
        if args.json:
            out.write(json.dumps({"text": text, "label": label, "probabilities": dict(zip(names, map(float, p)))}) + "\n")
        else:
            shown = "  ".join(f"{name} {q:.3f}" for name, q in zip(names, p))
            out.write(f"{label}\t{shown}\t{text}\n")


def main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    out, err, stdin = out or sys.stdout, err or sys.stderr, stdin or sys.stdin
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
            run_demo(args, out, err)
        elif args.command == "train":
            run_train(args, out, err)
        elif args.command == "evaluate":
            run_evaluate(args, out, err)
        elif args.command == "walkthrough":
            run_walkthrough(args, out)
        elif args.command == "explain":
            run_explain(args, out)
        elif args.command == "forecast":
            from unrolled.cli_forecast import run_forecast

            run_forecast(args, out)
        elif args.command == "generate":
            from unrolled.cli_lm import run_generate

            run_generate(args, out)
        elif args.command == "datasets":
            from unrolled.cli_datasets import run_datasets

            run_datasets(args, out, err)
        elif args.command == "predict":
            run_predict(args, out, err, stdin)
        return ExitCode.OK
    except UsageError as error:
        err.write(f"unrolled {args.command}: error: {error}\n")
        return ExitCode.USAGE
    except BrokenPipeError:  # the reader of our output went away (``| head``): nothing left to say
        _silence_stdout()
        return ExitCode.OK
    except (ValueError, OSError, RuntimeError, ImportError) as error:
        if args.debug:
            raise
        err.write(f"unrolled: error: {_one_line(error)}\n")
        return ExitCode.ERROR
    except KeyboardInterrupt:
        err.write("unrolled: interrupted\n")
        return ExitCode.ERROR


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
