"""Each word's first-layer input projection, kept: inference on a few rows without the product.

At inference a network that starts with an embedding computes, for every token, E[w] W_ihᵀ + b_ih: its
first recurrent layer's input projection (each direction its own), which depends on the word w alone. A
:class:`ProjectionTable` computes that row the first time it reads a word and keeps it, so a sentence's
(T, G·H) projection is a gather of T rows: at B = 1 no embedding lookup and no product before the time
loop (in benchmarks/speed.py's B = 1, 16-token prediction that was 15–32 % of the time).

The rows are computed by ``fused.project_rows``, whose every output row is one running sum over its own
input row (it does not depend on the other rows), so a gathered row is bit for bit what
:func:`unrolled.nn.time_loop.sequence_forward` computes for the same token where
:func:`unrolled.nn.time_loop.input_projection_in_c` holds — the only place a table's rows may be handed to
it. Where that product is NumPy's BLAS instead (other builds, more than ``fused.PROJECT_ROWS_MAX`` rows),
the table is not used.

A table is built from three arrays and must not see them change: it marks them read-only for good (an
in-place write then raises NumPy's "assignment destination is read-only"); assign new arrays instead, which a
model's cache notices (:meth:`ProjectionTable.made_from`). Memory: the rows of the words read so far, at most
V·G·H values a direction (for the bundled sst2-best, 18,000 × 1,024 floats, 74 MB, if every word is read),
and a copy of them while the table grows.
"""

from __future__ import annotations

import threading

import numpy as np

from unrolled.nn import fused

__all__ = ["ProjectionTable", "tables_available"]

_UNSEEN = np.iinfo(np.intp).max  # the slot of a word whose row is not computed yet


def tables_available(dtype: np.dtype | type) -> bool:
    """Whether the time loop computes a few rows' input projection in C on this build (fused.project_rows;
    AVX-512), the condition for a table's rows to be the values it would compute: where it does not, a model
    keeps no tables."""
    return fused.ACTIVE and fused.PROJECT_ROWS_MAX > 0 and np.dtype(dtype) in (np.float32, np.float64)


class ProjectionTable:
    """Rows E[w] W_ihᵀ + b_ih of the words read so far, for embedding (V, E), weight_ih (G·H, E), bias_ih
    (G·H,) of one direction of a recurrent layer's first layer."""

    def __init__(self, embedding: np.ndarray, weight_ih: np.ndarray, bias_ih: np.ndarray):
        if not fused.ACTIVE:
            raise ValueError("ProjectionTable: needs the C extension (unrolled.nn.fused), which is not built")
        self._sources = (embedding, weight_ih, bias_ih)
        for array in self._sources:
            array.flags.writeable = False  # a stale row would be a wrong prediction: writes now raise
        # word -> its row in _rows; a word not read yet has a slot past any row, so that the gather itself
        # (take, bounds-checked) finds it: no separate pass over the slots
        self._slot = np.full(embedding.shape[0], _UNSEEN, dtype=np.intp)
        self._rows = np.empty((0, weight_ih.shape[0]), dtype=embedding.dtype)
        self._count = 0
        self._adding = threading.Lock()  # predictions from several threads: one adds rows at a time

    def made_from(self, embedding: np.ndarray, weight_ih: np.ndarray, bias_ih: np.ndarray) -> bool:
        """Whether this table was built from these very arrays (identity, not values)."""
        return all(a is b for a, b in zip(self._sources, (embedding, weight_ih, bias_ih)))

    @property
    def words(self) -> int:
        """How many words' rows the table holds."""
        return self._count

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """ids (any shape, values in [0, V), checked by the caller) -> ids.shape + (G·H,): a fresh array."""
        slots = self._slot.take(ids)
        try:
            return self._rows.take(slots, axis=0)
        except IndexError:  # words not read before
            with self._adding:  # (another thread may have added some meanwhile)
                slots = self._slot.take(ids)
                if (slots == _UNSEEN).any():
                    # distinct by a set: np.unique imports numpy.ma (~13 ms of a predict process)
                    self._add(np.array(sorted(set(ids[slots == _UNSEEN].tolist())), dtype=np.intp))
            return self._rows.take(self._slot.take(ids), axis=0)

    def _add(self, words: np.ndarray) -> None:
        """Compute and keep the rows of ``words`` (distinct, none kept yet), holding the lock. Readers that
        take no lock see a word's slot only after its row is written (and the grown array before either)."""
        embedding, weight_ih, bias_ih = self._sources
        need = self._count + len(words)
        if need > len(self._rows):  # grown by doubling: a word's row is computed once
            grown = np.empty((min(max(need, 2 * len(self._rows), 16), len(self._slot)), self._rows.shape[1]),
                             dtype=self._rows.dtype)
            grown[: self._count] = self._rows[: self._count]
            self._rows = grown
        self._rows[self._count : need] = fused.project_rows(embedding[words], weight_ih, bias_ih)
        self._slot[words] = np.arange(self._count, need)
        self._count = need
