"""The recurrence shared by every cell: one time loop forward, BPTT written once.

A cell (Elman RNN, GRU, LSTM) contributes a *kernel*: the math of one step, given the input projection of
that step. This module runs the kernel over time. Dimension letters: T time, N batch, D input, H hidden,
G gates (1 RNN, 3 GRU, 4 LSTM), S activations a step keeps for backward.

Forward over time-major x (T, N, D), fast by construction:

    xw = x W_ihᵀ + b_ih                               one GEMM for all T steps       (T, N, G·H)
    for t = 1..T:
        state_t = kernel(xw_t, state_{t-1})           only h_{t-1} W_hhᵀ inside the loop
        a masked (padded) step keeps state_{t-1}:     state_t = m_t ⊙ state_t + (1 − m_t) ⊙ state_{t-1}

Backward (BPTT) walks t = T..1. The kernel turns the gradient of state_t into the gradients of its two
pre-activations, dxw_t (of xw_t) and dhw_t (of h_{t-1} W_hhᵀ + b_hh; equal to dxw_t except for GRU's
n gate), which are stacked in (T, N, G·H) buffers, so every weight gradient is one GEMM after the loop:

    dW_ih = Σ_t dxw_tᵀ x_t        dW_hh = Σ_t dhw_tᵀ h_{t-1}        dx = dxw W_ih

A reversed direction is the same recurrence over time-flipped inputs: with right-padded masks it starts at
each sequence's own last real token, because the padded steps it meets first keep the initial state.

Right-padded batches (each row's real steps first, the usual case) pay nothing for their padding: the rows
are sorted by length, longest first, so that the rows a step runs on are a prefix of the batch (in either
direction); each step's kernel and product run on those rows only, and the GEMMs before and after the loop
run on the real steps packed one after another, as a PyTorch PackedSequence holds them. Other masks take
the general path above. When the kernel has them (the C extension, nn/fused.py), the whole loop runs in one
call of the kernel's ``sequence`` for batches of up to SMALL_BATCH rows (a BLAS call per step costs more
than a few rows' arithmetic) and for batches without padding up to ``packed_hidden_max`` units, and BPTT's
loop in one call of ``backward_sequence`` for those without padding: their recurrent product keeps W_hh
packed in cache across the steps, where BLAS re-reads and re-packs it at every call.

Subnormal numbers: gradients that vanish over many steps decay into float subnormals, and on many x86
CPUs (Intel's above all) every operation on one takes a slow microcode path. Every FLUSH_EVERY steps and at
the end, the backward pass sets carried gradients below the dtype's smallest normal number to zero — what
flush-to-zero mode (``torch.set_flush_denormal``) does in hardware; the change to any gradient is below
1.2e-38 (float32) or 2.3e-308 (float64). A value therefore stays subnormal for fewer than FLUSH_EVERY steps
instead of drifting through the whole subnormal range; checking every step cost ~13 % of an Elman backward
pass on the AMD EPYC that the benchmarks first ran on, whose subnormal arithmetic is as fast as normal. On
top of that, both passes run with the CPU's own flush-to-zero mode on (``fused.subnormals_flushed``, FTZ/DAZ
when the C extension is built): on an Intel Xeon a 32·256·128·128 LSTM training step took 4.2× longer
without it (see README and docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from unrolled.nn import fused
from unrolled.nn._validation import check_float_array, check_mask
from unrolled.nn.fused import subnormals_flushed

State = tuple[np.ndarray, ...]  # one (N, H) array per state component: (h,) or (h, c)
Params = dict[str, np.ndarray]  # weight_ih (G·H, D), weight_hh (G·H, H), bias_ih (G·H,), bias_hh (G·H,)
PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
FLUSH_EVERY = 8  # steps between flushes of subnormal carried gradients (see the module docstring)
SMALL_BATCH = 4  # up to this many rows, a kernel's ``sequence`` (if any) runs the loop: per-step BLAS calls
# and Python overhead cost more than the arithmetic of a few rows (B = 1 inference above all)


@dataclass(frozen=True)
class CellKernel:
    """The math of one step of a recurrent cell, in the form the time loop needs.

    forward(xw, state_prev, weight_hh, bias_hh, state_out, saved_out) -> None
        xw (N, G·H) = x_t W_ihᵀ + b_ih; writes the new state into ``state_out`` (one (N, H) view per
        component) and the activations backward needs into ``saved_out`` (S, N, H).
    backward(dstate, saved, state, state_prev, weight_hh, dxw_out, dhw_out) -> dstate_prev
        dstate: gradient of the new state (one (N, H) per component); writes dxw_out and dhw_out (N, G·H)
        (the same buffer when ``shared_preactivation``) and returns the gradient of state_prev.
    """

    name: str
    num_gates: int  # G
    state_names: tuple[str, ...]  # ("h",) or ("h", "c")
    saved_names: tuple[str, ...]  # names of the S per-step activations, e.g. GRU ("r", "z", "n", "hn")
    forward: Callable[..., None]
    backward: Callable[..., State]
    shared_preactivation: bool  # dhw_t == dxw_t (RNN, LSTM); False for GRU
    # Optional: the whole forward loop in one call, for a batch without padding or a small one (see
    # SMALL_BATCH): sequence(xw, weight_hh, bias_hh, state0, mask, states_out, saved_out) -> None, arguments
    # as in sequence_forward's loop (mask (T, N) bool or None). nn/fused.py supplies it when the extension is built.
    sequence: Callable[..., None] | None = None
    # Optional: BPTT's loop in one call, for a batch without padding and hidden <= packed_hidden_max:
    # backward_sequence(dout, dcarry, states, state0, saved, weight_hh, dxw, dhw, flush_every) -> None, with
    # sequence_backward's names (dout (T, N, H) or None; dcarry the carried gradients, updated in place from the
    # final state's to the initial state's; dxw, dhw written). nn/fused.py supplies it with ``sequence``.
    backward_sequence: Callable[..., None] | None = None
    # The largest hidden size whose batches of more than SMALL_BATCH rows ``sequence`` runs, and that
    # ``backward_sequence`` runs (their recurrent product keeps W_hh in cache; beyond it BLAS is faster).
    packed_hidden_max: int = 0


@dataclass(frozen=True, eq=False)
class StepCache:
    """What one step keeps for its backward (the step level: one time step, readable)."""

    kernel: CellKernel
    x: np.ndarray  # (N, D)
    state_prev: State  # each (N, H)
    state: State  # each (N, H)
    saved: np.ndarray  # (S, N, H) activations named by kernel.saved_names
    params: Params


@dataclass(frozen=True, eq=False)
class SequenceCache:
    """What a whole sequence keeps for BPTT. Arrays are time-major and in processing order
    (a reversed direction stores its inputs flipped in time)."""

    kernel: CellKernel
    x: np.ndarray  # (T, N, D) inputs in processing order; right-padded (active not None): the real steps'
    # inputs only, packed (R, D) (step t's rows are R-offsets cumsum(active)[t-1] onward, active[t] of them)
    state0: State  # each (N, H) initial state
    states: State  # each (T, N, H): the state after each processing step (carried through masked steps)
    saved: np.ndarray  # (T, S, N, H) per-step activations named by kernel.saved_names
    step_mask: np.ndarray | None  # (T, N, 1) 1.0 for a real step, 0.0 for padding, in x's dtype
    params: Params
    reverse: bool
    # Right-padded batches (see sequence_forward): the arrays above hold the rows in the order ``rows`` (the
    # batch sorted by length, longest first) and step t ran on the first ``active[t]`` rows only; both None
    # for a batch without padding or with another mask.
    rows: np.ndarray | None = None  # (N,) original row of each stored row
    active: np.ndarray | None = None  # (T,) real rows at each processing step

    # Readers in the caller's terms: (T, N, ...) in the original time order and row order, whatever the
    # storage (reversed, length-sorted, packed). Copies; use them to look at a cache, not in a hot loop.

    def in_caller_order(self, per_step: np.ndarray) -> np.ndarray:
        """A stored per-step array (T, N, ...) (processing order, stored rows) -> the caller's order."""
        if self.reverse:
            per_step = per_step[::-1]
        if self.rows is not None:
            per_step = per_step[:, np.argsort(self.rows)]
        return np.array(per_step)

    def inputs(self) -> np.ndarray:
        """(T, N, D) the inputs the cell read (zero at padded steps of a right-padded batch)."""
        if self.active is None:
            return self.in_caller_order(self.x)
        unpacked = np.zeros(self.step_mask.shape[:2] + self.x.shape[-1:], dtype=self.x.dtype)
        unpacked[self.step_mask[:, :, 0] > 0] = self.x
        return self.in_caller_order(unpacked)

    def state(self, component: str = "h") -> np.ndarray:
        """(T, N, H) a state component (``kernel.state_names``) after each step; a padded step carries the
        state before it."""
        return self.in_caller_order(self.states[self.kernel.state_names.index(component)])

    def activation(self, name: str) -> np.ndarray:
        """(T, N, H) one of the activations a step keeps for backward (``kernel.saved_names``, e.g. a gate);
        zero at padded steps of a right-padded batch."""
        return self.in_caller_order(self.saved[:, self.kernel.saved_names.index(name)])


