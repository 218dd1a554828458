"""The translation network: float64 finite differences through encoder, bridge, decoder and loss; the same
numbers as a PyTorch implementation of the same equations (unrolled.torch.translator)."""

import numpy as np
import pytest

from tests.gradcheck import numerical_gradient, rel_error
from unrolled.models.translator_net import (
    TranslatorNetConfig,
    encode,
    init_translator_params,
    translator_backward,
    translator_forward,
)

N, S, T = 3, 5, 4
SRC_MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], bool)  # right-padded, one of length 1
TGT_MASK = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 0]], bool)


def _batch(config, seed=0):
    rng = np.random.default_rng(seed)
    src = rng.integers(1, config.source_vocab_size, (N, S)) * SRC_MASK
    tgt_in = rng.integers(2, config.target_vocab_size, (N, T))
    tgt_out = rng.integers(2, config.target_vocab_size, (N, T))
    return src, tgt_in, tgt_out


def _config(cell="gru", input_feeding=False, score="general", num_layers=2, dropout=0.0):
    return TranslatorNetConfig(7, 9, embedding_dim=3, hidden_size=4, cell=cell, num_layers=num_layers,
                               score=score, attention_size=3, input_feeding=input_feeding, dropout=dropout)


@pytest.mark.parametrize(
    "cell, input_feeding, score",
    [("gru", False, "general"), ("gru", True, "additive"), ("lstm", False, "additive"), ("lstm", True, "general"),
     ("rnn", False, "general")],
)
def test_gradcheck_every_parameter(cell, input_feeding, score):
    config = _config(cell, input_feeding, score)
    params = init_translator_params(config, np.random.default_rng(1), np.float64)
    for value in params.values():
        value *= 3.0  # larger weights: gradients well above the finite differences' noise
    src, tgt_in, tgt_out = _batch(config)

    def f():
        return translator_forward(params, config, src, SRC_MASK, tgt_in, tgt_out, TGT_MASK, label_smoothing=0.1)[0]

    _, _, cache = translator_forward(params, config, src, SRC_MASK, tgt_in, tgt_out, TGT_MASK, label_smoothing=0.1)
    grads = translator_backward(cache)
    assert list(grads) == list(config.param_shapes())
    for name, value in params.items():
        grad = grads[name].to_dense() if hasattr(grads[name], "to_dense") else grads[name]
        assert grad.shape == value.shape
        assert rel_error(grad, numerical_gradient(f, value, eps=1e-5)) <= 1e-6, name


def test_gradcheck_catches_a_wrong_bridge_gradient():
    """The check above can fail: a bridge backward that reads the wrong tanh output is caught."""
    config = _config()
    params = init_translator_params(config, np.random.default_rng(1), np.float64)
    src, tgt_in, tgt_out = _batch(config)
    _, _, cache = translator_forward(params, config, src, SRC_MASK, tgt_in, tgt_out, TGT_MASK)
    good = translator_backward(cache)["bridge.weight"]
    broken = cache.encoder.__class__(**{**cache.encoder.__dict__, "bridged": tuple(b * 0 for b in cache.encoder.bridged)})
    bad = translator_backward(cache.__class__(cache.config, broken, cache.decoder, cache.loss))["bridge.weight"]
    f = lambda: translator_forward(params, config, src, SRC_MASK, tgt_in, tgt_out, TGT_MASK)[0]  # noqa: E731
    numeric = numerical_gradient(f, params["bridge.weight"])
    assert rel_error(good, numeric) <= 1e-6 and rel_error(bad, numeric) > 1e-3


def test_padding_a_source_changes_nothing():
    """A sentence's loss terms and attention are the same alone as in a batch with longer sources."""
    config = _config(num_layers=1)
    params = init_translator_params(config, np.random.default_rng(2), np.float64)
    src, tgt_in, tgt_out = _batch(config)
    _, weights, _ = translator_forward(params, config, src, SRC_MASK, tgt_in, tgt_out, TGT_MASK)
    row = 1
    length = int(SRC_MASK[row].sum())
    _, alone, _ = translator_forward(params, config, src[row : row + 1, :length], SRC_MASK[row : row + 1, :length],
                                     tgt_in[row : row + 1], tgt_out[row : row + 1], TGT_MASK[row : row + 1])
    np.testing.assert_allclose(weights[row, :, :length], alone[0], rtol=1e-12, atol=1e-14)
    assert np.all(weights[row, :, length:] == 0)
    keys, _, _ = encode(params, config, src, SRC_MASK)
    assert np.all(keys[~SRC_MASK] == 0)


