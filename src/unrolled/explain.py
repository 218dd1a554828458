"""What a trained classifier does with one sentence, step by step: a trace read from the engine's caches.

For a sentence of T tokens, :func:`explain` records, at every step t = 1..T:

- the token (and whether it was unknown and read as ``<unk>``) and its word vector x_t (E);
- the top layer's hidden state h_t (H) of each direction (direction 0 is the forward one);
- P(class | tokens 1..t), the prediction if the sentence ended at step t, and the change in P(focus class)
  that step t caused (step 1 is compared with the output for all-zero features, softmax(b_head), i.e. the
  initial state h_0 = 0);
- ‖∂L/∂h_t‖ (the total gradient reaching the top layer's hidden state at step t, the carried BPTT
  gradient) and ‖∂L/∂x_t‖ (the gradient of the word vector), with L the cross-entropy of the whole
  sentence against the predicted class (or a given label): how much of the loss signal reaches each step,
  which shows vanishing gradients on long inputs;
- for GRU and LSTM, the mean activation over units of each gate (GRU: reset r, update z; LSTM: input i,
  forget f, output o), read from the recurrence's saved activations.

Nothing here re-implements the network: the numbers come from ``classifier_forward`` and
``classifier_backward`` — the functions training runs — with the backward pass asked for the loss of the
chosen class and handed a ``BackwardRecord`` for the carried state gradients and the word vectors' gradient;
inputs, states and gates are read through the ``SequenceCache`` accessors.

Prefix probabilities ("if the sentence ended here") are exact for every architecture: the T prefixes run
as one padded batch with a mask (prefix t has length t; a reverse direction then starts at token t, as
for any shorter sentence), so the last row is ``predict_proba`` of the sentence. The batch costs T × T
steps, so it is split into row chunks when it would hold more than about 256 MB (each row is its own
sentence, so chunking changes nothing; ordinary sentences take one call), and it is used only up to
``max_prefixes`` tokens (default 128: about 0.5 s for the default GRU on 2 CPU cores; the cost grows as
T², and 512 tokens took about 20 s). Longer texts (10,000 tokens take seconds):

- unidirectional models read every prefix from the single pass over the sentence, because its state at
  step t is the state of prefix t: the head is applied to h_t (last pooling), to the running max of
  h_1..h_t (max) or to their running mean (mean; equal up to rounding). Exact; ``prefix_method == "states"``.
- bidirectional models cannot (the reverse direction of prefix t starts at token t), so only
  ``min(max_prefixes, 16)`` evenly spaced prefixes, the whole sentence included, are run; the other steps
  have no prefix probability and no delta (NaN; null in JSON). ``prefix_method == "sampled"``.

``Trace.to_json()`` gives the whole trace, arrays included, in the format described by
:data:`TRACE_SCHEMA` (a JSON Schema); :func:`render_text` prints it as a table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unrolled.models.classifier import RNNClassifier
from unrolled.models.classifier_net import BackwardRecord, ClassifierNetConfig, classifier_backward, classifier_forward
from unrolled.nn._validation import check_positive_int
from unrolled.nn.cells import CELL_NAMES, CELLS, GATE_TRACE_NAMES, NONLINEARITIES
from unrolled.nn.linear import linear_forward
from unrolled.nn.losses import softmax
from unrolled.nn.pooling import POOLINGS
from unrolled.text.tokenize import tokenize
from unrolled.text.vocab import Vocab

__all__ = ["TRACE_SCHEMA", "NotAClassifierError", "Trace", "explain", "render_text"]

FORMAT = "unrolled-trace"
VERSION = 1
MAX_TOKENS = 20_000  # the longest text explain traces (as explain_lm); predict reads any length
MAX_PREFIXES = 128  # sentences up to this many tokens get the exact prefix batch (T × T work)
SAMPLED_PREFIXES = 16  # bidirectional models above the limit: this many evenly spaced prefixes at most
PREFIX_BUDGET = 2**26  # floats one prefix-batch call may allocate (about 256 MB in float32), roughly
VANISHING_RATIO = 1e-2  # ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ below this: vanishing; above 1 / this: exploding
FIRST_VALUES = 3  # how many leading entries of x_t and h_t the table shows

PREFIX_METHODS = ("batch", "states", "sampled")
VERDICTS = ("vanishing", "exploding", "stable", "single step", "no gradient at the last step")


class NotAClassifierError(TypeError, ValueError):
    """:func:`explain` got something that is not an :class:`RNNClassifier` (a ValueError too, so the
    command line reports it in one line)."""


@dataclass(frozen=True, eq=False)
class Trace:
    """One sentence through a classifier, step by step. Dimension letters: T steps (tokens), E embedding,
    H hidden, C classes, dirs directions (2 when bidirectional; direction 0 is the forward one)."""

    text: str
    tokens: tuple[str, ...]  # T tokens as the model's tokenizer gives them (at most the model's max_len)
    ids: np.ndarray  # (T,) int vocabulary ids
    unknown: np.ndarray  # (T,) bool: the token is not in the vocabulary and was read as <unk>
    all_unknown: bool  # every token was unknown: the prediction ignores the words entirely
    classes: tuple[str, ...]  # C class labels, in class-id order
    predicted: int  # class id of the prediction
    label: int  # class id the loss L is taken against (the prediction unless a label was given)
    focus: int  # class id whose probability change per step is reported (delta)
    probabilities: np.ndarray  # (C,) P(class | whole sentence), what predict_proba gives
    loss: float  # L = −log P(label | whole sentence)
    x: np.ndarray  # (T, E) the word vectors fed to the recurrent layer
    h: np.ndarray  # (T, dirs, H) the top layer's hidden state after each step, in sentence order
    prefix_probabilities: np.ndarray  # (T, C) P(class | tokens 1..t); NaN where not computed
    prior: np.ndarray  # (C,) softmax(b_head): the output for all-zero features (h_0 = 0), before step 1
    delta: np.ndarray  # (T,) P_t(focus) − P_{t−1}(focus) (P_0 = prior); NaN where either is missing
    prefix_method: str  # "batch" (every prefix, exact), "states" or "sampled": see the module docstring
    grad_h: np.ndarray  # (T, dirs) ‖∂L/∂h_t‖ of the top layer's hidden state, total (carried) gradient
    grad_x: np.ndarray  # (T,) ‖∂L/∂x_t‖ of the word vector
    gates: dict[str, np.ndarray]  # gate name -> (T, dirs) mean activation over units; empty for RNN
    model: dict[str, Any]  # cell, num_layers, bidirectional, pooling, embedding_dim, hidden_size
    notes: tuple[str, ...] = field(default=())  # things the reader should know (unknown words, truncation, …)

    @property
    def predicted_label(self) -> str:
        return self.classes[self.predicted]

    @property
    def gradient_ratio(self) -> float | None:
        """‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ (top layer, forward direction); None for one step or none at step T."""
        g = self.grad_h[:, 0]
        if len(g) < 2 or not g[-1] > 0:
            return None
        return float(g[0] / g[-1])

    @property
    def gradient_verdict(self) -> str:
        """One of :data:`VERDICTS`."""
        if len(self.tokens) == 1:
            return "single step"
        ratio = self.gradient_ratio
        if ratio is None:
            return "no gradient at the last step"
        if ratio < VANISHING_RATIO:
            return "vanishing"
        if ratio > 1.0 / VANISHING_RATIO:
            return "exploding"
        return "stable"

    @property
    def gradient_summary(self) -> str:
        """One line on the gradient flow over time, e.g. ``gradient at step 1 is 1.2e-04 of that at step
        60: vanishing``."""
        verdict, t_len = self.gradient_verdict, len(self.tokens)
        if verdict == "single step":
            return "one step: no gradient flows back through time"
        if verdict == "no gradient at the last step":
            return f"no gradient reaches the hidden state at step {t_len} (‖∂L/∂h_{t_len}‖ = 0)"
        ratio = self.gradient_ratio
        if ratio == 0.0:
            tiny = np.finfo(self.x.dtype).tiny
            return (f"gradient at step 1 underflowed to 0 (below {tiny:.1e}); at step {t_len} it is "
                    f"{self.grad_h[-1, 0]:.1e}: {verdict}")
        return f"gradient at step 1 is {ratio:.1e} of that at step {t_len}: {verdict}"

    def to_json(self) -> dict[str, Any]:
        """The whole trace as JSON-ready Python objects (arrays as nested lists, NaN as null), in the
        format of :data:`TRACE_SCHEMA`."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "text": self.text,
            "tokens": list(self.tokens),
            "ids": [int(i) for i in self.ids],
            "unknown": [bool(u) for u in self.unknown],
            "all_unknown": self.all_unknown,
            "model": dict(self.model),
            "classes": list(self.classes),
            "predicted": self.predicted,
            "predicted_label": self.predicted_label,
            "label": self.label,
            "focus": self.focus,
            "probabilities": _floats(self.probabilities),
            "loss": _float(self.loss),
            "prior": _floats(self.prior),
            "prefix_method": self.prefix_method,
            "x": _floats(self.x),
            "h": _floats(self.h),
            "prefix_probabilities": _floats(self.prefix_probabilities),
            "delta": _floats(self.delta),
            "grad_h": _floats(self.grad_h),
            "grad_x": _floats(self.grad_x),
            "gates": {name: _floats(values) for name, values in self.gates.items()},
            "gradient": {
                "ratio": None if self.gradient_ratio is None else _float(self.gradient_ratio),
                "verdict": self.gradient_verdict,
                "summary": self.gradient_summary,
            },
            "notes": list(self.notes),
        }


