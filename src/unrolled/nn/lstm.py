"""Long short-term memory, as torch.nn.LSTM (gates i, f, g, o in that order, G = 4; state (h, c)):

    i_t = σ(a_i)   f_t = σ(a_f)   g_t = tanh(a_g)   o_t = σ(a_o),   a = x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)

Parameters: weight_ih (4H, D) = [W_ii; W_if; W_ig; W_io], weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,).
Backward: dc_t gathers the carried dc and dh_t ⊙ o_t ⊙ (1 − tanh²(c_t)); dc_{t-1} = dc_t ⊙ f_t.
"""

from __future__ import annotations

import numpy as np

from unrolled.nn.functional import sigmoid
from unrolled.nn.fused import fused_kernel
from unrolled.nn.time_loop import (
    CellKernel,
    Params,
    SequenceCache,
    StepCache,
    cell_backward,
    cell_forward,
    cell_step_forward,
    step_backward,
)

LSTMState = tuple[np.ndarray, np.ndarray]  # (h, c), each (N, H)


def _lstm_forward(xw, state_prev, weight_hh, bias_hh, state_out, saved_out) -> None:
    (h_prev, c_prev), (h, c) = state_prev, state_out
    i, f, g, o, tanh_c = saved_out  # each (N, H)
    H = h.shape[1]
    a = h_prev @ weight_hh.T  # (N, 4H)
    a += xw
    a += bias_hh
    sigmoid(a[:, :H], out=i)
    sigmoid(a[:, H : 2 * H], out=f)
    np.tanh(a[:, 2 * H : 3 * H], out=g)
    sigmoid(a[:, 3 * H :], out=o)
    np.multiply(f, c_prev, out=c)
    c += i * g  # c = f ⊙ c_prev + i ⊙ g
    np.tanh(c, out=tanh_c)
    np.multiply(o, tanh_c, out=h)  # h = o ⊙ tanh(c)


def _lstm_backward(dstate, saved, state, state_prev, weight_hh, dxw_out, dhw_out):
    (dh, dc), (h_prev, c_prev) = dstate, state_prev
    i, f, g, o, tanh_c = saved
    H = dh.shape[1]
    da_i, da_f, da_g, da_o = (dxw_out[:, k * H : (k + 1) * H] for k in range(4))
    dc_total = dh * o
    dc_total *= 1.0 - tanh_c * tanh_c
    dc_total += dc  # through h = o ⊙ tanh(c), plus the carried dc
    np.multiply(dh, tanh_c, out=da_o)
    da_o *= o * (1.0 - o)  # do, through o = σ(a_o)
    np.multiply(dc_total, g, out=da_i)
    da_i *= i * (1.0 - i)  # di = dc ⊙ g, through σ
    np.multiply(dc_total, c_prev, out=da_f)
    da_f *= f * (1.0 - f)  # df = dc ⊙ c_prev, through σ
    np.multiply(dc_total, i, out=da_g)
    da_g *= 1.0 - g * g  # dg = dc ⊙ i, through tanh
    dh_prev = dxw_out @ weight_hh
    dc_prev = dc_total
    dc_prev *= f
    return (dh_prev, dc_prev)


LSTM_NUMPY = CellKernel(
    "lstm", 4, ("h", "c"), ("i", "f", "g", "o", "tanh_c"), _lstm_forward, _lstm_backward, shared_preactivation=True
)
LSTM = fused_kernel(LSTM_NUMPY)  # the same math in one C pass per step when built (see nn/fused.py)


def lstm_step_forward(x: np.ndarray, state_prev: LSTMState, params: Params) -> tuple[LSTMState, StepCache]:
    """One step: x (N, D), state_prev (h, c) each (N, H) -> (h, c), cache (``saved``: i, f, g, o, tanh c)."""
    return cell_step_forward(LSTM, x, state_prev, params)


def lstm_step_backward(dstate: LSTMState, cache: StepCache) -> tuple[np.ndarray, LSTMState, Params]:
    """dstate (dh, dc) each (N, H) -> dx (N, D), (dh_prev, dc_prev), grads."""
    return step_backward(dstate, cache)


def lstm_forward(
    x: np.ndarray,
    state0: LSTMState | None,
    params: Params,
    *,
    mask: np.ndarray | None = None,
    reverse: bool = False,
) -> tuple[np.ndarray, LSTMState, SequenceCache]:
    """A batch of sequences: x (N, T, D), state0 (h0, c0) each (N, H) or None, mask (N, T) bool or None.

    Returns out (N, T, H), (hT, cT) and the cache (``saved`` (T, 5, N, H): i, f, g, o, tanh c per step).
    """
    return cell_forward(LSTM, x, state0, params, mask=mask, reverse=reverse)


def lstm_backward(
    dout: np.ndarray | None, dstate_final: LSTMState | None, cache: SequenceCache
) -> tuple[np.ndarray, LSTMState, Params]:
    """dout (N, T, H) or None, (dhT, dcT) or None -> dx (N, T, D), (dh0, dc0), grads."""
    return cell_backward(dout, dstate_final, cache)
