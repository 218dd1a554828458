"""unrolled.torch: every network's PyTorch twin gives the NumPy engine's outputs and gradients (float64, to
1e-10), and weights go unrolled -> torch -> unrolled unchanged, for every estimator kind."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the PyTorch twins need torch (the [torch] extra)")

from unrolled.models.classifier_net import (  # noqa: E402
    ClassifierNetConfig,
    classifier_backward,
    classifier_forward,
    init_classifier_params,
)
from unrolled.models.forecaster_net import (  # noqa: E402
    ForecasterNetConfig,
    forecaster_backward,
    forecaster_forward,
    init_forecaster_params,
)
from unrolled.models.lm_net import LMNetConfig, init_lm_params, lm_backward, lm_forward  # noqa: E402
from unrolled.models.speech_net import (  # noqa: E402
    SpeechNetConfig,
    init_speech_params,
    speech_backward,
    speech_forward,
)
from unrolled.nn.embedding import SparseRows  # noqa: E402
from unrolled.nn import fused  # noqa: E402
from unrolled.torch import from_torch, load_into, module_for, to_torch  # noqa: E402

F = torch.nn.functional
IDS = np.array([[1, 2, 3, 5, 2], [4, 5, 0, 0, 0], [6, 1, 1, 2, 0], [3, 0, 0, 0, 0], [2, 2, 0, 0, 0]])
TARGETS = np.array([0, 2, 1, 2, 1])
CELLS = ["rnn", "gru", "lstm"]


def _twin(config, params, sparse=False):
    module = module_for(config, sparse_embeddings=sparse).double()
    module.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    return module


def _dense(grad):
    return grad.to_dense() if isinstance(grad, SparseRows) else grad


def _assert_grads_equal(grads, module, tol=1e-10):
    named = dict(module.named_parameters())
    assert set(grads) == set(named)
    for name, grad in grads.items():
        torch_grad = named[name].grad
        torch_grad = torch_grad.to_dense() if torch_grad.is_sparse else torch_grad
        np.testing.assert_allclose(torch_grad.numpy(), _dense(grad), rtol=0, atol=tol, err_msg=name)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
@pytest.mark.parametrize("sparse", [False, True])
def test_classifier_twin(cell, pooling, layers, bidirectional, sparse):
    config = ClassifierNetConfig(vocab_size=7, embedding_dim=3, hidden_size=4, num_classes=3, cell=cell,
                                 num_layers=layers, bidirectional=bidirectional, pooling=pooling)
    params = init_classifier_params(config, np.random.default_rng(1), dtype=np.float64)
    mask = IDS != 0
    logits, loss, cache = classifier_forward(params, config, IDS, mask=mask, targets=TARGETS, training=True)
    grads = classifier_backward(cache)
    module = _twin(config, params, sparse)
    torch_logits = module(torch.from_numpy(IDS), torch.from_numpy(mask))
    torch_loss = F.cross_entropy(torch_logits, torch.from_numpy(TARGETS))
    torch_loss.backward()
    np.testing.assert_allclose(torch_logits.detach().numpy(), logits, rtol=0, atol=1e-12)
    assert abs(torch_loss.item() - loss) < 1e-12
    assert module.embedding.weight.grad.is_sparse == sparse
    _assert_grads_equal(grads, module)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
def test_language_model_twin_over_two_windows(cell, tie, layers):
    config = LMNetConfig(vocab_size=9, embedding_dim=4, hidden_size=4, cell=cell, num_layers=layers, tie_weights=tie)
    params = init_lm_params(config, np.random.default_rng(2), dtype=np.float64)
    rng = np.random.default_rng(3)
    windows = [rng.integers(0, 9, (3, 6)) for _ in range(3)]  # x1, x2 = y1, y2
    module = _twin(config, params, sparse=True)
    state, torch_state = None, None
    for x, y in zip(windows[:2], windows[1:]):
        logits, loss, state, cache = lm_forward(params, config, x, targets=y, state0=state, training=True)
        grads, _ = lm_backward(cache)
        module.zero_grad()
        torch_logits, torch_state = module(torch.from_numpy(x), torch_state)
        torch_loss = F.cross_entropy(torch_logits.reshape(-1, 9), torch.from_numpy(y).reshape(-1))
        torch_loss.backward()
        torch_state = tuple(s.detach() for s in torch_state) if cell == "lstm" else torch_state.detach()
        np.testing.assert_allclose(torch_logits.detach().numpy(), logits, rtol=0, atol=1e-12)
        assert abs(torch_loss.item() - loss) < 1e-12
        _assert_grads_equal(grads, module)
    final = torch_state[0] if cell == "lstm" else torch_state
    np.testing.assert_allclose(final.numpy(), state[0] if cell == "lstm" else state, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
def test_forecaster_twin(cell, layers):
    config = ForecasterNetConfig(input_size=2, hidden_size=5, horizon=3, cell=cell, num_layers=layers)
    params = init_forecaster_params(config, np.random.default_rng(4), dtype=np.float64)
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((6, 8, 2)), rng.standard_normal((6, 3))
    pred, loss, cache = forecaster_forward(params, config, x, targets=y, training=True)
    grads = forecaster_backward(cache)
    module = _twin(config, params)
    torch_pred = module(torch.from_numpy(x))
    F.mse_loss(torch_pred, torch.from_numpy(y)).backward()
    np.testing.assert_allclose(torch_pred.detach().numpy(), pred, rtol=0, atol=1e-12)
    _assert_grads_equal(grads, module)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("objective,pooling", [("classify", "mean"), ("classify", "max"), ("ctc", "mean")])
def test_speech_twin(cell, objective, pooling):
    config = SpeechNetConfig(input_size=3, hidden_size=4, num_outputs=4, objective=objective, cell=cell,
                             pooling=pooling)
    params = init_speech_params(config, np.random.default_rng(6), dtype=np.float64)
    rng = np.random.default_rng(7)
    lengths = np.array([9, 6, 8])
    x = rng.standard_normal((3, 9, 3))
    mask = np.arange(9)[None, :] < lengths[:, None]
    module = _twin(config, params)
    torch_logits = module(torch.from_numpy(x), torch.from_numpy(mask))
    if objective == "classify":
        targets = np.array([1, 3, 0])
        logits, loss, cache = speech_forward(params, config, x, mask, targets=targets, training=True)
        torch_loss = F.cross_entropy(torch_logits, torch.from_numpy(targets))
        np.testing.assert_allclose(torch_logits.detach().numpy(), logits, rtol=0, atol=1e-12)
    else:
        targets, target_lengths = np.array([[1, 2, 2], [3, 1, 0], [2, 0, 0]]), np.array([3, 2, 1])
        logits, loss, cache = speech_forward(params, config, x, mask, targets=targets, target_lengths=target_lengths,
                                             training=True)
        log_probs = torch_logits.log_softmax(dim=2).transpose(0, 1)
        torch_loss = F.ctc_loss(log_probs, torch.from_numpy(targets), torch.from_numpy(lengths),
                                torch.from_numpy(target_lengths), blank=0)
        real = torch.from_numpy(mask)
        np.testing.assert_allclose(torch_logits.detach().numpy()[mask], logits[mask], rtol=0, atol=1e-12)
        assert real.any()
    torch_loss.backward()
    assert abs(torch_loss.item() - loss) < 1e-10
    _assert_grads_equal(speech_backward(cache), module)


# --- estimators: to_torch / from_torch round trips --------------------------------------------------------

TEXTS = ["i love this", "i hate this", "what a great film", "a dull and boring film", "loved it", "awful"]
LABELS = ["pos", "neg", "pos", "neg", "pos", "neg"]


@pytest.fixture(scope="module")
def classifier():
    from unrolled import RNNClassifier

    return RNNClassifier(cell="lstm", embedding_dim=6, hidden_size=5, bidirectional=True, num_layers=2,
                         pooling="max", epochs=1).fit(TEXTS, LABELS)


@pytest.mark.skipif(not fused.ACTIVE, reason="projection tables need the C extension")
def test_a_predicting_classifier_converts_both_ways(monkeypatch):
    """After predict its first-layer arrays are read-only (projection tables): to_torch copies those, so torch
    does not warn about non-writable memory; load_into puts new arrays in their place, and the model's next
    prediction reads the twin's weights, not the tables of the old ones."""
    import warnings

    from unrolled import RNNClassifier

    monkeypatch.setattr(fused, "PROJECT_ROWS_MAX", 32)  # tables on any build with the C extension
    model = RNNClassifier(cell="gru", embedding_dim=6, hidden_size=5, epochs=1).fit(TEXTS, LABELS)
    expected = model.predict_proba(["i love this"])
    assert not model.params_["embedding.weight"].flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = to_torch(model)
    assert set(module.state_dict()) == set(model.params_)
    np.testing.assert_allclose(from_torch(module, like=model).predict_proba(["i love this"]), expected, rtol=1e-6)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.05)
    load_into(model.params_, module)
    changed = model.predict_proba(["i love this"])
    np.testing.assert_allclose(changed, from_torch(module, like=model).predict_proba(["i love this"]), rtol=1e-6)
    assert not np.allclose(changed, expected)


