import warnings

import numpy as np
import pytest

from unrolled.nn.functional import sigmoid


def test_sigmoid_matches_definition_in_float64():
    x = np.linspace(-30.0, 30.0, 601)
    expected = 1.0 / (1.0 + np.exp(-x))
    got = sigmoid(x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0)


def test_sigmoid_is_relatively_accurate_deep_in_the_negative_tail():
    x = np.array([-50.0, -200.0, -700.0])
    np.testing.assert_allclose(sigmoid(x), np.exp(x) / (1.0 + np.exp(x)), rtol=1e-14, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_saturates_without_overflow_warnings(dtype):
    x = np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        y = sigmoid(x)
    assert y.dtype == dtype
    assert y[0] == 0.0 and y[-1] == 1.0 and y[2] == 0.5
    assert 0.0 <= y[1] < 1e-40 and y[3] == 1.0


def test_naive_sigmoid_would_overflow():
    # The guard above is meaningful: the textbook formula trips it.
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        1.0 / (1.0 + np.exp(-np.array([-1000.0], dtype=np.float32)))


def test_sigmoid_writes_into_out_including_in_place():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5)).astype(np.float32) * 10
    expected = sigmoid(x)
    out = np.empty_like(x)
    assert sigmoid(x, out=out) is out
    np.testing.assert_array_equal(out, expected)
    assert sigmoid(x, out=x) is x
    np.testing.assert_array_equal(x, expected)
