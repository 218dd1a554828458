"""Inverted dropout.

Training, with keep-mask k ~ Bernoulli(1 - p) drawn independently per element:

    m = k / (1 - p)     y = x ⊙ m       dx = dy ⊙ m

so E[y] = x and evaluation needs no rescaling. In evaluation (or with p = 0) y = x and dx = dy.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

import numpy as np

from unrolled.nn._validation import check_float_array

__all__ = ["DropoutCache", "dropout_forward", "dropout_backward"]


@dataclass(frozen=True, eq=False)
class DropoutCache:
    mask: np.ndarray | None  # (...) x's shape and dtype, values 0 or 1/(1-p); None when dropout was the identity


_IDENTITY = DropoutCache(mask=None)  # one for every call where dropout is the identity (inference: no new object)


def dropout_forward(
    x: np.ndarray, p: float, *, training: bool, rng: np.random.Generator | None, check: bool = True
) -> tuple[np.ndarray, DropoutCache]:
    """Zero each element with probability ``p`` and scale the survivors by 1/(1-p).

    Parameters
    ----------
    x : (...) float array
    p : drop probability in [0, 1)
    training : when False, dropout is the identity
    rng : the generator that draws the mask; required when training with p > 0
    check : False when the caller vouches for the arguments (a network's inference on its own, already
        checked parameters): the same computation without the argument checks

    Returns
    -------
    y : (...) x's shape and dtype; ``x`` itself when dropout is the identity
    cache : DropoutCache
    """
    if not check and not training:
        return x, _IDENTITY
    if isinstance(p, bool) or not isinstance(p, Real) or not 0.0 <= p < 1.0:
        raise ValueError(f"p: expected a number in [0, 1), got {p!r}")
    check_float_array("x", x)
    if not training or p == 0:
        return x, _IDENTITY
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator when training with p > 0, got {type(rng).__name__}")

    keep = rng.random(x.shape, dtype=x.dtype) >= p  # True with probability 1 - p
    mask = keep * x.dtype.type(1.0 / (1.0 - float(p)))
    return x * mask, DropoutCache(mask=mask)


def dropout_backward(dy: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """dx = dy ⊙ m, with the forward's mask; ``dy`` itself when dropout was the identity.

    Parameters
    ----------
    dy : (...) upstream gradient, x's shape
    cache : DropoutCache from ``dropout_forward``

    Returns
    -------
    dx : (...)
    """
    if cache.mask is None:
        return dy
    check_float_array("dy", dy, cache.mask.shape, dtype=cache.mask.dtype, finite=False)
    return dy * cache.mask
