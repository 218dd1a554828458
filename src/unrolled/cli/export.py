"""Exporting a model: ``unrolled export --model NAME|DIR --onnx FILE``.

The graph is built by :func:`unrolled.onnx_export.export_onnx` (a classifier or a language model; ONNX's own
RNN/GRU/LSTM operators, no torch). Like the whole CLI, this module only orchestrates library calls and prints.
"""

from __future__ import annotations

import argparse

from unrolled.cli.common import Command, Streams, positive_int

EXPORT_HELP = """\
Export a classifier or a language model to an ONNX file that onnxruntime (or any ONNX runtime) runs without
unrolled. A classifier takes ids (batch, sequence) int64, right-padded with the pad id, and lengths (batch)
int64, and gives logits and probabilities (batch, classes); a language model takes ids (batch, sequence) and
the state h0 (layers, batch, hidden) (and c0 for an LSTM), and gives logits (batch, sequence, vocab) and the
state after the last step, hn (and cn). The vocabulary and the class names are in the file's metadata;
docs/onnx.md shows how text becomes ids. Needs the onnx package: pip install 'unrolled[onnx]'.

example:
  unrolled export --model sst2-best --onnx sst2-best.onnx
  unrolled export --model models/shakespeare --onnx shakespeare.onnx --opset 17
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from unrolled.onnx_export import DEFAULT_OPSET
    from unrolled.pretrained import BUNDLED

    parser.add_argument("--model", required=True, metavar="NAME|DIR",
                        help=f"checkpoint directory of a classifier or a language model, or a bundled model: "
                             f"{', '.join(BUNDLED)}")
    parser.add_argument("--onnx", required=True, metavar="FILE", help="the ONNX file to write")
    parser.add_argument("--opset", type=positive_int, default=DEFAULT_OPSET,
                        help=f"ONNX opset version (default: {DEFAULT_OPSET})")


def _describe(values: list) -> str:
    return ", ".join(f"{name} ({', '.join(map(str, shape))}) {dtype}" for name, shape, dtype in values)


def run(args: argparse.Namespace, streams: Streams) -> None:
    import unrolled
    from unrolled.onnx_export import export_onnx, onnx_signature

    model = unrolled.load(args.model)
    path = export_onnx(model, args.onnx, opset=args.opset)
    signature = onnx_signature(path)
    streams.out.write(f"wrote {path} ({model.KIND}, opset {args.opset}): inputs {_describe(signature['inputs'])}; "
                      f"outputs {_describe(signature['outputs'])}\n")


COMMANDS = {"export": Command(EXPORT_HELP, add_arguments, run)}
