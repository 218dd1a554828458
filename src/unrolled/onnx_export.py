"""ONNX export of a fitted classifier or language model, built from the NumPy parameters (no torch).

    export_onnx(model, "model.onnx")          # an RNNClassifier or RNNLanguageModel, fitted or loaded

The graph uses ONNX's own recurrent operators (RNN, GRU, LSTM), one node per layer (both directions in one
node when bidirectional), so any ONNX runtime runs it. What changes on the way from PyTorch's layout:

- gate order: PyTorch stacks a GRU's rows as r, z, n and ONNX as z, r, h; an LSTM's as i, f, g, o and ONNX
  as i, o, f, c. The rows of W, R and both biases are reordered;
- ``B`` is ``concat(bias_ih, bias_hh)`` (Wb then Rb), per direction;
- GRU has ``linear_before_reset = 1``: the reset gate multiplies ``h W_hnᵀ + b_hn``, as in PyTorch;
- an Elman RNN's nonlinearity is the node's activation (Tanh or Relu);
- a layer's output Y is (sequence, num_directions, batch, H); the next layer reads it as
  (sequence, batch, num_directions·H), the directions concatenated as PyTorch does.

Classifier graph (dynamic ``batch`` and ``sequence``)::

    ids      int64 (batch, sequence)   right-padded with the pad id (any id in range; padded steps are skipped)
    lengths  int64 (batch,)            the real steps of each row, 1 ≤ length ≤ sequence
    -> logits (batch, classes) float32, probabilities (batch, classes) float32 (softmax of logits)

``lengths`` is the recurrent nodes' ``sequence_lens``: padded steps do not change a row's state, the
reverse direction starts at each row's own last real token, and pooling reads only real steps ('last': the
top layer's final state of each direction, the forward one after the last real step and the reverse one at
step 0; 'max' and 'mean' over the real steps), as :func:`unrolled.models.classifier_net.classifier_forward`.

Language-model graph (dynamic ``batch`` and ``sequence``; a call runs any number of steps)::

    ids  int64 (batch, sequence)
    h0   float32 (layers, batch, hidden)      the state to start from (zeros for a fresh stream)
    c0   float32 (layers, batch, hidden)      LSTM only
    -> logits (batch, sequence, vocab) float32, hn (layers, batch, hidden), cn (LSTM only)

Feed ``hn`` (and ``cn``) back as ``h0`` (``c0``) to continue: a prompt in one call, then one step per
generated token. With tied weights the head's Gemm reads the embedding initializer itself (no copy).

The model's metadata (``metadata_props``) records the unrolled version, the kind, the pad and unk ids, the
vocabulary (a JSON list, id order), the tokenizer settings and, for a classifier, the class names; for a
language model the level (char / word) and the start token an empty prompt begins with (these models have no
BOS token). Needs the ``onnx`` package (``pip install 'unrolled[onnx]'``); the library never prints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "SUPPORTED_KINDS", "build_onnx", "export_onnx", "onnx_signature"]

SUPPORTED_KINDS = ("classifier", "language_model")
DEFAULT_OPSET = 17  # runs on every onnxruntime since 1.13
MIN_OPSET = 14  # the recurrent operators' current definitions (and Reshape, Squeeze with axes as inputs)
INSTALL_HINT = "pip install 'unrolled[onnx]'"

_OP = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}
# PyTorch's gate blocks, in the order ONNX stacks them: GRU r,z,n -> z,r,h; LSTM i,f,g,o -> i,o,f,c
_GATE_ORDER = {"rnn": (0,), "gru": (1, 0, 2), "lstm": (0, 3, 1, 2)}
_ACTIVATION = {"tanh": "Tanh", "relu": "Relu"}


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError(f"ONNX export needs the onnx package: {INSTALL_HINT}") from None
    return onnx


def _check_model(model: object) -> str:
    """The model's kind, after checking it is one that exports and that it is fitted."""
    kind = getattr(model, "KIND", None)
    supported = "classifier (RNNClassifier) and language_model (RNNLanguageModel)"
    if kind is None:
        raise ValueError(f"model: expected an RNNClassifier or RNNLanguageModel, got {type(model).__name__} "
                         f"(ONNX export supports the kinds {supported})")
    if kind not in SUPPORTED_KINDS:
        raise ValueError(f"model: a {kind} ({type(model).__name__}) does not export to ONNX; the supported "
                         f"kinds are {supported}")
    if not hasattr(model, "params_"):
        from unrolled.models._estimator import NotFittedError

        raise NotFittedError(f"model: this {type(model).__name__} is not fitted yet, so there is nothing to "
                             f"export: call {model._FIT_CALL} or unrolled.load(path) first")
    return kind


