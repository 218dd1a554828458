"""RNNLanguageModel (models/language_model.py): it learns a repetitive text, the initial loss is ln V, the state
is carried across truncated-BPTT windows (in order, reset each epoch), determinism, streaming generation,
the word level, checkpoints, and the errors a user can run into."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import unrolled.models.language_model as language_model
from unrolled.checkpoint import CheckpointError
from unrolled.data.stream import stream_windows
from unrolled.models.language_model import NotFittedError, RNNLanguageModel

ABC = "abc" * 1000
SMALL = dict(embedding_dim=8, hidden_size=16, bptt=16, batch_size=8, lr=1e-2)


@pytest.fixture(scope="module")
def abc_model() -> RNNLanguageModel:
    return RNNLanguageModel(epochs=3, **SMALL).fit(ABC)


def test_learns_a_repetitive_text(abc_model):
    ln_v = math.log(len(abc_model.vocab_))
    assert abc_model.vocab_.tokens == ("<pad>", "<unk>", "a", "b", "c")
    assert abc_model.val_loss_ < 0.1 * ln_v, abc_model.val_loss_
    assert "".join(abc_model.generate("ab", 9, temperature=0)) == "cabcabcab"
    assert abc_model.bits_per_char == pytest.approx(abc_model.val_loss_ / math.log(2))
    assert abc_model.evaluate_loss(ABC[-300:]) == pytest.approx(abc_model.val_loss_, rel=1e-5)  # the last 10%


def test_initial_loss_is_about_ln_v_and_max_steps_0_trains_nothing():
    model = RNNLanguageModel(max_steps=0, **SMALL).fit(ABC)
    assert model.history_.epochs == []
    assert model.val_loss_ == pytest.approx(math.log(5), abs=0.05)
    assert model.evaluate_loss(ABC[:500]) == pytest.approx(math.log(5), abs=0.05)


def test_max_steps_stops_after_that_many_optimizer_steps():
    steps = []

    class Count:
        def on_batch_end(self, step, loss):
            steps.append(step)

    model = RNNLanguageModel(epochs=5, max_steps=13, **{**SMALL, "bptt": 64}).fit(ABC, callbacks=[Count()])
    assert len(stream_windows(np.zeros(2700, np.int64), 8, 64)) == 6  # so 13 steps = 6 + 6 + 1
    assert steps == list(range(1, 14))
    assert len(model.history_.epochs) == 3


def test_windows_are_visited_in_order_with_the_state_carried_and_reset_each_epoch(monkeypatch):
    seen = []  # (x, state0) of every training forward pass
    real_forward = language_model.lm_forward

    def recording_forward(params, config, ids, *, state0=None, training=False, **kwargs):
        logits, loss, state, cache = real_forward(params, config, ids, state0=state0, training=training, **kwargs)
        if training:
            seen.append((ids, state0, state))
        return logits, loss, state, cache

    monkeypatch.setattr(language_model, "lm_forward", recording_forward)
    model = RNNLanguageModel(epochs=2, **{**SMALL, "bptt": 128}).fit(ABC)
    windows = stream_windows(model._ids(list(ABC[:2700])), 8, 128)
    assert len(seen) == 2 * len(windows)
    for epoch in range(2):
        passes = seen[epoch * len(windows) : (epoch + 1) * len(windows)]
        assert passes[0][1] is None  # zeros at each epoch's start
        for k, ((ids, state0, _), (x, _)) in enumerate(zip(passes, windows)):
            np.testing.assert_array_equal(ids, x)  # in order, never shuffled
            if k:
                assert state0 is passes[k - 1][2]  # the previous window's final state


def test_with_bptt_1_only_the_carried_state_can_remember_the_previous_character():
    # In "aab" repeated, what follows an "a" depends on the character before it. A window of one step sees
    # only the current character, whose best loss is the conditional entropy (2/3) ln 2 ≈ 0.46 nats.
    model = RNNLanguageModel(epochs=2, **{**SMALL, "bptt": 1, "batch_size": 16}).fit("aab" * 1000)
    assert model.val_loss_ < 0.25 * (2 / 3) * math.log(2), model.val_loss_
    assert "".join(model.generate("aab", 9, temperature=0)) == "aabaabaab"


def test_same_seed_gives_identical_weights_and_samples_and_another_seed_does_not():
    a = RNNLanguageModel(random_state=3, max_steps=5, **SMALL).fit(ABC)
    b = RNNLanguageModel(random_state=3, max_steps=5, **SMALL).fit(ABC)
    c = RNNLanguageModel(random_state=4, max_steps=5, **SMALL).fit(ABC)
    for name, value in a.params_.items():
        np.testing.assert_array_equal(value, b.params_[name])
    assert not np.array_equal(a.params_["head.weight"], c.params_["head.weight"])
    sample = list(a.generate("a", 50, seed=1))
    assert sample == list(b.generate("a", 50, seed=1))
    assert sample != list(a.generate("a", 50, seed=2))


def test_generate_streams_tokens_and_checks_its_arguments_at_the_call(abc_model):
    stream = abc_model.generate("abc", 5, temperature=0.8, top_k=2, seed=0)
    assert next(stream) in {"a", "b", "c"}
    assert len(list(stream)) == 4
    assert list(abc_model.generate("abc", 0)) == []
    for kwargs, name in [(dict(length=-1), "length"), (dict(length=1_000_001), "length"),
                         (dict(length=2.0), "length"), (dict(temperature=-1.0), "temperature"),
                         (dict(top_k=0), "top_k"), (dict(top_p=1.5), "top_p")]:
        with pytest.raises(ValueError, match=f"^{name}:"):
            abc_model.generate("a", **{"length": 5, **kwargs})  # raised before any token is asked for
    with pytest.raises(ValueError, match="1,000,000"):
        abc_model.generate("a", 1_000_001)


def test_an_empty_prompt_starts_with_the_training_texts_first_token(abc_model):
    assert abc_model.start_token_ == "a"
    assert "".join(abc_model.generate("", 7, temperature=0)) == "abcabca"
    assert list(abc_model.generate("", 0)) == []


def test_characters_outside_the_vocabulary_are_read_as_unk(abc_model):
    assert len("".join(abc_model.generate("xyz€", 10, temperature=0))) == 10
    assert math.isfinite(abc_model.evaluate_loss("abcxabc"))


def test_the_vocabulary_comes_from_the_training_part_only():
    model = RNNLanguageModel(max_steps=0, **SMALL).fit("ab" * 450 + "z" * 100)  # the last 10% is the z's
    assert "z" not in model.vocab_
    assert model.val_loss_ == pytest.approx(math.log(len(model.vocab_)), abs=0.05)  # <unk> still scores


def test_word_level():
    text = "the cat sat on the mat . the dog sat on the log . " * 60
    model = RNNLanguageModel(level="word", epochs=8, **{**SMALL, "bptt": 8, "batch_size": 4}).fit(text)
    assert set(model.vocab_.tokens[2:]) == {"the", "cat", "sat", "on", "mat", ".", "dog", "log"}
    assert model.val_loss_ < 0.5 * math.log(len(model.vocab_)), model.val_loss_
    pieces = list(model.generate("The cat", 4, temperature=0))  # the prompt is lower-cased, as in training
    assert pieces == [" sat", " on", " the", " mat"]
    assert "".join(model.generate("", 3, temperature=0)).startswith("the ")
    with pytest.raises(ValueError, match="bits_per_char: only for level='char'"):
        model.bits_per_char


def test_min_freq_sends_rare_words_to_unk():
    text = "a b a b a b rare " * 10 + "a b " * 100
    model = RNNLanguageModel(level="word", min_freq=20, max_steps=0, **SMALL).fit(text)
    assert model.vocab_.tokens == ("<pad>", "<unk>", "a", "b")


def test_checkpoint_round_trip_generates_identically(abc_model, tmp_path):
    abc_model.save(tmp_path / "lm", extra={"note": "test"})
    loaded = RNNLanguageModel.load(tmp_path / "lm")
    assert list(loaded.generate("ab", 40, seed=5)) == list(abc_model.generate("ab", 40, seed=5))
    assert loaded.get_params() == abc_model.get_params()
    assert loaded.val_loss_ == abc_model.val_loss_ and loaded.config_["note"] == "test"
    vocab = json.loads((tmp_path / "lm" / "vocab.json").read_text())
    assert vocab["tokens"] == ["<pad>", "<unk>", "a", "b", "c"]
    config = json.loads((tmp_path / "lm" / "config.json").read_text())
    assert config["kind"] == "language_model"


def test_loading_another_kind_of_checkpoint_fails(tmp_path):
    from unrolled.models.forecaster import RNNForecaster

    RNNForecaster(window=4, horizon=2, hidden_size=4, epochs=1).fit(np.arange(20.0)).save(tmp_path / "f")
    with pytest.raises(CheckpointError, match="forecaster"):
        RNNLanguageModel.load(tmp_path / "f")


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("", {}, "^text: empty$"),
        (b"abc" * 100, {}, "^text: expected a str"),
        ("abc\x00def" * 100, {}, "^text: contains a NUL character at position 3"),
        ("abcabc", {}, "^text: the training part has 6 char tokens, too short for batch_size 8"),
        ("ab" * 20, dict(validation_fraction=0.01), "^text: validation_fraction 0.01 of 40 tokens leaves 0"),
        (ABC, dict(level="byte"), "^level:"),
        (ABC, dict(bptt=0), "^bptt:"),
        (ABC, dict(validation_fraction=1.0), "^validation_fraction:"),
        (ABC, dict(max_steps=-1), "^max_steps:"),
        (ABC, dict(epochs=0), "^epochs:"),
        (ABC, dict(tie_weights=True), "^tie_weights:"),
    ],
)
def test_input_errors(text, kwargs, message):
    with pytest.raises(ValueError, match=message):
        RNNLanguageModel(**{**SMALL, **kwargs}).fit(text)


def test_not_fitted_and_bad_evaluation_text():
    model = RNNLanguageModel()
    with pytest.raises(NotFittedError, match="not fitted"):
        model.generate("a")
    with pytest.raises(NotFittedError):
        model.evaluate_loss("abc")
    fitted = RNNLanguageModel(max_steps=0, **SMALL).fit(ABC)
    with pytest.raises(ValueError, match="^text: 1 char token"):
        fitted.evaluate_loss("a")
    with pytest.raises(ValueError, match="^text: empty"):
        fitted.evaluate_loss("")


def test_without_validation_the_last_weights_are_kept_and_there_is_no_val_loss():
    model = RNNLanguageModel(validation_fraction=0.0, max_steps=2, **SMALL).fit(ABC)
    assert model.val_loss_ is None and len(model.history_.epochs) == 1
    with pytest.raises(ValueError, match="no validation loss"):
        model.bits_per_char


def test_sklearn_protocol():
    model = RNNLanguageModel(level="word", bptt=32)
    assert model.get_params()["bptt"] == 32
    assert repr(model) == "RNNLanguageModel(level='word', bptt=32)"
    assert model.set_params(bptt=8).bptt == 8