def check_params(params: Params, num_gates: int, input_size: int | None = None, prefix: str = "") -> np.dtype:
    """Validate one direction's parameters; return their common dtype."""
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise ValueError(f"params: missing {', '.join(prefix + k for k in missing)}")
    weight_hh = check_float_array(prefix + "weight_hh", params["weight_hh"], (None, None))
    gh, hidden = weight_hh.shape
    if gh != num_gates * hidden:
        raise ValueError(f"{prefix}weight_hh: expected shape ({num_gates}·H, H), got {weight_hh.shape}")
    dtype = weight_hh.dtype
    check_float_array(prefix + "weight_ih", params["weight_ih"], (gh, input_size), dtype=dtype)
    check_float_array(prefix + "bias_ih", params["bias_ih"], (gh,), dtype=dtype)
    check_float_array(prefix + "bias_hh", params["bias_hh"], (gh,), dtype=dtype)
    return dtype


def zero_state(kernel: CellKernel, n: int, h: int, dtype: np.dtype) -> State:
    return tuple(np.zeros((n, h), dtype=dtype) for _ in kernel.state_names)


def check_state(name: str, kernel: CellKernel, state: State | None, n: int, h: int, dtype: np.dtype) -> State:
    """Validate an initial state (None means zeros): a tuple of (N, H) arrays, one per component."""
    if state is None:
        return zero_state(kernel, n, h, dtype)
    if not isinstance(state, tuple) or len(state) != len(kernel.state_names):
        raise ValueError(f"{name}: expected a tuple of {len(kernel.state_names)} arrays {kernel.state_names}")
    for comp, s in zip(kernel.state_names, state):
        check_float_array(f"{name}.{comp}", s, (n, h), dtype=dtype)
    return state