def test_classifier_round_trip_is_exact(classifier, tmp_path):
    module = to_torch(classifier)
    assert set(module.state_dict()) == set(classifier.params_)
    with torch.no_grad():  # the twin's probabilities are the model's
        for parameter in module.parameters():
            parameter.add_(0.01)  # "training" in torch
    back = from_torch(module, like=classifier)
    for name, value in back.params_.items():
        np.testing.assert_array_equal(value, module.state_dict()[name].numpy())
        assert value.dtype == classifier.params_[name].dtype
    assert not np.array_equal(back.params_["head.bias"], classifier.params_["head.bias"])  # a copy, not the same
    path = back.save(tmp_path / "m")
    from unrolled import load

    reloaded = load(path)
    ids = [reloaded.vocab_.encode(t.split()) for t in TEXTS]
    width = max(map(len, ids))
    padded = np.array([row + [0] * (width - len(row)) for row in ids])
    with torch.no_grad():
        probabilities = module(torch.from_numpy(padded), torch.from_numpy(padded != 0)).softmax(dim=1).numpy()
    np.testing.assert_allclose(reloaded.predict_proba(TEXTS), probabilities, rtol=0, atol=1e-6)


def test_every_estimator_kind_round_trips(classifier):
    from unrolled import RNNForecaster, RNNLanguageModel

    lm = RNNLanguageModel(level="char", hidden_size=8, embedding_dim=8, epochs=1, bptt=8, batch_size=2)
    lm.fit("the cat sat on the mat. " * 6)
    forecaster = RNNForecaster(window=6, horizon=2, hidden_size=4, epochs=1).fit(np.sin(np.arange(60) / 3))
    for model in (classifier, lm, forecaster):
        module = to_torch(model)
        back = from_torch(module, like=model)
        assert set(back.params_) == set(model.params_)
        for name in model.params_:
            np.testing.assert_array_equal(back.params_[name], model.params_[name])


