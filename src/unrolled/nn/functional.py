"""Element-wise functions shared by the engine.

    sigmoid(x) = 1 / (1 + exp(-x))

computed through exp(-|x|), which lies in (0, 1] and so never overflows:
sigmoid(x) = 1 / (1 + exp(-|x|)) for x >= 0 and exp(-|x|) / (1 + exp(-|x|)) for x < 0.
Results keep the input's float dtype.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sigmoid"]

# --- activations ---


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic sigmoid, accurate to a few ulp and free of overflow warnings for any finite ``x``.

    Parameters
    ----------
    x : (...) float array
    out : (...) array of x's shape and dtype, optional
        Where to write the result; may be ``x`` itself.

    Returns
    -------
    (...) array, ``out`` when given.
    """
    negative = x < 0  # taken before `out` (which may be x) is written
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)  # exp(-|x|)
    if out is None:
        out = np.empty_like(e)
    np.add(e, 1, out=out)
    np.reciprocal(out, out=out)  # sigmoid(|x|)
    np.multiply(e, out, out=out, where=negative)  # sigmoid(x) = exp(-|x|) * sigmoid(|x|) for x < 0
    return out
