import numpy as np
import pytest

from tests.gradcheck import numerical_gradient, rel_error
from unrolled.nn.losses import (
    log_softmax,
    sequence_cross_entropy_backward,
    sequence_cross_entropy_forward,
    softmax_cross_entropy_forward,
)

N, T, V = 3, 4, 6
PAD = 0
# right-padded target sequences of lengths 4, 2 and 1
MASK = np.array([[True, True, True, True], [True, True, False, False], [True, False, False, False]])


def _data(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((N, T, V)) * 2).astype(dtype)
    targets = rng.integers(1, V, (N, T))  # real tokens avoid the padding id
    targets[~MASK] = PAD
    return logits, targets


def _torch_loss(torch, logits, targets, mask, epsilon, ignore_index):
    """torch's loss and dlogits, with the padded targets set to ``ignore_index`` (none padded: mask None)."""
    F = torch.nn.functional
    t_logits = torch.tensor(logits, requires_grad=True)
    t_targets = torch.from_numpy(targets if mask is None else np.where(mask, targets, ignore_index))
    t_loss = F.cross_entropy(
        t_logits.reshape(-1, V), t_targets.reshape(-1), ignore_index=ignore_index, label_smoothing=epsilon,
        reduction="mean",
    )
    t_loss.backward()
    return t_loss.item(), t_logits.grad.numpy()


# --- finite differences ---


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("use_mask", [False, True])
def test_gradcheck(epsilon, use_mask):
    logits, targets = _data()
    mask = MASK if use_mask else None

    def f():
        return sequence_cross_entropy_forward(logits, targets, mask, label_smoothing=epsilon)[0]

    _, cache = sequence_cross_entropy_forward(logits, targets, mask, label_smoothing=epsilon)
    dlogits = sequence_cross_entropy_backward(cache, dloss=1.7)
    assert dlogits.shape == logits.shape
    assert rel_error(dlogits, 1.7 * numerical_gradient(f, logits)) <= 1e-7


def test_gradcheck_catches_a_wrong_smoothing_gradient():
    """The check above can fail: the gradient without the ε / V term is caught."""
    logits, targets = _data(1)

    def f():
        return sequence_cross_entropy_forward(logits, targets, MASK, label_smoothing=0.1)[0]

    _, cache = sequence_cross_entropy_forward(logits, targets, MASK, label_smoothing=0.1)
    numeric = numerical_gradient(f, logits)
    dlogits = sequence_cross_entropy_backward(cache)
    assert rel_error(dlogits, numeric) <= 1e-7
    wrong = dlogits + (0.1 / V) * cache.token_weight[:, :, None]  # forgot to subtract ε / V
    assert rel_error(wrong, numeric) > 1e-3  # four orders above the tolerance


# --- padding ---


@pytest.mark.parametrize("epsilon", [0.0, 0.1])
def test_padded_tokens_contribute_nothing_and_get_zero_gradient(epsilon):
    logits, targets = _data(2)
    loss, cache = sequence_cross_entropy_forward(logits, targets, MASK, label_smoothing=epsilon)
    dlogits = sequence_cross_entropy_backward(cache)
    np.testing.assert_array_equal(dlogits[~MASK], 0.0)
    assert (np.abs(dlogits[MASK]).sum(axis=-1) > 0).all()

    moved_logits, moved_targets = logits.copy(), targets.copy()
    moved_logits[~MASK] = 50.0 * np.random.default_rng(3).standard_normal(moved_logits[~MASK].shape)
    moved_targets[~MASK] = V - 1
    loss2, cache2 = sequence_cross_entropy_forward(moved_logits, moved_targets, MASK, label_smoothing=epsilon)
    assert loss2 == loss
    np.testing.assert_array_equal(sequence_cross_entropy_backward(cache2)[MASK], dlogits[MASK])


def test_no_real_token_raises():
    logits, targets = _data()
    with pytest.raises(ValueError, match="^mask: no target token is real$"):
        sequence_cross_entropy_forward(logits, targets, np.zeros((N, T), bool))
    with pytest.raises(ValueError, match="^logits: no target token"):
        sequence_cross_entropy_forward(np.zeros((N, 0, V)), np.zeros((N, 0), int))


# --- values ---


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 1.0])
def test_uniform_logits_give_log_v_for_any_smoothing(epsilon):
    # the smoothed target sums to 1, so −Σ_v q_v log(1/V) = log V
    loss, _ = sequence_cross_entropy_forward(np.zeros((N, T, V), np.float32), np.ones((N, T), int), MASK,
                                             label_smoothing=epsilon)
    assert loss == pytest.approx(np.log(V), rel=1e-6)


def test_small_example_by_hand():
    # one sequence, two real tokens and one padded: logits [0, ln 3] for target 1, [0, 0] for target 0
    logits = np.array([[[0.0, np.log(3.0)], [0.0, 0.0], [7.0, -7.0]]])
    targets = np.array([[1, 0, 1]])
    mask = np.array([[True, True, False]])
    loss, _ = sequence_cross_entropy_forward(logits, targets, mask)
    assert loss == pytest.approx((np.log(4 / 3) + np.log(2.0)) / 2, rel=1e-15)
    # ε = 0.2, V = 2: q = [0.1, 0.9] and [0.9, 0.1]
    loss, _ = sequence_cross_entropy_forward(logits, targets, mask, label_smoothing=0.2)
    first = -(0.1 * np.log(0.25) + 0.9 * np.log(0.75))
    assert loss == pytest.approx((first + np.log(2.0)) / 2, rel=1e-15)


