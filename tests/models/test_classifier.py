"""RNNClassifier (models/classifier.py): learning, determinism, checkpoints, scikit-learn protocol."""

from __future__ import annotations

import numpy as np
import pytest

from unrolled.models.classifier import NotFittedError, RNNClassifier
from unrolled.nn import fused

POSITIVE = ["i love this", "great movie", "what a joy", "so good", "a wonderful film", "truly great"]
NEGATIVE = ["i hate this", "awful movie", "what a bore", "so bad", "a dreadful film", "truly awful"]
TEXTS = POSITIVE + NEGATIVE
LABELS = ["pos"] * len(POSITIVE) + ["neg"] * len(NEGATIVE)
SMALL = dict(embedding_dim=8, hidden_size=12, batch_size=4, lr=0.02, epochs=25, patience=None)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_learns_a_tiny_separable_set_perfectly(cell):
    model = RNNClassifier(cell=cell, **SMALL).fit(TEXTS, LABELS)
    assert model.score(TEXTS, LABELS) == 1.0
    assert list(model.classes_) == ["neg", "pos"]
    proba = model.predict_proba(["i love this"])
    assert proba.shape == (1, 2) and proba.sum() == pytest.approx(1.0)
    assert model.predict(["so good", "so bad"]).tolist() == ["pos", "neg"]


def test_two_layer_bidirectional_with_dropout_learns_too():
    model = RNNClassifier(cell="lstm", num_layers=2, bidirectional=True, dropout=0.2, **SMALL)
    assert model.fit(TEXTS, LABELS).score(TEXTS, LABELS) == 1.0


def test_same_seed_gives_identical_weights_and_another_seed_does_not():
    a = RNNClassifier(cell="gru", random_state=3, **{**SMALL, "epochs": 3}).fit(TEXTS, LABELS)
    b = RNNClassifier(cell="gru", random_state=3, **{**SMALL, "epochs": 3}).fit(TEXTS, LABELS)
    c = RNNClassifier(cell="gru", random_state=4, **{**SMALL, "epochs": 3}).fit(TEXTS, LABELS)
    assert all(np.array_equal(a.params_[k], b.params_[k]) for k in a.params_)
    assert not np.array_equal(a.params_["head.weight"], c.params_["head.weight"])


def test_integer_labels_come_back_as_integers():
    y = [1] * len(POSITIVE) + [0] * len(NEGATIVE)
    model = RNNClassifier(**SMALL).fit(TEXTS, y)
    assert model.classes_.tolist() == [0, 1]
    assert model.predict(["i love this"]).tolist() == [1]


def test_early_stopping_keeps_the_best_dev_epoch():
    model = RNNClassifier(cell="gru", **{**SMALL, "epochs": 30, "patience": 2, "lr": 0.05})
    model.fit(TEXTS, LABELS, validation=(TEXTS, LABELS))
    history = model.history_
    assert history.stopped_early
    assert len(history.epochs) == history.best_epoch + 2
    assert model.score(TEXTS, LABELS) == history.best_metric


def test_checkpoint_round_trip_predicts_identically(tmp_path):
    model = RNNClassifier(cell="lstm", bidirectional=True, **SMALL).fit(TEXTS, LABELS)
    model.save(tmp_path / "ckpt")
    loaded = RNNClassifier.load(tmp_path / "ckpt")
    probe = TEXTS + ["never seen words here", "love"]
    np.testing.assert_array_equal(loaded.predict_proba(probe), model.predict_proba(probe))
    assert loaded.get_params() == model.get_params()
    assert loaded.classes_.tolist() == model.classes_.tolist()


def test_checkpoint_loads_into_torch_modules(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    model = RNNClassifier(cell="gru", num_layers=2, **{**SMALL, "epochs": 1}).fit(TEXTS, LABELS)
    model.save(tmp_path / "ckpt")
    tensors = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    config = model.net_config_
    module = torch.nn.ModuleDict({
        "embedding": torch.nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=0),
        "rnn": torch.nn.GRU(config.embedding_dim, config.hidden_size, num_layers=2, batch_first=True),
        "head": torch.nn.Linear(config.hidden_size, 2),
    })
    module.load_state_dict(tensors)  # strict: same names and shapes
    ids = np.array([[3, 5, 2], [4, 1, 0]])
    with torch.no_grad():
        out, _ = module["rnn"](module["embedding"](torch.from_numpy(ids)))
        last = torch.stack([out[0, 2], out[1, 1]])  # each sequence's own last real step
        logits = module["head"](last).numpy()
    expected = model._proba_of_ids([[3, 5, 2], [4, 1]])
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), expected, rtol=1e-5)


def test_labels_are_read_stripped_and_one_class_is_refused():
    model = RNNClassifier(**{**SMALL, "epochs": 2}).fit(TEXTS, [f" {y} " for y in LABELS])
    assert list(model.classes_) == [" neg ", " pos "]  # the caller's values come back as given
    with pytest.raises(ValueError, match="only one class"):
        RNNClassifier(**SMALL).fit(TEXTS, ["pos"] * len(TEXTS))


