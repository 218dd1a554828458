"""Translation: ``unrolled train --task translate`` and ``unrolled translate``; ``evaluate`` and ``explain``
come here for a translator's checkpoint (classify.py and explain.py look at its kind).

The model options are :class:`unrolled.RNNTranslator`'s parameters (defaults read from it). Like the whole
CLI, this module only orchestrates library calls and prints.
"""

from __future__ import annotations

import argparse
import json

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
    file_summary,
    model_option,
    named_for_the_user,
    nonnegative_float,
    optimizer_params,
    param_values,
    progress_callbacks,
    positive_int,
    probability,
    recurrent_params,
    training_runtime,
    write_json,
)


def model_params() -> tuple[Param, ...]:
    """RNNTranslator's parameters as options."""
    from unrolled.nn.attention import SCORES

    return (
        *recurrent_params("dropout on token vectors, between layers and on the attentional states"),
        Param("embedding_dim", "token vector size (both languages)", positive_int, metavar="E"),
        Param("attention", "attention score", choices=[s for s in SCORES if s != "dot"]),
        Param("input_feeding", "feed the last attentional state into the next decoder step (Luong)"),
        Param("min_freq", "word level: rarer tokens become <unk>", positive_int),
        Param("subwords", "use one sentencepiece vocabulary of this many pieces instead of words", positive_int,
              metavar="N"),
        *optimizer_params(),
        Param("patience", "stop after this many epochs without a better dev BLEU", positive_int),
        Param("label_smoothing", "label smoothing of the token loss", probability),
        Param("max_steps", "stop after this many optimizer steps", positive_int),
        SEED_PARAM,
    )


TRAIN_HELP = """\
--task translate: train an attention encoder-decoder on aligned sentence pairs (two files, one sentence a
line, plain or .gz; or a TSV with the columns source and target). With a dev set, each epoch's greedy
translations of it are scored (BLEU) and the best epoch's weights are kept.

example:
  unrolled train --task translate --source multi30k/train.de.gz --target multi30k/train.en.gz \\
      --dev-source multi30k/val.de.gz --dev-target multi30k/val.en.gz --epochs 20 --out models/de-en
"""

TRANSLATE_HELP = """\
Translate sentences with a trained translator: beam search (--beam 1 is greedy). With no text arguments,
reads one sentence per line from standard input and writes each translation as soon as it is done.

example:
  unrolled translate --model models/de-en "Ein Mann fährt Fahrrad."
  zcat multi30k/test_2016_flickr.de.gz | unrolled translate --model models/de-en --beam 5 > hypotheses.txt
"""


def _pairs(group, prefix: str, what: str) -> None:
    dash = f"--{prefix}-" if prefix else "--"
    group.add_argument(f"{dash}source", metavar="FILE", help=f"{what} source sentences, one a line (plain or .gz)")
    group.add_argument(f"{dash}target", metavar="FILE", help=f"{what} target sentences, aligned with the source")
    group.add_argument(f"{dash}pairs", metavar="FILE",
                       help=f"{what} pairs instead: a TSV with the columns source and target")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from unrolled.models.translator import RNNTranslator

    data = parser.add_argument_group("data")
    _pairs(data, "", "training")
    _pairs(data, "dev", "dev")
    data.add_argument("--skip-bad-rows", action="store_true", help="skip blank or malformed pairs (reported)")
    add_params(parser.add_argument_group("model and training (RNNTranslator's parameters)"), RNNTranslator,
               model_params())


def read_pairs(source: str | None, target: str | None, pairs: str | None, what: str, skip_bad_rows: bool,
               err) -> object | None:
    """The ParallelText named by the options (None when none is given); skipped rows reported on err."""
    from unrolled.data.parallel import read_parallel, read_parallel_tsv

    if pairs and (source or target):
        raise UsageError(f"give the {what} data as --…source and --…target, or as --…pairs, not both")
    if pairs:
        data = read_parallel_tsv(pairs, skip_bad_rows=skip_bad_rows)
    elif source or target:
        if not (source and target):
            raise UsageError(f"the {what} data needs both a source and a target file")
        data = read_parallel(source, target, skip_bad_rows=skip_bad_rows)
    else:
        return None
    if data.skipped:
        files = data.source_path
        if data.target_path != data.source_path:
            files += f" and {data.target_path}"
        err.write(f"skipped {len(data.skipped)} bad pair(s) of {files}:\n")
        for row in data.skipped[:10]:
            err.write(f"  line {row.line}: {row.reason}\n")
        if len(data.skipped) > 10:
            err.write(f"  … and {len(data.skipped) - 10} more\n")
    return data


