import warnings

import numpy as np
import pytest

from unrolled.nn.functional import sigmoid


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_within_one_ulp_of_one_of_the_definition(dtype):
    x = np.linspace(-60.0, 60.0, 12001)
    expected = 1.0 / (1.0 + np.exp(-x))  # float64 reference
    got = sigmoid(x.astype(dtype))
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=0, atol=np.finfo(dtype).eps)
    if dtype == np.float64:  # and relatively exact where the value is not tiny
        moderate = np.abs(x) < 10
        np.testing.assert_allclose(got[moderate], expected[moderate], rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_saturates_without_overflow_warnings(dtype):
    x = np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        y = sigmoid(x)
    assert y.dtype == dtype
    assert y[0] == 0.0 and y[-1] == 1.0 and y[2] == 0.5
    assert 0.0 <= y[1] <= np.finfo(dtype).eps and y[3] == 1.0


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