class _Graph:
    """Nodes and initializers under construction, with fresh names for intermediate values."""

    def __init__(self, onnx, opset: int) -> None:
        self.onnx, self.helper, self.opset = onnx, onnx.helper, opset
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = set()
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, name: str, value: np.ndarray) -> str:
        if name in self._names:
            raise AssertionError(f"initializer {name!r} defined twice")  # a bug in this module, not user input
        self._names.add(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(value), name=name))
        return name

    def ints(self, values: list[int]) -> str:
        return self.const(self.fresh("const"), np.array(values, dtype=np.int64))

    def op(self, op_type: str, inputs: list[str], *, outputs: int | list[str] = 1, hint: str | None = None,
           **attrs: Any):
        """Add one node; returns its output name (or the list of names, for several outputs)."""
        while inputs and inputs[-1] == "":  # trailing optional inputs are left out, not named ""
            inputs = inputs[:-1]
        names = outputs if isinstance(outputs, list) else [self.fresh(hint or op_type.lower())
                                                           for _ in range(outputs)]
        self.nodes.append(self.helper.make_node(op_type, inputs, names, name=self.fresh("node_" + op_type),
                                                **attrs))
        return names[0] if len(names) == 1 else names

    def reduce(self, op_type: str, x: str, axes: list[int], *, keepdims: int, output: str | None = None) -> str:
        """ReduceSum (axes an input since opset 13) or ReduceMax (an input since opset 18)."""
        outputs = [output] if output else 1
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.ints(axes)], outputs=outputs, keepdims=keepdims)
        return self.op(op_type, [x], outputs=outputs, axes=axes, keepdims=keepdims)


def _reorder_gates(array: np.ndarray, cell: str, hidden: int) -> np.ndarray:
    """(G·H, …) rows in PyTorch's gate order -> the same rows in ONNX's."""
    gates = array.reshape((len(_GATE_ORDER[cell]), hidden) + array.shape[1:])
    return gates[list(_GATE_ORDER[cell])].reshape(array.shape)