def _data_record(data) -> dict:
    files = {"source": data.source_path}
    if data.target_path != data.source_path:
        files["target"] = data.target_path
    return {side: file_summary(path, len(data.sources), len(data.skipped)) for side, path in files.items()}


def run_train(args: argparse.Namespace, streams: Streams) -> None:
    from unrolled.models.translator import RNNTranslator

    out = streams.out
    runtime = training_runtime(args)  # --engine/--device checked, torchrun's group joined
    train = read_pairs(args.source, args.target, args.pairs, "training", args.skip_bad_rows, streams.err)
    if train is None:
        raise UsageError("--source FILE and --target FILE (or --pairs FILE) are required for --task translate")
    dev = read_pairs(args.dev_source, args.dev_target, args.dev_pairs, "dev", args.skip_bad_rows, streams.err)
    out_dir = check_out_dir(args.out)
    model = RNNTranslator(**param_values(args, RNNTranslator, model_params()))
    progress = Progress(streams.err, args.quiet or args.json, metric="dev BLEU", tokens=lambda: model.tokens_seen_)
    source = args.pairs or args.source
    with named_for_the_user({"sources": source, "targets": args.pairs or args.target}, model_params()):
        model.fit(train.sources, train.targets, validation=None if dev is None else (dev.sources, dev.targets),
                  callbacks=[progress, *progress_callbacks(args, model)], **runtime.fit_options)
    if not runtime.is_main:
        return  # rank 0 writes the checkpoint
    metrics = {"dev_bleu": model.dev_bleu_}
    data = {"train": _data_record(train)}
    if dev is not None:
        data["dev"] = _data_record(dev)
    model.save(out_dir, extra={"metrics": metrics, "data": data, "command": command_line(args)})
    summary = {"out": str(out_dir), "metrics": metrics, "pairs": len(train.sources),
               "vocab": {"source": len(model.vocab_.source), "target": len(model.vocab_.target)},
               "seconds": round(model.training_seconds_, 2)}
    if args.json:
        write_json(summary, out)
    elif not args.quiet:
        bleu = "no dev set" if model.dev_bleu_ is None else f"dev BLEU {model.dev_bleu_:.2f}"
        out.write(f"saved {out_dir}: {bleu}, {model.training_seconds_:.1f}s\n")


# --- translate --------------------------------------------------------------------------------------------


def decoding_options(parser: argparse.ArgumentParser, beam_default: int = 5) -> None:
    group = parser.add_argument_group("decoding")
    group.add_argument("--beam", type=positive_int, default=beam_default,
                       help=f"beam size, 1 = greedy (default: {beam_default})")
    group.add_argument("--alpha", type=nonnegative_float, default=0.6,
                       help="length penalty ((5 + length) / 6)^alpha (default: 0.6; 0 = none)")
    group.add_argument("--max-len-a", type=nonnegative_float, default=1.5,
                       help="at most a * source length + b tokens (default: a = 1.5)")
    group.add_argument("--max-len-b", type=nonnegative_float, default=5.0, help="(default: b = 5)")
    group.add_argument("--keep-unk", action="store_true",
                       help="write <unk> as is (default: the most attended source word replaces it)")


def _decoding(args: argparse.Namespace) -> dict:
    return dict(beam_size=args.beam, alpha=args.alpha, max_len_a=args.max_len_a, max_len_b=args.max_len_b,
                replace_unk=not args.keep_unk)