def test_unfitted_model_and_bad_arguments():
    with pytest.raises(NotFittedError, match="not fitted"):
        RNNClassifier().predict(["x"])
    with pytest.raises(ValueError, match="single string"):
        RNNClassifier(**SMALL).fit("i love this", ["pos"])
    with pytest.raises(ValueError, match=r"X\[1\]: expected a string"):
        RNNClassifier(**SMALL).fit(["a", 3], ["pos", "neg"])
    with pytest.raises(ValueError, match="y: expected 2 labels"):
        RNNClassifier(**SMALL).fit(["a", "b"], ["pos"])
    with pytest.raises(ValueError, match="cell: expected one of"):
        RNNClassifier(cell="transformer", **SMALL).fit(TEXTS, LABELS)
    with pytest.raises(ValueError, match="not a parameter of RNNClassifier"):
        RNNClassifier().set_params(hidden=3)


def test_scikit_learn_clone_cross_val_score_and_pipeline():
    pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    estimator = RNNClassifier(cell="gru", **SMALL)
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params() and copy is not estimator
    texts, labels = TEXTS * 2, LABELS * 2
    scores = cross_val_score(estimator, texts, labels, cv=3)
    assert scores.shape == (3,) and np.all(scores >= 0.75)
    pipeline = Pipeline([("lower", FunctionTransformer(lambda xs: [x.upper() for x in xs])),
                         ("rnn", RNNClassifier(cell="rnn", lowercase=False, **SMALL))])
    pipeline.fit(texts, labels)
    assert pipeline.score(texts, labels) == 1.0


def test_a_fitted_classifier_pickles():
    """(Checkpoints are safetensors + JSON; pickling is for multiprocessing and the like.)"""
    import pickle

    model = RNNClassifier(cell="lstm", hidden_size=4, embedding_dim=4, epochs=1).fit(["a b", "b c"], ["x", "y"])
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(["a c"]), model.predict_proba(["a c"]))


needs_fused = pytest.mark.skipif(not fused.ACTIVE, reason="the C extension unrolled.nn._fused is not built")


@needs_fused
def test_predict_keeps_projection_tables_for_its_arrays_and_never_reads_a_stale_row(monkeypatch):
    """predict keeps each word's first-layer projection (nn/projection_table.py) for the arrays in params_: the
    same probabilities as without, the arrays read-only meanwhile, new tables for new arrays; a pickled copy
    leaves them behind."""
    import pickle

    monkeypatch.setattr(fused, "PROJECT_ROWS_MAX", 32)  # the time loop's few-row product in C, as on AVX-512
    model = RNNClassifier(cell="gru", bidirectional=True, **{**SMALL, "epochs": 3}).fit(TEXTS, LABELS)
    assert model.params_["embedding.weight"].flags.writeable  # nothing kept before a prediction
    with_tables = model.predict_proba(TEXTS[:3])
    tables = model._tables
    assert len(tables) == 2 and tables[0].words > 0

    def without_tables():  # as where the build keeps none
        with monkeypatch.context() as m:
            m.setattr(model, "_projections", lambda: None)
            return model.predict_proba(TEXTS[:3])

    assert np.array_equal(without_tables(), with_tables)
    copied = pickle.loads(pickle.dumps(model))
    assert "_tables" not in copied.__dict__ and np.array_equal(copied.predict_proba(TEXTS[:3]), with_tables)
    with pytest.raises(ValueError, match="read-only"):
        model.params_["rnn.weight_ih_l0"] *= 0.5
    model.params_["rnn.weight_ih_l0"] = model.params_["rnn.weight_ih_l0"] * 0.5  # a new array: new tables
    changed = model.predict_proba(TEXTS[:3])
    assert model._tables[0] is not tables[0] and not np.array_equal(changed, with_tables)
    assert np.array_equal(without_tables(), changed)


@needs_fused
def test_a_prediction_no_table_would_serve_leaves_the_arrays_writable(monkeypatch):
    monkeypatch.setattr(fused, "PROJECT_ROWS_MAX", 32)
    model = RNNClassifier(cell="rnn", **{**SMALL, "epochs": 1}).fit(TEXTS, LABELS)
    model.predict([" ".join(TEXTS)])  # one text of 30 tokens: T·N ≤ 32, the tables serve it
    assert not model.params_["embedding.weight"].flags.writeable
    model.fit(TEXTS, LABELS)
    model.predict([" ".join(TEXTS * 2)])  # 60 tokens: the time loop projects with BLAS, no table is built
    assert model.params_["embedding.weight"].flags.writeable and model.__dict__.get("_tables") is None


@needs_fused
def test_predicting_while_training_keeps_no_tables(monkeypatch):
    """A callback may predict during fit (so does the validation each epoch): the optimizer goes on writing
    the arrays in place, so no table is kept and they stay writable."""
    monkeypatch.setattr(fused, "PROJECT_ROWS_MAX", 32)
    model = RNNClassifier(cell="lstm", **{**SMALL, "epochs": 3})
    seen = []

    class PredictEachEpoch:
        def on_epoch_end(self, result, params):
            seen.append(model.predict_proba(["i love this"]))

    model.fit(TEXTS, LABELS, validation=(TEXTS, LABELS), callbacks=[PredictEachEpoch()])
    assert len(seen) == 3 and not np.array_equal(seen[0], seen[-1])
    assert all(a.flags.writeable for a in model.params_.values())
    model.predict(["so good"])
    assert not model.params_["embedding.weight"].flags.writeable
    model.fit(TEXTS, LABELS)  # training again starts from new arrays
    assert model.params_["embedding.weight"].flags.writeable
