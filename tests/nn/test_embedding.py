import numpy as np
import pytest

from tests.gradcheck import numerical_gradient, rel_error
from unrolled.nn import embedding as embedding_module
from unrolled.nn.embedding import SparseRows, embedding_backward, embedding_forward

V, E = 7, 3


def _setup(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((V, E)).astype(dtype)
    ids = np.array([[1, 4, 1, 0], [6, 4, 4, 2]])  # repeats 1 and 4; 3 and 5 unused
    return rng, weight, ids


def test_forward_is_a_fresh_copy_of_the_rows():
    _, weight, ids = _setup(dtype=np.float32)
    x, _ = embedding_forward(ids, weight)
    assert x.shape == (2, 4, E) and x.dtype == np.float32
    np.testing.assert_array_equal(x, weight[ids])
    x[0, 0] = 99.0
    assert weight[1, 0] != 99.0


def test_gradcheck_weight():
    rng, weight, ids = _setup()
    r = rng.standard_normal(ids.shape + (E,))  # f = Σ r ⊙ x, so df/dx = r

    def f():
        return float(np.sum(r * embedding_forward(ids, weight)[0]))

    _, cache = embedding_forward(ids, weight)
    dweight = embedding_backward(r, cache)
    assert rel_error(dweight.to_dense(), numerical_gradient(f, weight)) <= 1e-6


def test_repeated_ids_are_summed_and_indices_are_unique_and_sorted():
    rng, weight, ids = _setup()
    dx = rng.standard_normal(ids.shape + (E,))
    _, cache = embedding_forward(ids, weight)
    dweight = embedding_backward(dx, cache)
    assert isinstance(dweight, SparseRows) and dweight.shape == (V, E)
    assert dweight.indices.dtype == np.int64
    np.testing.assert_array_equal(dweight.indices, [0, 1, 2, 4, 6])
    np.testing.assert_allclose(dweight.values[1], dx[0, 0] + dx[0, 2])
    np.testing.assert_allclose(dweight.values[3], dx[0, 1] + dx[1, 1] + dx[1, 2])
    dense = dweight.to_dense()
    np.testing.assert_array_equal(dense[[3, 5]], 0.0)


def test_matches_np_add_at_on_a_large_batch():
    rng = np.random.default_rng(5)
    weight = rng.standard_normal((50, 8)).astype(np.float32)
    ids = rng.integers(0, 50, (16, 20))
    dx = rng.standard_normal((16, 20, 8)).astype(np.float32)
    _, cache = embedding_forward(ids, weight)
    dweight = embedding_backward(dx, cache)
    expected = np.zeros_like(weight)
    np.add.at(expected, ids.reshape(-1), dx.reshape(-1, 8))
    assert dweight.values.dtype == np.float32
    np.testing.assert_allclose(dweight.to_dense(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(dweight.indices, np.unique(ids))


def test_padding_idx_row_gets_no_gradient():
    rng, weight, ids = _setup()
    dx = rng.standard_normal(ids.shape + (E,))
    _, cache = embedding_forward(ids, weight, padding_idx=4)
    dweight = embedding_backward(dx, cache)
    assert 4 not in dweight.indices
    np.testing.assert_array_equal(dweight.to_dense()[4], 0.0)
    np.testing.assert_array_equal(dweight.indices, [0, 1, 2, 6])


def test_backward_does_not_mutate_arguments():
    rng, weight, ids = _setup()
    dx = rng.standard_normal(ids.shape + (E,))
    ids_before, dx_before = ids.copy(), dx.copy()
    _, cache = embedding_forward(ids, weight, padding_idx=1)
    embedding_backward(dx, cache)
    np.testing.assert_array_equal(ids, ids_before)
    np.testing.assert_array_equal(dx, dx_before)


@pytest.mark.parametrize(
    "bad_ids", [np.array([[0, -1]]), np.array([[0, V]]), np.array([[0.0, 1.0]]), [[0, 1]]]
)
def test_bad_ids_raise_naming_ids(bad_ids):
    _, weight, _ = _setup()
    with pytest.raises(ValueError, match="^ids:"):
        embedding_forward(bad_ids, weight)


@pytest.mark.parametrize("padding_idx", [-1, V, 1.0])
def test_bad_padding_idx_raises(padding_idx):
    _, weight, ids = _setup()
    with pytest.raises(ValueError, match="^padding_idx:"):
        embedding_forward(ids, weight, padding_idx=padding_idx)


def test_bad_dx_shape_raises():
    _, weight, ids = _setup()
    _, cache = embedding_forward(ids, weight)
    with pytest.raises(ValueError, match="^dx:"):
        embedding_backward(np.zeros((2, 4, E + 1)), cache)


def test_matches_torch_embedding_with_padding_idx():
    torch = pytest.importorskip("torch")
    rng, weight, ids = _setup()
    dx = rng.standard_normal(ids.shape + (E,))
    module = torch.nn.Embedding(V, E, padding_idx=4, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(weight))
    out = module(torch.from_numpy(ids))
    out.backward(torch.from_numpy(dx))

    x, cache = embedding_forward(ids, weight, padding_idx=4)
    np.testing.assert_array_equal(x, out.detach().numpy())
    np.testing.assert_allclose(embedding_backward(dx, cache).to_dense(), module.weight.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("padding_idx", [None, 0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("in_c", [True, False])  # the C sums (when built) and _sum_runs
def test_runs_of_every_length_sum_their_deltas_in_position_order(padding_idx, dtype, in_c, monkeypatch):
    import types

    if not in_c:
        monkeypatch.setattr(embedding_module, "fused", types.SimpleNamespace(ACTIVE=False))
    elif not embedding_module.fused.ACTIVE:
        pytest.skip("the C extension is not built")
    # Zipf-like ids: one id hundreds of times (a run longer than LONG_RUN), many once, some a few times.
    rng = np.random.default_rng(11)
    ids = np.minimum(rng.zipf(1.3, size=(24, 40)) - 1, 499)
    dx = rng.standard_normal(ids.shape + (5,)).astype(dtype)
    _, cache = embedding_forward(ids, np.zeros((500, 5), dtype), padding_idx=padding_idx)
    dweight = embedding_backward(dx, cache)
    assert dweight.values.dtype == dtype
    counts = np.bincount(ids.reshape(-1))
    assert counts.max() > embedding_module.LONG_RUN and (counts == 1).any() and ((counts > 1) & (counts < 10)).any()
    expected = {}
    for v, delta in zip(ids.reshape(-1), dx.reshape(-1, 5)):  # in position order, one addition at a time
        if v != padding_idx:
            expected[v] = expected[v] + delta if v in expected else delta.copy()
    np.testing.assert_array_equal(dweight.indices, sorted(expected))
    np.testing.assert_array_equal(dweight.values, np.array([expected[v] for v in sorted(expected)]))


def test_a_batch_of_padding_only_has_no_rows():
    _, cache = embedding_forward(np.zeros((2, 3), dtype=np.int64), np.ones((4, 2)), padding_idx=0)
    dweight = embedding_backward(np.ones((2, 3, 2)), cache)
    assert dweight.indices.shape == (0,) and dweight.values.shape == (0, 2)


def test_2d_ids_are_gathered_time_major_and_a_time_major_dx_summed_in_that_order():
    """(N, T) ids give an (N, T, E) view of (T, N, E) memory (what the recurrent layer walks); a dx laid out
    the same way is summed over positions in time-major order, without a copy of dx."""
    rng = np.random.default_rng(12)
    ids = rng.integers(0, 6, (5, 7))
    weight = rng.standard_normal((6, 3))
    x, cache = embedding_forward(ids, weight)
    np.testing.assert_array_equal(x, weight[ids])
    assert x.transpose(1, 0, 2).flags.c_contiguous
    dx = rng.standard_normal((7, 5, 3)).transpose(1, 0, 2)  # (N, T, E), time-major in memory
    dweight = embedding_backward(dx, cache)
    expected = {}
    for t in range(7):  # time-major position order, one addition at a time
        for n in range(5):
            v = ids[n, t]
            expected[v] = expected[v] + dx[n, t] if v in expected else dx[n, t].copy()
    np.testing.assert_array_equal(dweight.indices, sorted(expected))
    np.testing.assert_array_equal(dweight.values, np.array([expected[v] for v in sorted(expected)]))


def test_the_c_sums_refuse_rows_and_runs_outside_their_arrays():
    if not embedding_module.fused.ACTIVE:
        pytest.skip("the C extension is not built")
    sum_runs = embedding_module.fused._fused.sum_runs
    rows, out = np.ones((4, 3)), np.empty((2, 3))
    with pytest.raises(IndexError, match="outside rows"):
        sum_runs(rows, np.array([0, 1, 4]), np.array([0, 2]), out, True)
    with pytest.raises(ValueError, match="rise from 0"):
        sum_runs(rows, np.array([0, 1, 2]), np.array([1, 2]), out, True)
    with pytest.raises(ValueError, match="expected rows"):
        sum_runs(rows, np.array([0, 1, 2]), np.array([0, 1, 2]), out, True)