# --- the step level: one time step ---------------------------------------------------------------------


def step_forward(kernel: CellKernel, x: np.ndarray, state_prev: State, params: Params) -> tuple[State, StepCache]:
    """One step of a cell. x (N, D), state_prev each (N, H) -> state each (N, H)."""
    n, hidden = state_prev[0].shape
    xw = x @ params["weight_ih"].T + params["bias_ih"]  # (N, G·H)
    state = tuple(np.empty((n, hidden), dtype=x.dtype) for _ in kernel.state_names)
    saved = np.empty((len(kernel.saved_names), n, hidden), dtype=x.dtype)
    kernel.forward(xw, state_prev, params["weight_hh"], params["bias_hh"], state, saved)
    return state, StepCache(kernel, x, state_prev, state, saved, params)


def step_backward(dstate: State, cache: StepCache) -> tuple[np.ndarray, State, Params]:
    """Backward of one step: dstate each (N, H) -> dx (N, D), dstate_prev, grads of the four parameters."""
    kernel, params = cache.kernel, cache.params
    dxw = np.empty((cache.x.shape[0], params["weight_hh"].shape[0]), dtype=cache.x.dtype)
    dhw = dxw if kernel.shared_preactivation else np.empty_like(dxw)
    dstate_prev = kernel.backward(dstate, cache.saved, cache.state, cache.state_prev, params["weight_hh"], dxw, dhw)
    grads = {
        "weight_ih": dxw.T @ cache.x,
        "weight_hh": dhw.T @ cache.state_prev[0],
        "bias_ih": dxw.sum(axis=0),
        "bias_hh": dhw.sum(axis=0),
    }
    return dxw @ params["weight_ih"], dstate_prev, grads


