"""The recurrent layer (nn/recurrent_layer.py): layers × directions × masks × initial states, by finite
differences and against torch.nn.RNN/GRU/LSTM (packed variable-length batches included)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.gradcheck import numerical_gradient, rel_error
from unrolled.nn.recurrent_layer import (
    RecurrentConfig,
    init_recurrent_params,
    load_state_dict,
    recurrent_backward,
    recurrent_forward,
    state_dict,
)

N, T, D, H = 2, 4, 3, 2
LENGTHS = [4, 2]
CELL_CONFIGS = {"rnn_tanh": ("rnn", "tanh"), "rnn_relu": ("rnn", "relu"), "gru": ("gru", "tanh"), "lstm": ("lstm", "tanh")}


def lengths_mask(lengths, t_len):
    return np.arange(t_len)[None, :] < np.asarray(lengths)[:, None]


def random_state(rng, config, n):
    shape = (config.num_layers * config.num_directions, n, config.hidden_size)
    if config.cell == "lstm":
        return (rng.standard_normal(shape), rng.standard_normal(shape))
    return rng.standard_normal(shape)


def components(config, state):
    return state if config.cell == "lstm" else (state,)


@pytest.mark.parametrize(
    "cell,layers,bidirectional,use_mask,use_state0",
    list(itertools.product(CELL_CONFIGS, [1, 2], [False, True], [False, True], [False, True])),
)
def test_layer_gradients_match_finite_differences(cell, layers, bidirectional, use_mask, use_state0):
    kind, nonlinearity = CELL_CONFIGS[cell]
    config = RecurrentConfig(kind, D, H, layers, bidirectional, nonlinearity=nonlinearity)
    rng = np.random.default_rng(10)
    params = init_recurrent_params(config, rng, dtype=np.float64)
    x = rng.standard_normal((N, T, D))
    mask = lengths_mask(LENGTHS, T) if use_mask else None
    state0 = random_state(rng, config, N) if use_state0 else None
    r_out = rng.standard_normal((N, T, config.output_size))
    r_state = random_state(rng, config, N)

    def loss():
        out, s_t, _ = recurrent_forward(x, params, config, mask=mask, state0=state0)
        state_term = sum(np.sum(s * r) for s, r in zip(components(config, s_t), components(config, r_state)))
        return float(np.sum(out * r_out) + state_term)

    _, _, cache = recurrent_forward(x, params, config, mask=mask, state0=state0)
    dx, dstate0, grads = recurrent_backward(r_out, r_state, cache)
    assert list(grads) == list(params)
    assert rel_error(dx, numerical_gradient(loss, x)) <= 1e-6
    for name, value in params.items():
        assert rel_error(grads[name], numerical_gradient(loss, value)) <= 1e-6, name
    if state0 is not None:
        for ds, s in zip(components(config, dstate0), components(config, state0)):
            assert rel_error(ds, numerical_gradient(loss, s)) <= 1e-6


def test_dropout_between_layers_gradients_match_finite_differences():
    config = RecurrentConfig("gru", D, H, num_layers=3, bidirectional=True, dropout=0.4)
    rng = np.random.default_rng(11)
    params = init_recurrent_params(config, rng, dtype=np.float64)
    x = rng.standard_normal((N, T, D))
    r_out = rng.standard_normal((N, T, config.output_size))

    def run():
        return recurrent_forward(x, params, config, training=True, rng=np.random.default_rng(99))

    def loss():
        return float(np.sum(run()[0] * r_out))

    out_train, _, cache = run()
    out_eval, _, _ = recurrent_forward(x, params, config, training=False)
    assert not np.allclose(out_train, out_eval)  # dropout is active in training, off in evaluation
    dx, _, grads = recurrent_backward(r_out, None, cache)
    assert rel_error(dx, numerical_gradient(loss, x)) <= 1e-6
    for name in ("weight_ih_l0", "weight_hh_l1_reverse", "bias_ih_l2"):
        assert rel_error(grads[name], numerical_gradient(loss, params[name])) <= 1e-6, name


def test_final_state_is_each_sequences_own_last_real_step():
    config = RecurrentConfig("lstm", D, H, num_layers=1, bidirectional=True)
    rng = np.random.default_rng(12)
    params = init_recurrent_params(config, rng, dtype=np.float64)
    x = rng.standard_normal((N, T, D))
    out, (h_n, _), _ = recurrent_forward(x, params, config, mask=lengths_mask(LENGTHS, T))
    # Forward direction: the state after the last real token; reverse: after reaching token 0.
    np.testing.assert_array_equal(h_n[0, 1], out[1, LENGTHS[1] - 1, :H])
    np.testing.assert_array_equal(h_n[1, 1], out[1, 0, H:])
    assert np.all(out[1, LENGTHS[1] :] == 0.0)
    # The reverse direction starts at each sequence's own last token: the same as running it unpadded.
    out_alone, _, _ = recurrent_forward(x[1:, : LENGTHS[1]], params, config)
    np.testing.assert_allclose(out[1, : LENGTHS[1]], out_alone[0], rtol=0, atol=1e-15)


def torch_module(torch, config, dtype):
    name = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}[config.cell]
    kwargs = {"nonlinearity": config.nonlinearity} if config.cell == "rnn" else {}
    module = getattr(torch.nn, name)(
        config.input_size, config.hidden_size, num_layers=config.num_layers,
        bidirectional=config.bidirectional, batch_first=True, **kwargs,
    )
    return module.to(getattr(torch, np.dtype(dtype).name))


@pytest.mark.parametrize("cell", CELL_CONFIGS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_two_layer_bidirectional_padded_batch_matches_torch_packed(cell, dtype, tol):
    """Same weights -> same outputs, final states and gradients as pack_padded_sequence."""
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    kind, nonlinearity = CELL_CONFIGS[cell]
    n, t_len, d, h = 5, 7, 4, 6
    lengths = [7, 3, 5, 1, 6]
    config = RecurrentConfig(kind, d, h, num_layers=2, bidirectional=True, nonlinearity=nonlinearity)
    torch.manual_seed(0)
    module = torch_module(torch, config, dtype)
    params = load_state_dict(config, module.state_dict())
    rng = np.random.default_rng(13)
    x = rng.standard_normal((n, t_len, d)).astype(dtype)
    state0 = tuple(s.astype(dtype) for s in components(config, random_state(rng, config, n)))
    dout = rng.standard_normal((n, t_len, 2 * h)).astype(dtype)
    dstate = tuple(s.astype(dtype) for s in components(config, random_state(rng, config, n)))

    x_t = torch.tensor(x, requires_grad=True)
    s0_t = [torch.tensor(s, requires_grad=True) for s in state0]
    packed = pack_padded_sequence(x_t, lengths, batch_first=True, enforce_sorted=False)
    out_packed, s_n = module(packed, s0_t[0] if kind != "lstm" else tuple(s0_t))
    out_t, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=t_len)
    s_n = s_n if kind == "lstm" else (s_n,)
    loss = (out_t * torch.tensor(dout)).sum() + sum((s * torch.tensor(g)).sum() for s, g in zip(s_n, dstate))
    loss.backward()

    as_state = (lambda comps: comps) if kind == "lstm" else (lambda comps: comps[0])
    out, s_final, cache = recurrent_forward(x, params, config, mask=lengths_mask(lengths, t_len), state0=as_state(state0))
    dx, dstate0, grads = recurrent_backward(dout, as_state(dstate), cache)

    assert out.dtype == dtype
    assert rel_error(out, out_t.detach().numpy()) <= tol
    for ours, theirs in zip(components(config, s_final), s_n):
        assert rel_error(ours, theirs.detach().numpy()) <= tol
    assert rel_error(dx, x_t.grad.numpy()) <= tol
    for ours, theirs in zip(components(config, dstate0), s0_t):
        assert rel_error(ours, theirs.grad.numpy()) <= tol
    for name, p in module.named_parameters():
        assert rel_error(grads[name], p.grad.numpy()) <= tol, name


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_state_dict_loads_into_torch(cell):
    torch = pytest.importorskip("torch")
    config = RecurrentConfig(cell, 3, 4, num_layers=2, bidirectional=True)
    params = init_recurrent_params(config, np.random.default_rng(14))
    module = torch_module(torch, config, np.float32)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict(params).items()})  # strict
    x = np.random.default_rng(15).standard_normal((2, 5, 3)).astype(np.float32)
    out, _, _ = recurrent_forward(x, params, config)
    np.testing.assert_allclose(out, module(torch.from_numpy(x))[0].detach().numpy(), rtol=1e-5, atol=1e-6)


def test_load_state_dict_rejects_missing_unexpected_and_misshaped():
    config = RecurrentConfig("gru", 3, 4, num_layers=2)
    params = init_recurrent_params(config, np.random.default_rng(16))
    missing = dict(params)
    del missing["bias_hh_l1"]
    with pytest.raises(ValueError, match="params: missing bias_hh_l1"):
        load_state_dict(config, missing)
    with pytest.raises(ValueError, match="params: unexpected weight_ih_l0_reverse"):
        load_state_dict(config, {**params, "weight_ih_l0_reverse": params["weight_ih_l0"]})
    with pytest.raises(ValueError, match=r"weight_hh_l1: expected shape \(12, 4\), got \(12, 5\)"):
        load_state_dict(config, {**params, "weight_hh_l1": np.zeros((12, 5), np.float32)})
    loaded = load_state_dict(config, params, dtype=np.float64)
    assert all(v.dtype == np.float64 for v in loaded.values())
    assert loaded["weight_ih_l0"] is not params["weight_ih_l0"]


def test_init_matches_pytorch_default_bounds_and_orthogonal_option():
    config = RecurrentConfig("lstm", 10, 16, num_layers=2, bidirectional=True)
    params = init_recurrent_params(config, np.random.default_rng(17))
    bound = 1 / np.sqrt(16)
    for name, value in params.items():
        assert value.dtype == np.float32
        assert value.shape == config.param_shapes()[name]
        assert np.abs(value).max() <= bound and np.abs(value).max() > 0.9 * bound
    again = init_recurrent_params(config, np.random.default_rng(17))
    assert all(np.array_equal(params[k], again[k]) for k in params)  # same seed, same weights
    ortho = init_recurrent_params(config, np.random.default_rng(17), dtype=np.float64, recurrent_init="orthogonal")
    for block in np.split(ortho["weight_hh_l1_reverse"], 4):
        np.testing.assert_allclose(block @ block.T, np.eye(16), atol=1e-12)


def test_config_and_argument_errors():
    with pytest.raises(ValueError, match="cell: expected one of rnn, gru, lstm"):
        RecurrentConfig("transformer", 3, 4)
    with pytest.raises(ValueError, match="hidden_size: expected a positive integer"):
        RecurrentConfig("rnn", 3, 0)
    with pytest.raises(ValueError, match=r"dropout: expected a probability in \[0, 1\)"):
        RecurrentConfig("rnn", 3, 4, dropout=1.0)
    with pytest.raises(ValueError, match="nonlinearity: only the Elman RNN"):
        RecurrentConfig("gru", 3, 4, nonlinearity="relu")
    with pytest.raises(ValueError, match="recurrent_init"):
        init_recurrent_params(RecurrentConfig("rnn", 3, 4), np.random.default_rng(0), recurrent_init="xavier")

    config = RecurrentConfig("lstm", 3, 4, num_layers=2, dropout=0.5)
    params = init_recurrent_params(config, np.random.default_rng(0))
    x = np.zeros((2, 5, 3), np.float32)
    with pytest.raises(ValueError, match=r"x: expected shape \(\*, \*, 3\)"):
        recurrent_forward(np.zeros((2, 5, 4), np.float32), params, config)
    with pytest.raises(ValueError, match="x: expected dtype float32"):
        recurrent_forward(x.astype(np.float64), params, config)
    with pytest.raises(ValueError, match="x: contains NaN"):
        recurrent_forward(np.full((2, 5, 3), np.nan, np.float32), params, config)
    with pytest.raises(ValueError, match=r"mask: expected shape \(2, 5\), got \(5, 2\)"):
        recurrent_forward(x, params, config, mask=np.ones((5, 2), bool))
    with pytest.raises(ValueError, match="state0: expected a pair"):
        recurrent_forward(x, params, config, state0=np.zeros((2, 2, 4), np.float32))
    with pytest.raises(ValueError, match=r"state0.c: expected shape \(2, 2, 4\)"):
        recurrent_forward(x, params, config, state0=(np.zeros((2, 2, 4), np.float32), np.zeros((1, 2, 4), np.float32)))
    with pytest.raises(ValueError, match="rng: dropout between layers"):
        recurrent_forward(x, params, config, training=True)
    _, _, cache = recurrent_forward(x, params, config)
    with pytest.raises(ValueError, match=r"dout: expected shape \(2, 5, 4\)"):
        recurrent_backward(np.zeros((2, 5, 8), np.float32), None, cache)
