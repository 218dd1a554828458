"""Text classification: ``unrolled train --task classify`` (the default task), ``evaluate`` and ``predict``.

The model options are :class:`unrolled.RNNClassifier`'s parameters (defaults read from it); the data
options (files or a registered dataset, columns, label names) belong to the command.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import replace
from typing import TextIO

from unrolled.cli import datasets as dataset_options
from unrolled.cli.common import (
    SEED_PARAM,
    Command,
    Param,
    Progress,
    Streams,
    UsageError,
    add_params,
    check_out_dir,
    command_line,
    estimator_defaults,
    file_summary,
    label_names,
    model_option,
    named_for_the_user,
    nonnegative_float,
    nonnegative_int,
    optimizer_params,
    param_values,
    progress_callbacks,
    positive_float,
    positive_int,
    probability,
    recurrent_params,
    training_runtime,
    write_json,
)
from unrolled.pretrained import DEFAULT_INIT, DEFAULT_PREDICT


def model_params() -> tuple[Param, ...]:
    """RNNClassifier's parameters as options (the choices come from the registries that define them)."""
    from unrolled.nn.pooling import POOLINGS
    from unrolled.train import OPTIMIZERS, SCHEDULES

    # Told apart when not given: --init-from takes the language model's shape, and with no network option
    # at all the default recipe fills them in (DEFAULT_RECIPE).
    return (
        *(replace(param, detect_given=True)
          for param in recurrent_params("dropout on word vectors, between layers and on the pooled features")),
        Param("embedding_dim", "word vector size", positive_int, metavar="E", detect_given=True),
        Param("bidirectional", "read the text in both directions"),
        Param("pooling", "final state (last), or max/mean over all steps", choices=POOLINGS, detect_given=True),
        Param("word_dropout", "in training, replace each token by <unk> with this probability", probability,
              detect_given=True),
        Param("embeddings", "pretrained word vectors, GloVe or word2vec text format, optionally gzip (sets "
              "--embedding-dim from the file)", metavar="FILE"),
        Param("freeze_embeddings", "keep the --embeddings (or --init-from) vectors fixed"),
        Param("init_from", "fine-tune from a word-level language model, a directory or a bundled name (unrolled "
              "train --task lm --level word): its vocabulary, embedding and recurrent layers, with a new head; the "
              "network's shape defaults to the language model's; 'none' for a network from scratch",
              metavar="LMDIR"),
        Param("init_from_backward", "with --init-from: a backward language model (train --task lm --direction "
              "backward --init-from FORWARD --freeze-embeddings) that starts the right-to-left direction of a "
              "bidirectional one-layer classifier (sets --bidirectional)", metavar="LMDIR"),
        Param("layer_lr_decay", "discriminative learning rates: each layer below the head trains at 1/D of the "
              "one above (ULMFiT: 2.6)", positive_float, metavar="D"),
        Param("gradual_unfreeze", "epoch 1 trains the head only, each later epoch one layer more, top down"),
        Param("min_freq", "rarer words become <unk>", positive_int, detect_given=True),
        Param("max_vocab", "vocabulary size limit, specials included", positive_int),
        Param("max_len", "keep at most this many tokens per text", positive_int),
        Param("lowercase", "keep letter case (lower-case by default)", flag="--cased"),
        *(replace(param, detect_given=param.name in DEFAULT_RECIPE) for param in optimizer_params()),
        Param("optimizer", "optimizer", choices=OPTIMIZERS),
        Param("weight_decay", "weight decay", nonnegative_float),
        Param("schedule", "learning-rate schedule", choices=SCHEDULES),
        Param("warmup_steps", "warm-up steps of the schedule", nonnegative_int),
        Param("patience", "with --dev: stop after this many epochs without a better dev accuracy", positive_int),
        SEED_PARAM,
    )


# With no option that shapes the network, train fine-tunes the bundled word-level language model with the
# settings benchmarks/sentiment.py --defaults measured (docs/results.md, "Defaults"); any network option
# (NETWORK_OPTIONS) trains RNNClassifier's own defaults from scratch instead, and so does --init-from none.
DEFAULT_RECIPE = {"init_from": DEFAULT_INIT, "cell": "lstm", "embedding_dim": 128, "hidden_size": 128,
                  "pooling": "max", "dropout": 0.5, "lr": 2e-3, "batch_size": 16}
