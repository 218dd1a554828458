"""A readable reference of the three cells: forward and BPTT in plain NumPy, one screen per cell.

This is the algorithm written out the way min-char-rnn (Karpathy) and CS231n's ``rnn_layers.py`` write it:
a plain Python loop over time with one line per equation, and a backward loop that walks t = T..1 carrying
the gradient of the state, ``dh_next`` (and ``dc_next`` for the LSTM), adding every step's share of the
weight gradients with ``+=``. No optimisation, no fused kernels, no packing, no preallocated buffers: it is
the algorithm a reader can follow, and the oracle the tests hold the fast engine to. The fast path (one
GEMM for the input projection, per-step kernels, sorted/packed right-padded batches, C kernels) lives in
``unrolled.nn.time_loop`` and the kernels in ``rnn.py``, ``gru.py`` and ``lstm.py``.

Conventions are the engine's (and PyTorch's): batch-major x (N, T, D), row vectors, params
weight_ih (G·H, D), weight_hh (G·H, H), bias_ih (G·H,), bias_hh (G·H,); GRU gates r, z, n with
n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)) and h' = (1 − z) ⊙ n + z ⊙ h; LSTM gates i, f, g, o.

Masks, as ``time_loop.sequence_forward``: mask (N, T) bool, True at real steps. A padded step keeps the
previous state, outputs zero and receives no gradient. ``reverse=True`` runs the same recurrence over the
time-flipped input (x and mask flipped, outputs flipped back), so with right padding the reverse direction
starts at each sequence's own last real step. Imports nothing but NumPy: it must stand on its own.
"""

from __future__ import annotations

import numpy as np

NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _prepare(x, mask, reverse):
    """x (N, T, D) and mask (N, T) in processing order; no mask means every step is real."""
    m = np.ones(x.shape[:2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)  # (N, T)
    return (x[:, ::-1], m[:, ::-1]) if reverse else (x, m)


def _flip(a, reverse):
    """Back to the caller's time order (axis 1)."""
    return np.ascontiguousarray(a[:, ::-1] if reverse else a)


def _zeros_like_params(params):
    return {k: np.zeros_like(params[k]) for k in NAMES}  # the four gradients, each like its parameter


# --- Elman RNN: h_t = act(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh) -----------------------------------


def rnn_reference_forward(x, h0, params, nonlinearity="tanh", mask=None, reverse=False):
    """x (N, T, D), h0 (N, H) or None -> out (N, T, H), h_T (N, H), cache."""
    W_ih, W_hh, b_ih, b_hh = (params[k] for k in NAMES)
    x, m = _prepare(x, mask, reverse)
    N, T, _ = x.shape
    h = np.zeros((N, W_hh.shape[1]), x.dtype) if h0 is None else h0  # (N, H)
    out = np.zeros((N, T, W_hh.shape[1]), x.dtype)  # (N, T, H)
    steps = []
    for t in range(T):
        a = x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh  # (N, H)
        h_new = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)  # (N, H)
        steps.append((h, h_new))  # h_{t-1}, and h_t before the mask
        keep = m[:, t : t + 1]  # (N, 1) True at a real step
        h = np.where(keep, h_new, h)  # (N, H) a padded step keeps the previous state
        out[:, t] = np.where(keep, h, 0.0)  # a padded step outputs zero
    return _flip(out, reverse), h, (x, m, params, nonlinearity, steps, reverse)