# --- the sequence level: the whole time loop -------------------------------------------------------------


@subnormals_flushed
def sequence_forward(
    kernel: CellKernel,
    x: np.ndarray | None,
    state0: State,
    params: Params,
    *,
    mask: np.ndarray | None = None,
    reverse: bool = False,
    keep_cache: bool = True,
    xw: np.ndarray | None = None,
) -> tuple[np.ndarray, State, SequenceCache | None]:
    """Run a cell over a time-major sequence. Arguments are assumed validated (the cell modules check them).

    x (T, N, D); state0 each (N, H); mask (T, N) bool or None.
    ``xw`` (T, N, G·H), inference only: the input projection x W_ihᵀ + b_ih, already computed by the caller
    where :func:`input_projection_in_c` holds (a :class:`unrolled.nn.projection_table.ProjectionTable`'s
    rows, the same values); ``x`` is then not read.
    Returns out (T, N, H) in the original time order (zero at masked steps), the final state (each (N, H):
    each sequence's state after its own last real step) and the cache (None when not ``keep_cache``:
    inference). Treat ``out`` as read-only.
    """
    given = xw is not None
    t_len, n = (xw if given else x).shape[:2]
    d = None if given else x.shape[2]
    gh, hidden = params["weight_hh"].shape
    dtype = (xw if given else x).dtype
    if mask is not None and mask.all():
        mask = None  # no padding (or no steps, T = 0): the same computation without a mask
    in_c = _loop_in_c(kernel, t_len, n, hidden, mask)
    # A few rows' input projection in C (b_ih added there too); in_c implies no length order (`active`).
    projected_in_c = in_c and t_len * n <= fused.PROJECT_ROWS_MAX
    if given and (keep_cache or not projected_in_c):
        raise ValueError("xw: an input projection is given only for inference where input_projection_in_c holds")
    rows, active = (None, None) if mask is None or in_c else _length_order(mask)
    if reverse:
        if given:
            xw = np.ascontiguousarray(xw[::-1])
        else:
            x = x[::-1]
        mask = None if mask is None else mask[::-1]
        active = None if active is None else active[::-1]
    if rows is not None:  # longest sequences first: the real rows of every step are then a prefix of the batch
        x, mask, state0 = x[:, rows], mask[:, rows], tuple(s[rows] for s in state0)
    elif not given:
        x = np.ascontiguousarray(x)
    step_mask = None if mask is None else mask[:, :, None].astype(dtype)

    # The input projection of every step at once: (T·N, D) @ (D, G·H); right-padded, of the real steps only:
    # step t's real rows are a prefix, so packing them step after step is x[mask] ((R, D), R real steps).
    if given:
        step_xw = xw.__getitem__
    elif projected_in_c:
        xw = fused.project_rows(x.reshape(t_len * n, d), params["weight_ih"], params["bias_ih"]).reshape(t_len, n, gh)
        step_xw = xw.__getitem__
    elif active is None and n <= SMALL_BATCH and in_c:
        # A few rows: W_ih x (no transposed operand) is the faster BLAS call at this size, then made C-order.
        xw = np.ascontiguousarray((params["weight_ih"] @ x.reshape(t_len * n, d).T).T).reshape(t_len, n, gh)
        step_xw = xw.__getitem__
    elif active is None:
        xw = (x.reshape(t_len * n, d) @ params["weight_ih"].T).reshape(t_len, n, gh)  # explicit G·H: T = 0
        step_xw = xw.__getitem__
    else:
        x = x[mask]  # (R, D)
        xw = x @ params["weight_ih"].T  # (R, G·H)
        offsets = _offsets(active)
        step_xw = lambda t: xw[offsets[t] : offsets[t + 1]]  # noqa: E731  (active[t], G·H)
    if not projected_in_c:
        xw += params["bias_ih"]

    states = tuple(np.empty((t_len, n, hidden), dtype=dtype) for _ in kernel.state_names)
    saved = np.empty((t_len, len(kernel.saved_names), n, hidden), dtype=dtype)
    weight_hh, bias_hh = params["weight_hh"], params["bias_hh"]
    if in_c:
        kernel.sequence(xw, weight_hh, bias_hh, state0, mask, states, saved)  # the loop below, in one call
    else:
        # The kernels multiply by weight_hh.T; handed W_hh laid out column-major, that transpose is a plain
        # C-contiguous matrix, which OpenBLAS multiplies ~20 % faster at these small per-step sizes.
        weight_hh = np.asfortranarray(weight_hh)
        state_prev = state0
        for t in range(t_len):
            state_t = tuple(s[t] for s in states)
            real = n if active is None else int(active[t])
            if real == n:
                kernel.forward(step_xw(t), state_prev, weight_hh, bias_hh, state_t, saved[t])
            elif real:  # only the first `real` rows step; the C kernels want their own (S, real, H) block
                part = np.empty((saved.shape[1], real, hidden), dtype=dtype)
                kernel.forward(step_xw(t), tuple(p[:real] for p in state_prev), weight_hh, bias_hh,
                               tuple(p[:real] for p in state_t), part)
                saved[t, :, :real] = part
            if real < n:
                saved[t, :, real:] = 0.0
                for new, old in zip(state_t, state_prev):
                    new[real:] = old[real:]  # padded rows keep their previous state
            if mask is not None and active is None:
                keep = ~mask[t][:, None]  # (N, 1): padded rows keep their previous state
                for new, old in zip(state_t, state_prev):
                    np.copyto(new, old, where=keep)
            state_prev = state_t

    out = states[0] if step_mask is None else states[0] * step_mask
    if reverse:
        out = out[::-1]
    if not keep_cache and t_len and rows is None:  # inference: views (``out`` is one already)
        state_final = tuple(s[-1] for s in states)
    else:
        state_final = tuple(s[-1].copy() for s in states) if t_len else tuple(s.copy() for s in state0)
    if rows is not None:  # back to the caller's row order
        order = np.argsort(rows)
        out, state_final = out[:, order], tuple(s[order] for s in state_final)
    if not keep_cache:
        return out, state_final, None
    cache = SequenceCache(kernel, x, state0, states, saved, step_mask, params, reverse, rows, active)
    return out, state_final, cache


