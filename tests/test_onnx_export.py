"""ONNX export (unrolled.onnx_export, ``unrolled export``): onnxruntime runs the exported graph and gives
unrolled's own numbers, for every cell, depth, direction and pooling, padded batches, and the language model's
state carried across calls."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx (pip install 'unrolled[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="running the exported graphs needs onnxruntime")

import unrolled  # noqa: E402
from unrolled.cli import main  # noqa: E402
from unrolled.data.batching import pad_batch  # noqa: E402
from unrolled.models.classifier import RNNClassifier  # noqa: E402
from unrolled.models.classifier_net import ClassifierNetConfig, classifier_forward, init_classifier_params  # noqa: E402
from unrolled.models.language_model import RNNLanguageModel  # noqa: E402
from unrolled.models.lm_net import LMNetConfig, init_lm_params, lm_forward  # noqa: E402
from unrolled.nn.losses import softmax  # noqa: E402
from unrolled.onnx_export import build_onnx, export_onnx, onnx_signature  # noqa: E402
from unrolled.text.tokenize import tokenize  # noqa: E402
from unrolled.text.vocab import Vocab  # noqa: E402
from unrolled.train import TrainHistory  # noqa: E402

TOL = 1e-5  # float32 on both sides; measured differences are ~1e-7
V, E, H, C = 23, 6, 5, 3


def session(proto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def vocab(size: int) -> Vocab:
    return Vocab([Vocab.PAD, Vocab.UNK, *(f"w{i}" for i in range(size - 2))])


def classifier(cell: str, layers: int, bidirectional: bool, pooling: str, nonlinearity: str = "tanh",
               seed: int = 0) -> RNNClassifier:
    """A 'fitted' classifier whose parameters come from the init functions (no training)."""
    config = ClassifierNetConfig(vocab_size=V, embedding_dim=E, hidden_size=H, num_classes=C, cell=cell,
                                 num_layers=layers, bidirectional=bidirectional, nonlinearity=nonlinearity,
                                 padding_idx=0, pooling=pooling)
    rng = np.random.default_rng(seed)
    model = RNNClassifier(cell=cell, embedding_dim=E, hidden_size=H, num_layers=layers,
                          bidirectional=bidirectional, pooling=pooling)
    model.net_config_ = config
    model.params_ = init_classifier_params(config, rng)
    if nonlinearity == "tanh":  # livelier gates (a ReLU RNN's states grow without bound: not there)
        model.params_ = {k: (v * 2.0).astype(np.float32) for k, v in model.params_.items()}
    model.vocab_ = vocab(V)
    model.classes_ = np.array(["a", "b", "c"])
    return model


def padded_batch(lengths, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids, mask = pad_batch([rng.integers(2, V, size=n) for n in lengths], pad_id=0)
    return ids, mask, mask.sum(axis=1).astype(np.int64)


CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("gru", "tanh"), ("lstm", "tanh")]


@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell,nonlinearity", CELLS, ids=["rnn-tanh", "rnn-relu", "gru", "lstm"])
def test_classifier_matches_unrolled_on_padded_batches(cell, nonlinearity, layers, bidirectional, pooling):
    model = classifier(cell, layers, bidirectional, pooling, nonlinearity)
    sess = session(build_onnx(model))
    for lengths in ([7, 3, 1, 5], [4], [2, 2, 6]):  # padded, B = 1, another batch size and length
        ids, mask, lens = padded_batch(lengths, seed=len(lengths))
        logits, probs = sess.run(["logits", "probabilities"], {"ids": ids, "lengths": lens})
        expected, _, _ = classifier_forward(model.params_, model.net_config_, ids, mask=mask, keep_cache=False)
        assert logits.shape == (len(lengths), C) and logits.dtype == np.float32
        np.testing.assert_allclose(logits, expected, rtol=0, atol=TOL)
        np.testing.assert_allclose(probs, softmax(expected.astype(np.float64)), rtol=0, atol=TOL)
        # whatever sits in the padded positions does not matter
        noisy = np.where(mask, ids, np.random.default_rng(9).integers(0, V, size=ids.shape))
        np.testing.assert_allclose(sess.run(["logits"], {"ids": noisy, "lengths": lens})[0], logits, atol=1e-6)


def test_a_different_gate_order_would_be_caught():
    """The comparison can fail: swapping two of the GRU's gate blocks changes the numbers far beyond TOL."""
    model = classifier("gru", 1, True, "last")
    ids, mask, lens = padded_batch([6, 4])
    good = session(build_onnx(model)).run(["logits"], {"ids": ids, "lengths": lens})[0]
    for name in ("rnn.weight_hh_l0", "rnn.bias_ih_l0"):
        w = model.params_[name]
        model.params_[name] = np.concatenate([w[H:2 * H], w[:H], w[2 * H:]])
    swapped = session(build_onnx(model)).run(["logits"], {"ids": ids, "lengths": lens})[0]
    assert np.abs(swapped - good).max() > 100 * TOL


