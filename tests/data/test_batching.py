"""pad_batch and length_bucketed_batches: shapes, masks, coverage, padding cost, determinism."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unrolled.data import length_bucketed_batches, pad_batch


def test_pad_batch_right_pads_with_mask():
    ids, mask = pad_batch([[5, 6, 7], [8], [9, 10]])
    assert ids.dtype == np.int64 and mask.dtype == np.bool_
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert mask.tolist() == [[True, True, True], [True, False, False], [True, True, False]]


def test_pad_batch_custom_pad_id_and_numpy_input():
    ids, mask = pad_batch([np.array([3, 4], dtype=np.int32), np.array([5])], pad_id=9)
    assert ids.tolist() == [[3, 4], [5, 9]] and ids.dtype == np.int64
    assert mask.sum() == 3


def test_pad_batch_truncates_to_max_len_keeping_the_start():
    ids, mask = pad_batch([[1, 2, 3, 4, 5], [6, 7]], max_len=3)
    assert ids.tolist() == [[1, 2, 3], [6, 7, 0]]
    assert mask.tolist() == [[True, True, True], [True, True, False]]
    ids, _ = pad_batch([[1, 2]], max_len=10)  # T is the longest sequence, not max_len
    assert ids.shape == (1, 2)


@pytest.mark.parametrize(("sequences", "kwargs", "match"), [
    ([[1], []], {}, r"sequences\[1\]: empty sequence"),
    ([], {}, "empty batch"),
    ([[1.5]], {}, r"sequences\[0\]: expected integer ids"),
    ([[1, -2]], {}, r"sequences\[0\]: negative id -2"),
    ([[[1, 2]]], {}, r"sequences\[0\]: expected a flat sequence"),
    ([[1]], {"max_len": 0}, "max_len"),
])
def test_pad_batch_rejects_bad_input(sequences, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pad_batch(sequences, **kwargs)


def skewed_lengths(count=1000, seed=0):
    """Mostly short sequences with a long tail, like reviews."""
    rng = np.random.default_rng(seed)
    return (rng.lognormal(mean=3.0, sigma=1.0, size=count).astype(np.int64) + 1).tolist()


def padding_cost(lengths, batches):
    lengths = np.asarray(lengths)
    return sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in batches)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize(("count", "batch_size", "bucket_batches"), [(1000, 32, 5), (7, 3, 50), (64, 64, 1), (1, 8, 2)])
def test_every_index_exactly_once(shuffle, count, batch_size, bucket_batches):
    lengths = skewed_lengths(count)
    batches = length_bucketed_batches(
        lengths, batch_size, shuffle=shuffle, rng=np.random.default_rng(1), bucket_batches=bucket_batches
    )
    assert all(b.dtype == np.int64 for b in batches)
    assert sorted(np.concatenate(batches).tolist()) == list(range(count))
    sizes = [len(b) for b in batches]
    assert all(size == batch_size for size in sizes if size != min(sizes))
    assert sum(size < batch_size for size in sizes) <= 1  # only the last partial batch is smaller
    assert len(batches) == -(-count // batch_size)


def test_last_partial_batch_is_kept():
    batches = length_bucketed_batches([3, 1, 2, 5, 4], 2, shuffle=False)
    assert [b.tolist() for b in batches] == [[1, 2], [0, 4], [3]]


def test_evaluation_order_is_sorted_and_stable():
    lengths = [2, 1, 2, 1, 3]
    order = np.concatenate(length_bucketed_batches(lengths, 2, shuffle=False)).tolist()
    assert order == [1, 3, 0, 2, 4]


def test_bucketing_pads_less_than_random_batches():
    lengths = skewed_lengths(2000)
    rng = np.random.default_rng(0)
    bucketed = length_bucketed_batches(lengths, 32, shuffle=True, rng=rng)
    permutation = np.random.default_rng(0).permutation(len(lengths))
    random_batches = [permutation[i : i + 32] for i in range(0, len(lengths), 32)]
    assert padding_cost(lengths, bucketed) < 0.25 * padding_cost(lengths, random_batches)
    assert padding_cost(lengths, length_bucketed_batches(lengths, 32, shuffle=False)) <= padding_cost(lengths, bucketed)


def test_shuffled_batches_are_in_random_order():
    lengths = skewed_lengths(500)
    # One chunk (16 * 50 >= 500): sorted by length inside, so only the batch shuffle can break the order.
    batches = length_bucketed_batches(lengths, 16, shuffle=True, rng=np.random.default_rng(0), bucket_batches=50)
    max_lengths = [max(lengths[i] for i in b) for b in batches]
    assert max_lengths != sorted(max_lengths)


def test_same_seed_same_batches_other_seed_other_batches():
    lengths = skewed_lengths(500)

    def run(seed):
        return [b.tolist() for b in length_bucketed_batches(lengths, 16, shuffle=True, rng=np.random.default_rng(seed))]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_empty_lengths_give_no_batches():
    assert length_bucketed_batches([], 4, shuffle=False) == []


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    (([1, 2], 0), {"shuffle": False}, "batch_size"),
    (([1, 2], 2), {"shuffle": False, "bucket_batches": 0}, "bucket_batches"),
    (([1, 2], 2), {"shuffle": True}, "rng: shuffle=True needs"),
    (([1, -1], 2), {"shuffle": False}, "negative length"),
    (([1.5, 2], 2), {"shuffle": False}, "expected integers"),
])
def test_length_bucketed_batches_rejects_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        length_bucketed_batches(*args, **kwargs)


def test_indices_scatter_predictions_back():
    lengths = [5, 1, 3, 2, 4]
    predictions = np.empty(len(lengths), dtype=np.int64)
    for batch in length_bucketed_batches(lengths, 2, shuffle=False):
        predictions[batch] = np.asarray(lengths)[batch] * 10  # a "model" whose output depends on the row
    assert predictions.tolist() == [50, 10, 30, 20, 40]


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=300),
    batch_size=st.integers(min_value=1, max_value=40),
    shuffle=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_batches_always_partition_the_indices(lengths, batch_size, shuffle, seed):
    rng = np.random.default_rng(seed) if shuffle else None
    batches = length_bucketed_batches(lengths, batch_size, shuffle=shuffle, rng=rng)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert sum(len(b) < batch_size for b in batches) <= (len(lengths) + batch_size * 50 - 1) // (batch_size * 50)