NETWORK_OPTIONS = ("cell", "hidden_size", "num_layers", "embedding_dim", "bidirectional", "pooling", "dropout",
                   "word_dropout", "embeddings", "freeze_embeddings", "init_from", "init_from_backward",
                   "layer_lr_decay", "gradual_unfreeze", "min_freq", "max_vocab", "lowercase")

TRAIN_HELP = """\
--task classify: train a text classifier on a labelled file (TSV/CSV with a header, or JSONL; .gz is read
transparently). The text column defaults to 'sentence' or 'text', the label column to 'label'. With --dev,
the dev accuracy is measured after every epoch, training stops early when it stops improving
(--patience), and the best epoch's weights are kept.

defaults: with no option that shapes the network, the classifier is fine-tuned from the bundled word-level
language model imdb-lm (an LSTM pretrained on the IMDB training reviews): --init-from imdb-lm --cell lstm
--embedding-dim 128 --hidden-size 128 --pooling max --dropout 0.5 --lr 0.002 --batch-size 16 (on SST-2's
6,920 training sentences, 3 epochs reached 80.6 % dev accuracy in 47 s on 2 cores; docs/results.md). Any
network option (--cell, --hidden-size, --embedding-dim, --pooling, --dropout, --embeddings, --max-vocab, …)
trains a network from scratch with RNNClassifier's defaults instead, as does --init-from none.

example:
  unrolled train --train sst2/train.tsv --dev sst2/dev.tsv --cell gru --bidirectional \\
      --label-names 0=negative,1=positive --out models/sst2-gru
  unrolled train --dataset sst2 --pooling max --dropout 0.5 --out models/sst2-gru-max
"""


def add_column_options(parser, label_default: str | None = "label") -> None:
    parser.add_argument("--text-column", help="name of the text column (default: sentence, else text)")
    parser.add_argument("--label-column", default=label_default, help="name of the label column (default: label)")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from unrolled.models.classifier import RNNClassifier

    data = parser.add_argument_group("data")
    data.add_argument("--train", metavar="FILE", help="training data (or --dataset)")
    data.add_argument("--dev", metavar="FILE", help="dev data for early stopping and model selection")
    dataset_options.add_dataset_training_options(data)
    add_column_options(data)
    data.add_argument("--label-names", type=label_names, metavar="MAP",
                      help="display names for the labels, e.g. 0=negative,1=positive")
    data.add_argument("--skip-bad-rows", action="store_true", help="skip malformed rows (reported) instead of failing")
    add_params(parser.add_argument_group("model and training (RNNClassifier's parameters)"), RNNClassifier,
               model_params())


def _apply_default_recipe(args: argparse.Namespace) -> None:
    """DEFAULT_RECIPE for the options not given, when no network option is (``--init-from none``: never).
    The summary line says so once training is done (stderr stays one line for an error)."""
    from unrolled.models.classifier import RNNClassifier

    if args.init_from == "none":
        args.init_from = None
        return
    defaults = estimator_defaults(RNNClassifier)
    if any(_given(getattr(args, name), defaults[name]) for name in NETWORK_OPTIONS):
        return
    for name, value in DEFAULT_RECIPE.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def _given(value: object, default: object) -> bool:
    """Whether an option was on the command line: a flag (a bool parameter) when it is off its default, any
    other option when it is not None (the options NETWORK_OPTIONS names stay None when not given)."""
    return value != default if isinstance(default, bool) else value is not None


def _shape_from_language_model(args: argparse.Namespace) -> None:
    """The network's shape options not given on the command line, from --init-from's language model."""
    from unrolled.models.transfer import load_language_model

    if args.embeddings:
        raise UsageError("--embeddings and --init-from both give the word vectors; use one or the other")
    net = load_language_model(args.init_from).net_config_  # refused here, before any data is read
    for name in ("cell", "embedding_dim", "hidden_size", "num_layers"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(net, name))
    if args.init_from_backward:
        args.bidirectional = True  # the backward model starts the right-to-left direction


