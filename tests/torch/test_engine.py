"""The torch engine (``fit(..., engine="torch")``): from the same initial weights and batches it follows the
NumPy engine's loss curve within float32 tolerance for 20+ steps, for every task, optimizer and the lazy
embedding rows; it writes the same checkpoint; and bad engine/device choices are one clear line."""

from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch engine needs torch (the [torch] extra)")

from unrolled import RNNClassifier, RNNForecaster, RNNLanguageModel  # noqa: E402
from unrolled.models.speech import RNNSpeechRecognizer  # noqa: E402
from unrolled.models.translator import RNNTranslator  # noqa: E402

TEXTS = ["i love this film", "i hate this film", "what a great movie", "a dull boring film", "loved it",
         "awful acting", "great fun", "truly terrible", "a fine piece of work", "not good"] * 4
LABELS = ["pos", "neg"] * 20


class Losses:
    def __init__(self):
        self.values = []

    def on_batch_end(self, step, loss):
        self.values.append(loss)


def both_engines(make, fit):
    """(losses, params) of the NumPy and the torch engine on the same model and data."""
    runs = {}
    for engine in ("numpy", "torch"):
        losses, model = Losses(), make()
        fit(model, callbacks=[losses], engine=engine)
        runs[engine] = (np.array(losses.values), model)
    return runs


def assert_same_curve(runs, steps=20, tol=2e-5):
    (numpy_losses, numpy_model), (torch_losses, torch_model) = runs["numpy"], runs["torch"]
    assert len(numpy_losses) == len(torch_losses) >= steps
    np.testing.assert_allclose(torch_losses, numpy_losses, rtol=tol, atol=tol)
    assert numpy_losses[-1] < numpy_losses[0]  # it trains
    for name, value in numpy_model.params_.items():
        np.testing.assert_allclose(torch_model.params_[name], value, rtol=0, atol=50 * tol, err_msg=name)


@pytest.mark.parametrize("cell,optimizer", [("gru", "adam"), ("lstm", "adamw"), ("rnn", "sgd")])
def test_classifier_curves_agree(cell, optimizer):
    runs = both_engines(
        lambda: RNNClassifier(cell=cell, embedding_dim=8, hidden_size=8, epochs=5, batch_size=10, optimizer=optimizer,
                              weight_decay=0.01, clip_norm=0.5, bidirectional=True, pooling="mean",
                              schedule="warmup_linear", warmup_steps=3, patience=None),
        lambda m, **kw: m.fit(TEXTS, LABELS, validation=(TEXTS[:10], LABELS[:10]), **kw))
    assert_same_curve(runs)
    assert runs["torch"][1].history_.best_epoch == runs["numpy"][1].history_.best_epoch


def test_frozen_embeddings_stay_frozen(tmp_path):
    vectors = tmp_path / "vectors.txt"
    words = sorted({w for t in TEXTS for w in t.split()})
    vectors.write_text("".join(f"{w} " + " ".join(["0.5"] * 8) + "\n" for w in words))
    runs = both_engines(
        lambda: RNNClassifier(embedding_dim=8, hidden_size=8, epochs=5, batch_size=10, embeddings=str(vectors),
                              freeze_embeddings=True),
        lambda m, **kw: m.fit(TEXTS, LABELS, **kw))
    assert_same_curve(runs)
    torch_model = runs["torch"][1]
    assert np.all(torch_model.params_["embedding.weight"][torch_model.vocab_.id_of("film")] == 0.5)


@pytest.mark.parametrize("tie", [False, True])
def test_language_model_curves_agree(tie):
    text = "the cat sat on the mat and the dog sat on the log. " * 8
    runs = both_engines(
        lambda: RNNLanguageModel(cell="lstm", embedding_dim=12, hidden_size=12, tie_weights=tie, bptt=8,
                                 batch_size=4, epochs=2, lr=5e-3),
        lambda m, **kw: m.fit(text, **kw))
    assert_same_curve(runs)


def test_forecaster_curves_agree():
    series = np.sin(np.arange(200) / 5) + 0.1 * np.cos(np.arange(200) / 2)
    runs = both_engines(lambda: RNNForecaster(window=12, horizon=3, hidden_size=8, epochs=3, batch_size=16),
                        lambda m, **kw: m.fit(series, **kw))
    assert_same_curve(runs)


def test_translator_curves_agree():
    from tests.models.test_translator import make_pairs

    sources, targets = make_pairs(160)
    runs = both_engines(
        lambda: RNNTranslator(embedding_dim=12, hidden_size=12, batch_size=16, epochs=2, lr=5e-3, label_smoothing=0.1,
                              dropout=0.0, min_freq=1),
        lambda m, **kw: m.fit(sources, targets, **kw))
    assert_same_curve(runs)


