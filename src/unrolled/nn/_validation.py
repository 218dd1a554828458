"""Argument checks shared by the engine: each failure is one ValueError that names the argument.

Engine functions check what a caller passes in (shapes, dtypes, finiteness) at the public edge, once per
call, never inside a time loop. Messages read ``"<name>: expected …, got …"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import TypeVar

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_T = TypeVar("_T")


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
    ok = a.ndim == len(shape)
    if ok:  # a loop, not all() over a generator: this runs on every call of the engine's functions
        for want, got in zip(shape, a.shape):
            if want is not None and want != got:
                ok = False
                break
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
    if not a.size:
        return a
    if a.size <= 64:  # a sentence's ids: a list's min and max took 1/3-2/3 the time of two NumPy reductions
        values = a.ravel().tolist()
        low, high = min(values), max(values)
    else:
        low, high = a.min(), a.max()
    if low < 0 or high >= upper:
        bad = a[(a < 0) | (a >= upper)].flat[0]
        raise ValueError(f"{name}: expected values in [0, {upper}), got {bad}")
    return a


# --------------------------------------------------------------------------------------------------- scalars
# Parameter checks for estimators, configs and functions. Each returns ``value`` unchanged, so a check can sit
# in an expression; integers are Python ints or NumPy integers, numbers also floats (``bool`` is neither:
# ``True`` is not a size). Messages: ``"<name>: expected <what>, got <value!r>"``.


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_positive_int(name: str, value: _T, *, allow_none: bool = False) -> _T:
    """Check an integer >= 1 (a size, a count, a number of steps); ``allow_none`` also accepts None.

    Raises ``ValueError("<name>: expected a positive integer, got <value!r>")``, with ``" or None"`` after
    "integer" when ``allow_none``.
    """
    if value is None and allow_none:
        return value
    if not (_is_int(value) and value >= 1):
        raise ValueError(f"{name}: expected a positive integer{' or None' if allow_none else ''}, got {value!r}")
    return value


def check_nonnegative_int(name: str, value: _T, *, allow_none: bool = False) -> _T:
    """Check an integer >= 0 (0 meaning "none", e.g. warm-up steps); ``allow_none`` also accepts None.

    Raises ``ValueError("<name>: expected an integer >= 0, got <value!r>")``, with ``" or None"`` after
    "0" when ``allow_none``.
    """
    if value is None and allow_none:
        return value
    if not (_is_int(value) and value >= 0):
        raise ValueError(f"{name}: expected an integer >= 0{' or None' if allow_none else ''}, got {value!r}")
    return value


def check_positive_number(name: str, value: _T, *, allow_none: bool = False) -> _T:
    """Check a finite number > 0 (a learning rate, a norm); ``allow_none`` also accepts None.

    Raises ``ValueError("<name>: expected a positive number, got <value!r>")``, with ``" or None"`` after
    "number" when ``allow_none``.
    """
    if value is None and allow_none:
        return value
    if not (_is_number(value) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a positive number{' or None' if allow_none else ''}, got {value!r}")
    return value


def check_nonnegative_number(name: str, value: _T) -> _T:
    """Check a finite number >= 0 (a length penalty, a length factor).

    Raises ``ValueError("<name>: expected a finite number >= 0, got <value!r>")``.
    """
    if not (_is_number(value) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return value


def check_probability(name: str, value: _T, *, upper_open: bool = True, noun: str = "a probability") -> _T:
    """Check a number in [0, 1) (``upper_open``, the default: a dropout rate, a held-out fraction) or [0, 1].

    Raises ``ValueError("<name>: expected a probability in [0, 1), got <value!r>")`` (``]`` for a closed
    upper end). ``noun`` replaces "a probability" where the value is not one, e.g. ``noun="a number"`` for
    a fraction of the data.
    """
    high_ok = (value < 1.0 if upper_open else value <= 1.0) if _is_number(value) else False
    if not (high_ok and value >= 0.0):
        raise ValueError(f"{name}: expected {noun} in [0, 1{')' if upper_open else ']'}, got {value!r}")
    return value


def check_fraction(name: str, value: _T) -> _T:
    """Check a number strictly between 0 and 1 (a split that must leave something on both sides).

    Raises ``ValueError("<name>: expected a number in (0, 1), got <value!r>")``.
    """
    if not (_is_number(value) and 0.0 < value < 1.0):
        raise ValueError(f"{name}: expected a number in (0, 1), got {value!r}")
    return value


def check_choice(name: str, value: _T, choices: Sequence[object]) -> _T:
    """Check that ``value`` is one of ``choices`` (a registry's names: cells, poolings, optimizers, …).

    Raises ``ValueError("<name>: expected one of a, b, c, got <value!r>")``.
    """
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def json_type(value: object, *, article: bool = False) -> str:
    """The JSON name of a Python value's type, for messages ("array"; with ``article``, "an array")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        name = "boolean"
    elif isinstance(value, (int, float)):
        name = "number"
    else:
        name = {str: "string", list: "array", tuple: "array", dict: "object"}.get(type(value), type(value).__name__)
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}" if article else name