def _float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _floats(array: np.ndarray) -> list:
    """Nested lists of Python floats, non-finite values as None."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 0:
        return _float(array)  # type: ignore[return-value]
    if np.all(np.isfinite(array)):
        return array.tolist()
    return [_floats(row) for row in array] if array.ndim > 1 else [_float(v) for v in array]


def _number_array(depth: int, *, nullable: bool = True) -> dict[str, Any]:
    leaf: dict[str, Any] = {"type": ["number", "null"] if nullable else "number"}
    for _ in range(depth):
        leaf = {"type": "array", "items": leaf}
    return leaf


#: JSON Schema (draft 2020-12) of :meth:`Trace.to_json`. Per-step arrays have T rows in sentence order;
#: null stands for a value that was not computed (prefix probabilities of unsampled steps) or not finite.
TRACE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://github.com/unrolled/unrolled/trace.schema.json",
    "title": "unrolled explain trace",
    "description": "One sentence through an RNN classifier, step by step (unrolled.explain.Trace.to_json).",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "format", "version", "text", "tokens", "ids", "unknown", "all_unknown", "model", "classes",
        "predicted", "predicted_label", "label", "focus", "probabilities", "loss", "prior", "prefix_method",
        "x", "h", "prefix_probabilities", "delta", "grad_h", "grad_x", "gates", "gradient", "notes",
    ],
    "properties": {
        "format": {"const": FORMAT},
        "version": {"const": VERSION},
        "text": {"type": "string", "description": "the sentence as given"},
        "tokens": {"type": "array", "items": {"type": "string"}, "minItems": 1, "description": "T tokens"},
        "ids": {"type": "array", "items": {"type": "integer", "minimum": 0}, "description": "(T,) vocabulary ids"},
        "unknown": {"type": "array", "items": {"type": "boolean"}, "description": "(T,) token read as <unk>"},
        "all_unknown": {"type": "boolean", "description": "every token was unknown"},
        "model": {
            "type": "object",
            "required": ["cell", "num_layers", "bidirectional", "pooling", "embedding_dim", "hidden_size"],
            "properties": {
                "cell": {"enum": list(CELL_NAMES)},
                "nonlinearity": {"enum": list(NONLINEARITIES)},
                "num_layers": {"type": "integer", "minimum": 1},
                "bidirectional": {"type": "boolean"},
                "pooling": {"enum": list(POOLINGS)},
                "embedding_dim": {"type": "integer", "minimum": 1},
                "hidden_size": {"type": "integer", "minimum": 1},
            },
        },
        "classes": {"type": "array", "items": {"type": "string"}, "minItems": 1, "description": "C labels"},
        "predicted": {"type": "integer", "minimum": 0, "description": "class id of the prediction"},
        "predicted_label": {"type": "string"},
        "label": {"type": "integer", "minimum": 0, "description": "class id the loss is taken against"},
        "focus": {"type": "integer", "minimum": 0, "description": "class id whose change per step is delta"},
        "probabilities": {**_number_array(1, nullable=False), "description": "(C,) = predict_proba"},
        "loss": {"type": ["number", "null"], "description": "cross-entropy against label"},
        "prior": {**_number_array(1, nullable=False), "description": "(C,) softmax(b_head), before step 1"},
        "prefix_method": {"enum": list(PREFIX_METHODS)},
        "x": {**_number_array(2, nullable=False), "description": "(T, E) word vectors"},
        "h": {**_number_array(3, nullable=False), "description": "(T, dirs, H) top-layer hidden states"},
        "prefix_probabilities": {**_number_array(2), "description": "(T, C) P(class | tokens 1..t)"},
        "delta": {**_number_array(1), "description": "(T,) change of P(focus) caused by step t"},
        "grad_h": {**_number_array(2), "description": "(T, dirs) ‖∂L/∂h_t‖, top layer"},
        "grad_x": {**_number_array(1), "description": "(T,) ‖∂L/∂x_t‖"},
        "gates": {
            "type": "object",
            "propertyNames": {"enum": list(GATE_TRACE_NAMES)},
            "additionalProperties": {**_number_array(2), "description": "(T, dirs) mean gate activation"},
        },
        "gradient": {
            "type": "object",
            "additionalProperties": False,
            "required": ["ratio", "verdict", "summary"],
            "properties": {
                "ratio": {"type": ["number", "null"], "description": "‖∂L/∂h_1‖ / ‖∂L/∂h_T‖, forward"},
                "verdict": {"enum": list(VERDICTS)},
                "summary": {"type": "string"},
            },
        },
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}


# --- building a trace ------------------------------------------------------------------------------------


def explain(
    model: RNNClassifier,
    text: str,
    *,
    label: object = None,
    focus: object = None,
    max_prefixes: int = MAX_PREFIXES,
) -> Trace:
    """Trace ``text`` through a fitted :class:`RNNClassifier`, step by step.

    Parameters
    ----------
    model : a fitted (or loaded) RNNClassifier
    text : the sentence; empty or only whitespace, or longer than MAX_TOKENS (20,000) tokens, is a ValueError
    label : the class the loss L (and so every gradient) is taken against, as in ``model.classes_``;
        None means the predicted class
    focus : the class whose probability change per step ``delta`` reports; None means ``label`` when
        given, else the predicted class
    max_prefixes : sentences up to this many tokens get every prefix probability exactly from one padded
        batch; longer ones are handled as the module docstring says

    Returns
    -------
    Trace
    """
    if not isinstance(model, RNNClassifier):
        raise NotAClassifierError(
            f"model: explain traces an RNNClassifier (a text classifier), got {type(model).__name__}"
        )
    model._check_fitted()
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("text: empty")
    check_positive_int("max_prefixes", max_prefixes)
    tokens = tokenize(text, lowercase=model.lowercase)
    if not tokens:
        raise ValueError("text: empty")

    config: ClassifierNetConfig = model.net_config_
    params = model.params_
    classes = tuple(model.label_map_.names)
    ids = np.asarray(model._encode([text])[0], dtype=np.int64)  # what predict_proba reads
    t_len = len(ids)
    if t_len > MAX_TOKENS:
        raise ValueError(f"text: {t_len:,} tokens; explain traces at most {MAX_TOKENS:,} (one table row each; "
                         "predict reads any length)")
    notes: list[str] = []
    if len(tokens) > t_len:
        notes.append(f"text truncated to the model's max_len of {t_len} tokens (of {len(tokens)}), as predict does")
        tokens = tokens[:t_len]
    unknown = ids == model.vocab_.id_of(Vocab.UNK)
    all_unknown = bool(unknown.all())
    if all_unknown:
        notes.append(
            "no word of the text is in the vocabulary: every step reads <unk>, so the prediction ignores the words"
        )
    elif unknown.any():
        notes.append(f"{int(unknown.sum())} of {t_len} tokens are not in the vocabulary and were read as <unk>")

    # One pass over the whole sentence, as predict_proba runs it (a batch of one, mask all True).
    logits, _, cache = classifier_forward(params, config, ids[None, :], mask=np.ones((1, t_len), dtype=bool))
    probabilities = softmax(logits[0].astype(np.float64))[: len(classes)]
    predicted = int(np.argmax(probabilities))
    label_id = predicted if label is None else _class_id("label", label, classes)
    focus_id = label_id if focus is None else _class_id("focus", focus, classes)

    # The network's own backward pass, for the loss against the chosen class, recording what explain shows.
    record = BackwardRecord()
    classifier_backward(cache, targets=np.array([label_id]), record=record)
    loss = record.loss

    rec = config.recurrent
    dirs, hidden, top = rec.num_directions, rec.hidden_size, rec.num_layers - 1
    grad_h = np.stack([_norms(record.dstates[(top, d)][:, 0, :]) for d in range(dirs)], axis=1)  # (T, dirs)
    grad_x = _norms(record.dx[0])
    x = cache.recurrent.directions[0][0].inputs()[:, 0, :]  # (T, E) the word vectors the first layer read
    h = np.array(cache.outputs[0].reshape(t_len, dirs, hidden))  # (T, dirs, H); no step is masked
    gates = _gate_means(cache.recurrent.directions[top], config.cell)

    prefix, method = _prefix_probabilities(model, ids, cache.outputs[0], max_prefixes)
    prefix = prefix[:, : len(classes)]
    if method == "sampled":
        shown = int(np.sum(~np.isnan(prefix[:, 0])))
        notes.append(
            f"bidirectional model and more than {max_prefixes} tokens: prefix probabilities at {shown} evenly "
            f"spaced steps of {t_len} (each prefix is a separate run of the reverse direction)"
        )
    prior = softmax(params["head.bias"].astype(np.float64))[: len(classes)]
    focus_curve = np.concatenate([[prior[focus_id]], prefix[:, focus_id]])
    delta = np.diff(focus_curve)

    return Trace(
        text=text,
        tokens=tuple(tokens),
        ids=ids,
        unknown=unknown,
        all_unknown=all_unknown,
        classes=classes,
        predicted=predicted,
        label=label_id,
        focus=focus_id,
        probabilities=probabilities,
        loss=float(loss),
        x=x,
        h=h,
        prefix_probabilities=prefix,
        prior=prior,
        delta=delta,
        prefix_method=method,
        grad_h=grad_h,
        grad_x=grad_x,
        gates=gates,
        model={
            "cell": config.cell, "nonlinearity": config.nonlinearity, "num_layers": config.num_layers,
            "bidirectional": config.bidirectional, "pooling": config.pooling,
            "embedding_dim": config.embedding_dim, "hidden_size": config.hidden_size,
        },
        notes=tuple(notes),
    )


def _class_id(name: str, value: object, classes: tuple[str, ...]) -> int:
    """A class label (as in ``model.classes_``, compared as text) -> its class id."""
    key = str(value.item() if hasattr(value, "item") else value).strip()
    if key not in classes:
        raise ValueError(f"{name}: {value!r} is not one of the model's classes ({', '.join(map(repr, classes))})")
    return classes.index(key)


def _norms(rows: np.ndarray) -> np.ndarray:
    """(T, K) -> (T,) Euclidean norm of each row, in float64."""
    return np.sqrt(np.sum(np.square(rows, dtype=np.float64), axis=1))


def _gate_means(top_layer: tuple, cell: str) -> dict[str, np.ndarray]:
    """Mean over units of each gate's activation (the gates the cell registry names for explain), from the
    top layer's SequenceCaches, batch row 0: name -> (T, dirs)."""
    return {
        name: np.stack([seq.activation(short)[:, 0, :].mean(axis=1, dtype=np.float64) for seq in top_layer], axis=1)
        for short, name in CELLS[cell].explained_gates.items()
    }