@pytest.mark.parametrize("objective", ["classify", "ctc"])
def test_speech_curves_agree(objective):
    rng = np.random.default_rng(0)
    audio = [rng.standard_normal(int(rng.integers(2400, 4000))).astype(np.float32) * 0.1 for _ in range(24)]
    transcripts = [str(i % 3) * (1 + i % 2 if objective == "ctc" else 1) for i in range(24)]
    runs = both_engines(
        lambda: RNNSpeechRecognizer(objective=objective, hidden_size=8, num_layers=1, epochs=3, batch_size=8, lr=5e-3,
                                    validation_fraction=0.0, vtlp=0.0, time_masks=0, feature_masks=0, n_mels=16,
                                    dropout=0.0, n_mfcc=8, deltas=0),
        lambda m, **kw: m.fit(audio, transcripts, **kw))
    assert_same_curve(runs, steps=9)


def test_torch_engine_checkpoint_predicts_on_numpy(tmp_path):
    import json

    import unrolled

    model = RNNClassifier(embedding_dim=8, hidden_size=8, epochs=2).fit(TEXTS, LABELS, engine="torch", device="cpu")
    path = model.save(tmp_path / "m")
    record = json.loads((path / "config.json").read_text())["training"]
    assert (record["engine"], record["device"], record["processes"]) == ("torch", "cpu", 1)
    loaded = unrolled.load(path)
    np.testing.assert_allclose(loaded.predict_proba(TEXTS[:4]), model.predict_proba(TEXTS[:4]))


def test_bad_engine_and_device_are_one_line_each(monkeypatch):
    model = RNNClassifier(epochs=1)
    with pytest.raises(ValueError, match="engine: expected one of numpy, torch, got 'jax'"):
        model.fit(TEXTS, LABELS, engine="jax")
    with pytest.raises(ValueError, match="device: 'cuda' needs the torch engine"):
        model.fit(TEXTS, LABELS, device="cuda")
    with pytest.raises(ValueError, match="device: 'tpu' is not a device torch knows"):
        model.fit(TEXTS, LABELS, engine="torch", device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device: 'cuda:1' but torch sees no CUDA GPU on this machine"):
            model.fit(TEXTS, LABELS, engine="torch", device="cuda:1")
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    monkeypatch.delitem(sys.modules, "unrolled.torch.engine", raising=False)
    monkeypatch.delitem(sys.modules, "unrolled.torch", raising=False)
    with pytest.raises(ValueError, match=r"engine 'torch' needs PyTorch: pip install 'unrolled\[torch\]'"):
        model.fit(TEXTS, LABELS, engine="torch")


# --- the command line -------------------------------------------------------------------------------------------


def _train(tmp_path, *options):
    import io

    from unrolled.cli import main

    data = tmp_path / "train.tsv"
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(TEXTS, LABELS)))
    out, err = io.StringIO(), io.StringIO()
    code = main(["train", "--train", str(data), "--out", str(tmp_path / "m"), "--epochs", "1", *options],
                out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_engine_torch_trains_and_records_it(tmp_path):
    import json

    code, out, err = _train(tmp_path, "--engine", "torch", "--device", "cpu")
    assert code == 0, err
    assert out.startswith("saved ")
    record = json.loads((tmp_path / "m" / "config.json").read_text())["training"]
    assert record["engine"] == "torch" and record["device"] == "cpu"


@pytest.mark.parametrize("options,message", [
    (["--device", "cuda"], "unrolled train: error: --device cuda: needs --engine torch (the NumPy engine runs on "
                           "the CPU)\n"),
    (["--engine", "torch", "--device", "gpu0"], "unrolled train: error: --device 'gpu0' is not a device torch "
                                                "knows (expected cpu, cuda or cuda:N)\n"),
])
def test_cli_bad_device_is_one_usage_line(tmp_path, options, message):
    code, out, err = _train(tmp_path, *options)
    assert (code, out, err) == (2, "", message)
    assert not (tmp_path / "m").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without a GPU")
def test_cli_cuda_without_a_gpu_is_one_usage_line(tmp_path):
    code, _, err = _train(tmp_path, "--engine", "torch", "--device", "cuda")
    assert code == 2
    assert err == ("unrolled train: error: --device 'cuda' but torch sees no CUDA GPU on this machine "
                   "(torch.cuda.is_available() is False); use --device cpu\n")


def test_cli_torch_engine_without_torch_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "unrolled.torch.engine", raising=False)
    monkeypatch.delitem(sys.modules, "unrolled.torch", raising=False)
    code, _, err = _train(tmp_path, "--engine", "torch")
    assert (code, err) == (1, "unrolled: error: engine 'torch' needs PyTorch: pip install 'unrolled[torch]'\n")
