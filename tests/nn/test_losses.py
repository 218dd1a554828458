import numpy as np
import pytest

from tests.gradcheck import numerical_gradient, rel_error
from unrolled.nn.losses import (
    log_softmax,
    mse_backward,
    mse_forward,
    softmax,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)

N, C = 6, 5
MASK = np.array([True, False, True, True, False, True])


def _ce_data(seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((N, C)) * 2
    targets = rng.integers(0, C, N)
    class_weight = rng.uniform(0.2, 2.0, C)
    return logits, targets, class_weight


# --- softmax helpers ---


def test_softmax_and_log_softmax_are_stable_and_consistent():
    logits = np.array([[1e4, 0.0, -1e4], [1.0, 2.0, 3.0]])
    p = softmax(logits)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(np.exp(log_softmax(logits)), p, rtol=1e-15)
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(p[1], e / e.sum(), rtol=1e-15)
    np.testing.assert_allclose(softmax(logits.T, axis=0), p.T, rtol=1e-15)


# --- softmax cross-entropy ---


@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize("use_weight", [False, True])
def test_cross_entropy_gradcheck(use_mask, use_weight):
    logits, targets, class_weight = _ce_data()
    kwargs = {"mask": MASK if use_mask else None, "class_weight": class_weight if use_weight else None}

    def f():
        return softmax_cross_entropy_forward(logits, targets, **kwargs)[0]

    _, cache = softmax_cross_entropy_forward(logits, targets, **kwargs)
    dlogits = softmax_cross_entropy_backward(cache, dloss=1.7)
    assert rel_error(dlogits, 1.7 * numerical_gradient(f, logits)) <= 1e-6
    if use_mask:
        np.testing.assert_array_equal(dlogits[~MASK], 0.0)


def test_cross_entropy_small_example_by_hand():
    logits = np.array([[0.0, 0.0], [np.log(3.0), 0.0]])
    loss, _ = softmax_cross_entropy_forward(logits, np.array([0, 1]))
    assert loss == pytest.approx((np.log(2.0) + np.log(4.0)) / 2, rel=1e-15)


def test_cross_entropy_initial_loss_is_log_c_for_uniform_logits():
    loss, _ = softmax_cross_entropy_forward(np.zeros((4, 10), np.float32), np.arange(4))
    assert loss == pytest.approx(np.log(10.0), rel=1e-6)


@pytest.mark.parametrize("use_weight", [False, True])
def test_cross_entropy_matches_torch(use_weight):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    logits, targets, class_weight = _ce_data(1)
    for mask in (None, MASK):
        rows = slice(None) if mask is None else mask
        t_logits = torch.tensor(logits[rows], requires_grad=True)
        t_weight = torch.from_numpy(class_weight) if use_weight else None
        t_loss = F.cross_entropy(t_logits, torch.from_numpy(targets[rows]), weight=t_weight)
        t_loss.backward()

        loss, cache = softmax_cross_entropy_forward(
            logits, targets, mask=mask, class_weight=class_weight if use_weight else None
        )
        dlogits = softmax_cross_entropy_backward(cache)
        assert abs(loss - t_loss.item()) <= 1e-12 * abs(t_loss.item())
        assert rel_error(dlogits[rows], t_logits.grad.numpy()) <= 1e-12


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_with_huge_logits_is_finite_and_exact(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    targets = np.array([1, 2, 0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, cache = softmax_cross_entropy_forward(logits, targets)
        dlogits = softmax_cross_entropy_backward(cache)
    # Item 0: nll = 2e4; item 1: nll = 0; item 2: nll = log 2.
    assert loss == pytest.approx((2e4 + 0.0 + np.log(2.0)) / 3, rel=1e-6)
    assert np.isfinite(dlogits).all() and dlogits.dtype == dtype
    expected = np.array([[1, -1, 0], [0, 0, 0], [-0.5, 0.5, 0]]) / 3
    np.testing.assert_allclose(dlogits, expected, atol=1e-7)


def test_cross_entropy_with_very_negative_logits():
    logits = np.array([[-1e30, 0.0, 1.0]], dtype=np.float32)
    loss, cache = softmax_cross_entropy_forward(logits, np.array([2]))
    assert loss == pytest.approx(np.log1p(np.exp(-1.0)), rel=1e-6)
    assert np.isfinite(softmax_cross_entropy_backward(cache)).all()


def test_cross_entropy_keeps_dtype_and_probabilities():
    logits, targets, class_weight = _ce_data()
    logits32 = logits.astype(np.float32)
    _, cache = softmax_cross_entropy_forward(logits32, targets, class_weight=class_weight.astype(np.float32))
    assert cache.probs.dtype == np.float32 and cache.probs.shape == (N, C)
    np.testing.assert_allclose(cache.probs, softmax(logits), rtol=1e-5)
    assert softmax_cross_entropy_backward(cache).dtype == np.float32


def test_cross_entropy_all_masked_raises():
    logits, targets, _ = _ce_data()
    with pytest.raises(ValueError, match="^mask: no item is unmasked"):
        softmax_cross_entropy_forward(logits, targets, mask=np.zeros(N, bool))


def test_cross_entropy_bad_arguments_raise():
    logits, targets, class_weight = _ce_data()
    with pytest.raises(ValueError, match="^targets:"):
        softmax_cross_entropy_forward(logits, np.full(N, C))
    with pytest.raises(ValueError, match="^targets:"):
        softmax_cross_entropy_forward(logits, targets[:-1])
    with pytest.raises(ValueError, match="^logits:"):
        softmax_cross_entropy_forward(logits[0], targets)
    with pytest.raises(ValueError, match="^mask:"):
        softmax_cross_entropy_forward(logits, targets, mask=MASK.astype(int))
    with pytest.raises(ValueError, match="^class_weight:"):
        softmax_cross_entropy_forward(logits, targets, class_weight=class_weight.astype(np.float32))
    with pytest.raises(ValueError, match="^class_weight:"):
        softmax_cross_entropy_forward(logits, targets, class_weight=np.zeros(C))


def test_cross_entropy_backward_does_not_mutate_cache():
    logits, targets, _ = _ce_data()
    _, cache = softmax_cross_entropy_forward(logits, targets)
    probs = cache.probs.copy()
    softmax_cross_entropy_backward(cache)
    np.testing.assert_array_equal(cache.probs, probs)


# --- mean squared error ---


@pytest.mark.parametrize("mask", [None, MASK, "elementwise"])
def test_mse_gradcheck(mask):
    rng = np.random.default_rng(2)
    pred, target = rng.standard_normal((2, N, 3))
    if isinstance(mask, str):
        mask = rng.random((N, 3)) < 0.5

    def f():
        return mse_forward(pred, target, mask=mask)[0]

    _, cache = mse_forward(pred, target, mask=mask)
    dpred = mse_backward(cache, dloss=0.3)
    assert rel_error(dpred, 0.3 * numerical_gradient(f, pred)) <= 1e-6


def test_mse_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    pred, target = rng.standard_normal((2, N, 4))
    for mask in (None, MASK):
        rows = slice(None) if mask is None else mask
        t_pred = torch.tensor(pred[rows], requires_grad=True)
        t_loss = torch.nn.functional.mse_loss(t_pred, torch.from_numpy(target[rows]))
        t_loss.backward()
        loss, cache = mse_forward(pred, target, mask=mask)
        assert loss == pytest.approx(t_loss.item(), rel=1e-12)
        assert rel_error(mse_backward(cache)[rows], t_pred.grad.numpy()) <= 1e-12


def test_mse_elementwise_mask_counts_elements():
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    mask = np.array([[True, False], [True, True]])
    loss, _ = mse_forward(pred, np.zeros_like(pred), mask=mask)
    assert loss == pytest.approx((1 + 9 + 16) / 3)


def test_mse_bad_arguments_raise():
    pred = np.zeros((N, 2))
    with pytest.raises(ValueError, match="^mask: no item is unmasked"):
        mse_forward(pred, pred, mask=np.zeros(N, bool))
    with pytest.raises(ValueError, match="^mask:"):
        mse_forward(pred, pred, mask=np.ones((N, 3), bool))
    with pytest.raises(ValueError, match="^target:"):
        mse_forward(pred, np.zeros((N, 3)))
    with pytest.raises(ValueError, match="^target:"):
        mse_forward(pred, pred.astype(np.float32))
