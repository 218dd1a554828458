"""Truncated-BPTT batches of one continuous token stream, as PyTorch's word_language_model.

Dimension letters: B parallel streams (the batch), T steps per window (``bptt``, the last window may be
shorter).

The stream is cut into B contiguous pieces of equal length S = len(ids) // B (the last len(ids) mod B ids
are dropped), stacked as rows; windows then walk along the rows ``bptt`` steps at a time::

    ids = 0 1 2 3 4 5 6 7 8 9 10, B = 2    ->    rows  0 1 2 3 4
                                                       5 6 7 8 9      (10 dropped)
    bptt = 3: x = [[0 1 2], [5 6 7]], y = [[1 2 3], [6 7 8]];   x = [[3], [8]], y = [[4], [9]]

Row b of window k+1 continues row b of window k, so the recurrent state of window k's rows is the right
initial state for window k+1 (carry ``state_final`` into ``state0``). Each row's last id is only a target.
"""

from __future__ import annotations

import numpy as np

from unrolled.nn._validation import check_positive_int

__all__ = ["stream_windows"]


def stream_windows(ids: np.ndarray, batch_size: int, bptt: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cut a 1-D id stream into windows ``(x, y)``, each (B, T) with y = x shifted one step ahead.

    Parameters
    ----------
    ids : (len,) integer array, the whole stream
    batch_size : B, the number of parallel streams (rows)
    bptt : T, the steps per window; the last window keeps the remaining 1..T steps

    Returns
    -------
    windows : list of (x, y), fresh arrays of ids' dtype

    A stream too short to give each row one step (fewer than 2·B ids) is a ValueError.
    """
    check_positive_int("batch_size", batch_size)
    check_positive_int("bptt", bptt)
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids: expected a 1-D stream of ids, got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids: expected an integer dtype, got {ids.dtype}")
    length = ids.size // batch_size  # S, ids per row
    if length < 2:
        raise ValueError(
            f"ids: a stream of {ids.size} ids is too short for {batch_size} rows of at least one step "
            f"(needs {2 * batch_size} ids)"
        )
    rows = ids[: batch_size * length].reshape(batch_size, length)  # (B, S)
    windows = []
    for start in range(0, length - 1, bptt):
        steps = min(bptt, length - 1 - start)  # T of this window
        windows.append((rows[:, start : start + steps].copy(), rows[:, start + 1 : start + 1 + steps].copy()))
    return windows
