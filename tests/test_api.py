"""The public Python API (src/unrolled/__init__.py): the estimators and ``unrolled.load``, imported lazily so
that ``import unrolled`` stays cheap."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import unrolled
from unrolled.checkpoint import CheckpointError


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_unrolled_does_not_import_numpy_or_the_estimators():
    result = _python("import sys, unrolled; "
                     "assert 'numpy' not in sys.modules, 'numpy'; "
                     "assert [m for m in sys.modules if m.startswith('unrolled.')] == ['unrolled._lazy'], "
                     "sorted(sys.modules)")  # its own PEP 562 helper only
    assert result.returncode == 0, result.stderr


def test_the_estimators_are_imported_on_first_access():
    result = _python("import sys, unrolled; c = unrolled.RNNClassifier; "
                     "assert 'unrolled.models.classifier' in sys.modules; "
                     "assert 'unrolled.models.forecaster' not in sys.modules; "
                     "from unrolled import RNNForecaster; print(c.__name__, RNNForecaster.__name__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["RNNClassifier", "RNNForecaster"]


def test_public_names():
    from unrolled.models.classifier import RNNClassifier
    from unrolled.models.forecaster import RNNForecaster
    from unrolled.models.language_model import RNNLanguageModel
    from unrolled.models.speech import RNNSpeechRecognizer
    from unrolled.models.translator import RNNTranslator

    assert set(unrolled.__all__) == {"RNNClassifier", "RNNForecaster", "RNNLanguageModel", "RNNTranslator",
                                     "RNNSpeechRecognizer", "load", "__version__"}
    assert unrolled.RNNSpeechRecognizer is RNNSpeechRecognizer
    assert unrolled.RNNClassifier is RNNClassifier and unrolled.RNNForecaster is RNNForecaster
    assert unrolled.RNNLanguageModel is RNNLanguageModel and unrolled.RNNTranslator is RNNTranslator
    assert set(unrolled.__all__) <= set(dir(unrolled))
    with pytest.raises(AttributeError, match="module 'unrolled' has no attribute 'RNNTransformer'"):
        unrolled.RNNTransformer  # noqa: B018
    from unrolled import checkpoint  # submodules still import through the package's __getattr__

    assert checkpoint.CheckpointError is CheckpointError


def test_the_package_is_typed():
    assert (Path(unrolled.__file__).parent / "py.typed").is_file()


@pytest.mark.parametrize("kind", ["classifier", "forecaster", "language_model", "translator"])
def test_load_returns_the_estimator_of_the_checkpoints_kind(kind, tmp_path):
    if kind == "classifier":
        texts = ["i love this", "great movie", "so good", "truly great", "i hate this", "awful", "so bad", "dull"]
        model = unrolled.RNNClassifier(hidden_size=4, embedding_dim=4, epochs=1).fit(texts, ["pos"] * 4 + ["neg"] * 4)
        same = lambda a, b: np.array_equal(a.predict_proba(texts), b.predict_proba(texts))  # noqa: E731
    elif kind == "forecaster":
        series = np.sin(np.arange(60) / 3.0)
        model = unrolled.RNNForecaster(window=6, horizon=2, hidden_size=4, epochs=2).fit(series)
        same = lambda a, b: np.array_equal(a.predict(series), b.predict(series))  # noqa: E731
    elif kind == "translator":
        sources, targets = ["eins zwei", "zwei drei", "drei eins"] * 4, ["one two", "two three", "three one"] * 4
        model = unrolled.RNNTranslator(embedding_dim=4, hidden_size=4, min_freq=1, epochs=1).fit(sources, targets)
        same = lambda a, b: a.translate(sources) == b.translate(sources)  # noqa: E731
    else:
        text = "abcab" * 20
        model = unrolled.RNNLanguageModel(embedding_dim=4, hidden_size=4, bptt=8, batch_size=2, max_steps=2).fit(text)
        same = lambda a, b: list(a.generate("ab", 10, seed=1)) == list(b.generate("ab", 10, seed=1))  # noqa: E731
    model.save(tmp_path / "ckpt")
    for path in (tmp_path / "ckpt", str(tmp_path / "ckpt")):
        loaded = unrolled.load(path)
        assert type(loaded) is type(model) and loaded.KIND == kind
        assert loaded.get_params() == model.get_params() and same(loaded, model)


def test_load_resolves_bundled_names():
    model = unrolled.load("sst2-best")
    assert isinstance(model, unrolled.RNNClassifier)
    assert model.predict(["I love this"]).tolist() == ["positive"]


def test_load_of_a_missing_path_is_one_line_naming_it(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(CheckpointError, match=f"^{missing}: checkpoint directory not found$"):
        unrolled.load(missing)
    with pytest.raises(CheckpointError, match="^no-such-model: checkpoint directory not found$"):
        unrolled.load("no-such-model")


def test_load_of_an_unknown_kind_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"format": "unrolled-checkpoint", "format_version": 1, "kind": "transformer"}))
    with pytest.raises(CheckpointError) as info:
        unrolled.load(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'config.json'}: kind 'transformer' is not one")
    assert isinstance(info.value, ValueError)


def test_load_of_a_directory_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="config.json: not found"):
        unrolled.load(tmp_path)


def test_the_one_liner_from_the_readme():
    result = _python("import unrolled; print(unrolled.load('sst2-best').predict(['I love this']))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['positive']"