def test_translator_and_speech_recognizer_round_trip():
    from tests.models.test_translator import make_pairs
    from unrolled.models.speech import RNNSpeechRecognizer
    from unrolled.models.translator import RNNTranslator

    sources, targets = make_pairs(40)
    translator = RNNTranslator(embedding_dim=8, hidden_size=8, epochs=1, min_freq=1).fit(sources, targets)
    rng = np.random.default_rng(0)
    audio = [rng.standard_normal(3000).astype(np.float32) * 0.1 for _ in range(8)]
    speech = RNNSpeechRecognizer(hidden_size=6, num_layers=1, epochs=1, validation_fraction=0.0, n_mels=16,
                                 n_mfcc=8).fit(audio, ["0", "1"] * 4)
    for model, kind in ((translator, "TorchTranslator"), (speech, "TorchSpeechNet")):
        module = to_torch(model)
        assert type(module).__name__ == kind and not module.training
        back = from_torch(module, like=model)
        for name in model.params_:
            np.testing.assert_array_equal(back.params_[name], model.params_[name])


def test_load_into_names_the_mismatch(classifier):
    params = {k: v.copy() for k, v in classifier.params_.items()}
    module = to_torch(classifier)
    params["extra.weight"] = np.zeros(2, dtype=np.float32)
    with pytest.raises(ValueError, match="missing 'extra.weight'"):
        load_into(params, module)
    del params["extra.weight"]
    params["head.bias"] = np.zeros(3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"head.bias: the torch module has shape \(2,\), the model \(3,\)"):
        load_into(params, module)


def test_no_twin_for_an_unknown_config():
    with pytest.raises(ValueError, match="no PyTorch twin for dict"):
        module_for({})


def test_a_bundled_model_predicts_the_same_through_its_twin():
    import unrolled

    model = unrolled.load("sst2-best")  # dropout 0.5: the twin must come in eval mode
    net = to_torch("sst2-best")
    assert not net.training
    texts = ["I love this", "a dull , lifeless and overlong film", "not bad at all"]
    ids = model._encode(texts)
    width = max(map(len, ids))
    padded = torch.tensor([row + [0] * (width - len(row)) for row in ids])
    with torch.no_grad():
        probabilities = net(padded, padded != 0).softmax(dim=1).numpy()
    np.testing.assert_allclose(probabilities, model.predict_proba(texts), rtol=0, atol=1e-6)
