"""CTC loss: finite differences in float64, torch.nn.functional.ctc_loss, and the edge cases (repeated labels,
no labels, the fewest frames that fit, padded batches, impossible labellings)."""

import numpy as np
import pytest

from tests.gradcheck import numerical_gradient, rel_error
from unrolled.nn.ctc import ctc_backward, ctc_forward, ctc_min_frames
from unrolled.nn.losses import log_softmax


def _batch(seed=0, n=4, t=9, c=5, s=4):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, t, c))
    targets = rng.integers(1, c, (n, s))
    targets[0, :3] = [2, 2, 3]  # a repeated label needs a blank between
    input_lengths = np.array([t, t - 2, 5, 3][:n])
    target_lengths = np.array([4, 2, 0, 1][:n])  # sequence 2 has no labels at all
    return logits, input_lengths, targets, target_lengths


def _brute_force_log_p(log_probs, labels, blank=0):
    """log p(labels) by summing over every frame path (tiny T and C only)."""
    from itertools import product

    from unrolled.models.ctc_decoding import collapse

    t_len, c = log_probs.shape
    total = -np.inf
    for path in product(range(c), repeat=t_len):
        if collapse(path, blank) == list(labels):
            total = np.logaddexp(total, sum(log_probs[t, k] for t, k in enumerate(path)))
    return total


def test_loss_matches_summing_every_alignment():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((1, 5, 3))
    for labels in ([1, 2], [1, 1], [2], []):
        targets = np.array([labels or [1]])
        loss, _ = ctc_forward(logits, np.array([5]), targets, np.array([len(labels)]), reduction="none")
        assert loss[0] == pytest.approx(-_brute_force_log_p(log_softmax(logits[0]), labels), rel=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradient_matches_finite_differences(reduction):
    logits, il, tg, tl = _batch()
    weights = np.linspace(0.5, 1.5, len(il))

    def f():
        loss, _ = ctc_forward(logits, il, tg, tl, reduction=reduction)
        return float(np.sum(np.asarray(loss) * weights)) if reduction == "none" else loss

    _, cache = ctc_forward(logits, il, tg, tl, reduction=reduction)
    analytic = ctc_backward(cache, weights if reduction == "none" else 1.0)
    assert rel_error(analytic, numerical_gradient(f, logits)) < 1e-8
    assert np.all(analytic[1, il[1]:] == 0) and np.all(analytic[3, il[3]:] == 0)  # padded frames: no gradient


def test_minimum_frames_fit_exactly_one_path():
    labels = np.array([1, 1, 2])
    assert ctc_min_frames(labels) == 4
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((1, 4, 3))
    loss, cache = ctc_forward(logits, np.array([4]), labels[None], np.array([3]), reduction="sum")
    logp = log_softmax(logits[0])
    only_path = logp[0, 1] + logp[1, 0] + logp[2, 1] + logp[3, 2]  # 1 _ 1 2
    assert loss == pytest.approx(-only_path, rel=1e-12)
    assert rel_error(ctc_backward(cache), numerical_gradient(
        lambda: ctc_forward(logits, np.array([4]), labels[None], np.array([3]), reduction="sum")[0], logits)) < 1e-8


def test_too_few_frames_is_infinite_or_zeroed():
    logits = np.zeros((2, 3, 3))
    targets = np.array([[1, 1, 2], [1, 0, 0]])
    lengths = np.array([3, 1])
    loss, cache = ctc_forward(logits, np.array([3, 3]), targets, lengths, reduction="none")
    assert loss[0] == np.inf and np.isfinite(loss[1])
    assert np.isnan(ctc_backward(cache, np.ones(2))[0]).all()
    loss, cache = ctc_forward(logits, np.array([3, 3]), targets, lengths, reduction="none", zero_infinity=True)
    assert loss[0] == 0.0
    grad = ctc_backward(cache, np.ones(2))
    assert np.all(grad[0] == 0) and np.isfinite(grad).all()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_torch(reduction):
    torch = pytest.importorskip("torch")
    logits, il, tg, tl = _batch(seed=5, n=4, t=14, c=7, s=5)
    loss, cache = ctc_forward(logits, il, tg, tl, reduction=reduction)
    grad = ctc_backward(cache, np.ones(4) if reduction == "none" else 1.0)
    x = torch.tensor(logits, requires_grad=True)
    expected = torch.nn.functional.ctc_loss(torch.log_softmax(x, -1).transpose(0, 1), torch.tensor(tg),
                                            torch.tensor(il), torch.tensor(tl), reduction=reduction)
    expected.sum().backward()
    np.testing.assert_allclose(loss, expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad, x.grad.numpy(), atol=1e-12)


def test_float32_logits_give_float32_gradients_close_to_float64():
    logits, il, tg, tl = _batch(seed=2)
    loss64, cache64 = ctc_forward(logits, il, tg, tl)
    loss32, cache32 = ctc_forward(logits.astype(np.float32), il, tg, tl)
    grad32 = ctc_backward(cache32)
    assert grad32.dtype == np.float32
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    np.testing.assert_allclose(grad32, ctc_backward(cache64), atol=1e-6)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(blank=9), "blank: expected a symbol in"),
    (lambda a: a.update(input_lengths=np.array([10, 1, 1, 1])), "input_lengths: sequence 0 has 10 frames"),
    (lambda a: a.update(target_lengths=np.array([5, 1, 1, 1])), "target_lengths: sequence 0 has 5 labels"),
    (lambda a: a["targets"].__setitem__((1, 0), 0), "targets: sequence 1, label 0 is 0"),
    (lambda a: a.update(reduction="avg"), "reduction: expected one of"),
])
def test_bad_arguments_are_one_line_errors(change, message):
    logits, il, tg, tl = _batch()
    args = dict(input_lengths=il, targets=tg.copy(), target_lengths=tl)
    change(args)
    with pytest.raises(ValueError, match=message):
        ctc_forward(logits, **args)
