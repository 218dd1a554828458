"""stream_windows: a hand example, rows that continue across windows, the short last window, errors."""

import numpy as np
import pytest

from unrolled.data.stream import stream_windows


def test_hand_example():
    windows = stream_windows(np.arange(11), batch_size=2, bptt=3)  # rows 0..4 and 5..9; id 10 dropped
    assert [(x.tolist(), y.tolist()) for x, y in windows] == [
        ([[0, 1, 2], [5, 6, 7]], [[1, 2, 3], [6, 7, 8]]),
        ([[3], [8]], [[4], [9]]),
    ]


@pytest.mark.parametrize("batch_size,bptt", [(1, 4), (3, 5), (4, 1), (5, 100)])
def test_rows_continue_across_windows(batch_size, bptt):
    ids = np.random.default_rng(0).integers(0, 50, size=103)
    windows = stream_windows(ids, batch_size, bptt)
    length = ids.size // batch_size
    for b in range(batch_size):
        xs = np.concatenate([x[b] for x, _ in windows])
        ys = np.concatenate([y[b] for _, y in windows])
        np.testing.assert_array_equal(xs, ids[b * length : (b + 1) * length - 1])  # one contiguous slice
        np.testing.assert_array_equal(ys, ids[b * length + 1 : (b + 1) * length])  # shifted by one
    for x, y in windows:
        assert x.shape == y.shape and x.shape[0] == batch_size and x.dtype == ids.dtype


def test_last_window_is_shorter_and_kept():
    windows = stream_windows(np.arange(24), batch_size=2, bptt=5)  # 12 ids a row -> 11 steps = 5 + 5 + 1
    assert [x.shape for x, _ in windows] == [(2, 5), (2, 5), (2, 1)]
    assert windows[-1][0].tolist() == [[10], [22]] and windows[-1][1].tolist() == [[11], [23]]


def test_windows_are_copies():
    ids = np.arange(10)
    x, _ = stream_windows(ids, 1, 4)[0]
    x[0, 0] = 99
    assert ids[0] == 0


@pytest.mark.parametrize("args,match", [
    ((np.arange(5), 3, 2), "too short for 3 rows.*needs 6 ids"),
    ((np.arange(0), 1, 2), "too short"),
    ((np.arange(12).reshape(3, 4), 2, 2), "1-D"),
    ((np.linspace(0, 1, 10), 2, 2), "integer dtype"),
    ((np.arange(10), 0, 2), "batch_size: expected a positive integer"),
    ((np.arange(10), 2, 0), "bptt: expected a positive integer"),
    ((np.arange(10), True, 2), "batch_size"),
])
def test_errors(args, match):
    with pytest.raises(ValueError, match=match):
        stream_windows(*args)