def test_dropout_draws_from_the_rng_and_only_in_training():
    config = _config(dropout=0.5)
    params = init_translator_params(config, np.random.default_rng(3), np.float64)
    src, tgt_in, tgt_out = _batch(config)
    args = (params, config, src, SRC_MASK, tgt_in, tgt_out, TGT_MASK)
    eval_a, eval_b = translator_forward(*args)[0], translator_forward(*args)[0]
    train_a = translator_forward(*args, training=True, rng=np.random.default_rng(0))[0]
    train_b = translator_forward(*args, training=True, rng=np.random.default_rng(0))[0]
    assert eval_a == eval_b and train_a == train_b and train_a != eval_a


def test_bad_batches_raise_one_line_errors():
    config = _config()
    params = init_translator_params(config, np.random.default_rng(0), np.float64)
    src, tgt_in, tgt_out = _batch(config)
    with pytest.raises(ValueError, match="^src_ids:"):
        translator_forward(params, config, src + 100, SRC_MASK, tgt_in, tgt_out, TGT_MASK)
    with pytest.raises(ValueError, match="^src_mask:"):
        translator_forward(params, config, src, SRC_MASK[:, :3], tgt_in, tgt_out, TGT_MASK)
    with pytest.raises(ValueError, match="^ids:"):
        translator_forward(params, config, src, SRC_MASK, tgt_in + 100, tgt_out, TGT_MASK)
    with pytest.raises(ValueError, match="^targets:"):
        translator_forward(params, config, src, SRC_MASK, tgt_in, tgt_out + 100, TGT_MASK)


def test_config_validates_and_names_parameters_as_torch():
    with pytest.raises(ValueError, match="^cell:"):
        TranslatorNetConfig(5, 5, cell="transformer")
    with pytest.raises(ValueError, match="^source_vocab_size:"):
        TranslatorNetConfig(0, 5)
    shapes = _config("lstm").param_shapes()
    assert "bridge_cell.weight" in shapes and shapes["decoder.combine.weight"] == (4, 12)
    assert "bridge_cell.weight" not in _config("gru").param_shapes()


# --- PyTorch: the same network with autograd ---


def _torch_comparison(torch, config, *, perturb=None):
    from unrolled.torch.translator import TorchTranslator

    params = init_translator_params(config, np.random.default_rng(4), np.float64)
    src, tgt_in, tgt_out = _batch(config, seed=5)
    loss, weights, cache = translator_forward(params, config, src, SRC_MASK, tgt_in, tgt_out, TGT_MASK,
                                              label_smoothing=0.1)
    grads = translator_backward(cache)
    net = TorchTranslator(config).double()
    state = {k: torch.from_numpy(v.copy()) for k, v in params.items()}
    if perturb is not None:
        state[perturb] *= 1 + 1e-6
    net.load_state_dict(state, strict=True)
    net.eval()
    logits, t_weights = net(torch.from_numpy(src), torch.from_numpy(SRC_MASK), torch.from_numpy(tgt_in))
    target = torch.from_numpy(np.where(TGT_MASK, tgt_out, -100))
    t_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, config.target_vocab_size), target.reshape(-1),
                                               ignore_index=-100, label_smoothing=0.1)
    t_loss.backward()
    named = dict(net.named_parameters())
    diffs = [abs(loss - t_loss.item()), float(np.max(np.abs(weights - t_weights.detach().numpy())))]
    for name, g in grads.items():
        g = g.to_dense() if hasattr(g, "to_dense") else g
        diffs.append(float(np.max(np.abs(g - named[name].grad.numpy()))))
    return max(diffs)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("input_feeding", [False, True])
@pytest.mark.parametrize("score", ["general", "additive", "dot"])
def test_matches_torch_autograd(cell, input_feeding, score):
    torch = pytest.importorskip("torch")
    if score == "dot":  # the dot score needs the decoder as wide as the keys: 2H = H is impossible here
        with pytest.raises(ValueError, match="key_size"):
            _config(cell, input_feeding, score)
        return
    assert _torch_comparison(torch, _config(cell, input_feeding, score)) <= 1e-12


@pytest.mark.parametrize("name", ["bridge.weight", "decoder.attention.weight", "encoder.rnn.weight_hh_l1_reverse"])
def test_torch_comparison_notices_a_perturbed_parameter(name):
    torch = pytest.importorskip("torch")
    assert _torch_comparison(torch, _config(), perturb=name) > 1e-9
