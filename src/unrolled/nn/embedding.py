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


@dataclass(frozen=True)
class EmbeddingCache:
    ids: np.ndarray  # (N, T) or any shape, integer
    weight_shape: tuple[int, int]  # (V, E)
    padding_idx: int | None


def embedding_forward(
    ids: np.ndarray, weight: np.ndarray, padding_idx: int | None = None
) -> tuple[np.ndarray, EmbeddingCache]:
    """Look up the rows ``weight[ids]``.

    Parameters
    ----------
    ids : (N, T) integer array (any shape) with values in [0, V)
    weight : (V, E) float array
    padding_idx : a row in [0, V) that receives no gradient, or None

    Returns
    -------
    x : (N, T, E), a fresh array in weight's dtype
    cache : EmbeddingCache
    """
    # Finiteness of the (V, E) table is not checked here: that would cost O(V E) per batch.
    check_float_array("weight", weight, (None, None), finite=False)
    num_rows = weight.shape[0]
    check_index_array("ids", ids, num_rows)
    is_int = isinstance(padding_idx, (int, np.integer)) and not isinstance(padding_idx, bool)
    if padding_idx is not None and not (is_int and 0 <= padding_idx < num_rows):
        raise ValueError(f"padding_idx: expected None or an integer in [0, {num_rows}), got {padding_idx!r}")

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

    flat_ids = cache.ids.reshape(-1).astype(np.int64, copy=False)  # (N*T,)
    if flat_ids.size == 0:
        return SparseRows(np.empty(0, np.int64), np.empty((0, dim), dx.dtype), num_rows)
    # Sort the positions by id, then sum each run of equal ids (much faster than np.add.at).
    order = np.argsort(flat_ids, kind="stable")  # stable: a fixed summation order
    sorted_ids = flat_ids[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))  # (R,)
    indices = sorted_ids[starts]
    values = np.add.reduceat(dx.reshape(-1, dim)[order], starts, axis=0)  # (R, E)
    if cache.padding_idx is not None:
        keep = indices != cache.padding_idx
        indices, values = indices[keep], values[keep]
    return SparseRows(indices=indices, values=values, num_rows=num_rows)