def test_fitted_classifier_predict_proba_and_metadata(tmp_path):
    texts = ["a good movie", "a bad film", "great fun , great cast", "awful and boring", "fine"] * 3
    labels = ["pos", "neg", "pos", "neg", "pos"] * 3
    model = unrolled.RNNClassifier(cell="lstm", embedding_dim=8, hidden_size=8, num_layers=2, bidirectional=True,
                                   pooling="mean", epochs=1, batch_size=4).fit(texts, labels)
    path = export_onnx(model, tmp_path / "clf.onnx")
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["kind"] == "classifier" and meta["unrolled_version"] == unrolled.__version__
    assert json.loads(meta["classes"]) == ["neg", "pos"] and meta["pad_id"] == "0" and meta["unk_id"] == "1"
    tokens = json.loads(meta["vocab"])
    assert tokens == list(model.vocab_.tokens)

    queries = ["I love this", "a bad , boring film that never ends", "great", "zzz unknown words"]
    index = {token: i for i, token in enumerate(tokens)}
    encoded = [[index.get(t, 1) for t in tokenize(q)] or [1] for q in queries]  # as docs/onnx.md does it
    ids, mask = pad_batch(encoded, pad_id=int(meta["pad_id"]))
    probs = session(proto).run(["probabilities"], {"ids": ids, "lengths": mask.sum(1).astype(np.int64)})[0]
    np.testing.assert_allclose(probs, model.predict_proba(queries), rtol=0, atol=TOL)


def test_bundled_classifier_matches_predict_proba():
    model = unrolled.load("sst2-best")
    texts = ["I love this", "a dull , lifeless and overlong mess", "not bad at all"]
    ids, mask = pad_batch(model._encode(texts), pad_id=0)
    probs = session(build_onnx(model)).run(["probabilities"], {"ids": ids, "lengths": mask.sum(1)})[0]
    np.testing.assert_allclose(probs, model.predict_proba(texts), rtol=0, atol=TOL)


# --- language model ----------------------------------------------------------------------------------------


def language_model(cell: str, layers: int, tie: bool, seed: int = 0) -> RNNLanguageModel:
    hidden = E if tie else H
    config = LMNetConfig(vocab_size=V, embedding_dim=E, hidden_size=hidden, cell=cell, num_layers=layers,
                         tie_weights=tie)
    rng = np.random.default_rng(seed)
    model = RNNLanguageModel(level="char", cell=cell, embedding_dim=E, hidden_size=hidden, num_layers=layers,
                             tie_weights=tie)
    model.net_config_ = config
    params = init_lm_params(config, rng)
    params["embedding.weight"] = rng.normal(0, 1, params["embedding.weight"].shape).astype(np.float32)
    params["head.bias"] = rng.normal(0, 1, V).astype(np.float32)
    model.params_ = params
    model.vocab_ = vocab(V)
    model.start_token_ = "w0"
    return model


def lm_feeds(model, ids, state) -> dict[str, np.ndarray]:
    if model.net_config_.cell == "lstm":
        return {"ids": ids, "h0": state[0], "c0": state[1]}
    return {"ids": ids, "h0": state}


