"""Elman RNN cell, as torch.nn.RNN (one gate, G = 1):

    h_t = act(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh),    act = tanh (default) or relu

Parameters: weight_ih (H, D), weight_hh (H, H), bias_ih (H,), bias_hh (H,).
Backward: with a_t the pre-activation, da_t = dh_t ⊙ act'(a_t) (tanh' = 1 − h_t², relu' = [h_t > 0]) and
dh_{t-1} = da_t W_hh; the weight gradients sum da_tᵀ x_t and da_tᵀ h_{t-1} over the steps.
"""

from __future__ import annotations

import numpy as np

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


def _preactivation(xw, state_prev, weight_hh, bias_hh, state_out) -> np.ndarray:
    """a = x W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh, written into the new state's buffer."""
    (h_prev,), (a,) = state_prev, state_out
    np.matmul(h_prev, weight_hh.T, out=a)
    a += xw
    a += bias_hh
    return a


def _tanh_forward(xw, state_prev, weight_hh, bias_hh, state_out, saved_out) -> None:
    a = _preactivation(xw, state_prev, weight_hh, bias_hh, state_out)
    np.tanh(a, out=a)  # h = tanh(a)


def _tanh_backward(dstate, saved, state, state_prev, weight_hh, dxw_out, dhw_out):
    (dh,), (h,) = dstate, state
    np.multiply(h, h, out=dxw_out)
    np.subtract(1.0, dxw_out, out=dxw_out)
    dxw_out *= dh  # da = dh ⊙ (1 − h²)
    return (dxw_out @ weight_hh,)  # dh_prev = da W_hh


def _relu_forward(xw, state_prev, weight_hh, bias_hh, state_out, saved_out) -> None:
    a = _preactivation(xw, state_prev, weight_hh, bias_hh, state_out)
    np.maximum(a, 0.0, out=a)  # h = max(a, 0)


def _relu_backward(dstate, saved, state, state_prev, weight_hh, dxw_out, dhw_out):
    (dh,), (h,) = dstate, state
    np.multiply(dh, h > 0, out=dxw_out)  # da = dh ⊙ [h > 0]
    return (dxw_out @ weight_hh,)


RNN_TANH_NUMPY = CellKernel("rnn_tanh", 1, ("h",), (), _tanh_forward, _tanh_backward, shared_preactivation=True)
RNN_RELU_NUMPY = CellKernel("rnn_relu", 1, ("h",), (), _relu_forward, _relu_backward, shared_preactivation=True)
# The same kernels, plus the time loops in C when built (see nn/fused.py).
RNN_TANH = fused_kernel(RNN_TANH_NUMPY)
RNN_RELU = fused_kernel(RNN_RELU_NUMPY)


def _kernel(nonlinearity: str) -> CellKernel:
    from unrolled.nn.cells import get_cell  # the registry imports this module

    return get_cell("rnn").kernel(nonlinearity)


def rnn_step_forward(
    x: np.ndarray, h_prev: np.ndarray, params: Params, nonlinearity: str = "tanh"
) -> tuple[np.ndarray, StepCache]:
    """One step: x (N, D), h_prev (N, H) -> h (N, H), cache."""
    (h,), cache = cell_step_forward(_kernel(nonlinearity), x, (h_prev,), params)
    return h, cache


def rnn_step_backward(dh: np.ndarray, cache: StepCache) -> tuple[np.ndarray, np.ndarray, Params]:
    """dh (N, H) -> dx (N, D), dh_prev (N, H), grads."""
    dx, (dh_prev,), grads = step_backward((dh,), cache)
    return dx, dh_prev, grads


def rnn_forward(
    x: np.ndarray,
    h0: np.ndarray | None,
    params: Params,
    *,
    mask: np.ndarray | None = None,
    reverse: bool = False,
    nonlinearity: str = "tanh",
) -> tuple[np.ndarray, np.ndarray, SequenceCache]:
    """A batch of sequences: x (N, T, D), h0 (N, H) or None (zeros), mask (N, T) bool or None.

    Returns out (N, T, H) (zero at masked steps), hT (N, H) (each sequence's state after its own last
    real step) and the cache.
    """
    kernel = _kernel(nonlinearity)
    out, (h_t,), cache = cell_forward(kernel, x, None if h0 is None else (h0,), params, mask=mask, reverse=reverse)
    return out, h_t, cache


def rnn_backward(
    dout: np.ndarray | None, dh_t: np.ndarray | None, cache: SequenceCache
) -> tuple[np.ndarray, np.ndarray, Params]:
    """dout (N, T, H) or None, dhT (N, H) or None -> dx (N, T, D), dh0 (N, H), grads."""
    dx, (dh0,), grads = cell_backward(dout, (dh_t,), cache)
    return dx, dh0, grads
