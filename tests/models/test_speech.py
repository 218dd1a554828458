"""RNNSpeechRecognizer on synthetic tone "digits": it learns both objectives, saves and loads, explains, and says
what is wrong with bad input in one line."""

import numpy as np
import pytest

from tests.audio.test_digits import make_fsdd
from unrolled.audio.digits import connected_digits, fsdd_recordings
from unrolled.models.speech import RNNSpeechRecognizer, Transcription

SMALL = dict(hidden_size=16, num_layers=1, epochs=12, lr=1e-2, batch_size=16, validation_fraction=0.0,
             vtlp=0.0, time_masks=0, feature_masks=0, n_mels=20, n_mfcc=10, deltas=1)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    return fsdd_recordings(make_fsdd(tmp_path_factory.mktemp("fsdd") / "rec", takes=range(6)))


@pytest.fixture(scope="module")
def classifier(recordings):
    return RNNSpeechRecognizer(**SMALL).fit([r.path for r in recordings], [r.digit for r in recordings])


def test_classify_learns_the_tones(classifier, recordings):
    paths = [r.path for r in recordings]
    assert classifier.score(paths, [r.digit for r in recordings]) >= 0.95
    assert list(classifier.classes_) == ["0", "1", "2", "3"]
    proba = classifier.predict_proba(paths[:3])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    (result,) = classifier.transcribe([paths[0]])
    assert isinstance(result, Transcription) and result.probability == pytest.approx(proba[0].max())
    scores = classifier.evaluate(paths, [r.digit for r in recordings])
    assert scores.report.confusion.sum() == len(paths) and scores.symbol_error_rate <= 0.05


def test_arrays_and_paths_give_the_same_answer(classifier, recordings):
    from unrolled.audio.wav import read_wav

    samples = [read_wav(r.path)[0] for r in recordings[:4]]
    np.testing.assert_allclose(classifier.predict_proba(samples), classifier.predict_proba([r.path for r in
                                                                                          recordings[:4]]))


def test_save_load_round_trip_and_explain(classifier, recordings, tmp_path):
    import unrolled

    classifier.save(tmp_path / "m")
    loaded = unrolled.load(tmp_path / "m")
    assert isinstance(loaded, RNNSpeechRecognizer)
    paths = [r.path for r in recordings[:5]]
    np.testing.assert_allclose(loaded.predict_proba(paths), classifier.predict_proba(paths), rtol=1e-6)
    explained = loaded.explain(paths[0])
    assert explained.posteriors.shape == (len(explained.features), 4) and explained.alignment is None
    # the running pooled posterior of the last frame is the model's answer
    np.testing.assert_allclose(explained.posteriors[-1].max(), explained.probability, rtol=1e-5)


def test_ctc_learns_connected_tones(recordings):
    train = connected_digits(recordings, 120, seed=0, max_digits=4)
    test = connected_digits(recordings, 20, seed=1, max_digits=4)
    model = RNNSpeechRecognizer(**{**SMALL, "objective": "ctc", "stack": 2, "epochs": 15, "hidden_size": 24,
                                   "bidirectional": True})
    model.fit([u.samples for u in train], [u.transcript for u in train])
    scores = model.evaluate([u.samples for u in test], [u.transcript for u in test])
    assert scores.symbol_error_rate < 0.2
    (result,) = model.transcribe([test[0].samples])
    assert 0.0 < result.probability <= 1.0
    explained = model.explain(test[0].samples)
    assert len(explained.alignment) == len(explained.features)
    assert explained.outputs[0] == "<blank>"
    collapsed = [s for i, s in enumerate(explained.alignment)
                 if s != "<blank>" and (i == 0 or explained.alignment[i - 1] != s)]
    assert "".join(collapsed) == explained.transcript
    with pytest.raises(ValueError, match="a ctc model has no fixed classes"):
        model.predict_proba([test[0].samples])


def test_same_seed_same_weights(recordings):
    paths, digits = [r.path for r in recordings[:40]], [r.digit for r in recordings[:40]]
    config = {**SMALL, "epochs": 2, "vtlp": 0.1, "speed_perturb": 0.1, "time_masks": 1}
    a = RNNSpeechRecognizer(**config).fit(paths, digits)
    b = RNNSpeechRecognizer(**config).fit(paths, digits)
    assert all(np.array_equal(a.params_[k], b.params_[k]) for k in a.params_)


def test_bad_input_is_one_line(recordings, tmp_path):
    paths = [r.path for r in recordings[:8]]
    digits = [r.digit for r in recordings[:8]]
    model = RNNSpeechRecognizer(**{**SMALL, "epochs": 1})
    with pytest.raises(ValueError, match=r"y\[1\]: empty transcript"):
        model.fit(paths[:2], ["1", " "])
    with pytest.raises(ValueError, match="expected 8 \\(one per utterance\\), got 7"):
        model.fit(paths, digits[:7])
    with pytest.raises(ValueError, match="only one distinct transcript"):
        model.fit(paths[:2], ["1", "1"])
    with pytest.raises(ValueError, match=r"audio\[0\]: expected a WAV path or a non-empty"):
        model.fit([np.zeros((2, 2)), paths[0]], ["1", "2"])
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(ValueError, match="bad.wav: not a WAV file"):
        model.fit([bad, paths[0]], ["1", "2"])
    with pytest.raises(ValueError, match="is not fitted yet"):
        model.predict(paths)
    with pytest.raises(ValueError, match="cannot carry the 7 symbols"):
        RNNSpeechRecognizer(**{**SMALL, "objective": "ctc", "stack": 8}).fit([np.zeros(800) + 0.1] * 2,
                                                                             ["1234567", "12"])
    with pytest.raises(ValueError, match="validation transcripts\\[0\\]: '9' never occurs"):
        model.fit(paths, digits, validation=([paths[0]], ["9"]))


def test_sklearn_clone():
    sklearn = pytest.importorskip("sklearn")
    model = RNNSpeechRecognizer(hidden_size=8, objective="ctc")
    clone = sklearn.base.clone(model)
    assert clone.get_params() == model.get_params() and "hidden_size=8" in repr(clone)
