"""The speech network's backward pass, by finite differences in float64, for both objectives and every cell."""

import numpy as np
import pytest

from tests.gradcheck import numerical_gradient, rel_error
from unrolled.models.speech_net import SpeechNetConfig, init_speech_params, speech_backward, speech_forward


def _inputs(seed=0, n=3, t=7, f=4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, t, f))
    mask = np.ones((n, t), dtype=bool)
    mask[1:2, 5:] = False
    mask[2:3, 3:] = False
    return x, mask


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("objective, pooling", [("classify", "mean"), ("classify", "max"), ("ctc", "mean")])
def test_gradients_match_finite_differences(cell, objective, pooling):
    config = SpeechNetConfig(input_size=4, hidden_size=3, num_outputs=4, objective=objective, cell=cell,
                             num_layers=2, bidirectional=True, pooling=pooling)
    params = init_speech_params(config, np.random.default_rng(1), dtype=np.float64)
    x, mask = _inputs()
    if objective == "classify":
        kwargs = dict(targets=np.array([0, 3, 1]))
    else:
        kwargs = dict(targets=np.array([[1, 2, 2], [3, 0, 0], [1, 0, 0]]), target_lengths=np.array([3, 1, 0]))
    _, loss, cache = speech_forward(params, config, x, mask, **kwargs)
    grads = speech_backward(cache)
    assert set(grads) == set(params)
    for name, value in params.items():
        numeric = numerical_gradient(lambda: speech_forward(params, config, x, mask, **kwargs)[1], value)
        assert rel_error(grads[name], numeric) < 1e-6, name


def test_padded_frames_change_nothing():
    config = SpeechNetConfig(input_size=4, hidden_size=3, num_outputs=3, objective="ctc")
    params = init_speech_params(config, np.random.default_rng(2), dtype=np.float64)
    x, mask = _inputs()
    logits, _, _ = speech_forward(params, config, x, mask)
    x2 = x.copy()
    x2[~mask] = 99.0
    logits2, _, _ = speech_forward(params, config, x2, mask)
    np.testing.assert_allclose(logits[mask], logits2[mask])


def test_param_names_load_into_torch():
    torch = pytest.importorskip("torch")
    config = SpeechNetConfig(input_size=4, hidden_size=3, num_outputs=5, cell="lstm")
    params = init_speech_params(config, np.random.default_rng(0))
    module = torch.nn.ModuleDict({"rnn": torch.nn.LSTM(4, 3, num_layers=2, bidirectional=True, batch_first=True),
                                  "head": torch.nn.Linear(6, 5)})
    module.load_state_dict({k: torch.tensor(v) for k, v in params.items()})
    x, mask = _inputs(n=1)
    x = x.astype(np.float32)
    out, _ = module["rnn"](torch.tensor(x))
    expected = module["head"](out).detach().numpy()
    ours = speech_forward(params, SpeechNetConfig(input_size=4, hidden_size=3, num_outputs=5, cell="lstm",
                                                  objective="ctc"), x, np.ones((1, 7), dtype=bool))[0]
    np.testing.assert_allclose(ours, expected, atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(objective="seq2seq"), "objective: expected one of"),
    (dict(pooling="last"), "pooling: expected one of"),
    (dict(num_outputs=1), "num_outputs: expected at least 2"),
])
def test_bad_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SpeechNetConfig(**{"input_size": 4, "hidden_size": 3, "num_outputs": 3, **kwargs})
