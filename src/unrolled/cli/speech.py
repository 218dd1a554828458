"""Speech: ``unrolled train --task speech`` and ``unrolled transcribe``; ``evaluate`` and ``explain`` come here for
a speech recognizer's checkpoint (classify.py and explain.py look at its kind).

The model options are :class:`unrolled.RNNSpeechRecognizer`'s parameters (defaults read from it). Like the whole
CLI, this module only orchestrates library calls and prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

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
    model_option,
    named_for_the_user,
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

KIND = "speech_recognizer"


def model_params() -> tuple[Param, ...]:
    """RNNSpeechRecognizer's parameters as options."""
    return (
        Param("objective", "classify: one transcript per utterance; ctc: connected symbols (default with "
              "--connected)", choices=("classify", "ctc"), detect_given=True),
        Param("features", "input features", choices=("logmel", "mfcc")),
        Param("n_mels", "mel filters", positive_int),
        Param("n_mfcc", "cepstral coefficients (mfcc)", positive_int),
        Param("deltas", "append deltas (1) or deltas and delta-deltas (2)", nonnegative_int),
        Param("window_ms", "analysis window (ms)", positive_float),
        Param("hop_ms", "frame shift (ms)", positive_float),
        Param("stack", "concatenate this many frames into one (fewer, wider frames)", positive_int),
        Param("time_masks", "SpecAugment time masks per utterance (0 = off)", nonnegative_int),
        Param("feature_masks", "SpecAugment feature masks per utterance (0 = off)", nonnegative_int),
        *recurrent_params("dropout between layers and before the output layer"),
        Param("bidirectional", "read the frames in one direction only", flag="--unidirectional"),
        Param("pooling", "classify: how the frames' states are pooled", choices=("mean", "max")),
        *optimizer_params(),
        Param("patience", "stop after this many epochs without a better dev score", positive_int),
        Param("validation_fraction", "share of the training utterances held out as the dev set", probability),
        Param("beam_size", "ctc: prefix beam search width when transcribing", positive_int, aliases=("--beam",)),
        SEED_PARAM,
    )


TRAIN_HELP = """\
--task speech: train a speech recognizer on WAV files: a folder of FSDD recordings (DIGIT_SPEAKER_TAKE.wav; the
digit is the transcript) or a manifest TSV with the columns path and transcript. With FSDD, --split holds out
a test part, which is scored after training; --connected N trains on N connected-digit utterances generated
from the training part (CTC) and tests on ones generated from the test part.

examples:
  unrolled train --task speech --data fsdd/recordings --out models/digits
  unrolled train --task speech --data fsdd/recordings --split speakers=theo --out models/digits-theo
  unrolled train --task speech --data fsdd/recordings --split speakers=george,jackson --connected 4000 \\
      --out models/connected
"""

TRANSCRIBE_HELP = """\
Transcribe WAV files with a trained speech recognizer: one line per file, the transcript and its probability
(ctc: summed over every alignment of the transcript).

example:
  unrolled transcribe --model models/digits fsdd/recordings/7_theo_3.wav
"""


def resolve_data(path: str) -> Path:
    """A path as given, else (relative and missing) under the data dir ($UNROLLED_DATA_DIR)."""
    from unrolled.datasets import default_data_dir

    given = Path(path).expanduser()
    if given.exists() or given.is_absolute():
        return given
    candidate = default_data_dir() / given
    return candidate if candidate.exists() else given


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from unrolled.audio.digits import SPLITS_HELP
    from unrolled.models.speech import RNNSpeechRecognizer

    data = parser.add_argument_group("data")
    data.add_argument("--data", required=True, metavar="DIR|TSV",
                      help="folder of FSDD recordings, or a path<TAB>transcript manifest (relative paths are also "
                           "looked for under the data dir)")
    data.add_argument("--split", default=None, metavar="SPLIT",
                      help=f"FSDD: {SPLITS_HELP} (default: official; a manifest: all)")
    data.add_argument("--connected", type=nonnegative_int, default=0, metavar="N",
                      help="train on N generated connected-digit utterances (2-7 digits) instead of the recordings")
    data.add_argument("--connected-test", type=positive_int, default=None, metavar="N",
                      help="connected-digit test utterances (default: N/4)")
    data.add_argument("--connected-seed", type=nonnegative_int, default=0, metavar="S",
                      help="generator seed, an integer >= 0 (default: 0)")
    data.add_argument("--test", metavar="TSV", help="also score a path<TAB>transcript manifest after training")
    add_params(parser.add_argument_group("model and training (RNNSpeechRecognizer's parameters)"),
               RNNSpeechRecognizer, model_params())


