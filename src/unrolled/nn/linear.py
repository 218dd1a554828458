"""Affine map over the last axis, the output layer of every model.

    y = x Wᵀ + b        x (..., D), W (O, D), b (O,), y (..., O)

Backward, with the leading axes flattened to M rows (one GEMM each):

    dx = dy W           dW = dyᵀ x          db = Σ_rows dy
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unrolled.nn._validation import check_float_array

__all__ = ["LinearCache", "init_linear_params", "linear_forward", "linear_backward"]


@dataclass(frozen=True, eq=False)
class LinearCache:
    x: np.ndarray  # (..., D) the input, as given
    weight: np.ndarray  # (O, D)
    has_bias: bool


def linear_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, *, check: bool = True
) -> tuple[np.ndarray, LinearCache]:
    """y = x Wᵀ + b.

    Parameters
    ----------
    x : (..., D) float array
    weight : (O, D) float array of x's dtype
    bias : (O,) float array of x's dtype, or None
    check : False when the caller vouches for the arguments (a network's inference on its own, already
        checked parameters): the same computation without the argument checks

    Returns
    -------
    y : (..., O)
    cache : LinearCache
    """
    if check:
        check_float_array("weight", weight, (None, None))
    out_features, in_features = weight.shape
    if check:
        if not isinstance(x, np.ndarray) or x.ndim == 0:
            raise ValueError(f"x: expected an array of shape (..., {in_features}), got {np.shape(x)}")
        check_float_array("x", x, (None,) * (x.ndim - 1) + (in_features,), dtype=weight.dtype)
        if bias is not None:
            check_float_array("bias", bias, (out_features,), dtype=weight.dtype)

    y = (x if x.ndim == 2 else x.reshape(-1, in_features)) @ weight.T  # (M, O)
    if bias is not None:
        y += bias
    if x.ndim != 2:
        y = y.reshape(*x.shape[:-1], out_features)
    return y, LinearCache(x=x, weight=weight, has_bias=bias is not None)


def linear_backward(dy: np.ndarray, cache: LinearCache) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Gradients of y = x Wᵀ + b.

    Parameters
    ----------
    dy : (..., O) upstream gradient
    cache : LinearCache from ``linear_forward``

    Returns
    -------
    dx : (..., D)
    grads : {"weight": (O, D), "bias": (O,)}; no "bias" key when the forward had no bias.
    """
    x, weight = cache.x, cache.weight
    out_features, in_features = weight.shape
    check_float_array("dy", dy, x.shape[:-1] + (out_features,), dtype=weight.dtype, finite=False)

    dy2 = dy.reshape(-1, out_features)  # (M, O)
    dx = (dy2 @ weight).reshape(x.shape)
    grads = {"weight": dy2.T @ x.reshape(-1, in_features)}
    if cache.has_bias:
        grads["bias"] = dy2.sum(axis=0)
    return dx, grads


def init_linear_params(
    rng: np.random.Generator, out_features: int, in_features: int, *, dtype: np.dtype | type = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """torch.nn.Linear's default initialisation: weight (O, D) and bias (O,) ~ U(−1/√D, 1/√D), in that order."""
    bound = 1.0 / np.sqrt(in_features)
    weight = rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype)
    bias = rng.uniform(-bound, bound, out_features).astype(dtype)
    return weight, bias