def random_state(model, batch: int, rng):
    config = model.net_config_
    shape = (config.num_layers, batch, config.hidden_size)
    h = rng.uniform(-0.5, 0.5, shape).astype(np.float32)
    return (h, rng.uniform(-0.5, 0.5, shape).astype(np.float32)) if config.cell == "lstm" else h


def assert_state_close(actual: list, expected) -> None:
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=0, atol=TOL)


@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_language_model_window_and_stepwise_state(cell, layers, tie):
    model = language_model(cell, layers, tie)
    proto = build_onnx(model)
    if tie:  # the head reads the embedding initializer: no second (V, E) matrix in the file
        assert "head.weight" not in {init.name for init in proto.graph.initializer}
    sess = session(proto)
    names = [o.name for o in proto.graph.output]
    assert names == (["logits", "hn", "cn"] if cell == "lstm" else ["logits", "hn"])
    rng = np.random.default_rng(3)
    for batch in (1, 3):  # dynamic batch
        ids = rng.integers(0, V, size=(batch, 9))
        state0 = random_state(model, batch, rng)
        logits, *state = sess.run(names, lm_feeds(model, ids, state0))
        expected, _, expected_state, _ = lm_forward(model.params_, model.net_config_, ids, state0=state0)
        assert logits.shape == (batch, 9, V)
        np.testing.assert_allclose(logits, expected, rtol=0, atol=TOL)
        assert_state_close(state, expected_state)

        # one step per call, the state fed back, from zeros: the same as the whole window from zeros
        expected, _, expected_state, _ = lm_forward(model.params_, model.net_config_, ids)
        carried = random_state(model, batch, rng)
        carried = tuple(np.zeros_like(c) for c in carried) if isinstance(carried, tuple) else np.zeros_like(carried)
        for t in range(ids.shape[1]):
            step_logits, *state = sess.run(names, lm_feeds(model, ids[:, t : t + 1], carried))
            np.testing.assert_allclose(step_logits[:, 0], expected[:, t], rtol=0, atol=TOL)
            carried = tuple(state) if cell == "lstm" else state[0]
        assert_state_close(list(carried) if cell == "lstm" else [carried], expected_state)


def test_fitted_language_model_generates_the_same_greedy_text(tmp_path):
    text = "the cat sat on the mat and the dog sat on the log . " * 12
    model = RNNLanguageModel(level="word", cell="gru", embedding_dim=8, hidden_size=8, num_layers=2, bptt=8,
                             batch_size=2, epochs=1, tie_weights=True).fit(text)
    path = export_onnx(model, tmp_path / "lm.onnx")
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["kind"] == "language_model" and meta["level"] == "word"
    assert json.loads(meta["vocab"])[int(meta["start_token_id"])] == model.start_token_ == "the"
    sess = session(proto)
    prompt = ["the", "dog"]
    ids = np.array([[model.vocab_.id_of(t) for t in prompt]], dtype=np.int64)
    h = np.zeros((2, 1, 8), np.float32)
    words = []
    for _ in range(12):
        logits, h = sess.run(["logits", "hn"], {"ids": ids, "h0": h})
        next_id = int(np.argmax(logits[0, -1]))
        words.append(" " + model.vocab_.tokens[next_id])
        ids = np.array([[next_id]], dtype=np.int64)
    assert words == list(model.generate("the dog", 12, temperature=0))


# --- errors ------------------------------------------------------------------------------------------------


def test_unsupported_kinds_and_unfitted_models_are_one_line_value_errors(tmp_path):
    for estimator in (unrolled.RNNForecaster(), unrolled.RNNTranslator()):
        with pytest.raises(ValueError, match=r"does not export to ONNX; the supported kinds are classifier") as info:
            export_onnx(estimator, tmp_path / "x.onnx")
        assert "\n" not in str(info.value) and estimator.KIND in str(info.value)
    with pytest.raises(ValueError, match="expected an RNNClassifier or RNNLanguageModel, got dict"):
        export_onnx({}, tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="not fitted yet") as info:
        export_onnx(unrolled.RNNClassifier(), tmp_path / "x.onnx")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="opset: expected an integer from 14"):
        build_onnx(classifier("gru", 1, False, "last"), opset=9)
    assert not (tmp_path / "x.onnx").exists()