def _recurrent_stack(g: _Graph, rec, params: dict, x_tm: str, *, sequence_lens: str = "",
                     h0: str = "", c0: str = "") -> tuple[str, list[str], list[str]]:
    """x_tm (T, B, D) through every layer -> the top layer's output (T, B, dirs·H) and, per layer, its final
    h (dirs, B, H) and (LSTM) c. ``h0``/``c0`` (L·dirs, B, H) in PyTorch's layout, or "" for zeros."""
    cell, hidden, dirs = rec.cell, rec.hidden_size, rec.num_directions
    layer_input, finals_h, finals_c = x_tm, [], []
    for layer in range(rec.num_layers):
        w, r, b = [], [], []
        for direction in range(dirs):
            s = rec.suffix(layer, direction)
            w.append(_reorder_gates(np.asarray(params["rnn.weight_ih" + s], np.float32), cell, hidden))
            r.append(_reorder_gates(np.asarray(params["rnn.weight_hh" + s], np.float32), cell, hidden))
            b.append(np.concatenate([_reorder_gates(np.asarray(params["rnn.bias_ih" + s], np.float32), cell, hidden),
                                     _reorder_gates(np.asarray(params["rnn.bias_hh" + s], np.float32), cell, hidden)]))
        inputs = [layer_input, g.const(f"rnn.l{layer}.W", np.stack(w)), g.const(f"rnn.l{layer}.R", np.stack(r)),
                  g.const(f"rnn.l{layer}.B", np.stack(b)), sequence_lens]
        rows = (g.ints([layer * dirs]), g.ints([(layer + 1) * dirs]), g.ints([0])) if h0 or c0 else ()
        inputs.append(g.op("Slice", [h0, *rows], hint=f"h0_l{layer}") if h0 else "")
        if cell == "lstm":
            inputs.append(g.op("Slice", [c0, *rows], hint=f"c0_l{layer}") if c0 else "")
        attrs: dict[str, Any] = {"hidden_size": hidden, "direction": "bidirectional" if dirs == 2 else "forward"}
        if cell == "gru":
            attrs["linear_before_reset"] = 1
        if cell == "rnn":
            attrs["activations"] = [_ACTIVATION[rec.nonlinearity]] * dirs
        outputs = g.op(_OP[cell], inputs, outputs=3 if cell == "lstm" else 2, hint=f"{cell}_l{layer}", **attrs)
        y, finals_h = outputs[0], finals_h + [outputs[1]]
        if cell == "lstm":
            finals_c.append(outputs[2])
        if dirs == 1:  # Y (T, 1, B, H) -> (T, B, H)
            layer_input = g.op("Squeeze", [y, g.ints([1])], hint=f"out_l{layer}")
        else:  # Y (T, 2, B, H) -> (T, B, 2, H) -> (T, B, 2H): [forward, reverse] as PyTorch concatenates them
            transposed = g.op("Transpose", [y], perm=[0, 2, 1, 3])
            layer_input = g.op("Reshape", [transposed, g.ints([0, 0, -1])], hint=f"out_l{layer}")
    return layer_input, finals_h, finals_c


def _value_info(helper, name: str, elem_type: int, dims: list) -> Any:
    return helper.make_tensor_value_info(name, elem_type, dims)


def _classifier_graph(g: _Graph, model) -> tuple[list, list, dict[str, str]]:
    onnx = g.onnx
    config, params = model.net_config_, model.params_
    rec = config.recurrent
    emb = g.const("embedding.weight", np.asarray(params["embedding.weight"], np.float32))
    x = g.op("Gather", [emb, "ids"], axis=0, hint="embedded")  # (B, T, E)
    x_tm = g.op("Transpose", [x], perm=[1, 0, 2], hint="embedded_tm")  # (T, B, E)
    seq_lens = g.op("Cast", ["lengths"], to=onnx.TensorProto.INT32, hint="sequence_lens")
    out, finals_h, _ = _recurrent_stack(g, rec, params, x_tm, sequence_lens=seq_lens)
    if config.pooling == "last":  # the top layer's final h per direction (dirs, B, H) -> (B, dirs·H)
        top = g.op("Transpose", [finals_h[-1]], perm=[1, 0, 2])
        features = g.op("Reshape", [top, g.ints([0, -1])], hint="features")
    else:  # a (T, B, 1) mask of the real steps, from lengths
        steps = g.op("Gather", [g.op("Shape", ["ids"]), g.ints([1])], axis=0)  # (1,) = [T]
        t_len = g.op("Squeeze", [steps, g.ints([0])])
        positions = g.op("Range", [g.const("zero", np.array(0, np.int64)), t_len,
                                   g.const("one", np.array(1, np.int64))])  # (T,)
        real = g.op("Less", [g.op("Unsqueeze", [positions, g.ints([1])]), "lengths"], hint="mask")  # (T, B)
        real = g.op("Unsqueeze", [real, g.ints([2])], hint="mask")  # (T, B, 1)
        if config.pooling == "max":
            masked = g.op("Where", [real, out, g.const("minus_inf", np.array(-np.inf, np.float32))])
            features = g.reduce("ReduceMax", masked, [0], keepdims=0)
        else:  # mean
            summed = g.reduce("ReduceSum", g.op("Mul", [out, g.op("Cast", [real], to=onnx.TensorProto.FLOAT)]),
                              [0], keepdims=0)  # (B, F)
            count = g.op("Cast", [g.op("Unsqueeze", ["lengths", g.ints([1])])], to=onnx.TensorProto.FLOAT)
            features = g.op("Div", [summed, count], hint="features")
    head_w = g.const("head.weight", np.asarray(params["head.weight"], np.float32))
    head_b = g.const("head.bias", np.asarray(params["head.bias"], np.float32))
    g.op("Gemm", [features, head_w, head_b], outputs=["logits"], transB=1)
    g.op("Softmax", ["logits"], outputs=["probabilities"], axis=1)

    helper, classes = g.helper, config.num_classes
    inputs = [_value_info(helper, "ids", onnx.TensorProto.INT64, ["batch", "sequence"]),
              _value_info(helper, "lengths", onnx.TensorProto.INT64, ["batch"])]
    outputs = [_value_info(helper, "logits", onnx.TensorProto.FLOAT, ["batch", classes]),
               _value_info(helper, "probabilities", onnx.TensorProto.FLOAT, ["batch", classes])]
    names = [c.item() if hasattr(c, "item") else c for c in model.classes_]
    meta = {"classes": json.dumps(names), "pooling": config.pooling, "bidirectional": str(rec.bidirectional).lower(),
            "nonlinearity": rec.nonlinearity, "lowercase": str(bool(model.lowercase)).lower(),
            "max_len": "" if model.max_len is None else str(model.max_len),
            "pad_id": str(config.padding_idx if config.padding_idx is not None else model.vocab_.PAD_ID)}
    return inputs, outputs, meta