def run_train(args: argparse.Namespace, streams: Streams) -> None:
    from unrolled.audio.digits import read_manifest, speech_split
    from unrolled.models.speech import RNNSpeechRecognizer

    data = resolve_data(args.data)
    split = args.split or ("all" if data.is_file() else "official")
    values = param_values(args, RNNSpeechRecognizer, model_params())
    if args.objective is None and args.connected:
        values["objective"] = "ctc"
    if args.connected and values["objective"] != "ctc":
        raise UsageError("--connected utterances have several digits each: they need --objective ctc")
    runtime = training_runtime(args)  # --engine/--device checked, torchrun's group joined
    out_dir = check_out_dir(args.out)
    parts = speech_split(data, split, connected=args.connected, connected_test=args.connected_test,
                         seed=args.connected_seed)
    tests = []
    if parts.test_audio:
        tests.append(("held-out " + split, parts.test_audio, parts.test_texts))
    if args.test:
        audio, texts = read_manifest(resolve_data(args.test))
        tests.append((args.test, audio, texts))
    model = RNNSpeechRecognizer(**values)
    metric = "dev accuracy" if model.objective == "classify" else "dev 1-SER"
    progress = Progress(streams.err, args.quiet or args.json, metric=metric)
    with named_for_the_user({"transcripts": args.data, "audio": args.data}, model_params()):
        model.fit(parts.train_audio, parts.train_texts, callbacks=[progress, *progress_callbacks(args, model)],
                  **runtime.fit_options)
    if not runtime.is_main:
        return  # rank 0 evaluates and writes the checkpoint
    metrics = {"dev_metric": model.dev_metric_}
    for name, audio, texts in tests:
        metrics[name] = model.evaluate(audio, texts).to_json()
    record = {"data": str(data), "split": split, "description": parts.description, "train_utterances":
              len(parts.train_texts), "connected": args.connected, "connected_seed": args.connected_seed}
    model.save(out_dir, extra={"metrics": metrics, "data": record, "command": command_line(args)})
    summary = {"out": str(out_dir), "data": record, "metrics": metrics, "symbols": list(model.symbols_),
               "seconds": round(model.training_seconds_, 2)}
    if args.json:
        write_json(summary, streams.out)
    elif not args.quiet:
        out = streams.out
        out.write(f"{parts.description}: {len(parts.train_texts)} training utterances\n")
        for name, _, _ in tests:
            scores = metrics[name]
            out.write(f"{name}: accuracy {scores['accuracy']:.4f}, symbol error rate "
                      f"{scores['symbol_error_rate']:.4f} ({scores['n']} utterances)\n")
        out.write(f"saved {out_dir}: {model.training_seconds_:.1f}s\n")


# --- transcribe -------------------------------------------------------------------------------------------


def load_recognizer(path):
    from unrolled.models.speech import RNNSpeechRecognizer
    from unrolled.pretrained import model_path

    return RNNSpeechRecognizer.load(model_path(str(path)))


def add_transcribe_arguments(parser: argparse.ArgumentParser) -> None:
    model_option(parser, None, "a speech recognizer")
    parser.add_argument("files", nargs="+", metavar="WAV", help="audio files")
    parser.add_argument("--beam", type=positive_int, default=None,
                        help="ctc: prefix beam search width (default: the model's; 1 = greedy)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file")


def run_transcribe(args: argparse.Namespace, streams: Streams) -> None:
    import json

    model = load_recognizer(args.model)
    for path in args.files:  # one at a time, so each line appears as soon as it is ready
        (result,) = model.transcribe([path], beam_size=args.beam)
        if args.json:
            streams.out.write(json.dumps({"file": path, "transcript": result.text,
                                          "probability": result.probability}) + "\n")
        else:
            streams.out.write(f"{path}\t{result.text}\t{result.probability:.4f}\n")
        streams.out.flush()


# --- evaluate (classify.py's command, for a speech recognizer's checkpoint) -------------------------------


def run_evaluate(args: argparse.Namespace, streams: Streams, path) -> None:
    """Accuracy and symbol error rate on a manifest TSV, or on a folder of FSDD recordings."""
    from unrolled.audio.digits import read_manifest, speech_split

    model = load_recognizer(path)
    data = resolve_data(args.file)
    if data.is_file():
        audio, texts = read_manifest(data)
    else:
        split = speech_split(data, "all")
        audio, texts = split.train_audio, split.train_texts
    scores = model.evaluate(audio, texts, beam_size=args.beam)
    if args.json:
        write_json({"model": str(args.model), "file": args.file, **scores.to_json()}, streams.out)
        return
    streams.out.write(f"{args.file}: {scores.n} utterances\naccuracy {scores.accuracy:.4f}\n"
                      f"symbol error rate {scores.symbol_error_rate:.4f}\n")
    if scores.report is not None:
        labels = scores.report.labels
        streams.out.write("confusion (rows: true, columns: predicted)\n      " +
                          "".join(f"{name:>5}" for name in labels) + "\n")
        for name, row in zip(labels, scores.report.confusion):
            streams.out.write(f"{name:>5} " + "".join(f"{v:>5}" for v in row) + "\n")


# --- explain (explain.py's command, for a speech recognizer's checkpoint) ---------------------------------


def run_explain(args: argparse.Namespace, streams: Streams, path) -> None:
    model = load_recognizer(path)
    explained = model.explain(args.text, beam_size=args.beam)
    if args.plot:
        from unrolled.plot import speech_explanation_plot

        speech_explanation_plot(explained, args.plot, title=str(args.text))
    if args.json:
        write_json({"file": args.text, **explained.to_json()}, streams.out)
        return
    out, digits = streams.out, args.precision
    out.write(f"file: {args.text}\ntranscript: {explained.transcript}   (p = {explained.probability:.{digits}f})\n")
    out.write(f"{len(explained.features)} frames of {explained.features.shape[1]} features, one every "
              f"{explained.frame_seconds * 1000:g} ms\n\n")
    shown = explained.outputs
    header = "frame   time  " + ("emits     " if explained.alignment else "") + "".join(f"{s:>8}" for s in shown)
    out.write(header + "\n")
    for t, row in enumerate(explained.posteriors):
        emits = f"{explained.alignment[t]:<10}" if explained.alignment else ""
        out.write(f"{t:>5} {t * explained.frame_seconds:>6.2f}  {emits}" +
                  "".join(f"{p:>8.{digits}f}" for p in row) + "\n")
    if args.plot:
        out.write(f"plot: {args.plot}\n")


TRAIN = Command(TRAIN_HELP, add_train_arguments, run_train)

COMMANDS = {"transcribe": Command(TRANSCRIBE_HELP, add_transcribe_arguments, run_transcribe)}
