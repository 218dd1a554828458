"""Embedding lookup with a sparse weight gradient.

    x[n, t] = W[ids[n, t]]          ids (N, T) (or any shape), W (V, E), x (N, T, E)

Backward: row v of dW is the sum of the deltas at every position where ids == v,

    dW[v] = Σ_{(n, t): ids[n, t] = v} dx[n, t]

so only the R distinct ids of the batch have a gradient; it is returned as ``SparseRows`` (the optimizer
updates those rows lazily). The row ``padding_idx`` gets no gradient, as in ``torch.nn.Embedding``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unrolled.nn import fused
from unrolled.nn._validation import check_float_array, check_index_array

__all__ = ["SparseRows", "EmbeddingCache", "embedding_forward", "embedding_backward"]


@dataclass(frozen=True)
class SparseRows:
    """The gradient of a (V, E) matrix that is zero outside the rows ``indices``."""

    indices: np.ndarray  # (R,) int64, unique, ascending
    values: np.ndarray  # (R, E) the gradient of those rows
    num_rows: int  # V

    @property
    def shape(self) -> tuple[int, int]:
        """(V, E), the shape of the dense gradient."""
        return (self.num_rows, self.values.shape[1])

    def to_dense(self) -> np.ndarray:
        """The (V, E) gradient, zero outside ``indices``."""
        dense = np.zeros(self.shape, dtype=self.values.dtype)
        dense[self.indices] = self.values
        return dense


@dataclass(frozen=True, eq=False)
class EmbeddingCache:
    ids: np.ndarray  # (N, T) or any shape, integer
    weight_shape: tuple[int, int]  # (V, E)
    padding_idx: int | None


def embedding_forward(
    ids: np.ndarray, weight: np.ndarray, padding_idx: int | None = None, *, check: bool = True
) -> tuple[np.ndarray, EmbeddingCache]:
    """Look up the rows ``weight[ids]``.

    Parameters
    ----------
    ids : (N, T) integer array (any shape) with values in [0, V)
    weight : (V, E) float array
    padding_idx : a row in [0, V) that receives no gradient, or None
    check : False when the caller vouches for the arguments (a network's inference on its own, already
        checked parameters): the same computation without the argument checks

    Returns
    -------
    x : (N, T, E), a fresh array in weight's dtype (for 2-D ids laid out time-major in memory)
    cache : EmbeddingCache
    """
    if check:
        # Finiteness of the (V, E) table is not checked here: that would cost O(V E) per batch.
        check_float_array("weight", weight, (None, None), finite=False)
        num_rows = weight.shape[0]
        check_index_array("ids", ids, num_rows)
        is_int = isinstance(padding_idx, (int, np.integer)) and not isinstance(padding_idx, bool)
        if padding_idx is not None and not (is_int and 0 <= padding_idx < num_rows):
            raise ValueError(f"padding_idx: expected None or an integer in [0, {num_rows}), got {padding_idx!r}")

    if ids.ndim == 2:
        # Gathered time-major, (T, N, E) in memory, returned as its (N, T, E) view: the recurrent layer walks
        # time-major and would otherwise copy the whole batch once more.
        x = weight[ids.T].transpose(1, 0, 2)
    else:
        x = weight[ids]
    return x, EmbeddingCache(ids=ids, weight_shape=weight.shape, padding_idx=padding_idx)


def embedding_backward(dx: np.ndarray, cache: EmbeddingCache) -> SparseRows:
    """Sum the deltas of each distinct id into its row.

    Parameters
    ----------
    dx : (N, T, E) upstream gradient
    cache : EmbeddingCache from ``embedding_forward``

    Returns
    -------
    dweight : SparseRows over (V, E), rows sorted, ``padding_idx`` left out
    """
    num_rows, dim = cache.weight_shape
    check_float_array("dx", dx, cache.ids.shape + (dim,), finite=False)

    ids = cache.ids
    if dx.ndim == 3 and not dx.flags.c_contiguous and dx.transpose(1, 0, 2).flags.c_contiguous:
        ids, dx = ids.T, dx.transpose(1, 0, 2)  # time-major in memory: walk the positions in that order
    flat_ids = ids.reshape(-1).astype(np.int64, copy=False)  # (N*T,)
    # Sort the positions by id (stable: each row sums its deltas in position order), then sum each run.
    order = np.argsort(flat_ids, kind="stable")
    sorted_ids = flat_ids[order]
    if cache.padding_idx is not None:  # padding positions get no gradient: drop them before summing
        real = sorted_ids != cache.padding_idx
        order, sorted_ids = order[real], sorted_ids[real]
    if sorted_ids.size == 0:
        return SparseRows(np.empty(0, np.int64), np.empty((0, dim), dx.dtype), num_rows)
    is_start = np.empty(sorted_ids.size, dtype=bool)
    is_start[0] = True
    np.not_equal(sorted_ids[1:], sorted_ids[:-1], out=is_start[1:])
    starts = np.flatnonzero(is_start)  # (R,)
    indices = sorted_ids[starts]
    rows = dx.reshape(-1, dim)
    if fused.ACTIVE and rows.dtype in (np.float32, np.float64) and rows.flags.c_contiguous:
        # the same sums in C, reading each row where it is instead of gathering them first
        values = np.empty((starts.size, dim), dtype=rows.dtype)
        fused._fused.sum_runs(rows, order.astype(np.int64, copy=False), starts.astype(np.int64, copy=False),
                              values, rows.dtype == np.float64)
    else:
        values = _sum_runs(rows[order], starts)
    return SparseRows(indices=indices, values=values, num_rows=num_rows)


LONG_RUN = 32  # runs longer than this are summed one call each; shorter ones in rounds across runs


def _sum_runs(rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum each run of consecutive rows: rows (M, E), starts (R,) ascending with starts[0] = 0 -> (R, E).

    ``np.add.reduceat(rows, starts, axis=0)`` computes the same sums, but calls its inner loop once per
    run *and column* (R·E calls: 8 ms for 8,192 rows of 128, most runs one row long). Here round k adds
    the k-th row of every run longer than k, one vectorized call over E-wide rows per round; the few runs
    longer than LONG_RUN (frequent words) are summed one call each. Every run adds its rows in order.
    """
    lengths = np.diff(starts, append=rows.shape[0])  # (R,)
    values = rows[starts]  # (R, E): each run's first row
    by_length = np.argsort(-lengths, kind="stable")  # runs in decreasing length: each round's runs a prefix
    long_runs = int(np.count_nonzero(lengths > LONG_RUN))
    for r in by_length[:long_runs]:
        begin = starts[r]
        np.add.reduce(rows[begin : begin + lengths[r]], axis=0, out=values[r])
    sorted_lengths = lengths[by_length]
    for k in range(1, int(min(sorted_lengths[long_runs:].max(initial=1), LONG_RUN))):
        active = by_length[long_runs : long_runs + int(np.count_nonzero(sorted_lengths[long_runs:] > k))]
        values[active] += rows[starts[active] + k]
    return values