def _loop_in_c(kernel: CellKernel, t_len: int, n: int, hidden: int, mask: np.ndarray | None) -> bool:
    """Whether sequence_forward runs its time loop in one C call: small batches, and others without padding
    up to packed_hidden_max units (a large padded batch steps each step's real rows only, in Python; T = 0
    runs no step). ``mask`` None when there is no padding."""
    unpadded_in_c = mask is None and hidden <= kernel.packed_hidden_max
    return kernel.sequence is not None and (n <= SMALL_BATCH or unpadded_in_c) and t_len > 0


def input_projection_in_c(kernel: CellKernel, t_len: int, n: int, hidden: int, mask: np.ndarray | None) -> bool:
    """Whether sequence_forward computes the input projection of a (T, N) batch with ``fused.project_rows``
    (whose every output row depends on its own input row only, not on T·N): what a caller that has those rows
    already (a projection table) may hand it as ``xw``, the same values. ``mask`` (T, N) or None."""
    if mask is not None and mask.all():
        mask = None
    return _loop_in_c(kernel, t_len, n, hidden, mask) and t_len * n <= fused.PROJECT_ROWS_MAX


def _offsets(active: np.ndarray) -> np.ndarray:
    """(T + 1,) where each step's rows start in the packed (R, ...) arrays of a right-padded batch."""
    return np.concatenate(([0], np.cumsum(active)))