def test_without_smoothing_equals_the_flat_cross_entropy():
    logits, targets = _data(4)
    loss, cache = sequence_cross_entropy_forward(logits, targets, MASK)
    flat_loss, flat_cache = softmax_cross_entropy_forward(logits.reshape(-1, V), targets.reshape(-1),
                                                          mask=MASK.reshape(-1))
    assert loss == pytest.approx(flat_loss, rel=1e-15)
    np.testing.assert_allclose(cache.probs.reshape(-1, V), flat_cache.probs, rtol=1e-15)
    np.testing.assert_allclose(cache.probs, np.exp(log_softmax(logits)), rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_are_finite_and_keep_dtype(dtype):
    logits, targets = _data(5, dtype)
    logits[0, 0] = [1e4, -1e4, 0.0, 0.0, 0.0, 0.0]
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, cache = sequence_cross_entropy_forward(logits, targets, MASK, label_smoothing=0.1)
        dlogits = sequence_cross_entropy_backward(cache)
    assert np.isfinite(loss) and np.isfinite(dlogits).all()
    assert dlogits.dtype == dtype and cache.probs.dtype == dtype and cache.token_weight.dtype == dtype


def test_float32_matches_float64():
    logits, targets = _data(6)
    loss64, cache64 = sequence_cross_entropy_forward(logits, targets, MASK, label_smoothing=0.1)
    loss32, cache32 = sequence_cross_entropy_forward(logits.astype(np.float32), targets, MASK, label_smoothing=0.1)
    assert loss32 == pytest.approx(loss64, rel=1e-6)
    d32 = sequence_cross_entropy_backward(cache32)
    assert d32.dtype == np.float32
    assert rel_error(d32, sequence_cross_entropy_backward(cache64)) <= 1e-6


def test_backward_does_not_mutate_cache():
    logits, targets = _data(7)
    _, cache = sequence_cross_entropy_forward(logits, targets, MASK, label_smoothing=0.1)
    probs, weight = cache.probs.copy(), cache.token_weight.copy()
    first = sequence_cross_entropy_backward(cache)
    np.testing.assert_array_equal(cache.probs, probs)
    np.testing.assert_array_equal(cache.token_weight, weight)
    np.testing.assert_array_equal(sequence_cross_entropy_backward(cache), first)


# --- argument checks ---


def _raises(pattern, *args, **kwargs):
    with pytest.raises(ValueError, match=pattern) as info:
        sequence_cross_entropy_forward(*args, **kwargs)
    assert "\n" not in str(info.value)


def test_bad_arguments_raise_one_line_errors_naming_the_argument():
    logits, targets = _data()
    _raises("^logits: expected shape", logits[0], targets)
    _raises("^logits:", logits.astype(np.int64), targets)
    _raises("^logits: contains NaN", np.where(MASK[:, :, None], logits, np.nan), targets, MASK)
    _raises(r"^targets: expected shape \(3, 4\)", logits, targets[:, :3])
    _raises("^targets: expected an integer dtype", logits, targets.astype(np.float64))
    _raises(r"^targets: expected values in \[0, 6\), got 6", logits, np.where(MASK, targets, V))
    _raises(r"^targets: expected values in \[0, 6\), got -1", logits, np.where(MASK, targets, -1))
    _raises("^mask: expected dtype bool", logits, targets, MASK.astype(int))
    _raises(r"^mask: expected shape \(3, 4\)", logits, targets, MASK[:, :3])
    for bad in (-0.1, 1.5, "0.1", True):
        _raises("^label_smoothing:", logits, targets, MASK, label_smoothing=bad)


# --- PyTorch ---


@pytest.mark.parametrize("epsilon", [0.0, 0.1])
@pytest.mark.parametrize("ignore_index", [-100, PAD])
def test_matches_torch_cross_entropy(epsilon, ignore_index):
    torch = pytest.importorskip("torch")
    logits, targets = _data(8)
    for mask, ignore in ((None, -100), (MASK, ignore_index)):  # no mask: every token counts, torch ignores none
        t_loss, t_dlogits = _torch_loss(torch, logits, targets, mask, epsilon, ignore)
        loss, cache = sequence_cross_entropy_forward(logits, targets, mask, label_smoothing=epsilon)
        dlogits = sequence_cross_entropy_backward(cache)
        assert abs(loss - t_loss) <= 1e-12 * abs(t_loss)
        assert np.max(np.abs(dlogits - t_dlogits)) <= 1e-14


def test_torch_comparison_catches_a_perturbed_logit_and_another_smoothing_convention():
    """The comparison above can fail: a logit moved by 1e-6, or ε spread over V − 1 classes, is caught."""
    torch = pytest.importorskip("torch")
    logits, targets = _data(9)
    t_loss, t_dlogits = _torch_loss(torch, logits, targets, MASK, 0.1, -100)
    loss, cache = sequence_cross_entropy_forward(logits, targets, MASK, label_smoothing=0.1)
    assert abs(loss - t_loss) <= 1e-12 * abs(t_loss)

    moved = logits.copy()
    moved[0, 0, 0] += 1e-6
    moved_loss, moved_cache = sequence_cross_entropy_forward(moved, targets, MASK, label_smoothing=0.1)
    assert abs(moved_loss - t_loss) > 100 * 1e-12 * abs(t_loss)
    assert np.max(np.abs(sequence_cross_entropy_backward(moved_cache) - t_dlogits)) > 100 * 1e-14

    # ε / (V − 1) on the other classes (a common variant) is not what torch computes
    logp = log_softmax(logits)
    q = np.full(logits.shape, 0.1 / (V - 1))
    np.put_along_axis(q, targets[:, :, None], 0.9, axis=2)
    variant = float(-(q * logp).sum(axis=2)[MASK].mean())
    assert abs(variant - t_loss) > 1e-4