def run_train(args: argparse.Namespace, streams: Streams) -> None:
    from unrolled.data.readers import check_dev_labels, rename_labels
    from unrolled.models.classifier import RNNClassifier

    err, quiet = streams.err, args.quiet or args.json
    if args.embeddings and args.embedding_dim is None:
        from unrolled.text.embeddings import word_vector_dim

        args.embedding_dim = word_vector_dim(args.embeddings)
    if args.freeze_embeddings and not args.embeddings and not args.init_from:
        raise UsageError("--freeze-embeddings needs --embeddings FILE or --init-from LMDIR")
    _apply_default_recipe(args)
    if args.init_from:
        _shape_from_language_model(args)
    for name, value in param_values(args, RNNClassifier, model_params()).items():
        setattr(args, name, value)  # the options not given, as the estimator's defaults: what messages quote
    dataset_options.check_dataset_options(args)
    if not args.train and not args.dataset:
        raise UsageError("--train FILE or --dataset NAME is required for --task classify")
    runtime = training_runtime(args)  # --engine/--device checked, torchrun's group joined
    out_dir = check_out_dir(args.out)
    dataset = dataset_options.load_training_data(args, err) if args.dataset else None
    if dataset:
        train, dev = dataset.train, dataset.dev
        args.label_names = args.label_names or dataset.label_names
    else:
        train = read_labelled(args.train, args, err, args.quiet)
        dev = read_labelled(args.dev, args, err, args.quiet) if args.dev else None
    if args.label_names:
        train = rename_labels(train, args.label_names, option="--label-names")
        dev = dev and rename_labels(dev, args.label_names, option="--label-names")
    if dev:
        check_dev_labels(train, dev, label_column=args.label_column)

    params = param_values(args, RNNClassifier, model_params())
    model = RNNClassifier(**{**params, "patience": args.patience if dev else None})
    validation = (dev.texts, dev.labels) if dev else None
    source = args.train or f"--dataset {args.dataset}"
    with named_for_the_user({"X": source, "y": source}, model_params()):
        model.fit(train.texts, train.labels, validation=validation,
                  callbacks=[_CoverageNote(model, err, quiet=quiet), Progress(err, quiet),
                             *progress_callbacks(args, model)], **runtime.fit_options)
    if not runtime.is_main:
        return  # rank 0 writes the checkpoint

    metrics = {"train_accuracy": model.score(train.texts, train.labels)}
    if dev:
        metrics["dev_accuracy"] = model.history_.best_metric
    if dataset:
        data = dataset.record
    else:
        data = {"train": file_summary(args.train, len(train.texts), len(train.skipped))}
        if dev:
            data["dev"] = file_summary(args.dev, len(dev.texts), len(dev.skipped))
    model.save(out_dir, extra={"metrics": metrics, "data": data, "command": command_line(args),
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
    if model.pretrained_ is not None:
        summary["init_from"] = model.pretrained_["path"]
        if "backward" in model.pretrained_:
            summary["init_from_backward"] = model.pretrained_["backward"]["path"]
    if args.json:
        write_json(summary, streams.out)
    elif not args.quiet:
        dev_text = f", dev accuracy {metrics['dev_accuracy']:.4f} (epoch {summary['best_epoch']})" if dev else ""
        start = f", fine-tuned from {args.init_from}" if args.init_from else ""
        start += f" and {args.init_from_backward} (backward)" if args.init_from_backward else ""
        streams.out.write(f"saved {out_dir}: train accuracy {metrics['train_accuracy']:.4f}{dev_text}, "
                          f"{summary['seconds']:.1f}s{start}\n")


def read_labelled(path: str, args: argparse.Namespace, err: TextIO, quiet: bool = False):
    """A labelled file, with its skipped rows reported on ``err``; one kind of label per file, and at least two
    classes in the training file (--train)."""
    from unrolled.data.readers import DataError, LabelMap, read_dataset

    if args.text_column is not None and args.text_column == args.label_column:
        raise UsageError(f"--text-column and --label-column are both {args.label_column!r}: give two columns")
    dataset = read_dataset(
        path, text_column=args.text_column, label_column=args.label_column, skip_bad_rows=args.skip_bad_rows,
    )
    # one kind of label per file, or the line that breaks it
    classes = LabelMap.fit(dataset.labels, path=path, lines=dataset.lines)
    if dataset.skipped and not quiet:
        err.write(f"skipped {len(dataset.skipped)} bad row(s) of {path}:\n")
        for row in dataset.skipped[:10]:
            err.write(f"  line {row.line}: {row.reason}\n")
        if len(dataset.skipped) > 10:
            err.write(f"  … and {len(dataset.skipped) - 10} more\n")
    if not dataset.texts:
        raise ValueError(f"{path}: no usable rows")
    if path == getattr(args, "train", None) and len(classes) < 2:
        raise DataError(path, f"only one class ({classes.names[0]!r}) in {len(dataset)} rows: a classifier needs at "
                              "least two", field=args.label_column)
    return dataset


class _CoverageNote:
    """Says, before the first epoch, how much of the vocabulary the --embeddings file covers."""

    def __init__(self, model, err: TextIO, quiet: bool) -> None:
        self.model, self.err, self.quiet = model, err, quiet

    def on_train_begin(self, steps_per_epoch: int, epochs: int) -> None:
        if self.model.embedding_coverage_ is not None and not self.quiet:
            self.err.write(f"--embeddings {self.model.embeddings}: {self.model.embedding_coverage_}\n")


# --- evaluate ---------------------------------------------------------------------------------------------

EVALUATE_HELP = """\
Evaluate a trained classifier on a labelled file: accuracy, precision/recall/F1 per class and the
confusion matrix.

example:
  unrolled evaluate --model models/sst2-gru sst2/test.tsv
  unrolled evaluate --model models/sst2-gru sst2/test.tsv --json
"""


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    from unrolled.cli.translate import decoding_options

    model_option(parser, DEFAULT_PREDICT, "a classifier, a translator or a speech recognizer")
    parser.add_argument("file", metavar="FILE",
                        help="labelled data (classifier); source sentences or a source/target TSV (translator); a "
                             "path/transcript manifest or a folder of FSDD recordings (speech recognizer)")
    add_column_options(parser)
    parser.add_argument("--reference", metavar="FILE",
                        help="translator: the reference translations of FILE, aligned line by line")
    decoding_options(parser)
    parser.add_argument("--skip-bad-rows", action="store_true", help="skip malformed rows (reported)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")


def run_evaluate(args: argparse.Namespace, streams: Streams) -> None:
    from unrolled.checkpoint import checkpoint_kind
    from unrolled.models.classifier import RNNClassifier
    from unrolled.pretrained import model_path

    out = streams.out
    path = model_path(args.model)
    kind = checkpoint_kind(path)
    if kind == "translator":
        from unrolled.cli.translate import run_evaluate as evaluate_translator

        return evaluate_translator(args, streams, path)
    if kind == "speech_recognizer":
        from unrolled.cli.speech import run_evaluate as evaluate_speech

        return evaluate_speech(args, streams, path)
    if args.reference:
        raise UsageError("--reference applies to translators; a classifier reads its labels from FILE")
    model = RNNClassifier.load(path)
    data = read_labelled(args.file, args, streams.err)
    names = model.config_.get("label_names") or {}  # the display names given at training, if any
    labels = [names.get(label, label) for label in data.labels]
    report = model.evaluate(data.texts, labels, path=args.file, lines=data.lines)
    if args.json:
        write_json({"model": args.model, "file": args.file, **report.to_json()}, out)
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


# --- predict ----------------------------------------------------------------------------------------------

PREDICT_HELP = """\
Predict the label of each text: one line per text with the label and the class probabilities. With no
text arguments, reads one text per line from standard input, as a stream: each line is answered as soon as
it arrives (lines that are already waiting go through the model together, up to 64 at a time), so the
output of a long file starts at once and memory stays bounded. A line of standard input that is empty, only
whitespace or not UTF-8 gets no output line: it is skipped and reported on stderr ("stdin line 3: empty
text, skipped"), and the run goes on (exit status 0 if any text was predicted). An empty TEXT argument is
an error.

example:
  unrolled predict --model models/sst2-gru "I love this" "a dull, lifeless film"
  cat reviews.txt | unrolled predict --model models/sst2-gru --json
"""

PREDICT_GROUP = 64  # the most lines of standard input that go through the model together


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    model_option(parser, DEFAULT_PREDICT, "a classifier")
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts (default: lines of standard input)")
    parser.add_argument("--json", action="store_true", help="one JSON object per text")


def _argument_groups(texts: list[str]) -> Iterator[list[tuple[str, str, str | None]]]:
    """The TEXT arguments as (where, text, problem) groups; an empty one is an error before any output."""
    for i, text in enumerate(texts, 1):
        if not text.strip():
            raise ValueError(f"text {i}: empty text")
    items = [(f"text {i}", text, None) for i, text in enumerate(texts, 1)]
    for start in range(0, len(items), PREDICT_GROUP):
        yield items[start : start + PREDICT_GROUP]


def stdin_groups(stdin: TextIO, size: int = PREDICT_GROUP) -> Iterator[list[tuple[str, str, str | None]]]:
    """Standard input as groups of (where, text, problem) lines, problem None or why the line cannot be read
    ("empty text", "not UTF-8 text (byte 3)"). A group ends after ``size`` lines or when no further line is
    waiting, so a line typed or piped in slowly is answered before the next one arrives; nothing reads ahead
    of what it answers by more than one group (and one read of 64 kB)."""
    reader = _FdLines.of(stdin)
    lines = reader if reader is not None else ((line, None) for line in stdin)
    group: list[tuple[str, str, str | None]] = []
    for number, (line, problem) in enumerate(lines, 1):
        text = line.removesuffix("\n").removesuffix("\r")
        if number == 1:
            text = text.removeprefix("\ufeff")  # a UTF-8 byte order mark
        if problem is None and not text.strip():
            problem = "empty text"
        group.append((f"stdin line {number}", text, problem))
        if len(group) >= size or (reader is not None and not reader.waiting()):
            yield group
            group = []
    if group:
        yield group


class _FdLines:
    """The lines of a real standard input, read from its file descriptor (so that no buffer holds lines back
    while they wait to be answered), each decoded as UTF-8 on its own: one bad line is named, the rest read."""

    CHUNK = 65536

    def __init__(self, fd: int) -> None:
        self.fd, self.pending = fd, bytearray()

    @classmethod
    def of(cls, stream: TextIO) -> _FdLines | None:
        """The reader of ``stream``'s descriptor; None for an in-memory stream."""
        try:
            return cls(stream.fileno()) if hasattr(stream, "buffer") else None
        except (OSError, ValueError, AttributeError):
            return None

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        import os

        from unrolled.data.readers import LINE_LIMIT_TEXT, MAX_LINE_BYTES

        searched, too_long = 0, False
        while True:
            newline = self.pending.find(b"\n", searched)
            if newline < 0:
                if len(self.pending) > MAX_LINE_BYTES:  # not a text line (/dev/zero piped in): drop it as it comes
                    self.pending.clear()
                    too_long = True
                searched = len(self.pending)
                chunk = os.read(self.fd, self.CHUNK)
                if chunk:
                    self.pending += chunk
                    continue
                if not self.pending and not too_long:
                    return
                newline = len(self.pending)  # a last line without a newline
            raw = bytes(self.pending[:newline])
            del self.pending[: newline + 1]
            searched = 0
            if too_long:
                too_long = False
                yield "", f"longer than {LINE_LIMIT_TEXT}"
                continue
            try:
                yield raw.decode("utf-8"), None
            except UnicodeDecodeError as error:
                yield "", f"not UTF-8 text (byte {error.start + 1})"

    def waiting(self) -> bool:
        """A further line (or the end of input) can be read without waiting; False where that cannot be told."""
        import select

        if b"\n" in self.pending:
            return True
        try:
            return bool(select.select([self.fd], [], [], 0)[0])
        except (OSError, ValueError):
            return False


def run_predict(args: argparse.Namespace, streams: Streams) -> None:
    import json

    from unrolled.models.classifier import RNNClassifier
    from unrolled.pretrained import model_path

    model = RNNClassifier.load(model_path(args.model))
    names = [str(c) for c in model.classes_]
    groups = _argument_groups(args.texts) if args.texts else stdin_groups(streams.stdin)
    predicted = skipped = 0
    for group in groups:
        items = []
        for where, text, problem in group:
            if problem is not None:
                streams.err.write(f"{where}: {problem}, skipped\n")
                skipped += 1
            else:
                items.append(text)
        streams.err.flush()
        probs = model.predict_proba(items) if items else []
        for text, p in zip(items, probs):
            label = names[int(p.argmax())]
            if args.json:
                streams.out.write(json.dumps({"text": text, "label": label,
                                              "probabilities": dict(zip(names, map(float, p)))}) + "\n")
            else:
                shown = "  ".join(f"{name} {q:.3f}" for name, q in zip(names, p))
                streams.out.write(f"{label}\t{shown}\t{text}\n")
        predicted += len(items)
        streams.out.flush()
    if not predicted:
        also = f" ({skipped} line{'s' if skipped != 1 else ''} skipped)" if skipped else ""
        raise ValueError(f"no texts: give them as arguments or one per line on standard input{also}")


TRAIN = Command(TRAIN_HELP, add_train_arguments, run_train)
COMMANDS = {
    "evaluate": Command(EVALUATE_HELP, add_evaluate_arguments, run_evaluate),
    "predict": Command(PREDICT_HELP, add_predict_arguments, run_predict),
}