def _length_order(mask: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """For a right-padded mask (T, N) (each row's real steps first): the rows sorted by length, longest
    first, and the number of real rows at each step; (None, None) for any other mask.

    In that order the rows a step runs on are a prefix of the batch, in either direction, so each step's
    kernel and matrix product run on the real rows only, and the big products before and after the loop on
    the real steps packed one after another (as a PyTorch PackedSequence holds them): no padded step costs
    arithmetic.
    """
    lengths = mask.sum(axis=0)  # (N,)
    if not np.array_equal(mask, np.arange(mask.shape[0])[:, None] < lengths[None, :]):
        return None, None
    return np.argsort(-lengths, kind="stable"), mask.sum(axis=1)


@subnormals_flushed
def sequence_backward(
    dout: np.ndarray | None,
    dstate_final: State | None,
    cache: SequenceCache,
    *,
    dstates_out: np.ndarray | None = None,
) -> tuple[np.ndarray, State, Params]:
    """BPTT through :func:`sequence_forward`.

    dout (T, N, H) in the original time order, or None when only the final state feeds the loss;
    dstate_final: gradient of the final state (entries may be None), or None.
    dstates_out: an optional (T, N, H) buffer; row t (original time order) receives the total gradient of
    the state component h at step t, i.e. the carried gradient after adding dout[t], before the step
    splits it into its parts (what ``h_t.grad`` is in an autograd framework). Nothing is recorded when None.
    Returns dx (T, N, D) in the original time order, dstate0 (each (N, H)) and the parameter gradients.
    """
    kernel, params, x = cache.kernel, cache.params, cache.x
    t_len, n = cache.states[0].shape[:2]
    d = x.shape[-1]
    gh, hidden = params["weight_hh"].shape
    dtype = x.dtype
    weight_hh = params["weight_hh"]
    tiny = np.finfo(dtype).tiny
    step_mask = cache.step_mask
    rows, active = cache.rows, cache.active
    order = None if rows is None else np.argsort(rows)  # stored row -> caller's row
    if dout is not None:
        check_float_array("dout", dout, (t_len, n, hidden), dtype=dtype)
        if cache.reverse:
            dout = dout[::-1]
        if rows is not None:
            dout = dout[:, rows]
    if dstates_out is not None and dstates_out.shape != (t_len, n, hidden):
        raise ValueError(f"dstates_out: expected shape {(t_len, n, hidden)}, got {dstates_out.shape}")

    # The carried gradient of each state component, starting from the final state's.
    dcarry = [np.zeros((n, hidden), dtype=dtype) for _ in kernel.state_names]
    for k, g in enumerate(dstate_final or ()):
        if g is not None:
            check_float_array(f"dstate_final[{k}]", g, (n, hidden), dtype=dtype)
            dcarry[k] += g if rows is None else g[rows]

    # Per-step deltas, stacked (T, N, G·H); right-padded, packed (R, G·H) like the cache's inputs.
    dxw = np.empty((t_len, n, gh) if active is None else (x.shape[0], gh), dtype=dtype)
    dhw = dxw if kernel.shared_preactivation else np.empty_like(dxw)
    offsets = None if active is None else _offsets(active)
    in_python = (kernel.backward_sequence is None or step_mask is not None or dstates_out is not None
                 or hidden > kernel.packed_hidden_max or t_len == 0)  # (T = 0: no step to run either way)
    if not in_python:  # no padding, nothing recorded per step: the loop below in one C call
        kernel.backward_sequence(dout, dcarry, cache.states, cache.state0, cache.saved, weight_hh, dxw, dhw,
                                 FLUSH_EVERY)
    for t in range(t_len - 1, -1, -1) if in_python else ():
        if dout is not None:
            dcarry[0] += dout[t] if step_mask is None else dout[t] * step_mask[t]
        if dstates_out is not None:
            dstates_out[t_len - 1 - t if cache.reverse else t] = dcarry[0] if order is None else dcarry[0][order]
        state = tuple(s[t] for s in cache.states)
        state_prev = tuple(s[t - 1] for s in cache.states) if t > 0 else cache.state0
        if active is not None:
            # Right-padded: the first `real` rows take their whole gradient, the others pass it straight on.
            real, begin = int(active[t]), offsets[t]
            if real:
                saved_t = np.ascontiguousarray(cache.saved[t, :, :real])  # a copy only when real < n
                dprev = kernel.backward(
                    tuple(dc[:real] for dc in dcarry), saved_t, tuple(s[:real] for s in state),
                    tuple(s[:real] for s in state_prev), weight_hh, dxw[begin : begin + real],
                    dhw[begin : begin + real],
                )
                for k, dp in enumerate(dprev):
                    dcarry[k][:real] = dp
        else:
            if step_mask is None:
                dnew = dcarry
            else:
                # A real step takes the whole gradient; a padded step passes it straight to the previous state.
                dnew = [dc * step_mask[t] for dc in dcarry]
                for dc in dcarry:
                    dc *= 1.0 - step_mask[t]
            dprev = kernel.backward(tuple(dnew), cache.saved[t], state, state_prev, weight_hh, dxw[t], dhw[t])
            for k, dp in enumerate(dprev):
                if step_mask is None:
                    dcarry[k] = dp
                else:
                    dcarry[k] += dp
        if t % FLUSH_EVERY == 0:
            for dc in dcarry:
                _flush_subnormals(dc, tiny)

    # Weight gradients: one GEMM each over the stacked per-step deltas.
    dxw2 = dxw.reshape(-1, gh)
    dhw2 = dhw.reshape(-1, gh)
    bias_ih = dxw2.sum(axis=0)
    grads = {
        "weight_ih": dxw2.T @ x.reshape(-1, d),
        "weight_hh": (
            _weight_hh_grad(dhw, cache.state0[0], cache.states[0])
            if active is None
            else _packed_weight_hh_grad(dhw, cache.state0[0], cache.states[0], step_mask[:, :, 0] > 0)
        ),
        "bias_ih": bias_ih,
        "bias_hh": bias_ih.copy() if dhw is dxw else dhw2.sum(axis=0),  # one sum when the deltas are shared
    }
    if active is None:
        dx = (dxw2 @ params["weight_ih"]).reshape(t_len, n, d)
    else:
        dx = np.zeros((t_len, n, d), dtype=dtype)
        dx[step_mask[:, :, 0] > 0] = dxw2 @ params["weight_ih"]  # back from packed; padded steps get none
    if cache.reverse:
        dx = dx[::-1]
    if order is not None:
        dx, dcarry = dx[:, order], [dc[order] for dc in dcarry]
    return dx, tuple(dcarry), grads


def _weight_hh_grad(dhw: np.ndarray, h0: np.ndarray, hs: np.ndarray) -> np.ndarray:
    """Σ_t dhw_tᵀ h_{t-1} with h_{t-1} = h0 for t = 1: two GEMMs, no stacked copy of the previous states."""
    t_len, n, gh = dhw.shape
    if t_len == 0:  # no steps: no gradient
        return np.zeros((gh, h0.shape[1]), dtype=dhw.dtype)
    grad = dhw[0].T @ h0
    if t_len > 1:
        grad += dhw[1:].reshape((t_len - 1) * n, gh).T @ hs[:-1].reshape((t_len - 1) * n, -1)
    return grad


def _packed_weight_hh_grad(dhw: np.ndarray, h0: np.ndarray, hs: np.ndarray, real: np.ndarray) -> np.ndarray:
    """:func:`_weight_hh_grad` for packed deltas dhw (R, G·H) of a right-padded batch whose real steps are
    ``real`` (T, N) bool: the previous states of the real steps packed alike, two GEMMs."""
    first = int(real[0].sum()) if real.shape[0] else 0
    grad = dhw[:first].T @ h0[:first]
    if real.shape[0] > 1:
        grad += dhw[first:].T @ hs[:-1][real[1:]]
    return grad


def _flush_subnormals(a: np.ndarray, tiny: float) -> None:
    """Set entries with |a| < tiny (the smallest normal number) to zero, in place."""
    np.copyto(a, 0.0, where=np.abs(a) < tiny)


def cell_step_forward(
    kernel: CellKernel, x: np.ndarray, state_prev: State, params: Params
) -> tuple[State, StepCache]:
    """:func:`step_forward` with its arguments checked: x (N, D), state_prev each (N, H)."""
    dtype = check_params(params, kernel.num_gates)
    check_float_array("x", x, (None, params["weight_ih"].shape[1]), dtype=dtype)
    state_prev = check_state("state_prev", kernel, state_prev, x.shape[0], params["weight_hh"].shape[1], dtype)
    return step_forward(kernel, x, state_prev, params)


def cell_forward(
    kernel: CellKernel,
    x: np.ndarray,
    state0: State | None,
    params: Params,
    *,
    mask: np.ndarray | None = None,
    reverse: bool = False,
) -> tuple[np.ndarray, State, SequenceCache]:
    """:func:`sequence_forward` on batch-major arrays, arguments checked.

    x (N, T, D), state0 each (N, H) or None (zeros), mask (N, T) bool or None (all steps real).
    Returns out (N, T, H) (zero at masked steps), the final state and the cache.
    """
    dtype = check_params(params, kernel.num_gates)
    x = check_float_array("x", x, (None, None, params["weight_ih"].shape[1]), dtype=dtype)
    n, t_len, _ = x.shape
    state0 = check_state("state0", kernel, state0, n, params["weight_hh"].shape[1], dtype)
    if mask is not None:
        mask = check_mask("mask", mask, (n, t_len)).T
    out, state_final, cache = sequence_forward(kernel, x.transpose(1, 0, 2), state0, params, mask=mask, reverse=reverse)
    return np.ascontiguousarray(out.transpose(1, 0, 2)), state_final, cache


def cell_backward(
    dout: np.ndarray | None, dstate_final: State | None, cache: SequenceCache
) -> tuple[np.ndarray, State, Params]:
    """:func:`sequence_backward` on batch-major arrays: dout (N, T, H) -> dx (N, T, D), dstate0, grads."""
    dx, dstate0, grads = sequence_backward(
        None if dout is None else dout.transpose(1, 0, 2), dstate_final, cache
    )
    return np.ascontiguousarray(dx.transpose(1, 0, 2)), dstate0, grads


__all__ = [
    "CellKernel",
    "SequenceCache",
    "StepCache",
    "cell_backward",
    "cell_forward",
    "cell_step_forward",
    "check_params",
    "check_state",
    "input_projection_in_c",
    "sequence_backward",
    "sequence_forward",
    "step_backward",
    "step_forward",
]
