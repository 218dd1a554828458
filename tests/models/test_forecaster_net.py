"""The forecaster's network (models/forecaster_net.py): the gradient of the regression head's loss for every
parameter by finite differences; and the same network in PyTorch gives the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.gradcheck import numerical_gradient, rel_error
from unrolled.models.forecaster_net import (
    ForecasterNetConfig,
    forecaster_backward,
    forecaster_forward,
    init_forecaster_params,
)

N, W, F, H, K = 4, 5, 2, 3, 3


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, W, F)), rng.standard_normal((N, K))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_loss_gradients_match_finite_differences(cell, layers, dropout):
    config = ForecasterNetConfig(input_size=F, hidden_size=H, horizon=K, cell=cell, num_layers=layers,
                                 dropout=dropout)
    params = init_forecaster_params(config, np.random.default_rng(0))
    x, targets = _data()

    def run():  # the same dropout masks in every evaluation
        return forecaster_forward(params, config, x, targets=targets, training=True, rng=np.random.default_rng(5))

    pred, loss, cache = run()
    assert pred.shape == (N, K)
    assert loss == pytest.approx(np.mean((pred - targets) ** 2))
    grads = forecaster_backward(cache)
    assert list(grads) == list(params) == list(config.param_shapes())
    for name, value in params.items():
        assert grads[name].shape == value.shape, name
        assert rel_error(grads[name], numerical_gradient(lambda: run()[1], value)) <= 1e-6, name


def test_param_shapes_and_config_validation():
    config = ForecasterNetConfig(input_size=3, hidden_size=8, horizon=12, cell="lstm", num_layers=2)
    shapes = config.param_shapes()
    assert shapes["rnn.weight_ih_l0"] == (32, 3) and shapes["rnn.weight_ih_l1"] == (32, 8)
    assert shapes["head.weight"] == (12, 8) and shapes["head.bias"] == (12,)
    assert config.recurrent.num_layers == 2 and not config.recurrent.bidirectional
    params = init_forecaster_params(config, np.random.default_rng(0))
    assert {k: v.shape for k, v in params.items()} == shapes
    assert all(v.dtype == np.float64 for v in params.values())
    with pytest.raises(ValueError, match="horizon: expected a positive integer"):
        ForecasterNetConfig(input_size=1, hidden_size=4, horizon=0)
    with pytest.raises(ValueError, match="input_size"):
        ForecasterNetConfig(input_size=0, hidden_size=4, horizon=2)
    with pytest.raises(ValueError, match="cell: expected one of"):
        ForecasterNetConfig(input_size=1, hidden_size=4, horizon=2, cell="transformer")
    with pytest.raises(ValueError, match="dropout"):
        ForecasterNetConfig(input_size=1, hidden_size=4, horizon=2, dropout=1.0)


def test_backward_without_targets_is_refused_and_inference_ignores_dropout():
    config = ForecasterNetConfig(input_size=F, hidden_size=H, horizon=K, dropout=0.5)
    params = init_forecaster_params(config, np.random.default_rng(1))
    x, _ = _data()
    pred, loss, cache = forecaster_forward(params, config, x)
    assert loss is None
    np.testing.assert_array_equal(pred, forecaster_forward(params, config, x)[0])
    with pytest.raises(ValueError, match="no targets"):
        forecaster_backward(cache)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_matches_the_same_network_in_torch(cell):
    torch = pytest.importorskip("torch")
    config = ForecasterNetConfig(input_size=F, hidden_size=H, horizon=K, cell=cell, num_layers=2)
    params = init_forecaster_params(config, np.random.default_rng(2))
    x, targets = _data(3)
    pred, loss, cache = forecaster_forward(params, config, x, targets=targets)
    grads = forecaster_backward(cache)

    module = torch.nn.ModuleDict({
        "rnn": getattr(torch.nn, cell.upper())(F, H, num_layers=2, batch_first=True),
        "head": torch.nn.Linear(H, K),
    }).double()
    module.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    _, state = module["rnn"](torch.from_numpy(x))
    h_n = state[0] if cell == "lstm" else state
    pred_t = module["head"](h_n[-1])
    loss_t = torch.nn.functional.mse_loss(pred_t, torch.from_numpy(targets))
    loss_t.backward()

    assert rel_error(pred, pred_t.detach().numpy()) <= 1e-12
    assert abs(loss - loss_t.item()) <= 1e-12
    for name, p in module.named_parameters():
        assert rel_error(grads[name], p.grad.numpy()) <= 1e-10, name
