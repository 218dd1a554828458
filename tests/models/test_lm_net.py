"""The language model (models/lm_net.py): gradients of every parameter and of the initial state by finite
differences, gradients through a state carried across windows (full and truncated BPTT), the initial loss,
and the same network in PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from tests.gradcheck import numerical_gradient, rel_error
from unrolled.models.lm_net import LMNetConfig, init_lm_params, lm_backward, lm_forward
from unrolled.nn.embedding import SparseRows

V = 7
IDS = np.array([[1, 2, 3, 5], [4, 5, 0, 6]])  # (N, T)
TARGETS = np.array([[2, 3, 5, 1], [5, 0, 6, 6]])


def _dense(grad):
    return grad.to_dense() if isinstance(grad, SparseRows) else grad


def _gradcheck_params(config, seed):
    """float64 parameters with a unit-scale embedding and head: the LM init (±0.1) makes the recurrent
    gradients so small (~1e-5) that finite-difference round-off dominates the relative error."""
    rng = np.random.default_rng(seed)
    params = init_lm_params(config, rng, dtype=np.float64)
    for name in ("embedding.weight", "head.weight", "head.bias"):
        if name in params:
            params[name] = rng.standard_normal(params[name].shape)
    return params


def _random_state(config, n, rng):
    shape = (config.num_layers, n, config.hidden_size)
    h = rng.standard_normal(shape) * 0.5
    return (h, rng.standard_normal(shape) * 0.5) if config.cell == "lstm" else h


def _components(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers,dropout", [(1, 0.0), (2, 0.3)])
@pytest.mark.parametrize("tied", [False, True])
def test_gradients_match_finite_differences(cell, layers, dropout, tied):
    config = LMNetConfig(V, 4, 4 if tied else 5, cell=cell, num_layers=layers, dropout=dropout, tie_weights=tied)
    params = _gradcheck_params(config, 0)
    state0 = _random_state(config, IDS.shape[0], np.random.default_rng(1))

    def run():  # the same dropout masks in every evaluation
        return lm_forward(params, config, IDS, targets=TARGETS, state0=state0, training=True,
                          rng=np.random.default_rng(5))

    def loss():
        return run()[1]

    logits, _, _, cache = run()
    assert logits.shape == (2, 4, V)
    grads, dstate0 = lm_backward(cache)
    assert list(grads) == list(config.param_shapes()) == list(params)
    assert isinstance(grads["embedding.weight"], np.ndarray if tied else SparseRows)
    for name, value in params.items():
        assert rel_error(_dense(grads[name]), numerical_gradient(loss, value)) <= 1e-6, name
    for d, s in zip(_components(dstate0), _components(state0)):
        assert rel_error(d, numerical_gradient(loss, s)) <= 1e-6


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_gradient_check_through_the_carried_state(cell):
    config = LMNetConfig(V, 3, 4, cell=cell, num_layers=2)
    params = _gradcheck_params(config, 2)
    stream = np.random.default_rng(3).integers(0, V, size=(2, 9))
    x1, y1, x2, y2 = stream[:, :4], stream[:, 1:5], stream[:, 4:8], stream[:, 5:9]

    _, _, state1, cache1 = lm_forward(params, config, x1, targets=y1)
    _, _, _, cache2 = lm_forward(params, config, x2, targets=y2, state0=state1)
    grads2, dstate_carried = lm_backward(cache2)
    full, _ = lm_backward(cache1, dstate_final=dstate_carried)  # window 1's share, through the state
    truncated, _ = lm_backward(cache1)
    held = tuple(s.copy() for s in _components(state1))
    held = held if cell == "lstm" else held[0]

    def carried_loss():  # perturbing a parameter reaches window 2 through the carried state
        _, loss1, state, _ = lm_forward(params, config, x1, targets=y1)
        return loss1 + lm_forward(params, config, x2, targets=y2, state0=state)[1]

    def held_loss():  # window 2 starts from the unperturbed state
        loss1 = lm_forward(params, config, x1, targets=y1)[1]
        return loss1 + lm_forward(params, config, x2, targets=y2, state0=held)[1]

    for name, value in params.items():
        g2 = _dense(grads2[name])
        assert rel_error(_dense(full[name]) + g2, numerical_gradient(carried_loss, value)) <= 1e-6, name
        assert rel_error(_dense(truncated[name]) + g2, numerical_gradient(held_loss, value)) <= 1e-6, name
    # the carried state matters: the two gradients differ
    assert rel_error(full["rnn.weight_hh_l0"], truncated["rnn.weight_hh_l0"]) > 1e-3


@pytest.mark.parametrize("tied", [False, True])
def test_initial_loss_is_about_log_vocab_size(tied):
    config = LMNetConfig(vocab_size=50, embedding_dim=16, hidden_size=16, tie_weights=tied)
    params = init_lm_params(config, np.random.default_rng(4))
    rng = np.random.default_rng(5)
    ids, targets = rng.integers(0, 50, size=(8, 20)), rng.integers(0, 50, size=(8, 20))
    _, loss, _, _ = lm_forward(params, config, ids, targets=targets)
    assert abs(loss - np.log(50)) < 0.1


def test_final_state_layout_and_carrying():
    config = LMNetConfig(V, 3, 4, cell="lstm", num_layers=2)
    params = init_lm_params(config, np.random.default_rng(6), dtype=np.float64)
    logits, loss, (h, c), _ = lm_forward(params, config, IDS)
    assert loss is None and h.shape == c.shape == (2, 2, 4)
    # two windows with the state carried give the logits of one long window
    logits1, _, state, _ = lm_forward(params, config, IDS[:, :2])
    logits2, _, _, _ = lm_forward(params, config, IDS[:, 2:], state0=state)
    np.testing.assert_allclose(np.concatenate([logits1, logits2], axis=1), logits, rtol=0, atol=1e-14)


def test_config_and_input_errors():
    with pytest.raises(ValueError, match="tie_weights: needs embedding_dim == hidden_size, got 3 and 4"):
        LMNetConfig(V, 3, 4, tie_weights=True)
    with pytest.raises(ValueError, match="vocab_size"):
        LMNetConfig(0, 3, 4)
    with pytest.raises(ValueError, match="cell"):
        LMNetConfig(V, 3, 4, cell="transformer")
    config = LMNetConfig(V, 4, 4, tie_weights=True)
    assert "head.weight" not in config.param_shapes()
    params = init_lm_params(config, np.random.default_rng(7))
    _, loss, _, cache = lm_forward(params, config, IDS)
    with pytest.raises(ValueError, match="no targets"):
        lm_backward(cache)
    with pytest.raises(ValueError, match=r"targets: expected shape \(2, 4\)"):
        lm_forward(params, config, IDS, targets=TARGETS.T)
    with pytest.raises(ValueError, match="ids: expected values in"):
        lm_forward(params, config, IDS + V)
    stray = dict(params, **{"head.weight": np.zeros((V, 4), np.float32)})
    with pytest.raises(ValueError, match="unexpected head.weight.*tied"):
        lm_forward(params=stray, config=config, ids=IDS)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("tied", [False, True])
def test_matches_the_same_network_in_torch(cell, tied):
    torch = pytest.importorskip("torch")

    config = LMNetConfig(V, 4, 4, cell=cell, num_layers=2, tie_weights=tied)
    params = init_lm_params(config, np.random.default_rng(8), dtype=np.float64)
    state0 = _random_state(config, IDS.shape[0], np.random.default_rng(9))
    dstate_final = _random_state(config, IDS.shape[0], np.random.default_rng(10))
    logits, loss, state_final, cache = lm_forward(params, config, IDS, targets=TARGETS, state0=state0)
    grads, dstate0 = lm_backward(cache, dstate_final)

    module = torch.nn.ModuleDict({
        "embedding": torch.nn.Embedding(V, 4),
        "rnn": getattr(torch.nn, cell.upper())(4, 4, num_layers=2, batch_first=True),
        "head": torch.nn.Linear(4, V),
    }).double()
    if tied:
        module["head"].weight = module["embedding"].weight
    module.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()}, strict=not tied)
    state0_t = tuple(torch.tensor(s, requires_grad=True) for s in _components(state0))
    out, state_t = module["rnn"](module["embedding"](torch.from_numpy(IDS)),
                                 state0_t if cell == "lstm" else state0_t[0])
    logits_t = module["head"](out)
    loss_t = torch.nn.functional.cross_entropy(logits_t.reshape(-1, V), torch.from_numpy(TARGETS).reshape(-1))
    # dstate_final enters as the gradient of <state_final, dstate_final>
    finals_t = state_t if cell == "lstm" else (state_t,)
    total = loss_t + sum((s * torch.from_numpy(d)).sum() for s, d in zip(finals_t, _components(dstate_final)))
    total.backward()

    assert rel_error(logits, logits_t.detach().numpy()) <= 1e-10
    assert abs(loss - loss_t.item()) <= 1e-10
    for ours, theirs in zip(_components(state_final), finals_t):
        assert rel_error(ours, theirs.detach().numpy()) <= 1e-10
    for ours, theirs in zip(_components(dstate0), state0_t):
        assert rel_error(ours, theirs.grad.numpy()) <= 1e-10
    named = dict(module.named_parameters())  # a tied head.weight appears once, as embedding.weight
    assert sorted(named) == sorted(grads)
    for name, p in named.items():
        assert rel_error(_dense(grads[name]), p.grad.numpy()) <= 1e-10, name
