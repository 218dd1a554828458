"""The many-to-one network (models/classifier_net.py): the loss's gradient for every parameter, the
embedding included, by finite differences; and the same network in PyTorch gives the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.gradcheck import numerical_gradient, rel_error
from unrolled.models.classifier_net import (
    ClassifierNetConfig,
    classifier_backward,
    classifier_forward,
    init_classifier_params,
)
from unrolled.nn.embedding import SparseRows

IDS = np.array([[1, 2, 3, 5, 2], [4, 5, 0, 0, 0], [6, 1, 1, 2, 0], [3, 0, 0, 0, 0]])
TARGETS = np.array([0, 2, 1, 2])
# Six rows: above SMALL_BATCH, so the Python time loop runs, on the rows sorted by length.
IDS6 = np.array([[1, 2, 3, 5, 2], [4, 5, 0, 0, 0], [6, 1, 1, 2, 0], [3, 0, 0, 0, 0], [2, 2, 0, 0, 0], [5, 6, 4, 1, 3]])
TARGETS6 = np.array([0, 2, 1, 2, 1, 0])


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("ids,targets", [(IDS, TARGETS), (IDS6, TARGETS6)], ids=["4 rows", "6 rows"])
def test_loss_gradients_match_finite_differences(cell, layers, bidirectional, pooling, dropout, ids, targets):
    config = ClassifierNetConfig(
        vocab_size=7, embedding_dim=3, hidden_size=4, num_classes=3, cell=cell,
        num_layers=layers, bidirectional=bidirectional, pooling=pooling, dropout=dropout,
    )
    params = init_classifier_params(config, np.random.default_rng(0), dtype=np.float64)
    mask = ids != 0

    def run():  # the same dropout masks in every evaluation
        rng = np.random.default_rng(5)
        return classifier_forward(params, config, ids, mask=mask, targets=targets, training=True, rng=rng)

    def loss():
        return run()[1]

    _, _, cache = run()
    grads = classifier_backward(cache)
    assert list(grads) == list(params)
    sparse = grads["embedding.weight"]
    assert isinstance(sparse, SparseRows)
    assert list(sparse.indices) == [1, 2, 3, 4, 5, 6]  # the rows the batch used, padding row 0 excluded
    for name, value in params.items():
        grad = grads[name].to_dense() if isinstance(grads[name], SparseRows) else grads[name]
        assert rel_error(grad, numerical_gradient(loss, value)) <= 1e-6, name


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
def test_gradients_with_holes_in_the_mask(cell, bidirectional, pooling):
    """A mask that is not right-padded (steps missing in the middle, at the start, at the end): the loss and
    its gradients still agree, 'last' pooling included (it reads each direction's final state)."""
    config = ClassifierNetConfig(vocab_size=7, embedding_dim=3, hidden_size=4, num_classes=3, cell=cell,
                                 bidirectional=bidirectional, pooling=pooling)
    params = init_classifier_params(config, np.random.default_rng(0), dtype=np.float64)
    mask = IDS != 0
    mask[0, 1] = mask[1, 0] = mask[2, 3] = False

    def loss():
        return classifier_forward(params, config, IDS, mask=mask, targets=TARGETS)[1]

    grads = classifier_backward(classifier_forward(params, config, IDS, mask=mask, targets=TARGETS)[2])
    for name, value in params.items():
        grad = grads[name].to_dense() if isinstance(grads[name], SparseRows) else grads[name]
        assert rel_error(grad, numerical_gradient(loss, value)) <= 1e-6, name


def test_last_pooling_reads_the_final_real_steps():
    from unrolled.nn.pooling import pool_backward, pool_forward

    out = np.arange(2 * 4 * 4, dtype=np.float64).reshape(2, 4, 4)
    mask = np.array([[False, True, True, False], [True, False, True, True]])
    last, cache = pool_forward(out, mask, "last", num_directions=2)
    np.testing.assert_array_equal(last[0], [*out[0, 2, :2], *out[0, 1, 2:]])
    np.testing.assert_array_equal(last[1], [*out[1, 3, :2], *out[1, 0, 2:]])
    dout = pool_backward(np.ones((2, 4)), cache)
    assert dout[0, 2, :2].tolist() == [1, 1] and dout[0, 1, 2:].tolist() == [1, 1] and dout.sum() == 8


def test_pooling_picks_the_right_steps():
    from unrolled.nn.pooling import pool_forward

    out = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    out[0, 1, 0] = 100.0
    mask = np.array([[True, True, True], [True, True, False]])
    last, _ = pool_forward(out, mask, "last", num_directions=2)
    np.testing.assert_array_equal(last[1], [out[1, 1, 0], out[1, 1, 1], out[1, 0, 2], out[1, 0, 3]])
    maxed, _ = pool_forward(out, mask, "max")
    np.testing.assert_array_equal(maxed[1], out[1, 1])  # the padded step 2 (larger values) is ignored
    assert maxed[0, 0] == 100.0
    mean, _ = pool_forward(out, mask, "mean")
    np.testing.assert_allclose(mean[1], out[1, :2].mean(axis=0))
    with pytest.raises(ValueError, match="sequence 1 has no real step"):
        pool_forward(out, np.array([[True, True, True], [False, False, False]]), "max")
    with pytest.raises(ValueError, match="pooling: expected one of last, max, mean"):
        pool_forward(out, mask, "attention")


def test_backward_without_targets_is_refused():
    config = ClassifierNetConfig(vocab_size=7, embedding_dim=3, hidden_size=4, num_classes=2)
    params = init_classifier_params(config, np.random.default_rng(1))
    _, loss, cache = classifier_forward(params, config, IDS)
    assert loss is None
    with pytest.raises(ValueError, match="no targets"):
        classifier_backward(cache)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_matches_the_same_network_in_torch(cell):
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence

    config = ClassifierNetConfig(
        vocab_size=7, embedding_dim=3, hidden_size=4, num_classes=3, cell=cell, num_layers=2, bidirectional=True
    )
    params = init_classifier_params(config, np.random.default_rng(2), dtype=np.float64)
    mask = IDS != 0
    logits, loss, cache = classifier_forward(params, config, IDS, mask=mask, targets=TARGETS)
    grads = classifier_backward(cache)

    module = torch.nn.ModuleDict({
        "embedding": torch.nn.Embedding(7, 3, padding_idx=0),
        "rnn": getattr(torch.nn, cell.upper())(3, 4, num_layers=2, bidirectional=True, batch_first=True),
        "head": torch.nn.Linear(8, 3),
    }).double()
    module.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    x = module["embedding"](torch.from_numpy(IDS))
    packed = pack_padded_sequence(x, mask.sum(1), batch_first=True, enforce_sorted=False)
    _, state = module["rnn"](packed)
    h_n = state[0] if cell == "lstm" else state
    logits_t = module["head"](torch.cat([h_n[-2], h_n[-1]], dim=1))
    loss_t = torch.nn.functional.cross_entropy(logits_t, torch.from_numpy(TARGETS))
    loss_t.backward()

    assert rel_error(logits, logits_t.detach().numpy()) <= 1e-12
    assert abs(loss - loss_t.item()) <= 1e-12
    for name, p in module.named_parameters():
        ours = grads[name].to_dense() if isinstance(grads[name], SparseRows) else grads[name]
        assert rel_error(ours, p.grad.numpy()) <= 1e-10, name


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
@pytest.mark.parametrize("ids", [IDS[:1], IDS, IDS6], ids=["1 row", "4 rows", "6 rows"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inference_logits_equal_the_forward_pass(cell, layers, bidirectional, pooling, ids, dtype):
    """Inference (keep_cache=False, what prediction calls) gives the training forward's logits, bit for bit."""
    config = ClassifierNetConfig(
        vocab_size=7, embedding_dim=3, hidden_size=4, num_classes=3, cell=cell,
        num_layers=layers, bidirectional=bidirectional, pooling=pooling, dropout=0.3,
    )
    params = init_classifier_params(config, np.random.default_rng(1), dtype=dtype)
    for mask in (ids != 0, None):
        expected, _, _ = classifier_forward(params, config, ids, mask=mask)
        logits, loss, cache = classifier_forward(params, config, ids, mask=mask, keep_cache=False)
        assert cache is None and loss is None and logits.dtype == dtype
        np.testing.assert_array_equal(logits, expected)


@pytest.mark.parametrize("keep_cache", [True, False])
def test_forward_checks_ids_and_mask(keep_cache):
    config = ClassifierNetConfig(vocab_size=7, embedding_dim=3, hidden_size=4, num_classes=3)
    params = init_classifier_params(config, np.random.default_rng(1))

    def classifier_logits(params, config, ids, mask=None):
        return classifier_forward(params, config, ids, mask=mask, keep_cache=keep_cache)
    with pytest.raises(ValueError, match=r"ids: expected values in \[0, 7\), got 9"):
        classifier_logits(params, config, np.array([[1, 9]]))
    with pytest.raises(ValueError, match=r"mask: expected shape \(1, 2\)"):
        classifier_logits(params, config, np.array([[1, 2]]), mask=np.ones((1, 3), bool))
    with pytest.raises(ValueError, match="mask: sequence 1 has no real step to pool"):
        classifier_logits(params, config, np.array([[1, 2], [0, 0]]), mask=np.array([[True, True], [False, False]]))


def test_inference_refuses_training():
    config = ClassifierNetConfig(vocab_size=7, embedding_dim=3, hidden_size=4, num_classes=3)
    params = init_classifier_params(config, np.random.default_rng(1))
    with pytest.raises(ValueError, match="keep_cache: training needs the cache"):
        classifier_forward(params, config, IDS, training=True, rng=np.random.default_rng(0), keep_cache=False)
