"""RNNTranslator: it learns a small word-for-word language pair with reordering, saves and loads as an
ordinary checkpoint, and rejects bad input with one-line errors."""

import json

import numpy as np
import pytest

import unrolled
from unrolled.checkpoint import CheckpointError
from unrolled.models.translator import RNNTranslator, detokenize

WORDS = {"eins": "one", "zwei": "two", "drei": "three", "vier": "four", "fünf": "five", "sechs": "six",
         "rot": "red", "blau": "blue", "grün": "green"}
NUMBERS, COLOURS = list(WORDS)[:6], list(WORDS)[6:]


def make_pairs(n, seed=0):
    """'<number> <colour> ...' -> '<colour> <number> ...': each word translated, each pair swapped."""
    rng = np.random.default_rng(seed)
    sources, targets = [], []
    for _ in range(n):
        pairs = [(rng.choice(NUMBERS), rng.choice(COLOURS)) for _ in range(rng.integers(1, 3))]
        sources.append(" ".join(f"{a} {b}" for a, b in pairs) + " .")
        targets.append(" ".join(f"{WORDS[b]} {WORDS[a]}" for a, b in pairs) + " .")
    return sources, targets


SMALL = dict(embedding_dim=16, hidden_size=24, dropout=0.0, batch_size=16, lr=1e-2, label_smoothing=0.0,
             min_freq=1)


@pytest.fixture(scope="module")
def fitted():
    sources, targets = make_pairs(240)
    dev = make_pairs(40, seed=1)
    return RNNTranslator(**SMALL, epochs=12).fit(sources, targets, validation=dev), dev


def test_learns_the_pair_and_keeps_the_best_dev_epoch(fitted):
    model, (dev_sources, dev_targets) = fitted
    assert model.history_.epochs[-1].train_loss < model.history_.epochs[0].train_loss / 4
    assert model.dev_bleu_ == max(e.dev_metric for e in model.history_.epochs) >= 80
    assert model.score(dev_sources, dev_targets) >= 80
    assert model.translate(["zwei rot ."], beam_size=3) == ["Red two."]


def test_save_load_round_trip_translates_the_same(fitted, tmp_path):
    model, (dev_sources, _) = fitted
    model.save(tmp_path / "m")
    loaded = unrolled.load(tmp_path / "m")
    assert isinstance(loaded, RNNTranslator)
    assert loaded.translate(dev_sources[:10]) == model.translate(dev_sources[:10])
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["kind"] == "translator" and config["dev_bleu"] == model.dev_bleu_
    vocab = json.loads((tmp_path / "m" / "vocab.json").read_text())
    assert set(vocab) == {"source", "target"}


def test_a_damaged_vocabulary_is_one_line_naming_the_file(fitted, tmp_path):
    model, _ = fitted
    model.save(tmp_path / "m")
    (tmp_path / "m" / "vocab.json").write_text(json.dumps({"source": {"tokens": ["<pad>", "<unk>"]}}))
    with pytest.raises(ValueError, match=r"vocab\.json: expected an object with the keys source and target"):
        RNNTranslator.load(tmp_path / "m")
    with pytest.raises(CheckpointError):
        RNNTranslator.load(tmp_path / "missing")


def test_unknown_words_are_copied_from_the_attended_source_position(fitted):
    model, _ = fitted
    out = model.translate_tokens(["zwei zebra ."], beam_size=1)[0]
    assert "<unk>" not in out
    kept = model.translate_tokens(["zwei zebra ."], beam_size=1, replace_unk=False)[0]
    assert [w for w in kept if w not in model.vocab_.target] == []


def test_explain_gives_probabilities_alternatives_and_attention(fitted):
    model, _ = fitted
    explained = model.explain("drei blau .", top_k=3)
    steps = len(explained.tokens) + 1  # and </s>
    assert explained.attention.shape == (steps, 3)
    np.testing.assert_allclose(explained.attention.sum(axis=1), 1.0, rtol=1e-5)
    assert len(explained.probabilities) == steps and all(0 < p <= 1 for p in explained.probabilities)
    assert all(len(a) == 3 and a[0][1] >= a[1][1] >= a[2][1] for a in explained.alternatives)
    assert explained.text == detokenize(explained.tokens)


