"""Language models: ``unrolled train --task lm`` and ``unrolled generate``.

The model options are :class:`unrolled.RNNLanguageModel`'s parameters (defaults read from it). Like the
whole CLI, this module only orchestrates library calls and prints.
"""

from __future__ import annotations

import argparse

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
    fraction,
    model_option,
    named_for_the_user,
    optimizer_params,
    param_values,
    progress_callbacks,
    positive_float,
    nonnegative_int,
    positive_int,
    recurrent_params,
    training_runtime,
    write_json,
)


def model_params() -> tuple[Param, ...]:
    """RNNLanguageModel's parameters as options."""
    from unrolled.models.language_model import DIRECTIONS, LEVELS, SOFTMAXES

    return (
        Param("level", "tokens are characters or words", choices=LEVELS),
        Param("min_freq", "rarer tokens become <unk>", positive_int),
        Param("max_vocab", "word level: keep the most frequent words, <pad> and <unk> included", positive_int),
        Param("softmax", "training loss: the exact softmax, or sampled (word level over a large vocabulary; "
              "validation stays exact)", choices=SOFTMAXES),
        Param("num_sampled", "candidate words per batch of --softmax sampled", positive_int, metavar="K"),
        *recurrent_params("dropout on token vectors, between layers and on the outputs"),
        Param("embedding_dim", "token vector size", positive_int, metavar="E"),
        Param("tie_weights", "share the input and output embeddings (needs --embedding-dim = --hidden-size)"),
        Param("bptt", "steps per truncated-BPTT window", positive_int),
        *optimizer_params("parallel streams"),
        Param("validation_fraction", "the last part of the text used for validation", fraction),
        Param("max_steps", "stop after this many optimizer steps", positive_int),
        Param("init_from", "go on training a language model (a directory or a bundled name) on this text: its "
              "vocabulary and weights; give its network options", metavar="LMDIR"),
        Param("direction", "read the text left to right (forward: predict the next token) or right to left "
              "(backward: the token before; what a bidirectional classifier's --init-from-backward takes)",
              choices=DIRECTIONS),
        Param("freeze_embeddings", "keep --init-from's embedding fixed (a backward model trained from a forward "
              "one so shares its word vectors)"),
        SEED_PARAM,
    )


TRAIN_HELP = """\
--task lm: train a language model on a text, character by character (--level word for words), with
truncated BPTT over one continuous stream; the last --validation-fraction of the text is the validation
set (loss in nats per token, and bits per character).

example:
  unrolled train --task lm --text tinyshakespeare.txt --cell lstm --num-layers 2 --hidden-size 256 \\
      --embedding-dim 64 --dropout 0.2 --bptt 64 --epochs 15 --out models/shakespeare
"""

GENERATE_HELP = """\
Generate text with a trained language model: the prompt warms the state token by token, then each next
token is sampled (temperature, top-k, top-p) and fed back. Output streams as it is generated;
deterministic under --seed. The special tokens <pad> and <unk> are never generated, and a prompt character
(or word) outside the model's vocabulary is refused, naming it (the Python API can read it as <unk>:
RNNLanguageModel.generate(unknown="unk")).

example:
  unrolled generate --model models/shakespeare --prompt "ROMEO:" --length 300 --temperature 0.8 --seed 1
"""


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from unrolled.models.language_model import RNNLanguageModel

    parser.add_argument_group("data").add_argument("--text", metavar="FILE",
                                                   help="the text to model, UTF-8 (required)")
    add_params(parser.add_argument_group("model and training (RNNLanguageModel's parameters)"), RNNLanguageModel,
               model_params())


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    model_option(parser, None, "a language model")
    parser.add_argument("--prompt", default="", help="text to start from (default: none)")
    parser.add_argument("--length", type=int, default=200, help="tokens to generate (default: 200)")
    parser.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (default: 1)")
    parser.add_argument("--top-k", type=positive_int, help="sample among the k most probable tokens")
    parser.add_argument("--top-p", type=positive_float, help="sample among the most probable tokens of mass p")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default: 0)")


def run_train(args: argparse.Namespace, streams: Streams) -> None:
    from unrolled.data.readers import read_text
    from unrolled.models.language_model import RNNLanguageModel

    out = streams.out
    if not args.text:
        raise UsageError("--text FILE is required for --task lm")
    runtime = training_runtime(args)  # --engine/--device checked, torchrun's group joined
    out_dir = check_out_dir(args.out)
    text = read_text(args.text)
    model = RNNLanguageModel(**param_values(args, RNNLanguageModel, model_params()))
    with named_for_the_user({"text": args.text}, model_params()):
        model.fit(text, callbacks=[Progress(streams.err, args.quiet or args.json, metric="val loss"),
                                   *progress_callbacks(args, model)], **runtime.fit_options)
    if not runtime.is_main:
        return  # rank 0 writes the checkpoint
    metrics = {"val_loss": model.val_loss_}
    if args.level == "char":
        metrics["val_bits_per_char"] = model.bits_per_char
    model.save(out_dir, extra={"metrics": metrics, "data": {"train": file_summary(args.text, len(text), 0)},
                               "command": command_line(args)})
    if args.json:
        write_json({"out": str(out_dir), "metrics": metrics, "seconds": round(model.training_seconds_, 2)}, out)
    elif not args.quiet:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        out.write(f"saved {out_dir}: {shown}, {model.training_seconds_:.1f}s\n")


def run_generate(args: argparse.Namespace, streams: Streams) -> None:
    from unrolled.models.language_model import RNNLanguageModel

    out = streams.out
    model = RNNLanguageModel.load(args.model)
    try:  # generate checks every argument at the call, before the first token
        tokens = model.generate(args.prompt, args.length, temperature=args.temperature, top_k=args.top_k,
                                top_p=args.top_p, seed=args.seed, unknown="error")
    except ValueError as error:
        raise _named_by_flag(error) from None
    out.write(args.prompt)
    for token in tokens:
        out.write(token)
        out.flush()
    out.write("\n")


_GENERATE_FLAGS = {"prompt": "--prompt", "length": "--length", "temperature": "--temperature", "top_k": "--top-k",
                   "top_p": "--top-p", "seed": "--seed"}


def _named_by_flag(error: ValueError) -> ValueError:
    """The library's "top_p: expected …" as "--top-p: expected …" (the option the user gave)."""
    name, sep, rest = str(error).partition(": ")
    if not (sep and name in _GENERATE_FLAGS):
        return error
    return ValueError(f"{_GENERATE_FLAGS[name]}: {rest.replace(' or None', '')}")


TRAIN = Command(TRAIN_HELP, add_train_arguments, run_train)
COMMANDS = {"generate": Command(GENERATE_HELP, add_generate_arguments, run_generate)}