def _prefix_probabilities(
    model: RNNClassifier, ids: np.ndarray, outputs: np.ndarray, max_prefixes: int
) -> tuple[np.ndarray, str]:
    """(T, C) P(class | tokens 1..t) (NaN where not computed) and the method used.

    outputs (T, dirs·H): the top layer's outputs of the one pass over the whole sentence.
    """
    config = model.net_config_
    t_len = len(ids)
    probs = np.full((t_len, config.num_classes), np.nan)
    if t_len <= max_prefixes:
        probs[:] = softmax(_prefix_batch_logits(model, ids, np.arange(1, t_len + 1)).astype(np.float64))
        return probs, "batch"
    if not config.bidirectional:
        # Causal: the state after step t of the whole sentence is the state after prefix t.
        if config.pooling == "last":
            features = outputs
        elif config.pooling == "max":
            features = np.maximum.accumulate(outputs, axis=0)
        else:
            running = np.cumsum(outputs, axis=0, dtype=np.float64) / np.arange(1, t_len + 1)[:, None]
            features = running.astype(outputs.dtype)
        logits, _ = linear_forward(features, model.params_["head.weight"], model.params_["head.bias"])
        probs[:] = softmax(logits.astype(np.float64))
        return probs, "states"
    count = min(max_prefixes, SAMPLED_PREFIXES)
    lengths = np.unique(np.round(np.linspace(t_len / count, t_len, count)).astype(np.int64))
    probs[lengths - 1] = softmax(_prefix_batch_logits(model, ids, lengths).astype(np.float64))
    return probs, "sampled"