def test_every_supported_opset_builds_and_runs():
    model = classifier("lstm", 1, True, "max")
    ids, mask, lens = padded_batch([5, 2])
    expected, _, _ = classifier_forward(model.params_, model.net_config_, ids, mask=mask, keep_cache=False)
    for opset in (14, 17, 18, 20):  # ReduceMax takes its axes as an input from 18 on
        logits = session(build_onnx(model, opset=opset)).run(["logits"], {"ids": ids, "lengths": lens})[0]
        np.testing.assert_allclose(logits, expected, rtol=0, atol=TOL)


# --- the command -------------------------------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_exports_a_checkpoint_directory_and_a_bundled_model(tmp_path):
    model = language_model("lstm", 2, False)
    model.history_, model.training_seconds_, model.val_loss_ = TrainHistory(), 0.0, None
    model.save(tmp_path / "lm")
    code, out, err = run_cli("export", "--model", str(tmp_path / "lm"), "--onnx", str(tmp_path / "lm.onnx"))
    assert code == 0 and err == ""
    assert out.count("\n") == 1 and out.startswith(f"wrote {tmp_path / 'lm.onnx'} (language_model, opset 17)")
    assert "inputs ids (batch, sequence) int64, h0 (2, batch, 5) float32, c0 (2, batch, 5) float32" in out
    assert "outputs logits (batch, sequence, 23) float32, hn (2, batch, 5) float32, cn (2, batch, 5)" in out
    signature = onnx_signature(tmp_path / "lm.onnx")
    assert [name for name, _, _ in signature["outputs"]] == ["logits", "hn", "cn"]

    code, out, err = run_cli("export", "--model", "sst2-rnn", "--onnx", str(tmp_path / "rnn.onnx"))
    assert code == 0 and "(classifier, opset 17): inputs ids (batch, sequence) int64, lengths (batch) int64" in out
    bundled = unrolled.load("sst2-rnn")
    ids, mask = pad_batch(bundled._encode(["I love this", "boring"]), pad_id=0)
    sess = ort.InferenceSession(str(tmp_path / "rnn.onnx"), providers=["CPUExecutionProvider"])
    probs = sess.run(["probabilities"], {"ids": ids, "lengths": mask.sum(1)})[0]
    np.testing.assert_allclose(probs, bundled.predict_proba(["I love this", "boring"]), rtol=0, atol=TOL)


def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys):
    unrolled.RNNForecaster(window=4, horizon=2, epochs=1, hidden_size=4).fit(np.sin(np.arange(40.0))).save(
        tmp_path / "fc")
    code, out, err = run_cli("export", "--model", str(tmp_path / "fc"), "--onnx", str(tmp_path / "fc.onnx"))
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("unrolled: error: model: a forecaster (RNNForecaster) does not export to ONNX")
    assert "classifier (RNNClassifier) and language_model (RNNLanguageModel)" in err

    code, out, err = run_cli("export", "--model", str(tmp_path / "nowhere"), "--onnx", str(tmp_path / "x.onnx"))
    assert code == 1 and err.count("\n") == 1 and "nowhere" in err and err.startswith("unrolled: error:")

    code, _, err = run_cli("export", "--model", "sst2-rnn", "--onnx", str(tmp_path / "no" / "dir" / "x.onnx"))
    assert code == 1 and err.count("\n") == 1 and "no such directory" in err

    assert run_cli("export", "--model", "sst2-rnn")[0] == 2  # argparse's usage error, on sys.stderr
    assert "the following arguments are required: --onnx" in capsys.readouterr().err

    monkeypatch.setitem(sys.modules, "onnx", None)  # as if onnx were not installed
    code, out, err = run_cli("export", "--model", "sst2-rnn", "--onnx", str(tmp_path / "x.onnx"))
    assert code == 1 and err == "unrolled: error: ONNX export needs the onnx package: pip install 'unrolled[onnx]'\n"
    assert not list(tmp_path.glob("*.onnx"))