def rnn_reference_backward(dout, dh_final, cache):
    """dout (N, T, H) or None, dh_final (N, H) or None -> dx (N, T, D), dh0 (N, H), grads."""
    x, m, params, nonlinearity, steps, reverse = cache
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    N, T, _ = x.shape
    H = W_hh.shape[1]
    dout = np.zeros((N, T, H), x.dtype) if dout is None else _flip(dout, reverse)  # (N, T, H) processing order
    dh_next = np.zeros((N, H), x.dtype) if dh_final is None else dh_final.copy()  # (N, H)
    dx = np.zeros_like(x)  # (N, T, D)
    grads = _zeros_like_params(params)
    for t in reversed(range(T)):
        h_prev, h_new = steps[t]
        keep = m[:, t : t + 1]  # (N, 1)
        dh = dh_next + np.where(keep, dout[:, t], 0.0)  # (N, H) total gradient of h_t
        dh_real = np.where(keep, dh, 0.0)  # (N, H) what reaches the cell (none at a padded step)
        act_grad = 1.0 - h_new**2 if nonlinearity == "tanh" else (h_new > 0).astype(x.dtype)  # (N, H)
        da = dh_real * act_grad  # (N, H)
        dx[:, t] = da @ W_ih  # (N, D)
        grads["weight_ih"] += da.T @ x[:, t]
        grads["weight_hh"] += da.T @ h_prev
        grads["bias_ih"] += da.sum(axis=0)
        grads["bias_hh"] += da.sum(axis=0)
        dh_next = np.where(keep, 0.0, dh) + da @ W_hh  # (N, H) a padded step passes dh straight on
    return _flip(dx, reverse), dh_next, grads


# --- GRU: gates r, z, n (PyTorch / ONNX linear_before_reset = 1) -----------------------------------------


def gru_reference_forward(x, h0, params, mask=None, reverse=False):
    """x (N, T, D), h0 (N, H) or None -> out (N, T, H), h_T (N, H), cache."""
    W_ih, W_hh, b_ih, b_hh = (params[k] for k in NAMES)
    x, m = _prepare(x, mask, reverse)
    N, T, _ = x.shape
    H = W_hh.shape[1]
    h = np.zeros((N, H), x.dtype) if h0 is None else h0  # (N, H)
    out = np.zeros((N, T, H), x.dtype)  # (N, T, H)
    steps = []
    for t in range(T):
        ax = x[:, t] @ W_ih.T + b_ih  # (N, 3H) input projection [r | z | n]
        ah = h @ W_hh.T + b_hh  # (N, 3H) recurrent projection [r | z | n]
        r = _sigmoid(ax[:, :H] + ah[:, :H])  # (N, H) reset gate
        z = _sigmoid(ax[:, H : 2 * H] + ah[:, H : 2 * H])  # (N, H) update gate
        hn = ah[:, 2 * H :]  # (N, H) h W_hnᵀ + b_hn
        n = np.tanh(ax[:, 2 * H :] + r * hn)  # (N, H) candidate
        h_new = (1.0 - z) * n + z * h  # (N, H)
        steps.append((h, r, z, n, hn))
        keep = m[:, t : t + 1]  # (N, 1)
        h = np.where(keep, h_new, h)  # (N, H)
        out[:, t] = np.where(keep, h, 0.0)
    return _flip(out, reverse), h, (x, m, params, steps, reverse)


def gru_reference_backward(dout, dh_final, cache):
    """dout (N, T, H) or None, dh_final (N, H) or None -> dx (N, T, D), dh0 (N, H), grads."""
    x, m, params, steps, reverse = cache
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    N, T, _ = x.shape
    H = W_hh.shape[1]
    dout = np.zeros((N, T, H), x.dtype) if dout is None else _flip(dout, reverse)  # (N, T, H)
    dh_next = np.zeros((N, H), x.dtype) if dh_final is None else dh_final.copy()  # (N, H)
    dx = np.zeros_like(x)  # (N, T, D)
    grads = _zeros_like_params(params)
    for t in reversed(range(T)):
        h_prev, r, z, n, hn = steps[t]
        keep = m[:, t : t + 1]  # (N, 1)
        dh = dh_next + np.where(keep, dout[:, t], 0.0)  # (N, H)
        dh_real = np.where(keep, dh, 0.0)  # (N, H)
        dn = dh_real * (1.0 - z)  # (N, H) h = (1 − z) n + z h_prev
        dz = dh_real * (h_prev - n)  # (N, H)
        da_n = dn * (1.0 - n**2)  # (N, H) through tanh
        da_r = da_n * hn * r * (1.0 - r)  # (N, H) a_n holds r ⊙ hn, then σ
        da_z = dz * z * (1.0 - z)  # (N, H) through σ
        dax = np.concatenate([da_r, da_z, da_n], axis=1)  # (N, 3H) gradient of the input projection
        dah = np.concatenate([da_r, da_z, da_n * r], axis=1)  # (N, 3H) ... of the recurrent one
        dx[:, t] = dax @ W_ih  # (N, D)
        grads["weight_ih"] += dax.T @ x[:, t]
        grads["weight_hh"] += dah.T @ h_prev
        grads["bias_ih"] += dax.sum(axis=0)
        grads["bias_hh"] += dah.sum(axis=0)
        dh_next = np.where(keep, 0.0, dh) + dh_real * z + dah @ W_hh  # (N, H)
    return _flip(dx, reverse), dh_next, grads


