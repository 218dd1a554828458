"""Fine-tuning from a language model (models/transfer.py, RNNClassifier(init_from=…)): what carries over, what
is refused, discriminative learning rates and gradual unfreezing; the sampled softmax of the word-level
language model that pretrains it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.gradcheck import numerical_gradient, rel_error
from unrolled import RNNClassifier, RNNLanguageModel
from unrolled.models import transfer
from unrolled.models.lm_net import LMNetConfig, init_lm_params, lm_backward, lm_forward
from unrolled.nn.sampled_softmax import log_uniform_candidates
from unrolled.optim import Adam

CORPUS = ("the film was good and the acting was great . the plot was bad and the ending was awful . "
          "i loved the music but hated the script . ") * 30
TEXTS = ["the film was good", "the plot was bad", "great acting", "awful ending", "loved the music",
         "hated the script", "good and great", "bad and awful"] * 3
LABELS = ["1", "0", "1", "0", "1", "0", "1", "0"] * 3
SHAPE = dict(cell="gru", embedding_dim=6, hidden_size=8, num_layers=2)


@pytest.fixture(scope="module")
def word_lm(tmp_path_factory):
    """A small word-level language model, saved: (its directory, the model)."""
    model = RNNLanguageModel(level="word", bptt=8, batch_size=4, epochs=1, max_steps=10, random_state=0, **SHAPE)
    model.fit(CORPUS)
    path = tmp_path_factory.mktemp("lm") / "lm"
    model.save(path, extra={"data": {"train": {"path": "corpus.txt"}}, "command": "unrolled train --task lm …"})
    return path, model


def _classifier(path, **options):
    kw = dict(SHAPE, epochs=1, batch_size=4, lr=5e-3, random_state=1, init_from=str(path))
    kw.update(options)
    return RNNClassifier(**kw)


def test_vocabulary_embedding_and_recurrent_layers_carry_over_and_the_head_is_new(word_lm, tmp_path):
    path, lm = word_lm
    model = _classifier(path, gradual_unfreeze=True).fit(TEXTS, LABELS)  # epoch 1 trains only the head
    assert model.vocab_.tokens == lm.vocab_.tokens
    carried = [name for name in lm.params_ if not name.startswith("head.")]
    assert carried == ["embedding.weight", *(n for n in lm.params_ if n.startswith("rnn."))]
    for name in carried:
        expected = lm.params_[name].copy()
        if name == "embedding.weight":
            expected[0] = 0.0  # the padding row reads as nothing
        np.testing.assert_array_equal(model.params_[name], expected, err_msg=name)
    assert model.params_["head.weight"].shape == (2, 8)
    record = model.pretrained_
    assert record["path"] == str(path) and record["vocab_size"] == len(lm.vocab_)
    assert record["val_loss"] == lm.val_loss_ and record["command"] == "unrolled train --task lm …"
    assert record["data"] == {"train": {"path": "corpus.txt"}} and record["model"]["cell"] == "gru"
    model.save(tmp_path / "clf")
    saved = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert saved["training"]["pretrained_from"] == record
    assert RNNClassifier.load(tmp_path / "clf").predict(["good film"]).shape == (1,)


def test_without_unfreezing_every_tensor_trains(word_lm):
    path, lm = word_lm
    model = _classifier(path).fit(TEXTS, LABELS)
    for name in ("embedding.weight", "rnn.weight_hh_l0", "rnn.weight_hh_l1"):
        assert not np.array_equal(model.params_[name], lm.params_[name]), name


def test_gradual_unfreezing_adds_one_group_per_epoch(word_lm):
    path, lm = word_lm
    for epochs, moved in [(2, {"rnn.weight_hh_l1"}), (3, {"rnn.weight_hh_l1", "rnn.weight_hh_l0"}),
                          (4, {"rnn.weight_hh_l1", "rnn.weight_hh_l0", "embedding.weight"})]:
        model = _classifier(path, gradual_unfreeze=True, epochs=epochs, patience=None).fit(TEXTS, LABELS)
        for name in ("rnn.weight_hh_l1", "rnn.weight_hh_l0", "embedding.weight"):
            changed = not np.array_equal(model.params_[name][1:], lm.params_[name][1:])
            assert changed == (name in moved), (epochs, name)


def test_layer_groups_and_discriminative_scales():
    names = list(RNNClassifier(**SHAPE).fit(TEXTS, LABELS).params_)
    groups = transfer.layer_groups(names)
    assert groups[0] == ["head.weight", "head.bias"] and groups[-1] == ["embedding.weight"]
    assert all(name.endswith("_l1") for name in groups[1]) and all(name.endswith("_l0") for name in groups[2])
    assert sorted(sum(groups, [])) == sorted(names)
    scales = transfer.discriminative_lr_scales(groups, 2.0)
    assert scales["head.bias"] == 1.0 and scales["rnn.weight_ih_l1"] == 0.5
    assert scales["rnn.bias_hh_l0"] == 0.25 and scales["embedding.weight"] == 0.125
    assert transfer.trainable_in_epoch(groups, 1) == set(groups[0])
    assert transfer.trainable_in_epoch(groups, 9) == set(names)


def test_an_lr_scale_is_the_same_step_as_a_smaller_learning_rate():
    rng = np.random.default_rng(0)
    start = {"a": rng.standard_normal((3, 2)), "b": rng.standard_normal(4)}
    grads = [{"a": rng.standard_normal((3, 2)), "b": rng.standard_normal(4)} for _ in range(3)]
    scaled = {k: v.copy() for k, v in start.items()}
    plain = {k: v.copy() for k, v in start.items()}
    opt_scaled, opt_plain = Adam(scaled, lr=0.1), Adam(plain, lr=0.1)
    for g in grads:
        opt_scaled.step(g, lr_scales={"a": 0.25})
        opt_plain.step({"b": g["b"]})
    opt_quarter = Adam({"a": (a := start["a"].copy())}, lr=0.025)
    for g in grads:
        opt_quarter.step({"a": g["a"]})
    np.testing.assert_array_equal(scaled["a"], a)
    np.testing.assert_array_equal(scaled["b"], plain["b"])
    with pytest.raises(ValueError, match="lr_scales: unknown parameter key 'c'"):
        opt_scaled.step(grads[0], lr_scales={"c": 1.0})
    with pytest.raises(ValueError, match=r"lr_scales\['a'\]"):
        opt_scaled.step(grads[0], lr_scales={"a": -1.0})


def test_discriminative_rates_move_the_lower_layers_less(word_lm):
    path, lm = word_lm
    slow = _classifier(path, layer_lr_decay=100.0).fit(TEXTS, LABELS)
    even = _classifier(path).fit(TEXTS, LABELS)
    for name in ("rnn.weight_hh_l0", "embedding.weight"):
        assert (np.abs(slow.params_[name] - lm.params_[name])[1:].max()
                < 0.1 * np.abs(even.params_[name] - lm.params_[name])[1:].max()), name


@pytest.mark.parametrize("options, message", [
    (dict(cell="lstm"), r"init_from: .* another network than this classifier: cell 'lstm' \(the language model's: "
                        r"'gru'\)"),
    (dict(hidden_size=9, num_layers=1), r"hidden_size 9 \(the language model's: 8\); num_layers 1 \(the language "
                                        r"model's: 2\)"),
    (dict(bidirectional=True), "left-to-right language model and has no backward direction"),
    (dict(max_vocab=50), "max_vocab: the vocabulary is the language model's"),
    (dict(min_freq=2), "min_freq: the vocabulary is the language model's"),
    (dict(lowercase=False), "lowercase: a word-level language model reads lower-cased words"),
    (dict(embeddings="vectors.txt"), "embeddings: init_from already gives the word vectors"),
    (dict(layer_lr_decay=0.0), "layer_lr_decay: expected a positive number"),
    (dict(gradual_unfreeze="yes"), "gradual_unfreeze: expected a bool"),
])
def test_a_mismatch_is_refused_naming_both(word_lm, options, message):
    path, _ = word_lm
    with pytest.raises(ValueError, match=message):
        _classifier(path, **options).fit(TEXTS, LABELS)


def test_a_character_model_or_another_kind_is_refused(word_lm, tmp_path):
    char = RNNLanguageModel(level="char", max_steps=2, batch_size=2, bptt=4, **SHAPE).fit(CORPUS[:400])
    char.save(tmp_path / "char")
    with pytest.raises(ValueError, match="init_from: .*char.* is a char-level language model; a classifier reads "
                                         "words"):
        _classifier(tmp_path / "char").fit(TEXTS, LABELS)
    RNNClassifier(**SHAPE, epochs=1).fit(TEXTS, LABELS).save(tmp_path / "clf")
    with pytest.raises(ValueError, match="init_from: .*clf.* kind is 'classifier', but a 'language_model'"):
        _classifier(tmp_path / "clf").fit(TEXTS, LABELS)
    with pytest.raises(ValueError, match="init_from: .*missing: checkpoint directory not found"):
        _classifier(tmp_path / "missing").fit(TEXTS, LABELS)


def test_the_torch_engine_refuses_the_numpy_schedules(word_lm):
    pytest.importorskip("torch")
    path, _ = word_lm
    with pytest.raises(ValueError, match="NumPy engine's schedules"):
        _classifier(path, gradual_unfreeze=True).fit(TEXTS, LABELS, engine="torch")


# --- the sampled softmax of the language model ---------------------------------------------------------


@pytest.mark.parametrize("tied", [False, True])
def test_lm_gradients_with_the_sampled_softmax(tied):
    config = LMNetConfig(9, 5, 5, cell="lstm", dropout=0.2, tie_weights=tied)
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(v.shape) for k, v in init_lm_params(config, rng, dtype=np.float64).items()}
    ids, targets = rng.integers(1, 9, (2, 4)), rng.integers(1, 9, (2, 4))
    candidates = log_uniform_candidates(rng, 9, 4)

    def run():
        return lm_forward(params, config, ids, targets=targets, training=True, rng=np.random.default_rng(3),
                          candidates=candidates)

    logits, _, _, cache = run()
    assert logits is None
    grads, _ = lm_backward(cache)
    for name, value in params.items():
        grad = grads[name].to_dense() if hasattr(grads[name], "to_dense") else grads[name]
        assert rel_error(grad, numerical_gradient(lambda: run()[1], value)) <= 1e-7, name


def test_a_word_model_trains_with_the_sampled_softmax_and_scores_with_the_full_one():
    model = RNNLanguageModel(level="word", softmax="sampled", num_sampled=5, max_vocab=12, epochs=3, bptt=8,
                             batch_size=4, hidden_size=16, embedding_dim=8, lr=1e-2, random_state=0).fit(CORPUS)
    assert len(model.vocab_) == 12
    untrained = RNNLanguageModel(level="word", max_vocab=12, max_steps=0, bptt=8, batch_size=4, hidden_size=16,
                                 embedding_dim=8).fit(CORPUS)
    assert model.val_loss_ < 0.7 * untrained.val_loss_  # the full softmax's loss, on held-out text
    assert model.val_loss_ == pytest.approx(model.evaluate_loss(CORPUS[-len(CORPUS) // 10:]), abs=0.5)


@pytest.mark.parametrize("options, message", [
    (dict(softmax="hierarchical"), "softmax: expected one of full, sampled"),
    (dict(num_sampled=0), "num_sampled: expected a positive integer"),
    (dict(level="char", max_vocab=20), "max_vocab: only for level='word'"),
    (dict(max_vocab=2), "max_vocab: expected at least 3"),
])
def test_language_model_options_are_checked(options, message):
    kw = dict(level="word", max_steps=1, batch_size=2, bptt=4)
    kw.update(options)
    with pytest.raises(ValueError, match=message):
        RNNLanguageModel(**kw).fit(CORPUS)


def test_the_torch_engine_refuses_the_sampled_softmax():
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="softmax: 'sampled' is the NumPy engine's"):
        RNNLanguageModel(level="word", softmax="sampled", max_steps=1).fit(CORPUS, engine="torch")


def test_cut_vocabulary_keeps_the_most_frequent_tokens_and_their_rows(word_lm, tmp_path):
    path, lm = word_lm
    model = _classifier(path).fit(TEXTS, LABELS)
    size = 8
    cut = model.cut_vocabulary(size)
    assert cut.vocab_.tokens == lm.vocab_.tokens[:size] and cut.net_config_.vocab_size == size
    np.testing.assert_array_equal(cut.params_["embedding.weight"], model.params_["embedding.weight"][:size])
    assert all(cut.params_[name] is model.params_[name] for name in model.params_ if name != "embedding.weight")
    assert len(model.vocab_) == len(lm.vocab_)  # the original is untouched
    kept = " ".join(cut.vocab_.tokens[2:size])
    dropped = " ".join(lm.vocab_.tokens[size:size + 3])
    # a text of kept tokens: the same probabilities, bit for bit; a cut token reads as <unk>
    np.testing.assert_array_equal(cut.predict_proba([kept]), model.predict_proba([kept]))
    unknown = "qqq qqq qqq"  # no model knows it: three <unk>
    np.testing.assert_array_equal(cut.predict_proba([dropped]), model.predict_proba([unknown]))
    assert not np.array_equal(model.predict_proba([dropped]), model.predict_proba([unknown]))
    # saved and loaded: the cut and the language model it came from are recorded, and kept on a second save
    loaded = RNNClassifier.load(cut.save(tmp_path / "cut"))
    training = json.loads((tmp_path / "cut" / "config.json").read_text())["training"]
    assert training["vocabulary_cut"] == {"kept": size, "of": len(lm.vocab_)}
    assert training["pretrained_from"]["path"] == str(path)
    again = json.loads((loaded.save(tmp_path / "again") / "config.json").read_text())["training"]
    assert again["vocabulary_cut"] == training["vocabulary_cut"]
    assert again["pretrained_from"] == training["pretrained_from"]
    assert loaded.cut_vocabulary(5).vocabulary_cut_ == {"kept": 5, "of": len(lm.vocab_)}  # "of": the first
    for bad in (1, len(lm.vocab_) + 1, 2.5, True):
        with pytest.raises(ValueError, match=rf"^size: expected an integer from 2 to {len(lm.vocab_)} \(the "
                                             rf"vocabulary's size, <pad> and <unk> included\), got {bad!r}$"):
            model.cut_vocabulary(bad)


def test_a_saved_record_that_is_not_an_object_is_refused(word_lm, tmp_path):
    path, _ = word_lm
    saved = _classifier(path).fit(TEXTS, LABELS).save(tmp_path / "clf")
    config = json.loads((saved / "config.json").read_text())
    config["training"]["vocabulary_cut"] = [8, 30]
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"config\.json: invalid classifier config \(training\.vocabulary_cut: "
                                         r"expected an object, got \[8, 30\]\)$"):
        RNNClassifier.load(saved)


# --- a language model trained on from another (ULMFiT's second stage) -----------------------------------

TARGET_TEXT = "the acting was good but the ending was bad . i loved the plot . " * 20


def test_a_language_model_goes_on_training_from_another_on_a_new_text(word_lm, tmp_path):
    """init_from: the other model's vocabulary and weights are where training starts (max_steps 0: nothing
    trained, the same weights and validation loss); a few steps on the new text lower its loss there; the
    start is recorded, saved and loaded back; and a classifier fine-tunes from the result."""
    path, base = word_lm
    kw = dict(level="word", bptt=8, batch_size=4, random_state=3, init_from=str(path), **SHAPE)
    untouched = RNNLanguageModel(max_steps=0, **kw).fit(TARGET_TEXT)
    assert untouched.vocab_.tokens == base.vocab_.tokens
    for name, value in base.params_.items():
        np.testing.assert_array_equal(untouched.params_[name], value)
        assert untouched.params_[name] is not value  # copies: the other model is left as it was
    tuned = RNNLanguageModel(epochs=3, lr=5e-3, **kw).fit(TARGET_TEXT)
    assert tuned.vocab_.tokens == base.vocab_.tokens
    assert tuned.evaluate_loss(TARGET_TEXT) < base.evaluate_loss(TARGET_TEXT) - 0.1
    assert tuned.pretrained_["path"] == str(path) and tuned.pretrained_["vocab_size"] == len(base.vocab_)
    assert tuned.pretrained_["command"] == "unrolled train --task lm …"
    saved = tuned.save(tmp_path / "tuned")
    recorded = json.loads((saved / "config.json").read_text())["training"]["pretrained_from"]
    assert recorded == tuned.pretrained_ and RNNLanguageModel.load(saved).pretrained_ == recorded
    classifier = _classifier(saved).fit(TEXTS, LABELS)
    assert classifier.pretrained_["path"] == str(saved) and classifier.vocab_.tokens == base.vocab_.tokens
    assert RNNLanguageModel(level="word", max_steps=2, batch_size=4, bptt=8, **SHAPE).fit(CORPUS).pretrained_ is None


@pytest.mark.parametrize("options,message", [
    (dict(hidden_size=9), r"is another language model than this one: hidden_size 9 \(its own: 8\); give its options"),
    (dict(cell="lstm", tie_weights=False), r"cell 'lstm' \(its own: 'gru'\)"),
    (dict(level="char"), r"level 'char' \(its own: 'word'\)"),
    (dict(max_vocab=20), r"max_vocab 20 \(its own: None; the vocabulary is init_from's\)"),
    (dict(min_freq=3), r"min_freq 3 \(its own: 1; the vocabulary is init_from's\)"),
])
def test_a_language_model_of_another_shape_is_refused_naming_both(word_lm, options, message):
    path, _ = word_lm
    kw = dict(dict(level="word", bptt=8, batch_size=4, max_steps=1, init_from=str(path), **SHAPE), **options)
    with pytest.raises(ValueError, match="init_from: .*" + message):
        RNNLanguageModel(**kw).fit(TARGET_TEXT)


def test_init_from_a_missing_model_or_a_text_it_cannot_read_is_refused(word_lm, tmp_path):
    path, _ = word_lm
    kw = dict(level="word", bptt=2, batch_size=2, max_steps=1, **SHAPE)
    with pytest.raises(ValueError, match="init_from: .*missing: checkpoint directory not found"):
        RNNLanguageModel(init_from=str(tmp_path / "missing"), **kw).fit(TARGET_TEXT)
    with pytest.raises(ValueError, match="text: none of its words is in the vocabulary of init_from"):
        RNNLanguageModel(init_from=str(path), validation_fraction=0.0, **kw).fit("zebra quokka " * 10)


# --- a backward language model, and a bidirectional classifier started from both ------------------------

ONE_LAYER = dict(SHAPE, num_layers=1)


@pytest.fixture(scope="module")
def lm_pair(tmp_path_factory):
    """A one-layer forward word model and its backward twin trained from it with the embedding frozen, saved:
    (forward directory, backward directory, forward model, backward model)."""
    folder = tmp_path_factory.mktemp("pair")
    kw = dict(level="word", bptt=8, batch_size=4, epochs=1, max_steps=10, random_state=0, **ONE_LAYER)
    forward = RNNLanguageModel(**kw).fit(CORPUS)
    forward.save(folder / "fw")
    backward = RNNLanguageModel(**kw, direction="backward", init_from=str(folder / "fw"),
                                freeze_embeddings=True).fit(CORPUS)
    backward.save(folder / "bw")
    return folder / "fw", folder / "bw", forward, backward


def test_a_backward_model_trains_and_scores_on_the_text_read_right_to_left(word_lm):
    """direction "backward" is the forward model of the reversed token stream: from the same start (init_from,
    which fixes the vocabulary) and seed, the same weights and the same scores, to the bit."""
    from unrolled.text.tokenize import tokenize

    path, _ = word_lm
    tokens = tokenize(TARGET_TEXT)
    reversed_text = " ".join(tokens[::-1])
    assert tokenize(reversed_text) == tokens[::-1]
    kw = dict(level="word", bptt=8, batch_size=4, epochs=2, random_state=3, init_from=str(path),
              validation_fraction=0.0, **SHAPE)
    backward = RNNLanguageModel(direction="backward", **kw).fit(TARGET_TEXT)
    forward_of_reversed = RNNLanguageModel(**kw).fit(reversed_text)
    for name, value in forward_of_reversed.params_.items():
        np.testing.assert_array_equal(backward.params_[name], value, err_msg=name)
    assert backward.evaluate_loss(TARGET_TEXT) == forward_of_reversed.evaluate_loss(reversed_text)
    assert backward.evaluate_loss(TARGET_TEXT) != backward.evaluate_loss(reversed_text)


def test_the_held_out_part_is_the_texts_end_in_either_direction(word_lm):
    path, _ = word_lm
    kw = dict(level="word", bptt=8, batch_size=4, max_steps=0, init_from=str(path), validation_fraction=0.1,
              **SHAPE)
    backward = RNNLanguageModel(direction="backward", **kw).fit(TARGET_TEXT)
    from unrolled.text.tokenize import tokenize

    tokens = tokenize(TARGET_TEXT)
    held_out = tokens[len(tokens) - int(len(tokens) * 0.1):]
    assert backward.val_loss_ == pytest.approx(backward.evaluate_loss(" ".join(held_out)), rel=1e-6)


def test_freezing_keeps_the_embedding_and_the_direction_is_saved(lm_pair, tmp_path):
    fw_path, bw_path, forward, backward = lm_pair
    np.testing.assert_array_equal(backward.params_["embedding.weight"], forward.params_["embedding.weight"])
    assert not np.array_equal(backward.params_["rnn.weight_hh_l0"], forward.params_["rnn.weight_hh_l0"])
    loaded = RNNLanguageModel.load(bw_path)
    assert loaded.direction == "backward" and loaded.freeze_embeddings and loaded.pretrained_["path"] == str(fw_path)
    assert loaded.evaluate_loss(CORPUS[:300]) == backward.evaluate_loss(CORPUS[:300])
    config = json.loads((fw_path / "config.json").read_text())
    del config["estimator"]["direction"], config["estimator"]["freeze_embeddings"]  # as an older unrolled wrote
    (tmp_path / "old").mkdir()
    for name in ("model.safetensors", "vocab.json"):
        (tmp_path / "old" / name).write_bytes((fw_path / name).read_bytes())
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    assert RNNLanguageModel.load(tmp_path / "old").direction == "forward"


def test_a_backward_model_neither_generates_nor_explains(lm_pair):
    from unrolled.explain_lm import explain_lm

    _, _, _, backward = lm_pair
    with pytest.raises(ValueError, match=r"generate: this language model reads right to left \(direction "
                                         r"'backward'\): it predicts the token before"):
        backward.generate("the film")
    with pytest.raises(ValueError, match="explain: this language model reads right to left"):
        explain_lm(backward, "the film")


@pytest.mark.parametrize("options, message", [
    (dict(direction="sideways"), "direction: expected one of forward, backward, got 'sideways'"),
    (dict(freeze_embeddings=True), r"freeze_embeddings: there is no pretrained embedding to freeze \(set init_from\)"),
    (dict(freeze_embeddings="yes"), "freeze_embeddings: expected a bool"),
])
def test_direction_and_freezing_options_are_checked(options, message):
    with pytest.raises(ValueError, match=message):
        RNNLanguageModel(level="word", max_steps=1, batch_size=2, bptt=4, **options).fit(CORPUS)


def test_freezing_a_tied_embedding_is_refused(tmp_path):
    tied = dict(level="word", max_steps=1, batch_size=2, bptt=4, cell="lstm", embedding_dim=8, hidden_size=8,
                tie_weights=True)
    RNNLanguageModel(**tied).fit(CORPUS).save(tmp_path / "tied")
    with pytest.raises(ValueError, match="freeze_embeddings: with tie_weights the output layer is the embedding"):
        RNNLanguageModel(**tied, init_from=str(tmp_path / "tied"), freeze_embeddings=True).fit(CORPUS)


def test_a_bidirectional_classifier_starts_each_direction_from_its_language_model(lm_pair, tmp_path):
    fw_path, bw_path, forward, backward = lm_pair
    model = _classifier(fw_path, **ONE_LAYER, bidirectional=True, init_from_backward=str(bw_path),
                        gradual_unfreeze=True).fit(TEXTS, LABELS)  # epoch 1 trains only the head
    rnn = [name for name in forward.params_ if name.startswith("rnn.")]
    assert sorted(model.params_) == sorted(["embedding.weight", "head.weight", "head.bias", *rnn,
                                            *(f"{name}_reverse" for name in rnn)])
    for name in rnn:
        np.testing.assert_array_equal(model.params_[name], forward.params_[name], err_msg=name)
        np.testing.assert_array_equal(model.params_[f"{name}_reverse"], backward.params_[name], err_msg=name)
    expected = forward.params_["embedding.weight"].copy()
    expected[0] = 0.0
    np.testing.assert_array_equal(model.params_["embedding.weight"], expected)
    assert model.params_["head.weight"].shape == (2, 16)  # both directions' pooled states
    assert model.pretrained_["path"] == str(fw_path) and model.pretrained_["backward"]["path"] == str(bw_path)
    assert model.pretrained_["backward"]["vocab_size"] == len(backward.vocab_)
    loaded = RNNClassifier.load(model.save(tmp_path / "clf"))
    assert loaded.pretrained_ == model.pretrained_
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS[:4]), model.predict_proba(TEXTS[:4]))


def test_the_right_to_left_direction_learns_from_the_backward_model(lm_pair):
    """Both directions train (no unfreezing schedule), each from its own start."""
    fw_path, bw_path, forward, backward = lm_pair
    model = _classifier(fw_path, **ONE_LAYER, bidirectional=True, init_from_backward=str(bw_path)).fit(TEXTS, LABELS)
    assert not np.array_equal(model.params_["rnn.weight_hh_l0_reverse"], backward.params_["rnn.weight_hh_l0"])
    assert not np.array_equal(model.params_["rnn.weight_hh_l0"], forward.params_["rnn.weight_hh_l0"])


def test_language_models_that_do_not_fit_the_directions_are_refused(lm_pair, word_lm, tmp_path):
    fw_path, bw_path, forward, _ = lm_pair
    kw = dict(level="word", bptt=8, batch_size=4, max_steps=3, random_state=0, **ONE_LAYER)
    RNNLanguageModel(**kw, direction="backward", init_from=str(fw_path)).fit(CORPUS).save(tmp_path / "unfrozen")
    RNNLanguageModel(**kw, direction="backward").fit(TARGET_TEXT + " zebra quokka " * 10).save(tmp_path / "other")
    two_fw, _ = word_lm
    RNNLanguageModel(**dict(kw, num_layers=2), direction="backward", init_from=str(two_fw),
                     freeze_embeddings=True).fit(CORPUS).save(tmp_path / "two")
    cases = [
        (fw_path, dict(init_from_backward=str(fw_path), bidirectional=True),
         r"init_from_backward: .*fw reads left to right \(direction 'forward'\); give a backward language model"),
        (bw_path, dict(), r"init_from: .*bw reads right to left \(direction 'backward'\); .*give it as "
                          "init_from_backward"),
        (fw_path, dict(init_from_backward=str(bw_path)), "init_from_backward: .*bw starts the right-to-left "
                                                         "direction, which this classifier lacks; set bidirectional"),
        (fw_path, dict(init_from_backward=str(tmp_path / "unfrozen"), bidirectional=True),
         "init_from_backward: .*unfrozen has another embedding than .*fw; train the backward model with init_from "
         "the forward one and freeze_embeddings"),
        (fw_path, dict(init_from_backward=str(tmp_path / "other"), bidirectional=True),
         r"init_from_backward: .*other has another vocabulary than .*fw \(\d+ and \d+ tokens\)"),
        (fw_path, dict(init_from_backward=str(tmp_path / "two"), bidirectional=True),
         r"init_from_backward: .*two has another network than this classifier: num_layers 1 \(the language "
         r"model's: 2\)"),
        (two_fw, dict(init_from_backward=str(tmp_path / "two"), bidirectional=True, num_layers=2),
         r"init_from_backward: a bidirectional classifier's layer 2 reads both directions' states .*num_layers 1 "
         r"\(got 2\)"),
        (tmp_path / "missing", dict(init_from_backward=str(bw_path), bidirectional=True),
         "init_from: .*missing: checkpoint directory not found"),
        (fw_path, dict(init_from_backward=str(tmp_path / "missing"), bidirectional=True),
         "init_from_backward: .*missing: checkpoint directory not found"),
    ]
    for path, options, message in cases:
        with pytest.raises(ValueError, match=message):
            _classifier(path, **dict(ONE_LAYER, **options)).fit(TEXTS, LABELS)
    with pytest.raises(ValueError, match="init_from_backward: needs init_from, the forward language model"):
        RNNClassifier(**ONE_LAYER, bidirectional=True, init_from_backward=str(bw_path)).fit(TEXTS, LABELS)
