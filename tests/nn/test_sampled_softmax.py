import numpy as np
import pytest

from tests.gradcheck import numerical_gradient, rel_error
from unrolled.nn.losses import softmax_cross_entropy_forward
from unrolled.nn.sampled_softmax import (
    Candidates,
    log_uniform_candidates,
    sampled_softmax_backward,
    sampled_softmax_forward,
)

M, H, V, K = 7, 4, 12, 5


def _data(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal((M, H)).astype(dtype)
    weight = rng.standard_normal((V, H)).astype(dtype)
    bias = rng.standard_normal(V).astype(dtype)
    targets = rng.integers(1, V, M)
    candidates = log_uniform_candidates(rng, V, K)
    return inputs, weight, bias, targets, candidates


def test_gradients_match_finite_differences_in_float64():
    inputs, weight, bias, targets, candidates = _data()
    targets[0] = candidates.ids[0]  # an accidental hit is in the batch
    loss_of = lambda: sampled_softmax_forward(inputs, weight, bias, targets, candidates)[0]  # noqa: E731
    _, cache = sampled_softmax_forward(inputs, weight, bias, targets, candidates)
    dinputs, dweight, dbias = sampled_softmax_backward(cache)
    assert rel_error(dinputs, numerical_gradient(loss_of, inputs)) < 1e-8
    assert rel_error(dweight.to_dense(), numerical_gradient(loss_of, weight)) < 1e-8
    assert rel_error(dbias, numerical_gradient(loss_of, bias)) < 1e-8
    # The sparse rows are exactly the targets and candidates, every other row's gradient zero.
    assert set(dweight.indices) == set(targets) | set(candidates.ids)


def test_dloss_scales_every_gradient():
    inputs, weight, bias, targets, candidates = _data(1)
    _, cache = sampled_softmax_forward(inputs, weight, bias, targets, candidates)
    one, three = sampled_softmax_backward(cache), sampled_softmax_backward(cache, dloss=3.0)
    np.testing.assert_allclose(three[0], 3 * one[0], rtol=1e-12)
    np.testing.assert_allclose(three[1].values, 3 * one[1].values, rtol=1e-12)
    np.testing.assert_allclose(three[2], 3 * one[2], rtol=1e-12)


def test_every_class_once_under_a_uniform_proposal_is_the_full_softmax():
    """Candidates = all V classes with a constant correction: the hit is masked, the rest are the negatives,
    so the loss and the gradient of the inputs are the full cross-entropy's."""
    inputs, weight, bias, targets, _ = _data(2)
    everything = Candidates(np.arange(V), np.full(V, np.log(1.0)))
    loss, cache = sampled_softmax_forward(inputs, weight, bias, targets, everything)
    full, _ = softmax_cross_entropy_forward(inputs @ weight.T + bias, targets)
    assert loss == pytest.approx(full, rel=1e-12)
    dinputs, dweight, dbias = sampled_softmax_backward(cache)
    logits = inputs @ weight.T + bias
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(M), targets] -= 1
    np.testing.assert_allclose(dinputs, p @ weight / M, atol=1e-12)
    np.testing.assert_allclose(dweight.to_dense(), p.T @ inputs / M, atol=1e-12)
    np.testing.assert_allclose(dbias, p.sum(0) / M, atol=1e-12)


def test_the_estimate_approaches_the_full_loss_as_k_grows():
    rng = np.random.default_rng(3)
    inputs, weight, bias = rng.standard_normal((64, H)), rng.standard_normal((200, H)), np.zeros(200)
    targets = rng.integers(1, 200, 64)
    full, _ = softmax_cross_entropy_forward(inputs @ weight.T + bias, targets)
    errors = []
    for k in (8, 4096):
        estimates = [sampled_softmax_forward(inputs, weight, bias, targets, log_uniform_candidates(rng, 200, k))[0]
                     for _ in range(20)]
        errors.append(abs(np.mean(estimates) - full))
    assert errors[1] < errors[0] and errors[1] < 0.05 * full


def test_log_uniform_candidates_follow_the_zipf_proposal():
    rng = np.random.default_rng(4)
    draws = log_uniform_candidates(rng, 50, 200_000)
    assert draws.ids.min() >= 1 and draws.ids.max() <= 49  # <pad> (id 0) never drawn
    j = np.arange(1, 50)
    q = (np.log(j + 1) - np.log(j)) / np.log(50)
    assert q.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(np.bincount(draws.ids, minlength=50)[1:] / 200_000, q, atol=3e-3)
    np.testing.assert_allclose(np.exp(draws.log_expected[1:]), 200_000 * q, rtol=1e-12)
    assert draws.log_expected[0] == -np.inf


def test_float32_stays_float32():
    inputs, weight, bias, targets, candidates = _data(5, np.float32)
    loss, cache = sampled_softmax_forward(inputs, weight, bias, targets, candidates)
    dinputs, dweight, dbias = sampled_softmax_backward(cache)
    assert np.isfinite(loss)
    assert dinputs.dtype == dweight.values.dtype == dbias.dtype == np.float32


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(targets=np.full(M, V)), "targets: expected values in"),
    (lambda a: a.update(inputs=np.zeros((M, H + 1))), "inputs"),
    (lambda a: a.update(candidates=Candidates(np.array([V]), np.zeros(V))), "candidates.ids"),
    (lambda a: a.update(candidates=Candidates(np.array([1]), np.zeros(V - 1))), "candidates.log_expected"),
])
def test_bad_arguments_are_named(change, message):
    inputs, weight, bias, targets, candidates = _data()
    args = dict(inputs=inputs, weight=weight, bias=bias, targets=targets, candidates=candidates)
    change(args)
    with pytest.raises(ValueError, match=message):
        sampled_softmax_forward(**args)


def test_num_sampled_must_be_positive():
    with pytest.raises(ValueError, match="num_sampled"):
        log_uniform_candidates(np.random.default_rng(), 10, 0)
