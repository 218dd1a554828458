"""Batches of token-id sequences: right-padding with a mask, and length-bucketed batch orders.

Dimension letters: N batch, T time (the longest sequence in the batch, capped by ``max_len``).

Bucketing keeps padding small: sequences of similar length go into the same batch, so an RNN runs
few masked steps. Training order stays random (shuffle, sort within large chunks, shuffle the batches);
evaluation order is fully sorted, and the returned indices map predictions back to the input order::

    for batch in length_bucketed_batches(lengths, 64, shuffle=False):
        ids, mask = pad_batch([encoded[i] for i in batch])
        predictions[batch] = model.predict(ids, mask)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["length_bucketed_batches", "pad_batch"]


def pad_batch(
    sequences: Sequence[Sequence[int]], *, pad_id: int = 0, max_len: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id sequences into ``ids`` (N, T) int64 and ``mask`` (N, T) bool (True = real token).

    T is the longest sequence, or ``max_len`` if that is shorter (longer sequences keep their first
    ``max_len`` ids). An empty batch or an empty sequence is a ValueError: map empty texts to ``[unk]``
    before padding.
    """
    if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1):
        raise ValueError(f"max_len: expected None or an integer >= 1, got {max_len!r}")
    if len(sequences) == 0:
        raise ValueError("sequences: empty batch")
    arrays = []
    for i, sequence in enumerate(sequences):
        array = np.asarray(sequence)
        if array.ndim != 1:
            raise ValueError(f"sequences[{i}]: expected a flat sequence of ids, got shape {array.shape}")
        if array.size == 0:
            raise ValueError(f"sequences[{i}]: empty sequence (map an empty text to [unk] before padding)")
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"sequences[{i}]: expected integer ids, got dtype {array.dtype}")
        if array.min() < 0:
            raise ValueError(f"sequences[{i}]: negative id {array.min()}")
        arrays.append(array if max_len is None else array[:max_len])
    lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=len(arrays))
    num_steps = int(lengths.max())
    ids = np.full((len(arrays), num_steps), pad_id, dtype=np.int64)  # (N, T)
    for row, array in zip(ids, arrays):
        row[: array.size] = array
    mask = np.arange(num_steps) < lengths[:, None]  # (N, T)
    return ids, mask


def length_bucketed_batches(
    lengths: Sequence[int],
    batch_size: int,
    *,
    shuffle: bool,
    rng: np.random.Generator | None = None,
    bucket_batches: int = 50,
) -> list[np.ndarray]:
    """Split ``range(len(lengths))`` into batches of indices (int64 arrays) with similar lengths.

    ``shuffle=True`` (training; needs ``rng``): shuffle all indices, cut them into chunks of
    ``batch_size * bucket_batches``, sort each chunk by length, cut the chunks into batches and shuffle
    the batch order. ``shuffle=False`` (evaluation): all indices sorted by length, shortest first
    (stable, so equal lengths keep input order), cut into batches. Every index appears exactly once;
    the last batch may be smaller. The same ``rng`` state gives the same batches.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    if isinstance(bucket_batches, bool) or not isinstance(bucket_batches, (int, np.integer)) or bucket_batches < 1:
        raise ValueError(f"bucket_batches: expected an integer >= 1, got {bucket_batches!r}")
    lengths_array = np.asarray(lengths)
    if lengths_array.ndim != 1:
        raise ValueError(f"lengths: expected a flat sequence, got shape {lengths_array.shape}")
    if lengths_array.size and not np.issubdtype(lengths_array.dtype, np.integer):
        raise ValueError(f"lengths: expected integers, got dtype {lengths_array.dtype}")
    if lengths_array.size and lengths_array.min() < 0:
        raise ValueError(f"lengths: negative length {lengths_array.min()}")
    if shuffle and rng is None:
        raise ValueError("rng: shuffle=True needs a numpy.random.Generator (e.g. np.random.default_rng(seed))")
    count = lengths_array.size
    if count == 0:
        return []
    if not shuffle:
        order = np.argsort(lengths_array, kind="stable").astype(np.int64)
        return [order[start : start + batch_size] for start in range(0, count, batch_size)]
    permutation = rng.permutation(count).astype(np.int64)
    chunk_size = batch_size * bucket_batches
    batches: list[np.ndarray] = []
    for chunk_start in range(0, count, chunk_size):
        chunk = permutation[chunk_start : chunk_start + chunk_size]
        chunk = chunk[np.argsort(lengths_array[chunk], kind="stable")]
        batches.extend(chunk[start : start + batch_size] for start in range(0, chunk.size, batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]