# --- LSTM: gates i, f, g, o; state (h, c) ----------------------------------------------------------------


def lstm_reference_forward(x, state0, params, mask=None, reverse=False):
    """x (N, T, D), state0 (h0, c0) each (N, H) or None -> out (N, T, H), (h_T, c_T), cache."""
    W_ih, W_hh, b_ih, b_hh = (params[k] for k in NAMES)
    x, m = _prepare(x, mask, reverse)
    N, T, _ = x.shape
    H = W_hh.shape[1]
    h, c = (np.zeros((N, H), x.dtype), np.zeros((N, H), x.dtype)) if state0 is None else state0  # (N, H) each
    out = np.zeros((N, T, H), x.dtype)  # (N, T, H)
    steps = []
    for t in range(T):
        a = x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh  # (N, 4H) [i | f | g | o]
        i = _sigmoid(a[:, :H])  # (N, H) input gate
        f = _sigmoid(a[:, H : 2 * H])  # (N, H) forget gate
        g = np.tanh(a[:, 2 * H : 3 * H])  # (N, H) candidate cell
        o = _sigmoid(a[:, 3 * H :])  # (N, H) output gate
        c_new = f * c + i * g  # (N, H)
        tanh_c = np.tanh(c_new)  # (N, H)
        h_new = o * tanh_c  # (N, H)
        steps.append((h, c, i, f, g, o, tanh_c))
        keep = m[:, t : t + 1]  # (N, 1)
        h, c = np.where(keep, h_new, h), np.where(keep, c_new, c)  # (N, H) each
        out[:, t] = np.where(keep, h, 0.0)
    return _flip(out, reverse), (h, c), (x, m, params, steps, reverse)


def lstm_reference_backward(dout, dstate_final, cache):
    """dout (N, T, H) or None, (dh_final, dc_final) or None -> dx (N, T, D), (dh0, dc0), grads."""
    x, m, params, steps, reverse = cache
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    N, T, _ = x.shape
    H = W_hh.shape[1]
    dout = np.zeros((N, T, H), x.dtype) if dout is None else _flip(dout, reverse)  # (N, T, H)
    dh_final, dc_final = (None, None) if dstate_final is None else dstate_final
    dh_next = np.zeros((N, H), x.dtype) if dh_final is None else dh_final.copy()  # (N, H)
    dc_next = np.zeros((N, H), x.dtype) if dc_final is None else dc_final.copy()  # (N, H)
    dx = np.zeros_like(x)  # (N, T, D)
    grads = _zeros_like_params(params)
    for t in reversed(range(T)):
        h_prev, c_prev, i, f, g, o, tanh_c = steps[t]
        keep = m[:, t : t + 1]  # (N, 1)
        dh = dh_next + np.where(keep, dout[:, t], 0.0)  # (N, H)
        dh_real = np.where(keep, dh, 0.0)  # (N, H)
        dc = np.where(keep, dc_next, 0.0) + dh_real * o * (1.0 - tanh_c**2)  # (N, H) h = o tanh(c)
        da_i = dc * g * i * (1.0 - i)  # (N, H) c = f c_prev + i g
        da_f = dc * c_prev * f * (1.0 - f)  # (N, H)
        da_g = dc * i * (1.0 - g**2)  # (N, H)
        da_o = dh_real * tanh_c * o * (1.0 - o)  # (N, H)
        da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)  # (N, 4H)
        dx[:, t] = da @ W_ih  # (N, D)
        grads["weight_ih"] += da.T @ x[:, t]
        grads["weight_hh"] += da.T @ h_prev
        grads["bias_ih"] += da.sum(axis=0)
        grads["bias_hh"] += da.sum(axis=0)
        dh_next = np.where(keep, 0.0, dh) + da @ W_hh  # (N, H)
        dc_next = np.where(keep, 0.0, dc_next) + dc * f  # (N, H)
    return _flip(dx, reverse), (dh_next, dc_next), grads