def _lm_graph(g: _Graph, model) -> tuple[list, list, dict[str, str]]:
    onnx = g.onnx
    config, params = model.net_config_, model.params_
    rec = config.recurrent
    lstm = rec.cell == "lstm"
    emb = g.const("embedding.weight", np.asarray(params["embedding.weight"], np.float32))
    x = g.op("Gather", [emb, "ids"], axis=0, hint="embedded")  # (B, T, E)
    x_tm = g.op("Transpose", [x], perm=[1, 0, 2], hint="embedded_tm")  # (T, B, E)
    out, finals_h, finals_c = _recurrent_stack(g, rec, params, x_tm, h0="h0", c0="c0" if lstm else "")
    for name, finals in (("hn", finals_h), ("cn", finals_c)):
        if finals:
            g.op("Concat" if len(finals) > 1 else "Identity", finals, outputs=[name],
                 **({"axis": 0} if len(finals) > 1 else {}))
    batch_major = g.op("Transpose", [out], perm=[1, 0, 2])  # (B, T, H)
    flat = g.op("Reshape", [batch_major, g.ints([-1, rec.hidden_size])])  # (B·T, H)
    head_w = emb if config.tie_weights else g.const("head.weight", np.asarray(params["head.weight"], np.float32))
    head_b = g.const("head.bias", np.asarray(params["head.bias"], np.float32))
    flat_logits = g.op("Gemm", [flat, head_w, head_b], transB=1)  # (B·T, V)
    shape = g.op("Concat", [g.op("Shape", ["ids"]), g.ints([config.vocab_size])], axis=0)
    g.op("Reshape", [flat_logits, shape], outputs=["logits"])

    helper, layers, hidden = g.helper, rec.num_layers, rec.hidden_size
    inputs = [_value_info(helper, "ids", onnx.TensorProto.INT64, ["batch", "sequence"]),
              _value_info(helper, "h0", onnx.TensorProto.FLOAT, [layers, "batch", hidden])]
    outputs = [_value_info(helper, "logits", onnx.TensorProto.FLOAT, ["batch", "sequence", config.vocab_size]),
               _value_info(helper, "hn", onnx.TensorProto.FLOAT, [layers, "batch", hidden])]
    if lstm:
        inputs.append(_value_info(helper, "c0", onnx.TensorProto.FLOAT, [layers, "batch", hidden]))
        outputs.append(_value_info(helper, "cn", onnx.TensorProto.FLOAT, [layers, "batch", hidden]))
    vocab = model.vocab_
    meta = {"level": model.level, "tie_weights": str(config.tie_weights).lower(), "pad_id": str(vocab.PAD_ID),
            "start_token": model.start_token_, "start_token_id": str(vocab.id_of(model.start_token_)),
            "lowercase": "true" if model.level == "word" else "false"}
    return inputs, outputs, meta


