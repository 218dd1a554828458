"""Resuming training (unrolled.resume): a run interrupted at any step and resumed from its saved state ends with
the same weights, bit for bit, as a run that was never interrupted — for every task — and the saved state is
checked when it is read back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.audio.test_digits import make_fsdd
from tests.models.test_translator import make_pairs
from unrolled import RNNClassifier, RNNForecaster, RNNLanguageModel
from unrolled.audio.digits import fsdd_recordings
from unrolled.checkpoint import CheckpointError, load_checkpoint
from unrolled.models.speech import RNNSpeechRecognizer
from unrolled.models.translator import RNNTranslator
from unrolled.resume import STATE_FILE, Checkpointer, find_resumable, partial_path, read_training_state
from unrolled.train import TrainingInterrupted

TEXTS = ["good movie", "bad movie", "great fun", "awful plot", "loved it", "hated it", "fine work", "poor show"] * 4
LABELS = ["1", "0", "1", "0", "1", "0", "1", "0"] * 4
CORPUS = "the cat sat on the mat and the dog sat on the log. " * 12


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    found = fsdd_recordings(make_fsdd(tmp_path_factory.mktemp("fsdd") / "rec", takes=range(2)))
    return [r.path for r in found], [r.digit for r in found]


@pytest.fixture(scope="module")
def word_lm(tmp_path_factory):
    """A saved word-level language model for the fine-tuning task."""
    path = tmp_path_factory.mktemp("lm") / "lm"
    RNNLanguageModel(level="word", cell="lstm", hidden_size=8, embedding_dim=6, bptt=4, batch_size=2,
                     max_steps=3).fit(" ".join(TEXTS)).save(path)
    return path


def _tasks(recordings, word_lm=None):
    """task -> (make an estimator, fit it with callbacks)."""
    pairs = make_pairs(24)
    series = np.sin(np.arange(160) / 5.0) + np.arange(160) / 80.0
    return {
        "classifier": (lambda: RNNClassifier(hidden_size=8, embedding_dim=6, epochs=3, batch_size=4, dropout=0.2,
                                             word_dropout=0.1, cell="lstm", random_state=3),
                       lambda m, cb: m.fit(TEXTS, LABELS, validation=(TEXTS[:8], LABELS[:8]), callbacks=cb)),
        "language_model": (lambda: RNNLanguageModel(level="char", hidden_size=12, embedding_dim=6, epochs=3,
                                                    batch_size=4, bptt=8, dropout=0.2, cell="gru", random_state=1,
                                                    max_steps=40),
                           lambda m, cb: m.fit(CORPUS, callbacks=cb)),
        "fine_tuning": (lambda: RNNClassifier(hidden_size=8, embedding_dim=6, epochs=3, batch_size=4, dropout=0.2,
                                              cell="lstm", random_state=3, init_from=str(word_lm),
                                              layer_lr_decay=2.6, gradual_unfreeze=True, patience=None),
                        lambda m, cb: m.fit(TEXTS, LABELS, validation=(TEXTS[:8], LABELS[:8]), callbacks=cb)),
        "language_model_sampled": (lambda: RNNLanguageModel(level="word", hidden_size=12, embedding_dim=6,
                                                            epochs=3, batch_size=2, bptt=4, cell="gru",
                                                            random_state=1, softmax="sampled", num_sampled=3),
                                   lambda m, cb: m.fit(" ".join(TEXTS), callbacks=cb)),
        "forecaster": (lambda: RNNForecaster(window=12, horizon=3, hidden_size=8, epochs=3, batch_size=8,
                                             dropout=0.1, random_state=2),
                       lambda m, cb: m.fit(series, callbacks=cb)),
        "translator": (lambda: RNNTranslator(embedding_dim=8, hidden_size=8, epochs=3, batch_size=4, dropout=0.2,
                                             random_state=4, max_steps=14),
                       lambda m, cb: m.fit(*pairs, validation=make_pairs(6, seed=1), callbacks=cb)),
        "speech": (lambda: RNNSpeechRecognizer(hidden_size=8, num_layers=1, epochs=2, batch_size=8, n_mels=12,
                                               n_mfcc=8, deltas=1, speed_perturb=0.1, time_masks=1,
                                               validation_fraction=0.2, random_state=5),
                   lambda m, cb: m.fit(*recordings, callbacks=cb)),
    }


class _StopAt:
    """Asks the loop to stop after global step ``at``, as a SIGINT would."""

    def __init__(self, at: int) -> None:
        self.at, self.requested = at, None

    def on_batch_end(self, step: int, loss: float) -> None:
        if step == self.at:
            self.requested = 2


class _StopAtEpochEnd:
    """Asks the loop to stop while epoch ``epoch`` ends (a signal during the evaluation): the state saved is
    the next epoch's start."""

    def __init__(self, epoch: int) -> None:
        self.epoch, self.requested = epoch, None

    def on_epoch_end(self, result, params) -> None:
        if result.epoch == self.epoch:
            self.requested = 15


class _Steps:
    def __init__(self) -> None:
        self.steps = 0

    def on_batch_end(self, step: int, loss: float) -> None:
        self.steps = step


def _interrupt_a_classifier(directory, at: int) -> None:
    """Train the small classifier of ``_tasks`` until step ``at``, then stop it as a signal would, its state
    saved in ``directory``."""
    make, fit = _tasks(None)["classifier"]
    model, stop = make(), _StopAt(at)
    with pytest.raises(TrainingInterrupted):
        fit(model, [stop, Checkpointer(model, directory, interrupt=stop)])


def _same_weights(a, b) -> bool:
    return set(a.params_) == set(b.params_) and all(np.array_equal(a.params_[k], b.params_[k]) for k in a.params_)