def _prefix_batch_logits(model: RNNClassifier, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Logits (K, C) of the prefixes ids[:length] for ascending ``lengths`` (K,), run as padded batches
    with masks: one classifier_forward call unless it would allocate more than PREFIX_BUDGET floats."""
    config = model.net_config_
    rec = config.recurrent
    kernel = rec.kernel
    # Floats the forward pass keeps per (row, step): word vector, and per layer and direction the input
    # projection (G·H), the saved activations (S·H), the states and the outputs.
    per_step = config.embedding_dim + rec.num_layers * rec.num_directions * _hidden_cost(kernel) * rec.hidden_size
    pad_id = model.vocab_.id_of(Vocab.PAD)
    logits = np.empty((len(lengths), config.num_classes), dtype=model.params_["head.weight"].dtype)
    start = 0
    while start < len(lengths):
        stop = start + 1
        while stop < len(lengths) and (stop + 1 - start) * int(lengths[stop]) * per_step <= PREFIX_BUDGET:
            stop += 1
        cols = int(lengths[stop - 1])
        mask = np.arange(cols)[None, :] < lengths[start:stop, None]  # row k: its first lengths[k] steps
        batch = np.where(mask, ids[None, :cols], pad_id)
        logits[start:stop], _, _ = classifier_forward(model.params_, config, batch, mask=mask, keep_cache=False)
        start = stop
    return logits


def _hidden_cost(kernel) -> int:
    """Multiples of H one (layer, direction) keeps per step: input projection, saved activations, state
    components and output."""
    return kernel.num_gates + len(kernel.saved_names) + len(kernel.state_names) + 1


# --- rendering -------------------------------------------------------------------------------------------


def render_text(trace: Trace, precision: int = 3) -> str:
    """The trace as text: a header, one aligned row per step and the gradient summary.

    Columns: t, token (``word (<unk>)`` when unknown), ‖x_t‖ and x_t's first values, ‖h_t‖ and h_t's first
    values (top layer, forward direction), P(class) if the sentence ended at t, the change in P(focus)
    that step caused, ‖∂L/∂h_t‖, ‖∂L/∂x_t‖ and, for GRU/LSTM, the mean gate activations (forward
    direction).
    """
    if isinstance(precision, bool) or not isinstance(precision, int) or precision < 0:
        raise ValueError(f"precision: expected a non-negative integer, got {precision!r}")
    p = precision
    classes, model = trace.classes, trace.model
    focus_name = classes[trace.focus]
    bidi = model["bidirectional"]

    lines = [f"text: {trace.text!r}"]
    shown = "  ".join(f"P({c})={q:.{p}f}" for c, q in zip(classes, trace.probabilities))
    lines.append(f"prediction: {trace.predicted_label}  ({shown})")
    layers = model["num_layers"]
    lines.append(
        f"model: {model['cell']}, {layers} layer{'s' if layers > 1 else ''}"
        f"{', bidirectional' if bidi else ''}, hidden {model['hidden_size']}, {model['pooling']} pooling"
    )
    lines.append(f"loss: cross-entropy against {classes[trace.label]!r} = {_number(trace.loss, p)}")
    if bidi:
        lines.append("bidirectional: h_t, |dL/dh_t| and the gates are the forward direction's (JSON has both)")
    lines.extend(f"note: {note}" for note in trace.notes)
    lines.append("")

    h_label = "h_t (fwd)" if bidi else "h_t"
    gate_names = list(trace.gates)
    headers = ["t", "token", "|x_t|", "x_t", f"|{h_label}|", h_label]
    headers += [f"P({c})" for c in classes] + [f"dP({focus_name})", "|dL/dh_t|", "|dL/dx_t|"] + gate_names
    left = {1, 3, 5}  # left-aligned columns: token and the vector views
    rows = []
    for t in range(len(trace.tokens)):
        token = trace.tokens[t] + (" (<unk>)" if trace.unknown[t] and trace.tokens[t] != Vocab.UNK else "")
        row = [str(t + 1), token]
        for vector in (trace.x[t], trace.h[t, 0]):
            row.append(f"{np.linalg.norm(vector.astype(np.float64)):.{p}f}")
            row.append(_head_values(vector, p))
        row += [_fixed(q, p) for q in trace.prefix_probabilities[t]]
        row.append(_fixed(trace.delta[t], p, sign=True))
        row += [_sci(trace.grad_h[t, 0], p), _sci(trace.grad_x[t], p)]
        row += [_fixed(trace.gates[name][t, 0], p) for name in gate_names]
        rows.append(row)
    widths = [max(len(headers[j]), *(len(r[j]) for r in rows)) for j in range(len(headers))]

    def line(cells: list[str]) -> str:
        padded = (c.ljust(w) if j in left else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths)))
        return "  ".join(padded).rstrip()

    lines.append(line(headers))
    lines.extend(line(r) for r in rows)
    lines.append("")
    scope = "top layer, forward direction" if bidi else "top layer"
    lines.append(f"gradient flow (|dL/dh_t|, {scope}): {trace.gradient_summary}")
    if trace.prefix_method == "states":
        lines.append("prefix probabilities: read from the per-step states (unidirectional model, long text)")
    elif trace.prefix_method == "sampled":
        lines.append("prefix probabilities: at evenly spaced steps only ('-' elsewhere)")
    return "\n".join(lines) + "\n"


def _head_values(vector: np.ndarray, p: int) -> str:
    values = " ".join(f"{v:+.{p}f}" for v in vector[:FIRST_VALUES])
    return f"[{values}{' ...' if len(vector) > FIRST_VALUES else ''}]"


def _number(value: float, p: int) -> str:
    """Fixed-point, or scientific when fixed would show only zeros."""
    return f"{value:.{p}f}" if value == 0 or abs(value) >= 0.5 * 10.0**-p else _sci(value, p)


def _fixed(value: float, p: int, *, sign: bool = False) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:+.{p}f}" if sign else f"{value:.{p}f}"


def _sci(value: float, p: int) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.{max(p - 1, 0)}e}"
