import numpy as np
import pytest

from unrolled.nn.dropout import dropout_backward, dropout_forward


@pytest.mark.parametrize(("p", "training"), [(0.5, False), (0.0, True)])
def test_identity_in_eval_and_with_p_zero(p, training):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    y, cache = dropout_forward(x, p, training=training, rng=None)
    np.testing.assert_array_equal(y, x)
    dy = np.full_like(x, 2.0)
    np.testing.assert_array_equal(dropout_backward(dy, cache), dy)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_drops_fraction_p_and_preserves_the_mean(dtype):
    p, size = 0.3, 200_000
    x = np.ones(size, dtype=dtype)
    y, cache = dropout_forward(x, p, training=True, rng=np.random.default_rng(1))
    assert y.dtype == dtype and cache.mask.dtype == dtype
    # Binomial(size, p) zeros: standard deviation of the fraction ≈ 0.001; allow 5 sigma.
    assert abs(np.mean(y == 0) - p) < 0.005
    assert abs(y.mean() - 1.0) < 0.01
    np.testing.assert_allclose(np.unique(y), [0.0, 1.0 / (1.0 - p)], rtol=1e-6)


def test_backward_uses_the_forward_mask():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 7))
    y, cache = dropout_forward(x, 0.5, training=True, rng=rng)
    dy = rng.standard_normal(x.shape)
    dx = dropout_backward(dy, cache)
    np.testing.assert_array_equal(dx == 0, y == 0)
    np.testing.assert_allclose(dx, dy * (y / x))


def test_same_seed_same_mask_and_different_seed_different_mask():
    x = np.ones((10, 10), dtype=np.float32)
    a, _ = dropout_forward(x, 0.5, training=True, rng=np.random.default_rng(7))
    b, _ = dropout_forward(x, 0.5, training=True, rng=np.random.default_rng(7))
    c, _ = dropout_forward(x, 0.5, training=True, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan"), True, "0.5"])
def test_p_out_of_range_raises(p):
    with pytest.raises(ValueError, match="^p:"):
        dropout_forward(np.ones(3), p, training=True, rng=np.random.default_rng(0))


def test_training_without_rng_raises():
    with pytest.raises(ValueError, match="^rng:"):
        dropout_forward(np.ones(3), 0.5, training=True, rng=None)
