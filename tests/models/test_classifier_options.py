"""RNNClassifier's accuracy levers: word dropout, pretrained word vectors, frozen embeddings."""

from __future__ import annotations

import numpy as np
import pytest

import unrolled.models.classifier as classifier_module
from unrolled.models.classifier import RNNClassifier
from unrolled.text.vocab import Vocab

from .test_classifier import LABELS, SMALL, TEXTS


def _capture_training_ids(monkeypatch) -> list[tuple[np.ndarray, np.ndarray]]:
    seen = []
    forward = classifier_module.classifier_forward

    def spy(params, config, ids, *, mask=None, training=False, **kwargs):
        if training:
            seen.append((ids.copy(), mask.copy()))
        return forward(params, config, ids, mask=mask, training=training, **kwargs)

    monkeypatch.setattr(classifier_module, "classifier_forward", spy)
    return seen


def test_word_dropout_replaces_real_tokens_by_unk_at_its_rate_and_never_padding(monkeypatch):
    seen = _capture_training_ids(monkeypatch)
    long_texts = [" ".join(["great", "movie", "so", "good"] * (1 + i % 5)) for i in range(40)]
    RNNClassifier(**{**SMALL, "epochs": 20}, word_dropout=0.3).fit(long_texts, ["a", "b"] * 20)
    ids = np.concatenate([i[m] for i, m in seen])
    padding = np.concatenate([i[~m] for i, m in seen])
    assert abs(np.mean(ids == Vocab.UNK_ID) - 0.3) < 0.02  # ~20,000 real tokens: 3 sigma is ~0.01
    assert np.all(padding == Vocab.PAD_ID)


def test_without_word_dropout_no_token_becomes_unk(monkeypatch):
    seen = _capture_training_ids(monkeypatch)
    RNNClassifier(**{**SMALL, "epochs": 2}).fit(TEXTS, LABELS)
    assert not any(np.any(ids == Vocab.UNK_ID) for ids, _ in seen)


def test_word_dropout_still_learns_and_is_deterministic():
    a = RNNClassifier(cell="gru", word_dropout=0.1, **SMALL).fit(TEXTS, LABELS)
    b = RNNClassifier(cell="gru", word_dropout=0.1, **SMALL).fit(TEXTS, LABELS)
    assert a.score(TEXTS, LABELS) == 1.0
    assert all(np.array_equal(a.params_[k], b.params_[k]) for k in a.params_)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_word_dropout_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="word_dropout"):
        RNNClassifier(word_dropout=bad, **SMALL).fit(TEXTS, LABELS)


def _vectors_file(tmp_path, dim: int = 8) -> tuple[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    words = ["love", "great", "hate", "awful", "Movie", "unused"]
    vectors = {w: rng.standard_normal(dim).round(4).astype(np.float32) for w in words}
    path = tmp_path / "vectors.txt"
    path.write_text("".join(f"{w} {' '.join(str(v) for v in vec)}\n" for w, vec in vectors.items()))
    return str(path), vectors


def test_pretrained_vectors_initialise_their_rows_and_freezing_keeps_them(tmp_path):
    path, vectors = _vectors_file(tmp_path)
    model = RNNClassifier(embeddings=path, freeze_embeddings=True, **SMALL).fit(TEXTS, LABELS)
    table = model.params_["embedding.weight"]
    for word in ("love", "great", "hate", "awful"):
        np.testing.assert_array_equal(table[model.vocab_.id_of(word)], vectors[word])
    np.testing.assert_array_equal(table[model.vocab_.id_of("movie")], vectors["Movie"])  # case fallback
    assert np.all(table[Vocab.PAD_ID] == 0)
    coverage = model.embedding_coverage_
    assert (coverage.found, coverage.total) == (5, len(model.vocab_) - 2)
    assert model.score(TEXTS, LABELS) == 1.0  # the rest of the network learned around fixed vectors


def test_frozen_embeddings_do_not_move_but_fine_tuned_ones_do(tmp_path, monkeypatch):
    path, _ = _vectors_file(tmp_path)
    forward = classifier_module.classifier_forward
    tables_at_start = []

    def record_first(params, config, ids, **kwargs):
        if kwargs.get("training") and len(tables_at_start) == runs[0]:
            tables_at_start.append(params["embedding.weight"].copy())
        return forward(params, config, ids, **kwargs)

    runs = [0]
    monkeypatch.setattr(classifier_module, "classifier_forward", record_first)
    frozen = RNNClassifier(embeddings=path, freeze_embeddings=True, **{**SMALL, "epochs": 3}).fit(TEXTS, LABELS)
    runs[0] = 1
    tuned = RNNClassifier(embeddings=path, **{**SMALL, "epochs": 3}).fit(TEXTS, LABELS)
    assert len(tables_at_start) == 2
    np.testing.assert_array_equal(tables_at_start[0], tables_at_start[1])  # same seed, same file: same start
    np.testing.assert_array_equal(frozen.params_["embedding.weight"], tables_at_start[0])
    assert not np.array_equal(tuned.params_["embedding.weight"], tables_at_start[1])


def test_embedding_dimension_mismatch_is_one_clear_error(tmp_path):
    path, _ = _vectors_file(tmp_path, dim=6)
    with pytest.raises(ValueError, match="dimension 6.*embedding_dim is 8"):
        RNNClassifier(embeddings=path, **SMALL).fit(TEXTS, LABELS)


def test_freezing_without_vectors_is_refused():
    with pytest.raises(ValueError, match="freeze_embeddings"):
        RNNClassifier(freeze_embeddings=True, **SMALL).fit(TEXTS, LABELS)


def test_coverage_is_saved_with_the_checkpoint_and_the_file_is_not_needed_to_load(tmp_path):
    path, _ = _vectors_file(tmp_path)
    model = RNNClassifier(embeddings=path, **{**SMALL, "epochs": 2}).fit(TEXTS, LABELS)
    model.save(tmp_path / "ckpt")
    (tmp_path / "vectors.txt").unlink()
    loaded = RNNClassifier.load(tmp_path / "ckpt")
    assert loaded.config_["training"]["embedding_coverage"] == model.embedding_coverage_.to_json()
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), model.predict_proba(TEXTS))
