"""The canonical example worked through, nothing hidden: "I love this" → RNN → softmax → loss → BPTT → SGD.

The setting is DESIGN.md §1: the sentence "I love this" with the three given embeddings (D = 4)

    I    = [0.1, 0.2, 0.3, 0.4]
    love = [0.9, 0.1, 0.4, 0.7]
    this = [0.3, 0.5, 0.2, 0.1]

hidden size H = 4, h_0 = 0 (and c_0 = 0 for the LSTM), two classes C = 2 in the order (positive, negative) and
the true label positive, y = [1, 0]. Every number comes from the engine, one sentence (N = 1) at a time:
``time_loop.cell_step_forward`` with the cell's kernel from the registry (nn/cells.py) for t = 1..3,
``linear_forward`` for the head, ``softmax_cross_entropy_forward`` for the loss, then the matching ``*_backward`` functions for t = 3..1
and :class:`unrolled.optim.SGD` for the update. This module only arranges and labels what they return; the
library never prints (:func:`render_text` returns a string). Dimension letters: T = 3 time steps, D = 4 input,
H = 4 hidden, G gates (1 RNN, 3 GRU, 4 LSTM), C = 2 classes.

Weights
-------
Six float64 arrays with PyTorch's names, shapes and gate orders (``torch.nn.RNN/GRU/LSTM`` rows r, z, n /
i, f, g, o):

    weight_ih (G·H, D)   weight_hh (G·H, H)   bias_ih (G·H,)   bias_hh (G·H,)   head_weight (C, H)   head_bias (C,)

:func:`default_weights` draws them with ``numpy.random.default_rng(seed)`` (default seed
``DEFAULT_SEED = 0``), in that order, each entry from U(−0.5, 0.5) — PyTorch's own initial scale 1/√H for
H = 4 — rounded to two decimals so that a teacher can copy them onto a board. :func:`weights_to_json` and
:func:`save_weights` write them as a JSON template; :func:`load_weights` reads a teacher's own file, an object
with those six keys (nested lists of numbers), an optional ``"cell"`` (which must match) and an optional
``"comment"``. Any problem is one ``ValueError`` line naming the file and the key.

What is computed (for the RNN; the gated cells replace step 2 with their gate equations, see nn/gru.py and
nn/lstm.py)::

    1. forward, t = 1..3:   a_t = x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh,   h_t = tanh(a_t)
    2. head and loss:       logits = h_3 W_outᵀ + b_out,  ŷ = softmax(logits),  L = −log ŷ_positive
    3. BPTT, t = 3..1:      ∂L/∂logits = ŷ − y,  ∂L/∂h_3 = ∂L/∂logits W_out,
                            ∂L/∂a_t = ∂L/∂h_t ⊙ (1 − h_t²),  ∂L/∂h_{t-1} = ∂L/∂a_t W_hh,
                            ∂L/∂x_t = ∂L/∂a_t W_ih;  step t adds ∂L/∂a_tᵀ x_t to ∂W_ih,
                            ∂L/∂a_tᵀ h_{t-1} to ∂W_hh and ∂L/∂a_t to ∂b_ih and ∂b_hh
    4. update:              W ← W − lr ∂L/∂W for all six arrays, then the forward pass again: the new loss

For one sentence ∂L/∂a_t is exactly the step's ∂b_ih contribution, so ``BackwardStep.dpreactivation`` is read
from the engine's gradients. For the GRU, a_t's n block is x_t W_inᵀ + b_in + r_t ⊙ (h_{t-1} W_hnᵀ + b_hn)
(torch's form), and the step's ∂b_hh contribution differs from ∂b_ih in that block by the factor r_t.

JSON layout (``Walkthrough.to_json()``, ``schema_version`` 1)
-------------------------------------------------------------
Every number is a JSON float (arrays as nested lists; ``t`` and sizes are integers)::

    schema_version   1
    cell             "rnn" | "gru" | "lstm"
    gate_names       ["h"] | ["r", "z", "n"] | ["i", "f", "g", "o"]; the G blocks of H rows of every (G·H, ...) array
    words            ["I", "love", "this"]
    classes          ["positive", "negative"]
    target           [1.0, 0.0]
    seed             the seed of the default weights, or null when the weights were given
    sizes            {"steps": 3, "input": 4, "hidden": 4, "gates": G, "classes": 2}
    weights          {weight_ih, weight_hh, bias_ih, bias_hh, head_weight, head_bias}
    forward          one object per step t = 1..3:
                       t, word, x (D), h_prev (H), input_projection (G·H) = x W_ihᵀ + b_ih,
                       hidden_projection (G·H) = h_prev W_hhᵀ + b_hh, preactivation (G·H) = a_t,
                       activations {name: (H)} (the engine's saved activations: GRU r, z, n, hn; LSTM i, f, g,
                       o, tanh_c; none for the RNN), h (H), head_logits (C), head_probs (C) (what the head
                       would say if the sentence stopped at t), and for the LSTM c_prev (H), c (H)
    loss             {logits (C), probs (C), target (C), target_index, value}
    backward         {dlogits (C), dh_last (H) = ∂L/∂h_3 from the head,
                      head_grads {head_weight (C, H), head_bias (C)},
                      steps: one object per step, in the order computed t = 3..1:
                        t, word, dh (H) = ∂L/∂h_t, dpreactivation (G·H) = ∂L/∂a_t, dx (D), dh_prev (H),
                        grads {weight_ih, weight_hh, bias_ih, bias_hh} (this step's contribution),
                        and for the LSTM dc (H) = ∂L/∂c_t carried in, dc_prev (H)
                      totals: the six gradients (the four cell ones are the sum of the steps' contributions)}
    update           {lr, weights (the six new arrays), loss_before, loss_after, logits_after (C), probs_after (C)}

The summary table of :func:`render_text` is ``forward[t].{t, word, x, h, head_probs}``; at the last step
head_probs is ŷ.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from types import MappingProxyType
from typing import Any

import numpy as np

from unrolled.nn.cells import CELL_NAMES
from unrolled.nn.cells import CELLS as REGISTRY
from unrolled.nn.linear import linear_backward, linear_forward
from unrolled.nn.losses import softmax, softmax_cross_entropy_backward, softmax_cross_entropy_forward
from unrolled.nn.time_loop import cell_step_forward, step_backward
from unrolled.optim import SGD

__all__ = [
    "BackwardStep",
    "Backward",
    "CELLS",
    "CLASSES",
    "DEFAULT_LR",
    "DEFAULT_SEED",
    "EMBEDDINGS",
    "ForwardStep",
    "GATE_NAMES",
    "HIDDEN_SIZE",
    "LossStage",
    "SCHEMA_VERSION",
    "TARGET",
    "Update",
    "WEIGHT_NAMES",
    "WEIGHT_SCALE",
    "Walkthrough",
    "WORDS",
    "check_weights",
    "default_weights",
    "load_weights",
    "render_text",
    "run_walkthrough",
    "save_weights",
    "weight_shapes",
    "weights_to_json",
]

SCHEMA_VERSION = 1
WORDS = ("I", "love", "this")
EMBEDDINGS = np.array(
    [
        [0.1, 0.2, 0.3, 0.4],  # I
        [0.9, 0.1, 0.4, 0.7],  # love
        [0.3, 0.5, 0.2, 0.1],  # this
    ]
)  # (T, D)
EMBEDDINGS.setflags(write=False)
CLASSES = ("positive", "negative")
TARGET = np.array([1.0, 0.0])  # (C,) one-hot: positive
TARGET.setflags(write=False)
TARGET_INDEX = 0  # the true class, positive
HIDDEN_SIZE = 4
DEFAULT_SEED = 0
DEFAULT_LR = 0.5
WEIGHT_SCALE = 0.5  # entries ~ U(−0.5, 0.5) = PyTorch's U(−1/√H, 1/√H) for H = 4, then rounded to 2 decimals
WEIGHT_DECIMALS = 2
# The walkthrough narrates each cell in words of its own (the titles below, the gate notes and the per-cell
# lines of the renderer), so it walks through the registry's cells (nn/cells.py) that it has words for.
CELL_TITLES = {"rnn": "a vanilla RNN cell (tanh)", "gru": "a GRU cell", "lstm": "an LSTM cell"}
CELLS = tuple(name for name in CELL_NAMES if name in CELL_TITLES)
GATE_NAMES = {name: REGISTRY[name].gates for name in CELLS}  # gate blocks in PyTorch's row order
WEIGHT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "head_weight", "head_bias")
CELL_PARAM_NAMES = WEIGHT_NAMES[:4]
_FILE_EXTRA_KEYS = ("cell", "comment")
State = tuple[np.ndarray, ...]  # (h,) or (h, c), each (N, H)


# --------------------------------------------------------------------------------------------------------------
# the record: a frozen tree of read-only arrays


@dataclass(frozen=True)
class ForwardStep:
    """One forward step t, as the engine computed it."""

    t: int  # 1-based time step
    word: str
    x: np.ndarray  # (D,) x_t, the word's vector
    h_prev: np.ndarray  # (H,) h_{t-1}
    c_prev: np.ndarray | None  # (H,) c_{t-1}, LSTM only
    input_projection: np.ndarray  # (G·H,) x_t W_ihᵀ + b_ih
    hidden_projection: np.ndarray  # (G·H,) h_{t-1} W_hhᵀ + b_hh
    preactivation: np.ndarray  # (G·H,) a_t (GRU n block: x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn))
    activations: Mapping[str, np.ndarray]  # each (H,): the engine's saved activations (kernel.saved_names)
    h: np.ndarray  # (H,) h_t
    c: np.ndarray | None  # (H,) c_t, LSTM only
    head_logits: np.ndarray  # (C,) h_t W_outᵀ + b_out
    head_probs: np.ndarray  # (C,) softmax of head_logits: what the head would say if the sentence ended at t


@dataclass(frozen=True)
class LossStage:
    """The head on the last state and the cross-entropy against the true label."""

    logits: np.ndarray  # (C,) h_T W_outᵀ + b_out
    probs: np.ndarray  # (C,) ŷ = softmax(logits)
    target: np.ndarray  # (C,) one-hot y
    target_index: int  # the true class (0 = positive)
    value: float  # L = −log ŷ[target_index]


@dataclass(frozen=True)
class BackwardStep:
    """One BPTT step t (computed in the order t = T..1)."""

    t: int
    word: str
    dh: np.ndarray  # (H,) ∂L/∂h_t (from the head at t = T, carried back otherwise)
    dc: np.ndarray | None  # (H,) ∂L/∂c_t carried back from t + 1 (zero at t = T), LSTM only
    dpreactivation: np.ndarray  # (G·H,) ∂L/∂a_t (= this step's ∂b_ih contribution)
    dx: np.ndarray  # (D,) ∂L/∂x_t
    dh_prev: np.ndarray  # (H,) ∂L/∂h_{t-1}
    dc_prev: np.ndarray | None  # (H,) ∂L/∂c_{t-1}, LSTM only
    grads: Mapping[str, np.ndarray]  # this step's contribution: weight_ih, weight_hh, bias_ih, bias_hh


@dataclass(frozen=True)
class Backward:
    """BPTT from the loss back to h_0."""

    dlogits: np.ndarray  # (C,) ∂L/∂logits = ŷ − y
    head_grads: Mapping[str, np.ndarray]  # head_weight (C, H), head_bias (C,)
    dh_last: np.ndarray  # (H,) ∂L/∂h_T = ∂L/∂logits W_out
    steps: tuple[BackwardStep, ...]  # t = T..1
    totals: Mapping[str, np.ndarray]  # all six gradients; the cell's four = Σ over steps of their contributions


@dataclass(frozen=True)
class Update:
    """One plain SGD step on all six arrays, and the forward pass again."""

    lr: float
    weights: Mapping[str, np.ndarray]  # the six new arrays W − lr ∂L/∂W
    loss_before: float
    loss_after: float
    logits_after: np.ndarray  # (C,)
    probs_after: np.ndarray  # (C,)


@dataclass(frozen=True)
class Walkthrough:
    """Every number of the walkthrough (see the module docstring for the layout)."""

    cell: str
    words: tuple[str, ...]
    classes: tuple[str, ...]
    target: np.ndarray  # (C,)
    seed: int | None  # seed of the default weights; None when the weights were given
    weights: Mapping[str, np.ndarray]  # the six arrays used
    forward: tuple[ForwardStep, ...]  # t = 1..T
    loss: LossStage
    backward: Backward
    update: Update

    @property
    def gate_names(self) -> tuple[str, ...]:
        return GATE_NAMES[self.cell]

    def to_json(self) -> dict[str, Any]:
        """Every number as plain lists of floats; see the module docstring for the layout."""
        d = self.weights["weight_ih"].shape[1]
        h = self.weights["weight_hh"].shape[1]
        lstm = self.cell == "lstm"

        def fwd(s: ForwardStep) -> dict[str, Any]:
            out: dict[str, Any] = {"t": s.t, "word": s.word, "x": _list(s.x), "h_prev": _list(s.h_prev)}
            if lstm:
                out["c_prev"] = _list(s.c_prev)
            out |= {
                "input_projection": _list(s.input_projection),
                "hidden_projection": _list(s.hidden_projection),
                "preactivation": _list(s.preactivation),
                "activations": _lists(s.activations),
                "h": _list(s.h),
            }
            if lstm:
                out["c"] = _list(s.c)
            out |= {"head_logits": _list(s.head_logits), "head_probs": _list(s.head_probs)}
            return out

        def bwd(s: BackwardStep) -> dict[str, Any]:
            out: dict[str, Any] = {"t": s.t, "word": s.word, "dh": _list(s.dh)}
            if lstm:
                out["dc"] = _list(s.dc)
            out |= {"dpreactivation": _list(s.dpreactivation), "dx": _list(s.dx), "dh_prev": _list(s.dh_prev)}
            if lstm:
                out["dc_prev"] = _list(s.dc_prev)
            out["grads"] = _lists(s.grads)
            return out

        b, u = self.backward, self.update
        return {
            "schema_version": SCHEMA_VERSION,
            "cell": self.cell,
            "gate_names": list(self.gate_names),
            "words": list(self.words),
            "classes": list(self.classes),
            "target": _list(self.target),
            "seed": self.seed,
            "sizes": {
                "steps": len(self.words),
                "input": d,
                "hidden": h,
                "gates": len(self.gate_names),
                "classes": len(self.classes),
            },
            "weights": _lists(self.weights),
            "forward": [fwd(s) for s in self.forward],
            "loss": {
                "logits": _list(self.loss.logits),
                "probs": _list(self.loss.probs),
                "target": _list(self.loss.target),
                "target_index": self.loss.target_index,
                "value": float(self.loss.value),
            },
            "backward": {
                "dlogits": _list(b.dlogits),
                "dh_last": _list(b.dh_last),
                "head_grads": _lists(b.head_grads),
                "steps": [bwd(s) for s in b.steps],
                "totals": _lists(b.totals),
            },
            "update": {
                "lr": float(u.lr),
                "weights": _lists(u.weights),
                "loss_before": float(u.loss_before),
                "loss_after": float(u.loss_after),
                "logits_after": _list(u.logits_after),
                "probs_after": _list(u.probs_after),
            },
        }


def _list(a: np.ndarray) -> list:
    return np.asarray(a, dtype=np.float64).tolist()


def _lists(arrays: Mapping[str, np.ndarray]) -> dict[str, list]:
    return {k: _list(v) for k, v in arrays.items()}


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only float64 copy (the tree must not change under a reader)."""
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _frozen_map(arrays: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
    return MappingProxyType({k: _frozen(v) for k, v in arrays.items()})


# --------------------------------------------------------------------------------------------------------------
# weights: defaults, JSON template, a teacher's file


def _check_cell(cell: object) -> str:
    if cell not in CELLS:
        raise ValueError(f"cell: expected {', '.join(map(repr, CELLS[:-1]))} or {CELLS[-1]!r}, got {cell!r}")
    return cell  # type: ignore[return-value]


def weight_shapes(cell: str = "rnn") -> dict[str, tuple[int, ...]]:
    """The six arrays' shapes for ``cell``: (G·H, D), (G·H, H), (G·H,), (G·H,), (C, H), (C,)."""
    gh = len(GATE_NAMES[_check_cell(cell)]) * HIDDEN_SIZE
    d, c = EMBEDDINGS.shape[1], len(CLASSES)
    return {
        "weight_ih": (gh, d),
        "weight_hh": (gh, HIDDEN_SIZE),
        "bias_ih": (gh,),
        "bias_hh": (gh,),
        "head_weight": (c, HIDDEN_SIZE),
        "head_bias": (c,),
    }


def default_weights(cell: str = "rnn", seed: int = DEFAULT_SEED) -> dict[str, np.ndarray]:
    """The documented weights: ``default_rng(seed)``, U(−0.5, 0.5) in WEIGHT_NAMES order, 2 decimals, float64."""
    shapes = weight_shapes(cell)
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    return {
        name: np.round(rng.uniform(-WEIGHT_SCALE, WEIGHT_SCALE, size=shape), WEIGHT_DECIMALS) + 0.0  # no -0.0
        for name, shape in shapes.items()
    }


def weights_to_json(weights: Mapping[str, np.ndarray], cell: str = "rnn") -> dict[str, Any]:
    """A JSON-ready template that :func:`load_weights` reads back: ``cell``, ``comment`` and the six arrays."""
    weights = check_weights(weights, cell)
    gates = ", ".join(GATE_NAMES[cell])
    comment = (
        f"unrolled walkthrough weights for the {cell} cell (PyTorch names and shapes; rows of the ih/hh arrays "
        f"are gate blocks {gates} of {HIDDEN_SIZE}; head rows are classes {', '.join(CLASSES)}). "
        "Edit the numbers and pass the file back."
    )
    return {"cell": cell, "comment": comment} | _lists(weights)


def save_weights(path: str | os.PathLike, weights: Mapping[str, np.ndarray], cell: str = "rnn") -> None:
    """Write :func:`weights_to_json` to ``path`` (indented JSON, one matrix row per line is not guaranteed)."""
    data = weights_to_json(weights, cell)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def load_weights(path: str | os.PathLike, cell: str = "rnn") -> dict[str, np.ndarray]:
    """Read a weights file (see the module docstring) for ``cell``; float64 arrays of the exact shapes.

    Raises ValueError with one line ``"<path>: <key>: <problem>"`` for a missing key, a wrong shape, an entry
    that is not a finite number, an unexpected key, a ``"cell"`` that differs from ``cell``, or a file that
    cannot be read or is not a JSON object.
    """
    _check_cell(cell)
    name = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ValueError(f"{name}: cannot read the weights file: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not a UTF-8 text file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{name}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{name}: expected a JSON object with keys {', '.join(WEIGHT_NAMES)}")
    unexpected = [k for k in data if k not in WEIGHT_NAMES and k not in _FILE_EXTRA_KEYS]
    if unexpected:
        raise ValueError(
            f"{name}: {unexpected[0]}: unexpected key (expected {', '.join(WEIGHT_NAMES)}, optional cell, comment)"
        )
    if "cell" in data and data["cell"] != cell:
        raise ValueError(f"{name}: cell: the file is for {data['cell']!r}, not {cell!r}")
    return _parse_weights(data, cell, source=name)


def check_weights(weights: Mapping[str, Any], cell: str = "rnn") -> dict[str, np.ndarray]:
    """Validate a mapping of the six arrays (or nested lists) for ``cell``; return float64 copies."""
    _check_cell(cell)
    if not isinstance(weights, Mapping):
        raise ValueError(f"weights: expected a mapping of {', '.join(WEIGHT_NAMES)}, got {type(weights).__name__}")
    unexpected = [k for k in weights if k not in WEIGHT_NAMES]
    if unexpected:
        raise ValueError(f"weights: {unexpected[0]}: unexpected key (expected {', '.join(WEIGHT_NAMES)})")
    return _parse_weights(weights, cell, source="weights")


def _parse_weights(data: Mapping[str, Any], cell: str, source: str) -> dict[str, np.ndarray]:
    shapes = weight_shapes(cell)
    out = {}
    for key, shape in shapes.items():
        if key not in data:
            raise ValueError(f"{source}: {key}: missing (expected an array of shape {_shape_str(shape)})")
        out[key] = _parse_array(data[key], shape, f"{source}: {key}", cell)
    return out


def _parse_array(value: Any, shape: tuple[int, ...], where: str, cell: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        if value.shape != shape:
            got = _shape_str(value.shape)
            raise ValueError(f"{where}: expected shape {_shape_str(shape)} for the {cell} cell, got {got}")
        if value.dtype.kind not in "fiu":
            raise ValueError(f"{where}: expected numbers, got dtype {value.dtype}")
        a = value.astype(np.float64)
        if not np.isfinite(a).all():
            raise ValueError(f"{where}: contains NaN or infinity")
        return a
    got = _nested_shape(value)
    if got != shape:
        desc = "a ragged or non-numeric nested list" if got is None else _shape_str(got)
        if got is None and isinstance(value, (str, bool, type(None), dict)):
            desc = f"{json.dumps(value)[:30]}"
        raise ValueError(f"{where}: expected shape {_shape_str(shape)} for the {cell} cell, got {desc}")
    flat = list(_flatten(value))
    for i, v in enumerate(flat):
        if isinstance(v, bool) or not isinstance(v, Real):
            index = "".join(f"[{k}]" for k in np.unravel_index(i, shape))
            raise ValueError(f"{where}{index}: expected a number, got {json.dumps(v)[:30]}")
        if not math.isfinite(v):
            index = "".join(f"[{k}]" for k in np.unravel_index(i, shape))
            raise ValueError(f"{where}{index}: expected a finite number, got {v}")
    return np.array(flat, dtype=np.float64).reshape(shape)


def _nested_shape(value: Any) -> tuple[int, ...] | None:
    """The shape of a regular nested list, () for a scalar leaf, None when ragged or not list/leaf."""
    if isinstance(value, (list, tuple)):
        inner = {_nested_shape(v) for v in value}
        if len(inner) > 1 or None in inner:
            return None
        return (len(value),) + (inner.pop() if inner else ())
    if isinstance(value, (dict, type(None))):
        return None
    return ()  # a leaf; its type is checked afterwards


def _flatten(value: Any):
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _flatten(v)
    else:
        yield value


def _shape_str(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


# --------------------------------------------------------------------------------------------------------------
# running the engine


def _step_forward(cell: str, x: np.ndarray, state: State, params: dict[str, np.ndarray]) -> tuple[State, Any]:
    """One engine step on a batch of one: x (1, D), state each (1, H) -> new state, StepCache."""
    return cell_step_forward(REGISTRY[cell].kernel("tanh"), x, state, params)


def _step_backward(cell: str, dstate: State, cache: Any) -> tuple[np.ndarray, State, dict[str, np.ndarray]]:
    """One engine backward step: dstate each (1, H) -> dx (1, D), dstate_prev, this step's grads."""
    return step_backward(dstate, cache)


@dataclass(frozen=True)
class _Pass:
    """One forward pass over the sentence, with what its backward needs."""

    steps: tuple[ForwardStep, ...]
    caches: tuple[Any, ...]  # the engine's StepCache of each step
    state: State  # the final state, each (1, H)
    logits: np.ndarray  # (1, C)
    head_cache: Any  # LinearCache
    loss: float
    loss_cache: Any  # CrossEntropyCache


def _forward(cell: str, weights: Mapping[str, np.ndarray], embeddings: np.ndarray = EMBEDDINGS) -> _Pass:
    params = {k: weights[k] for k in CELL_PARAM_NAMES}
    hidden = weights["weight_hh"].shape[1]
    components = len(REGISTRY[cell].kernel("tanh").state_names)  # (h,) or (h, c)
    state: State = tuple(np.zeros((1, hidden)) for _ in range(components))  # h_0 = 0 (c_0 = 0), N = 1
    steps, caches = [], []
    for t, (word, x_row) in enumerate(zip(WORDS, embeddings), start=1):
        x = x_row[None, :].copy()  # (1, D)
        state_prev = state
        state, cache = _step_forward(cell, x, state_prev, params)
        # The two projections, shown separately (the engine's step fuses them into its gates).
        xw, _ = linear_forward(x, weights["weight_ih"], weights["bias_ih"])  # (1, G·H)
        hw, _ = linear_forward(state_prev[0], weights["weight_hh"], weights["bias_hh"])  # (1, G·H)
        saved = {name: cache.saved[k, 0] for k, name in enumerate(cache.kernel.saved_names)}  # each (H,)
        head_logits, _ = linear_forward(state[0], weights["head_weight"], weights["head_bias"])  # (1, C)
        steps.append(
            ForwardStep(
                t=t,
                word=word,
                x=_frozen(x[0]),
                h_prev=_frozen(state_prev[0][0]),
                c_prev=_frozen(state_prev[1][0]) if components == 2 else None,
                input_projection=_frozen(xw[0]),
                hidden_projection=_frozen(hw[0]),
                preactivation=_frozen(_preactivation(cell, xw[0], hw[0], saved)),
                activations=_frozen_map(saved),
                h=_frozen(state[0][0]),
                c=_frozen(state[1][0]) if components == 2 else None,
                head_logits=_frozen(head_logits[0]),
                head_probs=_frozen(softmax(head_logits)[0]),
            )
        )
        caches.append(cache)
    logits, head_cache = linear_forward(state[0], weights["head_weight"], weights["head_bias"])  # (1, C)
    loss, loss_cache = softmax_cross_entropy_forward(logits, np.array([TARGET_INDEX]))
    return _Pass(tuple(steps), tuple(caches), state, logits, head_cache, loss, loss_cache)


def _preactivation(cell: str, xw: np.ndarray, hw: np.ndarray, saved: Mapping[str, np.ndarray]) -> np.ndarray:
    """a = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh per gate block; GRU's n: x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn)."""
    a = xw + hw
    if cell == "gru":
        h = xw.shape[0] // 3
        a[2 * h :] = xw[2 * h :] + saved["r"] * hw[2 * h :]
    return a


def run_walkthrough(
    *,
    cell: str = "rnn",
    weights: Mapping[str, Any] | None = None,
    seed: int = DEFAULT_SEED,
    lr: float = DEFAULT_LR,
    embeddings: Any = None,
) -> Walkthrough:
    """Work the canonical example through the engine: forward, loss, BPTT step by step, one SGD step.

    Parameters
    ----------
    cell : "rnn" (tanh), "gru" or "lstm"
    weights : the six arrays (see :func:`weight_shapes`; e.g. from :func:`load_weights`), or None for
        ``default_weights(cell, seed)``
    seed : seed of the default weights (not used when ``weights`` is given)
    lr : SGD learning rate, a finite number > 0
    embeddings : the (T, D) word vectors of "I love this" (arrays or nested lists), or None for
        :data:`EMBEDDINGS` (the explorer's walkthrough page edits them)

    Returns
    -------
    Walkthrough, a frozen tree of read-only float64 arrays.
    """
    _check_cell(cell)
    if isinstance(lr, bool) or not isinstance(lr, Real) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr: expected a finite number > 0, got {lr!r}")
    if weights is None:
        used_seed: int | None = seed
        weights = default_weights(cell, seed)
    else:
        used_seed = None
        weights = check_weights(weights, cell)
    lstm = cell == "lstm"

    # Forward: t = 1..T through the engine's step, then the head and the loss.
    embeddings = EMBEDDINGS if embeddings is None else _parse_array(embeddings, EMBEDDINGS.shape, "embeddings", cell)
    fwd = _forward(cell, weights, embeddings)
    loss = LossStage(
        logits=_frozen(fwd.logits[0]),
        probs=_frozen(fwd.loss_cache.probs[0]),
        target=_frozen(TARGET),
        target_index=TARGET_INDEX,
        value=float(fwd.loss),
    )

    # Backward: the loss, the head, then BPTT t = T..1 through the engine's step backward.
    dlogits = softmax_cross_entropy_backward(fwd.loss_cache)  # (1, C)
    dh_last, head_grads = linear_backward(dlogits, fwd.head_cache)  # (1, H)
    dstate = (dh_last,) + tuple(np.zeros_like(s) for s in fwd.state[1:])  # dc_T = 0: the loss reads only h_T
    bsteps = []
    for step, cache in zip(reversed(fwd.steps), reversed(fwd.caches)):
        dx, dstate_prev, grads = _step_backward(cell, dstate, cache)
        bsteps.append(
            BackwardStep(
                t=step.t,
                word=step.word,
                dh=_frozen(dstate[0][0]),
                dc=_frozen(dstate[1][0]) if lstm else None,
                dpreactivation=_frozen(grads["bias_ih"]),  # for N = 1, step t's ∂b_ih is ∂L/∂a_t
                dx=_frozen(dx[0]),
                dh_prev=_frozen(dstate_prev[0][0]),
                dc_prev=_frozen(dstate_prev[1][0]) if lstm else None,
                grads=_frozen_map(grads),
            )
        )
        dstate = dstate_prev
    totals = {k: np.sum([b.grads[k] for b in bsteps], axis=0) for k in CELL_PARAM_NAMES}  # Σ over the steps
    totals |= {"head_weight": head_grads["weight"], "head_bias": head_grads["bias"]}
    backward = Backward(
        dlogits=_frozen(dlogits[0]),
        head_grads=_frozen_map({"head_weight": head_grads["weight"], "head_bias": head_grads["bias"]}),
        dh_last=_frozen(dh_last[0]),
        steps=tuple(bsteps),
        totals=_frozen_map(totals),
    )

    # Update: one plain SGD step (no momentum, no weight decay) on copies, then the forward pass again.
    new_weights = {k: np.array(v, dtype=np.float64) for k, v in weights.items()}
    SGD(new_weights, lr=float(lr)).step(totals)
    after = _forward(cell, new_weights, embeddings)
    update = Update(
        lr=float(lr),
        weights=_frozen_map(new_weights),
        loss_before=float(fwd.loss),
        loss_after=float(after.loss),
        logits_after=_frozen(after.logits[0]),
        probs_after=_frozen(after.loss_cache.probs[0]),
    )
    return Walkthrough(
        cell=cell,
        words=WORDS,
        classes=CLASSES,
        target=_frozen(TARGET),
        seed=used_seed,
        weights=_frozen_map(weights),
        forward=fwd.steps,
        loss=loss,
        backward=backward,
        update=update,
    )


# --------------------------------------------------------------------------------------------------------------
# the human-readable walk

_SYMBOLS = {
    "weight_ih": "W_ih",
    "weight_hh": "W_hh",
    "bias_ih": "b_ih",
    "bias_hh": "b_hh",
    "head_weight": "W_out",
    "head_bias": "b_out",
}
_GATE_ACTIVATION = {"r": "σ", "z": "σ", "n": "tanh", "i": "σ", "f": "σ", "g": "tanh", "o": "σ"}
_GATE_ROLE = {
    "gru": {"r": "reset", "z": "update", "n": "candidate"},
    "lstm": {"i": "input", "f": "forget", "g": "candidate", "o": "output"},
}
_GATE_NOTE = {  # {p} = t − 1, {t} = t
    "gru": {
        "r": "reset gate: how much of h_{p} the candidate may read",
        "z": "update gate: how much of h_{p} to keep",
        "n": "candidate: the new content of this step",
    },
    "lstm": {
        "i": "input gate: how much of g_{t} to write",
        "f": "forget gate: how much of c_{p} to keep",
        "g": "candidate: the new content of this step",
        "o": "output gate: how much of the memory to show",
    },
}


class _Writer:
    """Lines of ``label  [tag] vector  note``; all vectors of the text share one aligned column."""

    def __init__(self, precision: int, width: int) -> None:
        self.precision, self.width = precision, width
        self.entries: list[str | tuple[str, str, str, str]] = []

    def num(self, v: float) -> str:
        return f"{v:{self.width}.{self.precision}f}"

    def short(self, v: float) -> str:
        return f"{v:.{self.precision}f}"

    def vec(self, v: np.ndarray) -> str:
        return "[" + " ".join(self.num(float(x)) for x in np.ravel(v)) + "]"

    def text(self, s: str = "") -> None:
        self.entries.append(s)

    def value(self, label: str, value: str, note: str = "", indent: int = 4, tag: str = "") -> None:
        self.entries.append((" " * indent + label, tag, value, note))

    def row(self, label: str, v: np.ndarray, note: str = "", indent: int = 4, tag: str = "") -> None:
        self.value(label, self.vec(v), note, indent, tag)

    def matrix(self, label: str, m: np.ndarray, tags: tuple[str, ...] = (), note: str = "", indent: int = 4) -> None:
        """One row per line; with tags (gate names) the first row of each gate block carries its gate."""
        m = np.atleast_2d(m)
        block = m.shape[0] // len(tags) if tags else 0
        for i, r in enumerate(m):
            tag = tags[i // block] if tags and i % block == 0 else ""
            self.row(label if i == 0 else "", r, note if i == 0 else "", indent=indent, tag=tag)

    def gated(self, label: str, v: np.ndarray, tags: tuple[str, ...], note: str = "", indent: int = 4) -> None:
        """A (G·H,) vector, one gate block per line when there are several gates."""
        if len(tags) <= 1:
            self.row(label, v, note, indent=indent)
        else:
            self.matrix(label, np.reshape(v, (len(tags), -1)), tags, note, indent=indent)

    def array(self, label: str, v: np.ndarray, tags: tuple[str, ...], indent: int = 4) -> None:
        if v.ndim == 2:
            self.matrix(label, v, tags, indent=indent)
        else:
            self.gated(label, v, tags, indent=indent)

    def render(self) -> str:
        rows = [e for e in self.entries if isinstance(e, tuple)]
        label_w = max(len(e[0]) for e in rows)
        tag_w = max(len(e[1]) for e in rows)
        lines = []
        for e in self.entries:
            if isinstance(e, tuple):
                prefix, tag, value, note = e
                tag = tag.rjust(tag_w) + " " if tag_w else ""
                e = prefix.ljust(label_w) + "  " + tag + value + (f"  {note}" if note else "")
            lines.append(e.rstrip())
        return "\n".join(lines) + "\n"


def render_text(walkthrough: Walkthrough, precision: int = 4) -> str:
    """The walkthrough as text: a header, then Setup, Forward, Loss, Backward (BPTT), Update and Summary.

    Every vector is printed with ``precision`` decimals in one aligned column, with a short plain-language
    note beside the key numbers. Returns the text (ending in a newline); the library never prints.
    """
    if not isinstance(walkthrough, Walkthrough):
        raise ValueError(f"walkthrough: expected a Walkthrough, got {type(walkthrough).__name__}")
    if isinstance(precision, bool) or not isinstance(precision, Integral) or not 0 <= precision <= 12:
        raise ValueError(f"precision: expected an integer from 0 to 12, got {precision!r}")
    width = max(len(f"{v:.{int(precision)}f}") for v in _all_numbers(walkthrough.to_json()))
    w = _Writer(int(precision), width)
    _render_header(w, walkthrough)
    _render_forward(w, walkthrough)
    _render_loss(w, walkthrough)
    _render_backward(w, walkthrough)
    _render_update(w, walkthrough)
    _render_summary(w, walkthrough)
    return w.render()


def _tags(wt: Walkthrough) -> tuple[str, ...]:
    return wt.gate_names if len(wt.gate_names) > 1 else ()


def _render_header(w: _Writer, wt: Walkthrough) -> None:
    target = wt.classes[wt.loss.target_index]
    d, h = wt.weights["weight_ih"].shape[1], wt.weights["weight_hh"].shape[1]
    w.text(f'unrolled walkthrough: "{" ".join(wt.words)}" through {CELL_TITLES[wt.cell]}, every number shown')
    w.text(
        f"D = {d} inputs, H = {h} hidden, classes ({', '.join(wt.classes)}), "
        f"true label {target} = [{', '.join(f'{v:g}' for v in wt.target)}]"
    )
    if wt.seed is None:
        w.text("weights: given by the user")
    else:
        w.text(
            f"weights: numpy default_rng({wt.seed}), each entry ~ U(-{WEIGHT_SCALE}, {WEIGHT_SCALE}) "
            f"rounded to {WEIGHT_DECIMALS} decimals, float64"
        )
    if _tags(wt):
        w.text(f"rows of W_ih, W_hh, b_ih, b_hh come in gate blocks {', '.join(wt.gate_names)} (PyTorch's order)")
    w.text()
    w.text("Setup")
    for s in wt.forward:
        w.row(f"x_{s.t}  {s.word}", s.x, indent=2)
    w.row("h_0", wt.forward[0].h_prev, "the memory starts empty", indent=2)
    if wt.cell == "lstm":
        w.row("c_0", wt.forward[0].c_prev, indent=2)
    for key in WEIGHT_NAMES:
        v = wt.weights[key]
        w.array(f"{_SYMBOLS[key]} {_shape_str(v.shape)}", v, () if key.startswith("head") else _tags(wt), indent=2)


def _render_forward(w: _Writer, wt: Walkthrough) -> None:
    cell, gates, tags = wt.cell, wt.gate_names, _tags(wt)
    w.text()
    w.text("Forward")
    for s in wt.forward:
        t, p = s.t, s.t - 1
        w.text(f'  t = {t}  "{s.word}"')
        w.row(f"x_{t}", s.x)
        w.gated(f"x_{t} W_ihᵀ + b_ih", s.input_projection, tags)
        w.gated(f"h_{p} W_hhᵀ + b_hh", s.hidden_projection, tags)
        if cell == "rnn":
            w.row(f"a_{t} = sum of the two", s.preactivation)
            w.row(f"h_{t} = tanh(a_{t})", s.h, _memory_note(wt.words, t))
            continue
        a = np.reshape(s.preactivation, (len(gates), -1))
        for k, g in enumerate(gates):
            if g == "n":
                w.row(f"a_n = (x W_inᵀ + b_in) + r_{t} ⊙ (h W_hnᵀ + b_hn)", a[k])
            else:
                w.row(f"a_{g} = sum of the two {g} blocks", a[k])
            note = _GATE_NOTE[cell][g].format(p=p, t=t)
            w.row(f"{g}_{t} = {_GATE_ACTIVATION[g]}(a_{g})", s.activations[g], note)
        if cell == "gru":
            w.row(f"h_{t} = (1 − z_{t}) ⊙ n_{t} + z_{t} ⊙ h_{p}", s.h, _memory_note(wt.words, t))
        else:
            w.row(f"c_{t} = f_{t} ⊙ c_{p} + i_{t} ⊙ g_{t}", s.c, "the cell state: the long-term memory")
            w.row(f"h_{t} = o_{t} ⊙ tanh(c_{t})", s.h, _memory_note(wt.words, t))


def _render_loss(w: _Writer, wt: Walkthrough) -> None:
    loss, T = wt.loss, len(wt.words)
    target = wt.classes[loss.target_index]
    p_true = loss.probs[loss.target_index]
    w.text()
    w.text("Loss")
    w.row(f"logits = h_{T} W_outᵀ + b_out", loss.logits, f"scores for ({', '.join(wt.classes)})", indent=2)
    w.row("ŷ = softmax(logits)", loss.probs, f"P({target}) = {w.short(p_true)}", indent=2)
    w.row("y (true label)", loss.target, indent=2)
    leaning = "the network leans the right way" if p_true > 0.5 else "the network leans the wrong way"
    w.value(f"L = −log ŷ_{target}", w.short(loss.value), leaning, indent=2)


def _render_backward(w: _Writer, wt: Walkthrough) -> None:
    cell, gates, tags, b = wt.cell, wt.gate_names, _tags(wt), wt.backward
    T = len(wt.words)
    target = wt.classes[wt.loss.target_index]
    w.text()
    w.text("Backward (BPTT)")
    w.row("∂L/∂logits = ŷ − y", b.dlogits, f"raise {target}'s score, lower the other", indent=2)
    w.matrix(f"∂L/∂W_out = (∂L/∂logits)ᵀ h_{T}", b.head_grads["head_weight"], indent=2)
    w.row("∂L/∂b_out = ∂L/∂logits", b.head_grads["head_bias"], indent=2)
    w.row(f"∂L/∂h_{T} = ∂L/∂logits W_out", b.dh_last, "where the loss enters the recurrence", indent=2)
    for s in b.steps:
        t, p = s.t, s.t - 1
        w.text(f'  t = {t}  "{s.word}"')
        w.row(f"∂L/∂h_{t}", s.dh, "from the head" if t == T else f"carried back from t = {t + 1}")
        if cell == "lstm":
            note = f"zero: the loss reads h_{T}, not c_{T}" if t == T else f"carried back from t = {t + 1}"
            w.row(f"∂L/∂c_{t}", s.dc, note)
        if cell == "rnn":
            note = "through tanh: small where |h| is near 1"
            w.row(f"∂L/∂a_{t} = ∂L/∂h_{t} ⊙ (1 − h_{t}²)", s.dpreactivation, note)
            da, dhw = f"∂L/∂a_{t}", f"∂L/∂a_{t}"
        else:
            for k, g in enumerate(gates):
                w.row(f"∂L/∂a_{g} ({_GATE_ROLE[cell][g]})", np.reshape(s.dpreactivation, (len(gates), -1))[k])
            da, dhw = "∂L/∂a", "∂L/∂a"
        if cell == "gru":
            dhn = np.reshape(s.grads["bias_hh"], (3, -1))[2]
            w.row(f"∂L/∂(h_{p} W_hnᵀ + b_hn) = r_{t} ⊙ ∂L/∂a_n", dhn, "the reset gate scales it")
            dhw = "∂L/∂(h W_hhᵀ)"
        w.row(f"∂L/∂x_{t} = {da} W_ih", s.dx, f'would nudge the vector of "{s.word}"')
        label = f"∂L/∂h_{p} = {dhw} W_hh" + (f" + z_{t} ⊙ ∂L/∂h_{t}" if cell == "gru" else "")
        w.row(label, s.dh_prev, "h_0 is fixed: the walk back ends here" if t == 1 else "sent back in time through W_hh")
        if cell == "lstm":
            w.row(f"∂L/∂c_{p}", s.dc_prev, "through the forget gate: the memory's own path")
        w.matrix(f"step {t} adds to ∂W_ih: {da}ᵀ x_{t}", s.grads["weight_ih"], tags)
        zero = "zero: h_0 = 0" if t == 1 else ""
        w.matrix(f"step {t} adds to ∂W_hh: {dhw}ᵀ h_{p}", s.grads["weight_hh"], tags, zero)
        w.gated(f"step {t} adds to ∂b_ih", s.grads["bias_ih"], tags)
        w.gated(f"step {t} adds to ∂b_hh", s.grads["bias_hh"], tags)
    order = " + ".join(f"step {s.t}" for s in b.steps)
    w.text(f"  totals: the same weights act at every step, so each gradient is {order}")
    for key in CELL_PARAM_NAMES:
        w.array(f"∂L/∂{_SYMBOLS[key]}", b.totals[key], tags)
    norms = [float(np.linalg.norm(s.dh)) for s in b.steps]
    fades = norms[-1] < norms[0]
    w.text(
        f"  |∂L/∂h_t| for t = {', '.join(str(s.t) for s in b.steps)}: {', '.join(w.short(v) for v in norms)}: "
        + ("the signal fades going back in time (vanishing gradients)" if fades else "the signal grows going back")
    )


def _render_update(w: _Writer, wt: Walkthrough) -> None:
    u, loss = wt.update, wt.loss
    target = wt.classes[loss.target_index]
    w.text()
    w.text("Update")
    w.text(f"  SGD, lr = {u.lr:g}: W ← W − {u.lr:g} · ∂L/∂W, for all six arrays")
    for key in WEIGHT_NAMES:
        w.array(f"new {_SYMBOLS[key]}", u.weights[key], () if key.startswith("head") else _tags(wt), indent=2)
    w.row("new ŷ", u.probs_after, f"P({target}) was {w.short(loss.probs[loss.target_index])}", indent=2)
    lower = u.loss_after < u.loss_before
    w.value(
        "loss before → after",
        f"{w.short(u.loss_before)} → {w.short(u.loss_after)}",
        "lower: one step moved ŷ towards the true label" if lower else "not lower: try a smaller lr",
        indent=2,
    )


def _render_summary(w: _Writer, wt: Walkthrough) -> None:
    T = len(wt.words)
    vec_w, out_w = len(w.vec(wt.forward[0].x)), len(w.vec(wt.loss.probs))
    word_w = max(4, *(len(s) for s in wt.words))
    w.text()
    w.text("Summary")
    w.text(
        f"  {'t':>2}  {'word':<{word_w}}  {'input vector x_t':<{vec_w}}  {'hidden state h_t':<{vec_w}}  "
        f"{'output':<{out_w}}"
    )
    for s in wt.forward:
        note = "ŷ, the prediction" if s.t == T else f"(head at t = {s.t})"
        w.text(f"  {s.t:>2}  {s.word:<{word_w}}  {w.vec(s.x)}  {w.vec(s.h)}  {w.vec(s.head_probs)}  {note}")
    w.text(
        f"  output = softmax over ({', '.join(wt.classes)}); only t = {T} feeds the loss "
        f"(L = {w.short(wt.loss.value)}; after one SGD step {w.short(wt.update.loss_after)})"
    )


def _memory_note(words: tuple[str, ...], t: int) -> str:
    if t == 1:
        return f'h_1 holds "{words[0]}" alone: h_0 was empty'
    end = ": the whole sentence" if t == len(words) else ""
    return f'h_{t} mixes the memory of "{" ".join(words[: t - 1])}" with "{words[t - 1]}"{end}'


def _all_numbers(tree: Any):
    """Every float in a to_json() tree (to size the common column)."""
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _all_numbers(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _all_numbers(v)
    elif isinstance(tree, float):
        yield tree
