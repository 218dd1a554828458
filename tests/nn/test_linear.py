import numpy as np
import pytest

from tests.gradcheck import numerical_gradient, rel_error
from unrolled.nn.linear import linear_backward, linear_forward


def _params(rng, d, o):
    return rng.standard_normal((o, d)), rng.standard_normal(o)


@pytest.mark.parametrize("x_shape", [(5, 4), (3, 2, 4)])
def test_gradcheck_x_weight_bias(x_shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape)
    weight, bias = _params(rng, 4, 3)
    r = rng.standard_normal(x_shape[:-1] + (3,))  # f = Σ r ⊙ y, so df/dy = r

    def f():
        return float(np.sum(r * linear_forward(x, weight, bias)[0]))

    _, cache = linear_forward(x, weight, bias)
    dx, grads = linear_backward(r, cache)
    assert dx.shape == x.shape and set(grads) == {"weight", "bias"}
    assert rel_error(dx, numerical_gradient(f, x)) <= 1e-6
    assert rel_error(grads["weight"], numerical_gradient(f, weight)) <= 1e-6
    assert rel_error(grads["bias"], numerical_gradient(f, bias)) <= 1e-6


def test_forward_matches_formula_and_no_bias_omits_key():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    weight = rng.standard_normal((5, 4)).astype(np.float32)
    y, cache = linear_forward(x, weight, None)
    assert y.shape == (2, 3, 5) and y.dtype == np.float32
    np.testing.assert_allclose(y, np.einsum("ntd,od->nto", x, weight), rtol=1e-5)
    dx, grads = linear_backward(np.ones_like(y), cache)
    assert set(grads) == {"weight"} and dx.dtype == np.float32 and grads["weight"].dtype == np.float32


def test_backward_does_not_mutate_arguments():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4))
    weight, bias = _params(rng, 4, 2)
    _, cache = linear_forward(x, weight, bias)
    dy = rng.standard_normal((3, 2))
    copies = [a.copy() for a in (x, weight, dy)]
    linear_backward(dy, cache)
    for before, after in zip(copies, (x, weight, dy)):
        np.testing.assert_array_equal(before, after)


def test_bad_shapes_and_dtypes_raise():
    rng = np.random.default_rng(3)
    weight, bias = _params(rng, 4, 3)
    with pytest.raises(ValueError, match="^x:"):
        linear_forward(rng.standard_normal((2, 5)), weight, bias)
    with pytest.raises(ValueError, match="^x:"):
        linear_forward(np.float64(1.0), weight, bias)
    with pytest.raises(ValueError, match="^x:"):
        linear_forward(rng.standard_normal((2, 4)).astype(np.float32), weight, bias)
    with pytest.raises(ValueError, match="^weight:"):
        linear_forward(rng.standard_normal((2, 4)), rng.standard_normal(4), bias)
    with pytest.raises(ValueError, match="^bias:"):
        linear_forward(rng.standard_normal((2, 4)), weight, rng.standard_normal(4))
    _, cache = linear_forward(rng.standard_normal((2, 4)), weight, bias)
    with pytest.raises(ValueError, match="^dy:"):
        linear_backward(rng.standard_normal((2, 4)), cache)