# --- stacked, bidirectional layers (no dropout), as torch.nn.RNN/GRU/LSTM --------------------------------


def _cell_functions(cell, nonlinearity):
    """(forward, backward) of one cell, forward called as forward(x, state0, params, mask=, reverse=)."""
    if cell == "rnn":
        def forward(x, state0, params, mask=None, reverse=False):
            return rnn_reference_forward(x, state0, params, nonlinearity, mask, reverse)

        return forward, rnn_reference_backward
    return {"gru": (gru_reference_forward, gru_reference_backward),
            "lstm": (lstm_reference_forward, lstm_reference_backward)}[cell]


def _row(state, row, cell):
    """One (layer, direction)'s state from PyTorch's layout (L·dirs, N, H); (h, c) for the LSTM."""
    if state is None:
        return None
    return (state[0][row], state[1][row]) if cell == "lstm" else state[row]


def _stack(rows, cell):
    """Per-row states -> PyTorch's layout: (L·dirs, N, H), or a pair of them for the LSTM."""
    return (np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])) if cell == "lstm" else np.stack(rows)


def reference_layers_forward(x, params, cell, num_layers=1, bidirectional=False, mask=None, state0=None,
                             nonlinearity="tanh"):
    """x (N, T, D); params named weight_ih_l{k}[_reverse] …; state0 in PyTorch's layout or None.
    Returns out (N, T, dirs·H), the final state (PyTorch's layout) and the cache."""
    forward, _ = _cell_functions(cell, nonlinearity)
    dirs = 2 if bidirectional else 1
    layer_input, finals, caches = x, [], []
    for layer in range(num_layers):
        outs = []
        for direction in range(dirs):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            p = {k: params[k + suffix] for k in NAMES}
            s0 = _row(state0, layer * dirs + direction, cell)
            out, final, cache = forward(layer_input, s0, p, mask=mask, reverse=direction == 1)
            outs.append(out)  # (N, T, H)
            finals.append(final)
            caches.append((suffix, cache))
        layer_input = np.concatenate(outs, axis=2)  # (N, T, dirs·H)
    return layer_input, _stack(finals, cell), (cell, nonlinearity, num_layers, dirs, caches)


def reference_layers_backward(dout, dstate_final, cache):
    """dout (N, T, dirs·H) or None, dstate_final (PyTorch's layout) or None -> dx, dstate0, grads."""
    cell, nonlinearity, num_layers, dirs, caches = cache
    _, backward = _cell_functions(cell, nonlinearity)
    grads, dstate0 = {}, [None] * (num_layers * dirs)
    d_layer_out = dout  # (N, T, dirs·H) gradient of the current layer's output
    for layer in reversed(range(num_layers)):
        d_input = 0.0
        for direction in range(dirs):
            row = layer * dirs + direction
            suffix, c = caches[row]
            H = c[2]["weight_hh"].shape[1]
            d_out = None if d_layer_out is None else d_layer_out[:, :, direction * H : (direction + 1) * H]
            dx, ds0, g = backward(d_out, _row(dstate_final, row, cell), c)
            d_input = d_input + dx  # (N, T, input of this layer) both directions read the same input
            dstate0[row] = ds0
            grads.update({k + suffix: g[k] for k in NAMES})
        d_layer_out = d_input
    return d_layer_out, _stack(dstate0, cell), grads
