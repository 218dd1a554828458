"""A recurrent layer as torch.nn.RNN/GRU/LSTM: stacked layers, both directions, dropout between layers,
an initial state in and the final state out, and masks for variable-length batches.

Layer l reads the outputs of layer l−1 (concatenated over directions when bidirectional); layer 0 reads x.
Each (layer, direction) runs :func:`unrolled.nn.time_loop.sequence_forward` with its own parameters,
named as PyTorch names them: ``weight_ih_l{l}``, ``weight_hh_l{l}``, ``bias_ih_l{l}``, ``bias_hh_l{l}``,
with the suffix ``_reverse`` for the backward direction, so ``torch.nn.LSTM.load_state_dict`` accepts them.

Masks: ``mask`` (N, T) is True at real steps. A padded step neither changes a sequence's state nor receives
gradient; its output is zero; the final state of each sequence is the one after its own last real step;
with right padding, the reverse direction starts at each sequence's own last real token (as
``pack_padded_sequence`` does).

States use PyTorch's layout: h (L·dirs, N, H), row ``layer * dirs + direction``; for LSTM a pair (h, c).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from unrolled.nn._validation import check_float_array, check_mask, check_positive_int, check_probability
from unrolled.nn.dropout import dropout_backward, dropout_forward
from unrolled.nn.fused import cache_line_copy
from unrolled.nn.cells import CELL_NAMES, get_cell
from unrolled.nn.time_loop import (
    PARAM_NAMES,
    CellKernel,
    Params,
    SequenceCache,
    sequence_backward,
    sequence_forward,
    zero_state,
)

CELLS = CELL_NAMES  # the registry's names (unrolled.nn.cells), kept under the name this module always exported
RecurrentState = np.ndarray | tuple[np.ndarray, np.ndarray]  # h, or (h, c) for LSTM; each (L·dirs, N, H)


@dataclass(frozen=True)
class RecurrentConfig:
    """Shape of a recurrent layer (what torch.nn.RNN/GRU/LSTM take in their constructors)."""

    cell: str  # a name in the cell registry (unrolled.nn.cells): "rnn", "gru" or "lstm"
    input_size: int  # D
    hidden_size: int  # H
    num_layers: int = 1  # L
    bidirectional: bool = False
    dropout: float = 0.0  # on the outputs of every layer but the last, in training
    nonlinearity: str = "tanh"  # "tanh" or "relu"; Elman RNN only

    def __post_init__(self) -> None:
        cell = get_cell(self.cell)
        for name in ("input_size", "hidden_size", "num_layers"):
            check_positive_int(name, getattr(self, name))
        check_probability("dropout", self.dropout)
        cell.kernel(self.nonlinearity)  # a ValueError for a nonlinearity the cell does not take

    def __getstate__(self) -> dict:
        """Pickled without the cached kernel (the C kernels' closures do not pickle; it is looked up again)."""
        return {k: v for k, v in self.__dict__.items() if k != "kernel"}

    @cached_property  # looked up once per config (frozen: it cannot change)
    def kernel(self) -> CellKernel:
        return get_cell(self.cell).kernel(self.nonlinearity)

    @property
    def state_names(self) -> tuple[str, ...]:
        """The state's components, from the cell's kernel: ("h",) (a state is one array) or ("h", "c")
        (a state is a tuple of arrays, as for an LSTM)."""
        return self.kernel.state_names

    def hidden_of(self, state: RecurrentState) -> np.ndarray:
        """The h component of a state in this layer's layout."""
        return state[0] if len(self.state_names) > 1 else state

    def state_of_hidden(self, h: np.ndarray) -> RecurrentState:
        """A state (or state gradient) whose h is ``h`` and whose other components are None."""
        return (h,) + (None,) * (len(self.state_names) - 1) if len(self.state_names) > 1 else h

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Width of each step's output: dirs·H."""
        return self.num_directions * self.hidden_size

    def layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.output_size

    def suffix(self, layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction == 1 else "")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape, in PyTorch's order."""
        gh = self.kernel.num_gates * self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                s = self.suffix(layer, direction)
                shapes["weight_ih" + s] = (gh, self.layer_input_size(layer))
                shapes["weight_hh" + s] = (gh, self.hidden_size)
                shapes["bias_ih" + s] = (gh,)
                shapes["bias_hh" + s] = (gh,)
        return shapes

    def direction_params(self, params: Params, layer: int, direction: int, prefix: str = "") -> Params:
        """One (layer, direction)'s four arrays under the cell-level names (weight_ih, …); ``prefix`` is the
        layer's name in a model's params (``"rnn."``), if they are looked up there."""
        return {name: params[key] for name, key in _direction_keys(prefix, self.suffix(layer, direction))}


@lru_cache(maxsize=256)
def _direction_keys(prefix: str, suffix: str) -> tuple[tuple[str, str], ...]:
    """(cell-level name, key in params) of one (layer, direction): the same few strings on every call."""
    return tuple((name, prefix + name + suffix) for name in PARAM_NAMES)


def init_recurrent_params(
    config: RecurrentConfig,
    rng: np.random.Generator,
    *,
    dtype: np.dtype | type = np.float32,
    recurrent_init: str = "uniform",
) -> Params:
    """Parameters as PyTorch initialises them: every entry ~ U(−1/√H, 1/√H).

    recurrent_init="orthogonal" makes each gate's (H, H) block of every weight_hh a random orthogonal
    matrix instead (biases and input weights stay uniform). Draws happen in PyTorch's parameter order,
    so the same Generator state gives the same parameters.
    """
    if recurrent_init not in ("uniform", "orthogonal"):
        raise ValueError(f"recurrent_init: expected 'uniform' or 'orthogonal', got {recurrent_init!r}")
    bound = 1.0 / np.sqrt(config.hidden_size)
    params: Params = {}
    for name, shape in config.param_shapes().items():
        if recurrent_init == "orthogonal" and name.startswith("weight_hh"):
            hidden = config.hidden_size
            blocks = [_orthogonal(rng, hidden) for _ in range(config.kernel.num_gates)]
            values = np.concatenate(blocks, axis=0)
        else:
            values = rng.uniform(-bound, bound, size=shape)
        params[name] = cache_line_copy(values, dtype)  # the C loops' vector loads (see fused.on_cache_line)
    return params


def _orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random (n, n) orthogonal matrix (QR of a Gaussian matrix, signs fixed so it is Haar-distributed)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def check_recurrent_params(config: RecurrentConfig, params: Params, *, finite: bool = True) -> np.dtype:
    """Check names and shapes against the config (no missing, no unexpected key); return the common dtype.

    ``finite``: also check that every value is finite (a pass over every weight: done where parameters come
    in, not on every forward pass).
    """
    shapes = config.param_shapes()
    missing = [k for k in shapes if k not in params]
    unexpected = [k for k in params if k not in shapes]
    if missing:
        raise ValueError(f"params: missing {', '.join(missing)}")
    if unexpected:
        raise ValueError(f"params: unexpected {', '.join(unexpected)} for {config.num_layers}-layer "
                         f"{'bidirectional ' if config.bidirectional else ''}{config.cell}")
    dtype = np.asarray(params["weight_hh_l0"]).dtype
    for name, shape in shapes.items():
        check_float_array(name, params[name], shape, dtype=dtype, finite=finite)
    return dtype


def sub_params(params: Params, prefix: str) -> Params:
    """The entries of a params dict under ``prefix`` (``"decoder."``, ``"attention."``), renamed without it;
    the arrays themselves, not copies."""
    return {name[len(prefix) :]: value for name, value in params.items() if name.startswith(prefix)}


def recurrent_params_of(params: Params, prefix: str = "rnn.") -> Params:
    """The recurrent layer's arrays inside a model's params dict (names ``rnn.weight_ih_l0`` …), under the
    layer's own names (``weight_ih_l0`` …); the arrays themselves, not copies."""
    return sub_params(params, prefix)


def state_dict(params: Params) -> dict[str, np.ndarray]:
    """The parameters under PyTorch's names, copied: ``torch.nn.GRU(...).load_state_dict(
    {k: torch.from_numpy(v) for k, v in state_dict(params).items()})`` accepts them."""
    return {name: np.array(value, copy=True) for name, value in params.items()}


def load_state_dict(config: RecurrentConfig, tensors: dict[str, object], *, dtype: np.dtype | type | None = None) -> Params:
    """Parameters from a PyTorch-style state dict (NumPy arrays, or torch tensors via ``.numpy()``).

    Validates every key and shape against ``config``; casts to ``dtype`` when given.
    """
    arrays = {}
    for name, value in tensors.items():
        array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        arrays[name] = cache_line_copy(array, dtype)  # dtype None: array's own
    check_recurrent_params(config, arrays)
    return arrays


@dataclass(frozen=True, eq=False)
class RecurrentCache:
    config: RecurrentConfig
    directions: tuple[tuple[SequenceCache, ...], ...]  # [layer][direction]
    dropouts: tuple[object, ...]  # dropout caches on the outputs of layers 0..L-2 (empty without dropout)
    shape: tuple[int, int, int]  # (N, T, D) of x


def _split_state(config: RecurrentConfig, state: RecurrentState | None, name: str, n: int, dtype) -> list | None:
    """PyTorch-layout state -> per (layer, direction) tuples of (N, H) arrays, validated.

    A component given as None (e.g. the c of an LSTM whose final cell state feeds no loss) stays None.
    """
    if state is None:
        return None
    names = config.state_names
    if len(names) > 1 and (not isinstance(state, tuple) or len(state) != len(names)):
        raise ValueError(f"{name}: expected a {'pair' if len(names) == 2 else 'tuple'} ({', '.join(names)}) for "
                         f"{'an LSTM' if config.cell == 'lstm' else config.cell!r}")
    components = state if len(names) > 1 else (state,)
    shape = (config.num_layers * config.num_directions, n, config.hidden_size)
    for comp_name, comp in zip(names, components):
        if comp is not None:
            label = f"{name}.{comp_name}" if len(names) > 1 else name
            check_float_array(label, comp, shape, dtype=dtype)
    return [tuple(None if comp is None else comp[row] for comp in components) for row in range(shape[0])]


def _with_zeros(row: tuple | None, kernel: CellKernel, n: int, hidden: int, dtype) -> tuple[np.ndarray, ...]:
    """One (layer, direction)'s initial state, zeros where none (or a None component) was given."""
    zeros = zero_state(kernel, n, hidden, dtype)
    return zeros if row is None else tuple(z if comp is None else comp for z, comp in zip(zeros, row))


def _join_state(config: RecurrentConfig, per_row: list[tuple[np.ndarray, ...]]) -> RecurrentState:
    """Per (layer, direction) tuples -> PyTorch-layout state."""
    if len(per_row) == 1:  # one layer, one direction: a view with the leading axis, no copy
        joined = tuple(component[None] for component in per_row[0])
    else:
        joined = tuple(np.stack([row[k] for row in per_row]) for k in range(len(per_row[0])))
    return joined if len(config.state_names) > 1 else joined[0]


def recurrent_forward(
    x: np.ndarray | None,
    params: Params,
    config: RecurrentConfig,
    *,
    mask: np.ndarray | None = None,
    state0: RecurrentState | None = None,
    training: bool = False,
    rng: np.random.Generator | None = None,
    prefix: str = "",
    keep_cache: bool = True,
    input_projections: tuple[np.ndarray, ...] | None = None,
) -> tuple[np.ndarray, RecurrentState, RecurrentCache | None]:
    """Run the layer over a batch.

    x (N, T, D); mask (N, T) bool or None; state0: h (L·dirs, N, H), (h, c) for LSTM, or None (zeros);
    ``rng`` is needed only for dropout in training; params are looked up as ``prefix + name`` (``"rnn."``
    inside a model's params).
    Returns out (N, T, dirs·H) (the last layer's outputs, zero at masked steps), the final state in the
    layout of state0, and the cache.

    ``keep_cache=False`` is inference on a model's own parameters: no cache is returned (None), the
    parameters and ``x`` are not checked again (a model checks them where they come in: initialisation,
    loading, its own input checks) and ``out`` is a (N, T, dirs·H) view of time-major memory, not a copy
    (the final state may share that memory too: treat both as read-only).

    ``input_projections``, inference only (``keep_cache=False``): layer 0's input projection x W_ihᵀ + b_ih
    of each direction, each (T, N, G·H) time-major, where the caller has it (projection tables, see
    :func:`unrolled.nn.time_loop.input_projection_in_c`); ``x`` is then None.
    """
    if keep_cache:
        # Names, shapes and dtypes; finiteness is checked where parameters come in (load_state_dict,
        # checkpoint loading): a pass over every weight on every call was a third of a B = 1 forward pass.
        dtype = check_recurrent_params(config, _unprefixed(params, prefix), finite=False)
    elif training:
        raise ValueError("keep_cache: training needs the cache (backward reads it)")
    else:
        dtype = params[prefix + "weight_hh_l0"].dtype
    if keep_cache:
        if input_projections is not None:
            raise ValueError("input_projections: for inference (keep_cache=False) only")
        x = check_float_array("x", x, (None, None, config.input_size), dtype=dtype)
    if input_projections is None:
        n, t_len, _ = x.shape
    else:
        t_len, n = input_projections[0].shape[:2]
    mask_tm = None if mask is None else (check_mask("mask", mask, (n, t_len)) if keep_cache else mask).T  # (T, N)
    rows0 = _split_state(config, state0, "state0", n, dtype)
    if training and config.dropout > 0 and config.num_layers > 1 and rng is None:
        raise ValueError("rng: dropout between layers needs a numpy.random.Generator in training")

    layer_input, final_rows, caches, dropouts = forward_layers(
        config, params, None if x is None else x.transpose(1, 0, 2), mask_tm=mask_tm, rows0=rows0,
        training=training, rng=rng, prefix=prefix, keep_cache=keep_cache, input_projections=input_projections,
    )
    if not keep_cache:
        return layer_input.transpose(1, 0, 2), _join_state(config, final_rows), None
    out = np.ascontiguousarray(layer_input.transpose(1, 0, 2))  # (N, T, dirs·H)
    cache = RecurrentCache(config, tuple(caches), tuple(dropouts), (n, t_len, config.input_size))
    return out, _join_state(config, final_rows), cache


def _unprefixed(params: Params, prefix: str) -> Params:
    return params if not prefix else recurrent_params_of(params, prefix)


def forward_layers(
    config: RecurrentConfig,
    params: Params,
    x_tm: np.ndarray | None,
    *,
    mask_tm: np.ndarray | None = None,
    rows0: list | None = None,
    training: bool = False,
    rng: np.random.Generator | None = None,
    prefix: str = "",
    keep_cache: bool = True,
    input_projections: tuple[np.ndarray, ...] | None = None,
) -> tuple[np.ndarray, list, list, list]:
    """The layers and directions of :func:`recurrent_forward`, on arguments it has checked.

    x_tm (T, N, D) time-major; mask_tm (T, N) or None; rows0: per (layer, direction) initial states (see
    ``_split_state``) or None for zeros; params looked up as ``prefix + name`` (``"rnn."`` in a model's
    params). Returns the last layer's outputs (T, N, dirs·H), the final state of each (layer, direction)
    row, the per-layer tuples of sequence caches (each None when not ``keep_cache``) and the dropout caches
    between layers. ``input_projections``: see :func:`recurrent_forward` (``x_tm`` None with them).
    """
    kernel = config.kernel
    first = x_tm if input_projections is None else input_projections[0]
    n, dtype = first.shape[1], first.dtype
    layer_input = x_tm
    caches, dropouts, final_rows = [], [], []
    for layer in range(config.num_layers):
        outs, layer_caches = [], []
        for direction in range(config.num_directions):
            row = layer * config.num_directions + direction
            out, state_t, cache = sequence_forward(
                kernel,
                layer_input,
                _with_zeros(rows0[row] if rows0 is not None else None, kernel, n, config.hidden_size, dtype),
                config.direction_params(params, layer, direction, prefix),
                mask=mask_tm,
                reverse=direction == 1,
                keep_cache=keep_cache,
                xw=input_projections[direction] if layer == 0 and input_projections is not None else None,
            )
            outs.append(out)
            layer_caches.append(cache)
            final_rows.append(state_t)
        layer_input = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=2)  # (T, N, dirs·H)
        caches.append(tuple(layer_caches))
        if layer < config.num_layers - 1 and training and config.dropout > 0:
            layer_input, dropout_cache = dropout_forward(layer_input, config.dropout, training=True, rng=rng)
            dropouts.append(dropout_cache)
    return layer_input, final_rows, caches, dropouts


