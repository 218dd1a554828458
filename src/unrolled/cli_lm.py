"""The language-model commands: ``unrolled train --task lm`` and ``unrolled generate``.

Like :mod:`unrolled.cli`, this module only orchestrates library calls and prints.
"""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from unrolled.cli import (
    UsageError,
    _file_summary,
    _fraction,
    _positive_float,
    _positive_int,
    check_out_dir,
    command_line,
    with_defaults,
)

LM_DEFAULTS = {
    "hidden": 256, "epochs": 1, "batch_size": 32, "lr": 2e-3, "clip_norm": 1.0, "embedding_dim": 64,
    "level": "char", "bptt": 64, "validation_fraction": 0.1, "cell": "lstm",
}

GENERATE_HELP = """\
Generate text with a trained language model: the prompt warms the state token by token, then each next
token is sampled (temperature, top-k, top-p) and fed back. Output streams as it is generated;
deterministic under --seed. A prompt character (or word) outside the model's vocabulary is read as <unk>.

example:
  unrolled generate --model models/shakespeare --prompt "ROMEO:" --length 300 --temperature 0.8 --seed 1
"""


def add_lm_training_options(train: argparse.ArgumentParser) -> None:
    group = train.add_argument_group("lm: data and model")
    group.add_argument("--text", metavar="FILE", help="the text to model, UTF-8 (required for lm)")
    group.add_argument("--level", choices=("char", "word"), help="tokens are characters (default) or words")
    group.add_argument("--bptt", type=_positive_int, help="steps per truncated-BPTT window (default: 64)")
    group.add_argument("--tie-weights", action="store_true", help="share the input and output embeddings")
    group.add_argument("--max-steps", type=_positive_int, help="stop after this many optimizer steps")
    group.add_argument("--validation-fraction", type=_fraction,
                       help="the last part of the text used for validation (default: 0.1)")


def add_generate_command(command) -> None:
    generate = command("generate", "generate text with a language model", GENERATE_HELP)
    generate.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory of a language model")
    generate.add_argument("--prompt", default="", help="text to start from (default: none)")
    generate.add_argument("--length", type=int, default=200, help="tokens to generate (default: 200)")
    generate.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (default: 1)")
    generate.add_argument("--top-k", type=_positive_int, help="sample among the k most probable tokens")
    generate.add_argument("--top-p", type=_positive_float, help="sample among the most probable tokens of mass p")
    generate.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def run_train_lm(args: argparse.Namespace, out: TextIO, err: TextIO, progress) -> None:
    from unrolled.data.readers import read_text
    from unrolled.models.language_model import RNNLanguageModel

    args = with_defaults(args, "lm", LM_DEFAULTS)
    if not args.text:
        raise UsageError("--text FILE is required for --task lm")
    out_dir = check_out_dir(args.out)
    text = read_text(args.text)
    model = RNNLanguageModel(
        level=args.level, cell=args.cell, embedding_dim=args.embedding_dim,
        hidden_size=args.hidden, num_layers=args.layers, dropout=args.dropout, tie_weights=args.tie_weights,
        bptt=args.bptt, batch_size=args.batch_size, epochs=args.epochs, lr=args.lr, clip_norm=args.clip_norm,
        validation_fraction=args.validation_fraction, max_steps=args.max_steps, random_state=args.seed,
    )
    model.fit(text, callbacks=[progress])
    metrics = {"val_loss": model.val_loss_}
    if args.level == "char":
        metrics["val_bits_per_char"] = model.bits_per_char
    model.save(out_dir, extra={"metrics": metrics, "data": {"train": _file_summary(args.text, len(text), 0)},
                               "command": command_line()})
    if args.json:
        json.dump({"out": str(out_dir), "metrics": metrics, "seconds": round(model.training_seconds_, 2)}, out,
                  indent=2)
        out.write("\n")
    elif not args.quiet:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        out.write(f"saved {out_dir}: {shown}, {model.training_seconds_:.1f}s\n")


def run_generate(args: argparse.Namespace, out: TextIO) -> None:
    from unrolled.models.language_model import RNNLanguageModel

    model = RNNLanguageModel.load(args.model)
    tokens = model.generate(args.prompt, args.length, temperature=args.temperature, top_k=args.top_k,
                            top_p=args.top_p, seed=args.seed)
    out.write(args.prompt)
    for token in tokens:
        out.write(token)
        out.flush()
    out.write("\n")