@pytest.mark.parametrize("task", ["classifier", "fine_tuning", "language_model", "language_model_sampled",
                                  "forecaster", "translator", "speech"])
def test_an_interrupted_run_resumes_to_the_same_weights(task, recordings, word_lm, tmp_path):
    make, fit = _tasks(recordings, word_lm)[task]
    counter = _Steps()
    reference = fit(make(), [counter])
    total = counter.steps
    assert total >= 6
    rng = np.random.default_rng(7)
    stops = sorted({1, total - 1, *rng.integers(2, total - 1, size=2).tolist()})
    for at in stops:
        directory = tmp_path / f"{task}-{at}.partial"
        model, stop = make(), _StopAt(at)
        with pytest.raises(TrainingInterrupted) as raised:
            fit(model, [stop, Checkpointer(model, directory, interrupt=stop)])
        assert raised.value.state.step == at
        assert load_checkpoint(directory).config["training"]["complete"] is False  # the best model so far loads
        state, _ = read_training_state(directory)
        assert state.step == at
        resumed = make()
        fit(resumed, [Checkpointer(resumed, directory, resume_state=state)])
        assert _same_weights(reference, resumed), f"{task}: stopped at step {at} of {total}"
        assert [e.train_loss for e in resumed.history_.epochs] == [e.train_loss for e in reference.history_.epochs]
    # stopped while the first epoch ends: the state is the second epoch's start (what each epoch end saves)
    directory = tmp_path / f"{task}-epoch-end.partial"
    model, stop = make(), _StopAtEpochEnd(1)
    with pytest.raises(TrainingInterrupted) as raised:
        fit(model, [stop, Checkpointer(model, directory, interrupt=stop)])
    assert (raised.value.state.epoch, raised.value.state.position) == (2, 0)
    state, _ = read_training_state(directory)
    resumed = make()
    fit(resumed, [Checkpointer(resumed, directory, resume_state=state)])
    assert _same_weights(reference, resumed), f"{task}: stopped at the end of epoch 1"


def test_checkpoint_every_saves_mid_epoch_and_a_stale_state_resumes_too(tmp_path):
    make, fit = _tasks(None)["classifier"]
    reference = fit(make(), [])
    saved = []

    class Spy(Checkpointer):
        def on_checkpoint(self, state):
            super().on_checkpoint(state)
            saved.append((state.epoch, state.position))

    model = make()
    fit(model, [Spy(model, tmp_path / "p", checkpoint_every=3)])
    assert (1, 3) in saved and (1, 6) in saved and (2, 0) in saved  # every 3 steps, and each epoch end
    # The last state written (after the final epoch) says the run finished: resuming it just restores.
    state, _ = read_training_state(tmp_path / "p")
    assert state.finished
    resumed = make()
    fit(resumed, [Checkpointer(resumed, tmp_path / "p", resume_state=state)])
    assert _same_weights(reference, resumed)


def test_a_state_of_another_model_is_refused(tmp_path):
    make, _ = _tasks(None)["classifier"]
    _interrupt_a_classifier(tmp_path / "p", at=3)
    state, _ = read_training_state(tmp_path / "p")
    other = RNNClassifier(hidden_size=10, embedding_dim=6, epochs=3, batch_size=4, random_state=3)
    with pytest.raises(ValueError, match="resume: the saved state's parameter .* different model"):
        other.fit(TEXTS, LABELS, callbacks=[Checkpointer(other, tmp_path / "q", resume_state=state)])
    shorter = RNNClassifier(**{**make().get_params(), "epochs": 1})
    state.epoch = 2
    with pytest.raises(ValueError, match="only 1 epochs"):
        shorter.fit(TEXTS, LABELS, callbacks=[Checkpointer(shorter, tmp_path / "r", resume_state=state)])


def test_resuming_is_numpy_engine_single_process_only(tmp_path):
    make, _ = _tasks(None)["classifier"]
    _interrupt_a_classifier(tmp_path / "p", at=2)
    state, _ = read_training_state(tmp_path / "p")
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="only a single-process run of the NumPy engine"):
        make().fit(TEXTS, LABELS, engine="torch", callbacks=[Checkpointer(None, tmp_path / "x", resume_state=state)])


def test_broken_state_files_are_one_line_naming_the_file(tmp_path):
    _interrupt_a_classifier(tmp_path / "p", at=2)
    meta_path = tmp_path / "p" / STATE_FILE
    meta = json.loads(meta_path.read_text())
    for broken, match in [("{", "invalid JSON"), (json.dumps({**meta, "format": "x"}), "not an unrolled training state"),
                          (json.dumps({**meta, "format_version": 9}), "format_version 9"),
                          (json.dumps({k: v for k, v in meta.items() if k != "rng"}), "incomplete")]:
        meta_path.write_text(broken)
        with pytest.raises(CheckpointError, match=match) as raised:
            read_training_state(tmp_path / "p")
        assert str(meta_path) in str(raised.value) and "\n" not in str(raised.value)
    meta_path.write_text(json.dumps(meta))
    (tmp_path / "p" / "training-state.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(CheckpointError, match="training-state.safetensors"):
        read_training_state(tmp_path / "p")


def test_find_resumable_takes_the_out_path_or_the_partial(tmp_path):
    out = tmp_path / "m"
    with pytest.raises(CheckpointError, match="no interrupted run to resume"):
        find_resumable(out)
    partial = partial_path(out)
    assert partial.name == "m.partial"
    _interrupt_a_classifier(partial, at=2)
    assert find_resumable(out) == partial == find_resumable(partial)