def recurrent_backward(
    dout: np.ndarray | None,
    dstate_final: RecurrentState | None,
    cache: RecurrentCache,
    *,
    dstates_out: dict | None = None,
) -> tuple[np.ndarray, RecurrentState, Params]:
    """BPTT through :func:`recurrent_forward`.

    dout (N, T, dirs·H) or None; dstate_final in the layout of the final state, or None.
    dstates_out: an optional dict that receives, for every ``(layer, direction)``, a (T, N, H) array in
    the original time order: the total gradient reaching that direction's hidden state h at each step
    (see :func:`unrolled.nn.time_loop.sequence_backward`). Nothing is recorded when None.
    Returns dx (N, T, D), dstate0 (layout of state0) and the gradients of every parameter (PyTorch names).
    """
    config = cache.config
    n, t_len, _ = cache.shape
    dtype = cache.directions[0][0].x.dtype
    if dout is not None:
        check_float_array("dout", dout, (n, t_len, config.output_size), dtype=dtype)
    drows = _split_state(config, dstate_final, "dstate_final", n, dtype)
    hidden = config.hidden_size

    d_layer_out = None if dout is None else dout.transpose(1, 0, 2)  # (T, N, dirs·H)
    grads: Params = {}
    drows0: list = [None] * (config.num_layers * config.num_directions)
    for layer in range(config.num_layers - 1, -1, -1):
        if layer < config.num_layers - 1 and cache.dropouts and d_layer_out is not None:
            d_layer_out = dropout_backward(d_layer_out, cache.dropouts[layer])
        d_input = None
        for direction in range(config.num_directions):
            row = layer * config.num_directions + direction
            d_out_dir = None if d_layer_out is None else d_layer_out[:, :, direction * hidden : (direction + 1) * hidden]
            record = None
            if dstates_out is not None:
                record = dstates_out[(layer, direction)] = np.empty((t_len, n, hidden), dtype=dtype)
            dx, dstate0, g = sequence_backward(
                d_out_dir, None if drows is None else drows[row], cache.directions[layer][direction],
                dstates_out=record,
            )
            d_input = dx if d_input is None else d_input + dx
            drows0[row] = dstate0
            s = config.suffix(layer, direction)
            grads.update({name + s: g[name] for name in PARAM_NAMES})
        d_layer_out = d_input
    dx = d_layer_out.transpose(1, 0, 2)  # (N, T, D), time-major in memory like the layer's input
    ordered = {name: grads[name] for name in config.param_shapes()}
    return dx, _join_state(config, drows0), ordered


__all__ = [
    "CELLS",
    "RecurrentCache",
    "RecurrentConfig",
    "check_recurrent_params",
    "forward_layers",
    "init_recurrent_params",
    "load_state_dict",
    "recurrent_backward",
    "recurrent_forward",
    "recurrent_params_of",
    "state_dict",
    "sub_params",
]