def add_translate_arguments(parser: argparse.ArgumentParser) -> None:
    model_option(parser, None, "a translator")
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="sentences (default: lines of standard input)")
    decoding_options(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per sentence")


def load_translator(path: str):
    from unrolled.models.translator import RNNTranslator
    from unrolled.pretrained import model_path

    return RNNTranslator.load(model_path(path))


def run_translate(args: argparse.Namespace, streams: Streams) -> None:
    model = load_translator(args.model)
    options = _decoding(args)
    texts = args.texts if args.texts else (line.rstrip("\n") for line in streams.stdin)
    for number, text in enumerate(texts, 1):
        where = f"line {number} of standard input" if not args.texts else f"TEXT {number}"
        if not text.strip():
            raise ValueError(f"{where}: empty sentence")
        with named_for_the_user({"texts[0]": where}):  # the library's "texts[0]: …" is this sentence
            (translation,) = model.translate([text], **options)
        if args.json:
            streams.out.write(json.dumps({"source": text, "translation": translation}, ensure_ascii=False) + "\n")
        else:
            streams.out.write(translation + "\n")
        streams.out.flush()


# --- evaluate (classify.py's command, for a translator's checkpoint) --------------------------------------


def run_evaluate(args: argparse.Namespace, streams: Streams, path) -> None:
    """BLEU of the model's translations of FILE against --reference (or of a TSV's two columns)."""
    model = load_translator(str(path))
    if args.reference:
        data = read_pairs(args.file, args.reference, None, "evaluation", args.skip_bad_rows, streams.err)
    else:
        data = read_pairs(None, None, args.file, "evaluation", args.skip_bad_rows, streams.err)
    scores = model.evaluate(data.sources, data.targets, **_decoding(args))
    bleu, sacre = scores.bleu, scores.sacrebleu
    result = {"model": args.model, "file": args.file, "reference": args.reference, "pairs": len(data.sources),
              "beam": args.beam, **bleu.to_json(), "sacrebleu_lowercase": sacre}
    if args.json:
        write_json(result, streams.out)
        return
    streams.out.write(f"{args.file}: {len(data.sources)} pairs, beam {args.beam}\n")
    streams.out.write(f"tokenized, lower-cased {bleu}\n")
    streams.out.write("sacreBLEU (13a, case-insensitive): " +
                      ("not installed (pip install sacrebleu)" if sacre is None else f"{sacre:.2f}") + "\n")


# --- explain (explain.py's command, for a translator's checkpoint) ----------------------------------------


def run_explain(args: argparse.Namespace, streams: Streams, path) -> None:
    model = load_translator(str(path))
    explained = model.explain(args.text, beam_size=args.beam)
    steps = explained.steps
    if args.plot:
        from unrolled.plot import attention_heatmap

        attention_heatmap(explained.attention, explained.source_tokens, steps, args.plot, title=explained.text)
    if args.json:
        write_json({"source": args.text, **explained.to_json()}, streams.out)
        return
    digits = args.precision
    out = streams.out
    out.write(f"source: {args.text}\ntranslation: {explained.text}   (log p = {explained.log_prob:.{digits}f})\n\n")
    out.write("step  token         p       top alternatives\n")
    for t, (token, p, alts) in enumerate(zip(steps, explained.probabilities, explained.alternatives), 1):
        shown = "  ".join(f"{w} {q:.{digits}f}" for w, q in alts)
        out.write(f"{t:>4}  {token:<12}  {p:.{digits}f}   {shown}\n")
    out.write("\nattention (rows: output tokens, columns: source tokens)\n")
    width = max(6, digits + 3, *(len(w) for w in explained.source_tokens))
    out.write(" " * 14 + "".join(f"{w:>{width + 1}}" for w in explained.source_tokens) + "\n")
    for token, row in zip(steps, explained.attention):
        out.write(f"{token:<14}" + "".join(f"{a:>{width + 1}.{digits}f}" for a in row) + "\n")
    if args.plot:
        out.write(f"plot: {args.plot}\n")


TRAIN = Command(TRAIN_HELP, add_train_arguments, run_train)

COMMANDS = {"translate": Command(TRANSLATE_HELP, add_translate_arguments, run_translate)}
