"""Pooling a recurrent layer's outputs over time into one vector per sequence.

    out (N, T, F) with F = dirs·H, mask (N, T) True at real steps, L_n = the length of sequence n

    last:  the final state of each direction: f[n] = [out[n, last_n, :H], out[n, first_n, H:]], with last_n
           and first_n sequence n's last and first real steps (the forward direction ends at the last real
           step, the reverse one at the first; right-padded: last_n = L_n − 1, first_n = 0)
    max:   f[n, j] = max over real steps t of out[n, t, j]; the gradient goes to the arg-max step
    mean:  f[n] = (1 / L_n) Σ_{real t} out[n, t]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unrolled.nn._validation import check_float_array, check_mask

POOLINGS = ("last", "max", "mean")


@dataclass(frozen=True, eq=False)
class PoolCache:
    mode: str
    shape: tuple[int, int, int]  # (N, T, F) of the pooled outputs
    index: np.ndarray | None  # last: (N,) last real step; max: (N, F) arg-max step; mean: None
    scale: np.ndarray | None  # mean: (N, T, 1) mask / L_n in out's dtype
    num_directions: int
    first: np.ndarray | None = None  # last, two directions: (N,) first real step (where the reverse one ends)


def pool_forward(
    out: np.ndarray, mask: np.ndarray | None, mode: str, *, num_directions: int = 1, check: bool = True
) -> tuple[np.ndarray, PoolCache]:
    """out (N, T, F), mask (N, T) or None -> features (N, F), cache. Every sequence needs a real step.

    ``check=False``: the caller vouches for the arguments (a network's inference); the same computation
    without the argument checks.
    """
    if check:
        if mode not in POOLINGS:
            raise ValueError(f"pooling: expected one of {', '.join(POOLINGS)}, got {mode!r}")
        check_float_array("out", out, (None, None, None), finite=False)
    n, t_len, f = out.shape
    if mask is None:
        mask = np.ones((n, t_len), dtype=bool)
    if check:
        check_mask("mask", mask, (n, t_len))
    lengths = mask.sum(axis=1)
    if check and np.any(lengths == 0):
        raise ValueError(f"mask: sequence {int(np.argmin(lengths))} has no real step to pool")
    rows = np.arange(n)
    if mode == "last":
        last = t_len - 1 - np.argmax(mask[:, ::-1], axis=1)  # (N,) each sequence's last real step
        hidden = f // num_directions
        features = out[rows, last].copy()
        first = None
        if num_directions == 2:
            first = np.argmax(mask, axis=1)  # (N,) its first real step
            features[:, hidden:] = out[rows, first, hidden:]
        return features, PoolCache(mode, (n, t_len, f), last, None, num_directions, first)
    if mode == "max":
        masked = np.where(mask[:, :, None], out, -np.inf)
        index = masked.argmax(axis=1)  # (N, F)
        features = np.take_along_axis(out, index[:, None, :], axis=1)[:, 0]
        return features, PoolCache(mode, (n, t_len, f), index, None, num_directions)
    scale = (mask / lengths[:, None]).astype(out.dtype)[:, :, None]  # (N, T, 1)
    return (out * scale).sum(axis=1), PoolCache(mode, (n, t_len, f), None, scale, num_directions)


def pool_backward(dfeatures: np.ndarray, cache: PoolCache) -> np.ndarray:
    """dfeatures (N, F) -> dout (N, T, F)."""
    n, t_len, f = cache.shape
    check_float_array("dfeatures", dfeatures, (n, f))
    if cache.mode == "mean":
        return dfeatures[:, None, :] * cache.scale
    dout = np.zeros((n, t_len, f), dtype=dfeatures.dtype)
    if cache.mode == "max":
        np.put_along_axis(dout, cache.index[:, None, :], dfeatures[:, None, :], axis=1)
        return dout
    rows = np.arange(n)
    hidden = f // cache.num_directions
    dout[rows, cache.index, :hidden] = dfeatures[:, :hidden]
    if cache.num_directions == 2:
        dout[rows, cache.first, hidden:] += dfeatures[:, hidden:]
    return dout
