"""Fixtures of the server tests: one small model of every kind (trained in seconds, or bundled) and the app."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the server needs FastAPI (the [serve] extra)")

MATCH = ["i love this film", "a dull , boring mess", "great fun from start to finish", "not good at all",
         "the best film of the year", "i hated every minute"]


def small_models() -> dict:
    """The bundled sst2-rnn and one small model of every other kind, trained here in a few seconds (the server
    tests and benchmarks/serving.py use them)."""
    import unrolled
    from tests.models.test_translator import make_pairs
    from unrolled.models.speech import RNNSpeechRecognizer

    lm = unrolled.RNNLanguageModel(level="char", embedding_dim=16, hidden_size=32, bptt=16, batch_size=4, epochs=2)
    lm.fit("the cat sat on the mat. the dog sat on the log. " * 20)
    forecaster = unrolled.RNNForecaster(window=12, horizon=4, hidden_size=8, epochs=20)
    forecaster.fit(np.sin(np.arange(240) / 4) * 10 + 50)
    sources, targets = make_pairs(160)
    translator = unrolled.RNNTranslator(embedding_dim=16, hidden_size=16, epochs=4, min_freq=1).fit(sources, targets)
    rng = np.random.default_rng(0)
    audio = [np.sin(np.arange(4000) * (0.05 + 0.05 * (i % 2))).astype(np.float32) * 0.3
             + rng.standard_normal(4000).astype(np.float32) * 0.01 for i in range(16)]
    speech = RNNSpeechRecognizer(hidden_size=8, num_layers=1, epochs=3, validation_fraction=0.0, n_mels=16,
                                 n_mfcc=8).fit(audio, ["0", "1"] * 8)
    return {"sst2-rnn": unrolled.load("sst2-rnn"), "lm": lm, "forecaster": forecaster, "translator": translator,
            "speech": speech}


@pytest.fixture(scope="session")
def models():
    return small_models()


@pytest.fixture(scope="session")
def app(models):
    from unrolled.serve.app import create_app

    return create_app(models, match_texts=MATCH)


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    return TestClient(app)
