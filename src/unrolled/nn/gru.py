"""Gated recurrent unit, as torch.nn.GRU (gates r, z, n in that order, G = 3):

    r_t = σ(x_t W_irᵀ + b_ir + h_{t-1} W_hrᵀ + b_hr)            reset gate
    z_t = σ(x_t W_izᵀ + b_iz + h_{t-1} W_hzᵀ + b_hz)            update gate
    n_t = tanh(x_t W_inᵀ + b_in + r_t ⊙ (h_{t-1} W_hnᵀ + b_hn))  candidate (reset applied after W_hn,
                                                                 ONNX linear_before_reset = 1)
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

Parameters: weight_ih (3H, D) = [W_ir; W_iz; W_in], weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,).
Because r multiplies h W_hnᵀ + b_hn, the gradient reaching the recurrent product (dhw) differs from the
one reaching the input projection (dxw) in the n block: dhw_n = dxw_n ⊙ r.
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


def _gru_forward(xw, state_prev, weight_hh, bias_hh, state_out, saved_out) -> None:
    (h_prev,), (h,) = state_prev, state_out
    r, z, n, hn = saved_out  # each (N, H)
    H = h.shape[1]
    hw = h_prev @ weight_hh.T  # (N, 3H)
    hw += bias_hh
    sigmoid(np.add(xw[:, :H], hw[:, :H], out=r), out=r)  # r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)
    sigmoid(np.add(xw[:, H : 2 * H], hw[:, H : 2 * H], out=z), out=z)  # z, likewise
    hn[...] = hw[:, 2 * H :]  # h W_hnᵀ + b_hn, kept for backward
    np.multiply(r, hn, out=n)
    n += xw[:, 2 * H :]
    np.tanh(n, out=n)  # n = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn))
    np.subtract(h_prev, n, out=h)
    h *= z
    h += n  # h = (1 − z) ⊙ n + z ⊙ h_prev = n + z ⊙ (h_prev − n)


def _gru_backward(dstate, saved, state, state_prev, weight_hh, dxw_out, dhw_out):
    (dh,), (h_prev,) = dstate, state_prev
    r, z, n, hn = saved
    H = dh.shape[1]
    da_r, da_z, da_n = dxw_out[:, :H], dxw_out[:, H : 2 * H], dxw_out[:, 2 * H :]
    # Through h = n + z ⊙ (h_prev − n).
    dn = dh * (1.0 - z)
    np.multiply(dh, h_prev - n, out=da_z)
    da_z *= z * (1.0 - z)  # through z = σ(a_z)
    np.multiply(dn, 1.0 - n * n, out=da_n)  # through n = tanh(a_n)
    np.multiply(da_n, hn, out=da_r)
    da_r *= r * (1.0 - r)  # a_n holds r ⊙ hn, then r = σ(a_r)
    dhw_out[:, : 2 * H] = dxw_out[:, : 2 * H]
    np.multiply(da_n, r, out=dhw_out[:, 2 * H :])  # the recurrent n block is scaled by r
    dh_prev = dhw_out @ weight_hh
    dh_prev += dh * z
    return (dh_prev,)


GRU_NUMPY = CellKernel(
    "gru", 3, ("h",), ("r", "z", "n", "hn"), _gru_forward, _gru_backward, shared_preactivation=False
)
GRU = fused_kernel(GRU_NUMPY)  # the same math in one C pass per step when built (see nn/fused.py)


def gru_step_forward(x: np.ndarray, h_prev: np.ndarray, params: Params) -> tuple[np.ndarray, StepCache]:
    """One step: x (N, D), h_prev (N, H) -> h (N, H), cache (its ``saved`` holds r, z, n, hn)."""
    (h,), cache = cell_step_forward(GRU, x, (h_prev,), params)
    return h, cache


def gru_step_backward(dh: np.ndarray, cache: StepCache) -> tuple[np.ndarray, np.ndarray, Params]:
    """dh (N, H) -> dx (N, D), dh_prev (N, H), grads."""
    dx, (dh_prev,), grads = step_backward((dh,), cache)
    return dx, dh_prev, grads


def gru_forward(
    x: np.ndarray,
    h0: np.ndarray | None,
    params: Params,
    *,
    mask: np.ndarray | None = None,
    reverse: bool = False,
) -> tuple[np.ndarray, np.ndarray, SequenceCache]:
    """A batch of sequences: x (N, T, D), h0 (N, H) or None, mask (N, T) bool or None.

    Returns out (N, T, H), hT (N, H) and the cache (``saved`` (T, 4, N, H) holds r, z, n, hn per step).
    """
    out, (h_t,), cache = cell_forward(GRU, x, None if h0 is None else (h0,), params, mask=mask, reverse=reverse)
    return out, h_t, cache


def gru_backward(
    dout: np.ndarray | None, dh_t: np.ndarray | None, cache: SequenceCache
) -> tuple[np.ndarray, np.ndarray, Params]:
    """dout (N, T, H) or None, dhT (N, H) or None -> dx (N, T, D), dh0 (N, H), grads."""
    dx, (dh0,), grads = cell_backward(dout, (dh_t,), cache)
    return dx, dh0, grads
