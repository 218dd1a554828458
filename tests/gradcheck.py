"""Finite-difference gradient checking in float64, shared by the engine tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Central differences in float64 have error O(eps^2) + O(1e-16 / eps); 1e-6 balances the two.
EPS = 1e-6


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = EPS) -> np.ndarray:
    """d f() / d x by central differences, perturbing ``x`` in place (restored afterwards)."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat_x = x.reshape(-1)  # a view: perturbing it perturbs x
    flat_g = grad.reshape(-1)
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + eps
        f_plus = f()
        flat_x[i] = old - eps
        f_minus = f()
        flat_x[i] = old
        flat_g[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(|a| + |b|), a scale-free error that is 0 for equal arrays (CS231n style, but global)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.max(np.abs(a) + np.abs(b))
    if denom == 0.0:
        return 0.0
    return float(np.max(np.abs(a - b)) / denom)