def build_onnx(model: object, *, opset: int = DEFAULT_OPSET):
    """The ONNX graph of a fitted :class:`~unrolled.RNNClassifier` or :class:`~unrolled.RNNLanguageModel`, as
    an ``onnx.ModelProto`` (checked with ``onnx.checker``); see the module docstring for its inputs and outputs.

    Raises ValueError (one line) for another kind of model, an unfitted one or an opset out of range, and
    ImportError (with the install command) when the ``onnx`` package is missing.
    """
    kind = _check_model(model)
    onnx = _import_onnx()
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset: expected an integer from {MIN_OPSET} to {newest} (this onnx's newest), "
                         f"got {opset!r}")
    from unrolled import __version__

    g = _Graph(onnx, int(opset))
    inputs, outputs, meta = (_classifier_graph if kind == "classifier" else _lm_graph)(g, model)
    config = model.net_config_
    rec = config.recurrent
    title = f"{rec.num_layers}-layer {'bidirectional ' if rec.bidirectional else ''}{rec.cell}"
    graph = g.helper.make_graph(g.nodes, f"unrolled_{kind}", inputs, outputs, g.initializers,
                                doc_string=f"unrolled {kind}: {title} (exported by unrolled {__version__})")
    opset_id = g.helper.make_opsetid("", int(opset))
    proto = g.helper.make_model(graph, opset_imports=[opset_id], producer_name="unrolled",
                                producer_version=__version__)
    # the oldest IR version that carries this opset, so older runtimes load the file too
    proto.ir_version = min(proto.ir_version, g.helper.find_min_ir_version_for([opset_id]))
    vocab = model.vocab_
    props = {"unrolled_version": __version__, "kind": kind, "cell": rec.cell, "num_layers": str(rec.num_layers),
             "hidden_size": str(rec.hidden_size), "vocab_size": str(config.vocab_size),
             "unk_id": str(vocab.UNK_ID), **meta, "vocab": json.dumps(list(vocab.tokens), ensure_ascii=False),
             "inputs": ",".join(v.name for v in inputs), "outputs": ",".join(v.name for v in outputs)}
    g.helper.set_model_props(proto, props)
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model: object, path: str | os.PathLike[str], *, opset: int = DEFAULT_OPSET) -> Path:
    """Write the ONNX graph of a fitted classifier or language model to ``path``; returns the path.

    See :func:`build_onnx` for the errors; writing is atomic (a temporary file beside ``path``, then renamed),
    so a failed export leaves no half-written file.
    """
    proto = build_onnx(model, opset=opset)
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory; expected the path of the .onnx file to write")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: no such directory (for {path})")
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        partial.write_bytes(proto.SerializeToString())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def onnx_signature(model: object) -> dict[str, list[tuple[str, tuple[int | str, ...], str]]]:
    """{"inputs": [(name, shape, dtype)], "outputs": [...]} of an ONNX file (a path) or ``onnx.ModelProto``;
    a dynamic axis appears under its name (``"batch"``)."""
    onnx = _import_onnx()
    proto = onnx.load(os.fspath(model), load_external_data=False) if isinstance(model, (str, os.PathLike)) else model

    def describe(value) -> tuple[str, tuple[int | str, ...], str]:
        tensor = value.type.tensor_type
        dims = tuple(d.dim_param if d.dim_param else d.dim_value for d in tensor.shape.dim)
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        return value.name, dims, dtype

    return {"inputs": [describe(v) for v in proto.graph.input],
            "outputs": [describe(v) for v in proto.graph.output]}
