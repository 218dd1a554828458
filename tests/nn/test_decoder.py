"""The attention decoder: one step and the teacher-forced sequence, float64 finite differences, and the
sequence equal to its steps run one at a time."""

import numpy as np
import pytest

from tests.gradcheck import numerical_gradient, rel_error
from unrolled.nn.decoder import (
    DecoderConfig,
    decoder_backward,
    decoder_forward,
    decoder_step_backward,
    decoder_step_forward,
)

N, S, T = 3, 4, 3
MASK = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], bool)


def _setup(cell="gru", input_feeding=False, score="general", num_layers=1, seed=0):
    config = DecoderConfig(8, 3, 4, 5, cell=cell, num_layers=num_layers, score=score, attention_size=3,
                           input_feeding=input_feeding)
    rng = np.random.default_rng(seed)
    params = {name: rng.standard_normal(shape) * 0.7 for name, shape in config.param_shapes().items()}
    keys = rng.standard_normal((N, S, 5)) * MASK[:, :, None]
    ids = rng.integers(0, 8, (N, T))
    shape = (num_layers, N, 4)
    state0 = (rng.standard_normal(shape), rng.standard_normal(shape)) if cell == "lstm" else rng.standard_normal(shape)
    return config, params, keys, ids, state0, rng


def _dense(g):
    return g.to_dense() if hasattr(g, "to_dense") else g


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("input_feeding", [False, True])
@pytest.mark.parametrize("score", ["general", "additive"])
def test_sequence_gradcheck(cell, input_feeding, score):
    config, params, keys, ids, state0, rng = _setup(cell, input_feeding, score, num_layers=2)
    weight = rng.standard_normal((N, T, 8))  # f = Σ weight ⊙ logits: df/dlogits = weight

    def f():
        return float(np.sum(weight * decoder_forward(params, config, ids, keys, src_mask=MASK, state0=state0)[0]))

    logits, attention, _, cache = decoder_forward(params, config, ids, keys, src_mask=MASK, state0=state0)
    assert logits.shape == (N, T, 8) and attention.shape == (N, T, S)
    dkeys, dstate0, grads = decoder_backward(weight, cache)
    assert rel_error(dkeys, numerical_gradient(f, keys)) <= 1e-7
    for mine, component in zip(dstate0 if cell == "lstm" else (dstate0,), state0 if cell == "lstm" else (state0,)):
        assert rel_error(mine, numerical_gradient(f, component)) <= 1e-7
    assert list(grads) == list(config.param_shapes())
    for name, value in params.items():
        assert rel_error(_dense(grads[name]), numerical_gradient(f, value)) <= 1e-7, name


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("input_feeding", [False, True])
def test_step_gradcheck_with_later_gradients(cell, input_feeding):
    """One step, with gradients arriving at s_t and õ_t from later steps."""
    config, params, keys, ids, state0, rng = _setup(cell, input_feeding)
    prev_output = rng.standard_normal((N, 4)) if input_feeding else None
    w_logits, w_output = rng.standard_normal((N, 8)), rng.standard_normal((N, 4))
    w_state = tuple(rng.standard_normal(s.shape) for s in (state0 if cell == "lstm" else (state0,)))

    def f():
        logits, _, state, output, _ = decoder_step_forward(params, config, ids[:, 0], keys, src_mask=MASK,
                                                           state=state0, prev_output=prev_output)
        states = state if cell == "lstm" else (state,)
        return float(np.sum(w_logits * logits) + np.sum(w_output * output)
                     + sum(np.sum(w * s) for w, s in zip(w_state, states)))

    _, _, _, _, cache = decoder_step_forward(params, config, ids[:, 0], keys, src_mask=MASK, state=state0,
                                             prev_output=prev_output)
    dstate = w_state if cell == "lstm" else w_state[0]
    dkeys, dstate0, dprev, grads = decoder_step_backward(w_logits, cache, dstate=dstate, doutput=w_output)
    assert rel_error(dkeys, numerical_gradient(f, keys)) <= 1e-7
    if input_feeding:
        assert rel_error(dprev, numerical_gradient(f, prev_output)) <= 1e-7
    else:
        assert dprev is None
    for mine, component in zip(dstate0 if cell == "lstm" else (dstate0,), state0 if cell == "lstm" else (state0,)):
        assert rel_error(mine, numerical_gradient(f, component)) <= 1e-7
    for name, value in params.items():
        assert rel_error(_dense(grads[name]), numerical_gradient(f, value)) <= 1e-7, name


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("input_feeding", [False, True])
def test_sequence_equals_its_steps(cell, input_feeding):
    """Teacher forcing over T steps gives what T single steps give, each fed the previous state and õ."""
    config, params, keys, ids, state0, _ = _setup(cell, input_feeding, num_layers=2)
    logits, attention, final, _ = decoder_forward(params, config, ids, keys, src_mask=MASK, state0=state0)
    state, output = state0, None
    for t in range(T):
        step_logits, step_attention, state, output, _ = decoder_step_forward(
            params, config, ids[:, t], keys, src_mask=MASK, state=state, prev_output=output)
        np.testing.assert_allclose(step_logits, logits[:, t], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(step_attention, attention[:, t], rtol=1e-12, atol=1e-12)
    for a, b in zip(final if cell == "lstm" else (final,), state if cell == "lstm" else (state,)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_inference_step_equals_training_step():
    config, params, keys, ids, state0, _ = _setup("gru", True)
    with_cache = decoder_step_forward(params, config, ids[:, 0], keys, src_mask=MASK, state=state0)
    without = decoder_step_forward(params, config, ids[:, 0], keys, src_mask=MASK, state=state0, keep_cache=False)
    assert without[4] is None
    for a, b in zip(with_cache[:4], without[:4]):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


def test_masked_source_positions_get_no_attention():
    config, params, keys, ids, state0, _ = _setup()
    _, attention, _, _ = decoder_forward(params, config, ids, keys, src_mask=MASK, state0=state0)
    assert np.all(attention[~np.broadcast_to(MASK[:, None, :], attention.shape)] == 0)
    np.testing.assert_allclose(attention.sum(axis=2), 1.0, rtol=1e-12)


def test_config_and_argument_errors():
    with pytest.raises(ValueError, match="^score:"):
        DecoderConfig(8, 3, 4, 5, score="cosine")
    with pytest.raises(ValueError, match="key_size"):
        DecoderConfig(8, 3, 4, 5, score="dot")
    with pytest.raises(ValueError, match="^input_feeding:"):
        DecoderConfig(8, 3, 4, 5, input_feeding="yes")
    config, params, keys, ids, state0, _ = _setup()
    with pytest.raises(ValueError, match="^ids:"):
        decoder_forward(params, config, ids + 8, keys, src_mask=MASK)
    with pytest.raises(ValueError, match="^keys:"):
        decoder_forward(params, config, ids, keys[:, :, :3], src_mask=MASK)
    with pytest.raises(ValueError, match="^params: missing out.bias"):
        decoder_forward({k: v for k, v in params.items() if k != "out.bias"}, config, ids, keys)
    _, _, _, cache = decoder_forward(params, config, ids, keys, src_mask=MASK)
    with pytest.raises(ValueError, match="^dlogits:"):
        decoder_backward(np.zeros((N, T, 7)), cache)
