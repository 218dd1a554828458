"""Argument checks shared by the engine: each failure is one ValueError that names the argument.

Engine functions check what a caller passes in (shapes, dtypes, finiteness) at the public edge, once per
call, never inside a time loop. Messages read ``"<name>: expected …, got …"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_float_array(
    name: str,
    a: object,
    shape: Sequence[int | None] | None = None,
    *,
    dtype: np.dtype | None = None,
    finite: bool = True,
) -> np.ndarray:
    """Check that ``a`` is a float32/float64 array of the given shape (None = any size on that axis).

    Returns ``a`` unchanged. ``dtype`` requires that exact dtype (to keep one precision through a model).
    """
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name}: expected a NumPy array, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name}: expected dtype float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise ValueError(f"{name}: expected dtype {np.dtype(dtype)} (as the parameters), got {a.dtype}")
    if shape is not None:
        check_shape(name, a, shape)
    if finite and not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or infinity")
    return a


def check_shape(name: str, a: np.ndarray, shape: Sequence[int | None]) -> None:
    """Raise if ``a.shape`` does not match ``shape`` (None matches any size)."""
    ok = a.ndim == len(shape) and all(want is None or want == got for want, got in zip(shape, a.shape))
    if not ok:
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ValueError(f"{name}: expected shape {want}, got {tuple(a.shape)}")


def check_mask(name: str, mask: object, shape: tuple[int, ...]) -> np.ndarray:
    """Check a boolean mask of exactly ``shape`` (True marks a real step or item)."""
    if not isinstance(mask, np.ndarray):
        raise ValueError(f"{name}: expected a boolean NumPy array, got {type(mask).__name__}")
    if mask.dtype != np.bool_:
        raise ValueError(f"{name}: expected dtype bool, got {mask.dtype}")
    check_shape(name, mask, shape)
    return mask


def check_index_array(name: str, a: object, upper: int, shape: Sequence[int | None] | None = None) -> np.ndarray:
    """Check an integer array whose values lie in ``[0, upper)``."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name}: expected an integer NumPy array, got {type(a).__name__}")
    if a.dtype.kind not in "iu":  # signed or unsigned integers (np.issubdtype costs more than the check)
        raise ValueError(f"{name}: expected an integer dtype, got {a.dtype}")
    if shape is not None:
        check_shape(name, a, shape)
    if a.size and (a.min() < 0 or a.max() >= upper):
        bad = a[(a < 0) | (a >= upper)].flat[0]
        raise ValueError(f"{name}: expected values in [0, {upper}), got {bad}")
    return a