def test_same_seed_same_weights():
    sources, targets = make_pairs(48)
    a = RNNTranslator(**SMALL, epochs=1).fit(sources, targets)
    b = RNNTranslator(**SMALL, epochs=1).fit(sources, targets)
    assert all(np.array_equal(a.params_[k], b.params_[k]) for k in a.params_)


def test_detokenize():
    assert detokenize(["a", "man", "'s", "dog", ",", "running", "(", "fast", ")", "."]) == "A man's dog, running (fast)."


def test_bad_input_raises_one_line_errors():
    sources, targets = make_pairs(8)
    with pytest.raises(ValueError, match=r"^targets: expected one per source \(8\), got 7"):
        RNNTranslator(**SMALL).fit(sources, targets[:7])
    with pytest.raises(ValueError, match=r"^sources\[2\]: no tokens"):
        RNNTranslator(**SMALL).fit(sources[:2] + ["  "] + sources[3:], targets)
    with pytest.raises(ValueError, match=r"^sources: expected a list of str, got str"):
        RNNTranslator(**SMALL).fit("eins", "one")
    with pytest.raises(ValueError, match="^label_smoothing:"):
        RNNTranslator(**dict(SMALL, label_smoothing=2.0)).fit(sources, targets)
    with pytest.raises(ValueError, match="^cell:"):
        RNNTranslator(**dict(SMALL, cell="cnn")).fit(sources, targets)
    with pytest.raises(unrolled.models._estimator.NotFittedError):
        RNNTranslator().translate(["eins"])
    model = RNNTranslator(**SMALL, max_steps=0).fit(sources, targets)
    with pytest.raises(ValueError, match="^beam_size:"):
        model.translate(["eins"], beam_size=0)
    with pytest.raises(ValueError, match="^max_len_a:"):
        model.translate(["eins"], max_len_a=-1)


def test_subwords_train_save_and_load(tmp_path):
    pytest.importorskip("sentencepiece")
    sources, targets = make_pairs(240)
    model = RNNTranslator(**SMALL, subwords=39, epochs=20).fit(sources, targets)  # 39: all this corpus allows
    assert model.vocab_.sentencepiece is not None and model.vocab_.source is model.vocab_.target
    assert len(model.vocab_.target) == 39 and model.vocab_.target.tokens[:4] == ("<pad>", "<unk>", "<s>", "</s>")
    out = model.translate_tokens(["zwei rot ."], beam_size=3)[0]
    assert set(out) <= set(WORDS.values()) | {"."} and "red" in out  # pieces joined back into words
    assert model.history_.epochs[-1].train_loss < model.history_.epochs[0].train_loss / 4
    explained = model.explain("zwei rot .")
    assert explained.attention.shape == (len(explained.tokens) + 1, len(explained.source_tokens))
    model.save(tmp_path / "m")
    loaded = unrolled.load(tmp_path / "m")
    assert loaded.translate(sources[:8]) == model.translate(sources[:8])
    with pytest.raises(ValueError, match="^subwords: sentencepiece could not build 100000 pieces"):
        RNNTranslator(**SMALL, subwords=100000).fit(sources, targets)
    vocab = json.loads((tmp_path / "m" / "vocab.json").read_text())
    vocab["sentencepiece"] = "not base64!"
    (tmp_path / "m" / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(ValueError, match=r"vocab\.json: sentencepiece: expected the base64 of a sentencepiece model"):
        unrolled.load(tmp_path / "m")


def test_evaluate_translates_once_and_scores_both_ways(fitted):
    model, (dev_sources, dev_targets) = fitted
    scores = model.evaluate(dev_sources, dev_targets, beam_size=2)
    assert scores.translations == model.translate(dev_sources, beam_size=2)
    assert scores.bleu == model.score_bleu(dev_sources, dev_targets, beam_size=2)
    sacrebleu = pytest.importorskip("sacrebleu")
    expected = sacrebleu.corpus_bleu(scores.translations, [dev_targets], lowercase=True).score
    assert scores.sacrebleu == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"^references: expected one per source \(40\), got 39"):
        model.evaluate(dev_sources, dev_targets[:39])
