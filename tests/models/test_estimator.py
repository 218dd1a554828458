"""The estimator base (models/_estimator.py) and the parameter checks (nn/_validation.py): scikit-learn tags and
clone for all three estimators, their scores, the not-fitted message, the save/load skeleton (config.json
layout, invalid configs, bundled names)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from unrolled.models._estimator import Estimator, NotFittedError
from unrolled.models.classifier import RNNClassifier
from unrolled.models.forecaster import RNNForecaster
from unrolled.models.language_model import RNNLanguageModel
from unrolled.nn._validation import (
    check_fraction,
    check_nonnegative_int,
    check_positive_int,
    check_positive_number,
    check_probability,
)

TEXTS = ["i love this", "great movie", "so good", "truly great", "i hate this", "awful movie", "so bad", "truly awful"]
LABELS = ["pos"] * 4 + ["neg"] * 4
SINE = np.sin(np.arange(60) / 3.0)
ABC = "abcab" * 20
TINY_CLASSIFIER = dict(hidden_size=4, embedding_dim=4, epochs=1)
TINY_FORECASTER = dict(window=6, horizon=2, hidden_size=4, epochs=2)
TINY_LM = dict(embedding_dim=4, hidden_size=4, bptt=8, batch_size=2, max_steps=3)


@pytest.fixture(scope="module")
def classifier() -> RNNClassifier:
    return RNNClassifier(**TINY_CLASSIFIER).fit(TEXTS, LABELS)


@pytest.fixture(scope="module")
def forecaster() -> RNNForecaster:
    return RNNForecaster(**TINY_FORECASTER).fit(SINE[:40])


@pytest.fixture(scope="module")
def language_model() -> RNNLanguageModel:
    return RNNLanguageModel(**TINY_LM).fit(ABC)


# --- validation helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "value", "kwargs", "message"),
    [
        (check_positive_int, 0, {}, "n: expected a positive integer, got 0"),
        (check_positive_int, 2.0, {}, "n: expected a positive integer, got 2.0"),
        (check_positive_int, True, {}, "n: expected a positive integer, got True"),
        (check_positive_int, None, {}, "n: expected a positive integer, got None"),
        (check_positive_int, "3", {}, "n: expected a positive integer, got '3'"),
        (check_positive_int, -1, dict(allow_none=True), "n: expected a positive integer or None, got -1"),
        (check_nonnegative_int, -1, {}, "n: expected an integer >= 0, got -1"),
        (check_nonnegative_int, 0.5, dict(allow_none=True), "n: expected an integer >= 0 or None, got 0.5"),
        (check_positive_number, 0.0, {}, "n: expected a positive number, got 0.0"),
        (check_positive_number, math.inf, {}, "n: expected a positive number, got inf"),
        (check_positive_number, -2, dict(allow_none=True), "n: expected a positive number or None, got -2"),
        (check_probability, 1.0, {}, "n: expected a probability in [0, 1), got 1.0"),
        (check_probability, -0.1, {}, "n: expected a probability in [0, 1), got -0.1"),
        (check_probability, math.nan, {}, "n: expected a probability in [0, 1), got nan"),
        (check_probability, None, {}, "n: expected a probability in [0, 1), got None"),
        (check_probability, 1.5, dict(upper_open=False), "n: expected a probability in [0, 1], got 1.5"),
        (check_probability, 1, dict(noun="a number"), "n: expected a number in [0, 1), got 1"),
        (check_fraction, 0, {}, "n: expected a number in (0, 1), got 0"),
        (check_fraction, 1.0, {}, "n: expected a number in (0, 1), got 1.0"),
    ],
)
def test_validation_helpers_name_the_argument_and_the_value(check, value, kwargs, message):
    with pytest.raises(ValueError) as info:
        check("n", value, **kwargs)
    assert str(info.value) == message


def test_validation_helpers_return_what_they_accept():
    assert check_positive_int("n", 3) == 3 and check_positive_int("n", np.int64(3)) == 3
    assert check_positive_int("n", None, allow_none=True) is None
    assert check_nonnegative_int("n", 0) == 0 and check_nonnegative_int("n", None, allow_none=True) is None
    assert check_positive_number("n", 1e-3) == 1e-3 and check_positive_number("n", np.float32(2)) == 2
    assert check_probability("n", 0) == 0 and check_probability("n", 0.99) == 0.99
    assert check_probability("n", 1.0, upper_open=False) == 1.0
    assert check_fraction("n", 0.5) == 0.5


def test_estimators_use_the_helpers_messages():
    with pytest.raises(ValueError, match=r"^max_len: expected a positive integer or None, got 0$"):
        RNNClassifier(max_len=0, **TINY_CLASSIFIER).fit(TEXTS, LABELS)
    with pytest.raises(ValueError, match=r"^word_dropout: expected a probability in \[0, 1\), got 1.0$"):
        RNNClassifier(word_dropout=1.0, **TINY_CLASSIFIER).fit(TEXTS, LABELS)
    with pytest.raises(ValueError, match=r"^window: expected a positive integer, got 0$"):
        RNNForecaster(**{**TINY_FORECASTER, "window": 0}).fit(SINE)
    with pytest.raises(ValueError, match=r"^validation_fraction: expected a number in \[0, 1\), got 1.0$"):
        RNNForecaster(validation_fraction=1.0, **TINY_FORECASTER).fit(SINE)
    with pytest.raises(ValueError, match=r"^max_steps: expected an integer >= 0 or None, got -1$"):
        RNNLanguageModel(**{**TINY_LM, "max_steps": -1}).fit(ABC)


# --- scikit-learn protocol -----------------------------------------------------------------------------


def test_scikit_learn_sees_a_classifier_a_regressor_and_neither():
    sklearn_base = pytest.importorskip("sklearn.base")
    classifier, forecaster, lm = RNNClassifier(), RNNForecaster(), RNNLanguageModel()
    assert sklearn_base.is_classifier(classifier) and not sklearn_base.is_regressor(classifier)
    assert sklearn_base.is_regressor(forecaster) and not sklearn_base.is_classifier(forecaster)
    assert not sklearn_base.is_classifier(lm) and not sklearn_base.is_regressor(lm)


def test_scikit_learn_tags():
    pytest.importorskip("sklearn")
    from sklearn.utils import get_tags

    tags = get_tags(RNNClassifier())
    assert tags.estimator_type == "classifier" and tags.target_tags.required and tags.input_tags.string
    assert tags.classifier_tags is not None and tags.regressor_tags is None
    tags = get_tags(RNNForecaster())
    assert tags.estimator_type == "regressor" and not tags.target_tags.required
    assert tags.regressor_tags is not None and tags.input_tags.one_d_array and tags.input_tags.two_d_array
    tags = get_tags(RNNLanguageModel())
    assert tags.estimator_type is None and tags.input_tags.string and not tags.input_tags.two_d_array


@pytest.mark.parametrize(
    "estimator",
    [RNNClassifier(cell="lstm", hidden_size=7), RNNForecaster(window=5, log=True), RNNLanguageModel(level="word")],
    ids=["classifier", "forecaster", "language_model"],
)
def test_scikit_learn_clone(estimator):
    sklearn_base = pytest.importorskip("sklearn.base")
    copy = sklearn_base.clone(estimator)
    assert type(copy) is type(estimator) and copy is not estimator
    assert copy.get_params() == estimator.get_params()
    assert not hasattr(copy, "params_")


def test_clone_of_a_fitted_estimator_is_unfitted(forecaster):
    sklearn_base = pytest.importorskip("sklearn.base")
    copy = sklearn_base.clone(forecaster)
    assert copy.get_params() == forecaster.get_params()
    with pytest.raises(NotFittedError):
        copy.predict(SINE)


# --- score ---------------------------------------------------------------------------------------------


def test_classifier_score_is_accuracy(classifier):
    predicted = classifier.predict(TEXTS)
    assert classifier.score(TEXTS, LABELS) == pytest.approx(np.mean(predicted == np.array(LABELS)))


def _r2_by_predict(model: RNNForecaster, values: np.ndarray, dates: np.ndarray | None = None) -> float:
    w, k = model.window, model.horizon
    origins = range(w, len(values) - k + 1)
    forecasts = np.array([model.predict(values[o - w : o], None if dates is None else dates[o - w : o])
                          for o in origins])
    truth = np.array([np.asarray(values)[o : o + k].reshape(k, -1)[:, 0] for o in origins])
    return 1.0 - np.sum((truth - forecasts) ** 2) / np.sum((truth - truth.mean()) ** 2)


def test_forecaster_score_is_r2_of_the_horizon_forecasts_from_every_window(forecaster):
    held_out = SINE[30:]
    expected = _r2_by_predict(forecaster, held_out)
    assert forecaster.score(held_out) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    origins = range(6, len(held_out) - 2 + 1)
    truth = np.array([held_out[o : o + 2] for o in origins]).ravel()
    forecasts = np.array([forecaster.predict(held_out[o - 6 : o]) for o in origins]).ravel()
    assert forecaster.score(held_out) == pytest.approx(sklearn_metrics.r2_score(truth, forecasts), abs=1e-9)


def test_forecaster_score_with_log_calendar_and_exogenous_columns():
    t = np.arange(48)
    values = np.stack([5 + np.sin(t / 2.0), np.cos(t / 5.0)], axis=1)
    dates = np.datetime64("2001-01-01") + t * np.timedelta64(30, "D")
    model = RNNForecaster(log=True, calendar=True, delta=False, **TINY_FORECASTER).fit(values[:36], dates[:36])
    assert model.score(values[24:], dates[24:]) == pytest.approx(_r2_by_predict(model, values[24:], dates[24:]),
                                                                 rel=1e-9, abs=1e-9)
    with pytest.raises(ValueError, match="dates: calendar=True needs"):
        model.score(values)


def test_a_trained_forecaster_scores_higher_than_an_untrained_one():
    untrained = RNNForecaster(**{**TINY_FORECASTER, "epochs": 1, "lr": 1e-4}).fit(SINE[:40])
    trained = RNNForecaster(**{**TINY_FORECASTER, "epochs": 150, "hidden_size": 8}).fit(SINE[:40])
    assert trained.score(SINE[30:]) > max(0.9, untrained.score(SINE[30:]))


def test_forecaster_score_edge_cases(forecaster):
    assert forecaster.score(np.ones(20)) == 0.0  # a constant truth: R² is 1 only for exact forecasts
    with pytest.raises(ValueError, match=r"^values: 7 rows, but window 6 \+ horizon 2 needs at least 8$"):
        forecaster.score(SINE[:7])
    with pytest.raises(ValueError, match="values: expected 1 column"):
        forecaster.score(np.ones((20, 2)))
    with pytest.raises(NotFittedError):
        RNNForecaster().score(SINE)


def test_language_model_score_is_minus_the_mean_loss_per_token(language_model):
    assert language_model.score(ABC[:50]) == -language_model.evaluate_loss(ABC[:50])
    assert language_model.score(ABC[:50]) < 0
    with pytest.raises(NotFittedError):
        RNNLanguageModel().score(ABC)


# --- not fitted ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("estimator", "call", "fit"),
    [
        (RNNClassifier(), lambda m: m.predict(["x"]), "fit(texts, labels)"),
        (RNNForecaster(), lambda m: m.predict(SINE), "fit(values)"),
        (RNNLanguageModel(), lambda m: m.generate("a"), "fit(text)"),
    ],
)
def test_not_fitted_message_names_the_class_the_fit_call_and_unrolled_load(estimator, call, fit, tmp_path):
    with pytest.raises(NotFittedError) as info:
        call(estimator)
    assert str(info.value) == f"this {type(estimator).__name__} is not fitted yet: call {fit} or unrolled.load(path)"
    with pytest.raises(NotFittedError):
        estimator.save(tmp_path / "never")
    assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)


def test_not_fitted_error_is_importable_where_it_always_was():
    import unrolled.models.classifier
    import unrolled.models.forecaster
    import unrolled.models.language_model

    for module in (unrolled.models.classifier, unrolled.models.forecaster, unrolled.models.language_model):
        assert module.NotFittedError is NotFittedError


# --- save / load ---------------------------------------------------------------------------------------


RUNTIME = ["engine", "device", "processes"]  # how it was trained (since the torch engine)


def test_config_json_layout_is_unchanged(classifier, forecaster, language_model, tmp_path):
    head = ["format", "format_version", "kind", "model", "estimator"]
    for model, own, training in [
        (classifier, ["labels", "classes"], ["history", "seconds", *RUNTIME, "embedding_coverage"]),
        (forecaster, ["scaler", "columns"], ["history", "seconds", *RUNTIME]),
        (language_model, ["start_token", "val_loss"], ["history", "seconds", *RUNTIME]),
    ]:
        path = model.save(tmp_path / model.KIND, extra={"metrics": {"x": 1}})
        config = json.loads((path / "config.json").read_text())
        assert list(config) == [*head, *own, "training", "metrics"]
        assert config["kind"] == model.KIND and list(config["training"]) == training
        assert config["estimator"] == json.loads(json.dumps(model.get_params()))
        assert (path / "vocab.json").exists() == (model.KIND != "forecaster")


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("classifier", "invalid classifier config"),
        ("forecaster", "invalid forecaster config"),
        ("language_model", "invalid language model config"),
    ],
)
def test_invalid_config_is_one_line_naming_the_file(fixture, message, request, tmp_path):
    model = request.getfixturevalue(fixture)
    path = model.save(tmp_path / "ckpt")
    config = json.loads((path / "config.json").read_text())
    for broken in ({**config, "estimator": {**config["estimator"], "no_such_param": 1}},
                   {k: v for k, v in config.items() if k != "model"},
                   {**config, "training": None}):
        (path / "config.json").write_text(json.dumps(broken))
        with pytest.raises(ValueError) as info:
            type(model).load(path)
        assert str(info.value).startswith(f"{path / 'config.json'}: {message} (")
        assert "\n" not in str(info.value)


def test_each_round_trip_predicts_identically(classifier, forecaster, language_model, tmp_path):
    loaded = RNNClassifier.load(classifier.save(tmp_path / "c"))
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), classifier.predict_proba(TEXTS))
    loaded = RNNForecaster.load(forecaster.save(tmp_path / "f"))
    np.testing.assert_array_equal(loaded.predict(SINE), forecaster.predict(SINE))
    assert loaded.score(SINE[30:]) == forecaster.score(SINE[30:])
    loaded = RNNLanguageModel.load(language_model.save(tmp_path / "l"))
    assert loaded.score(ABC[:40]) == language_model.score(ABC[:40])
    assert loaded.get_params() == language_model.get_params() and loaded.config_["kind"] == "language_model"


def test_float16_storage_halves_the_file_and_loads_as_float32(classifier, language_model, tmp_path):
    for model, check in [
        (classifier, lambda a, b: np.testing.assert_allclose(a.predict_proba(TEXTS), b.predict_proba(TEXTS),
                                                             atol=2e-3)),
        (language_model, lambda a, b: np.testing.assert_allclose(a.score(ABC[:40]), b.score(ABC[:40]), atol=1e-2)),
    ]:
        full = model.save(tmp_path / f"{model.KIND}-32")
        half = model.save(tmp_path / f"{model.KIND}-16", storage="float16")
        assert json.loads((half / "config.json").read_text())["storage"] == "float16"
        assert "storage" not in json.loads((full / "config.json").read_text())
        size = lambda path: (path / "model.safetensors").stat().st_size  # noqa: E731
        values = sum(value.size for value in model.params_.values())
        assert abs(size(full) - size(half) - 2 * values) <= 16  # 2 bytes a value instead of 4 (header alike)
        loaded = type(model).load(half)
        for name, value in loaded.params_.items():
            assert value.dtype == np.float32  # computed in float32 ...
            np.testing.assert_array_equal(value, model.params_[name].astype(np.float16).astype(np.float32))
        check(loaded, model)  # ... and close to the float32 model
        # saved again as float16: the same tensors (each value already a float16)
        again = type(model).load(loaded.save(tmp_path / f"{model.KIND}-16b", storage="float16"))
        for name, value in again.params_.items():
            np.testing.assert_array_equal(value, loaded.params_[name])


def test_recurrent_weights_start_on_a_cache_line_when_fitted_loaded_or_carried_over(classifier, language_model,
                                                                                     tmp_path):
    """The few-row product loads W_hh a vector at a time; networks keep it on a 64-byte line (NumPy's
    large arrays start 16 bytes past one) from fitting, loading (float32 and float16) and --init-from."""
    from unrolled.models.transfer import carried_tensors

    def aligned(params):
        hh = {name: value for name, value in params.items() if "weight_hh" in name}
        return bool(hh) and all(value.ctypes.data % 64 == 0 for value in hh.values())

    assert aligned(classifier.params_) and aligned(language_model.params_)
    for storage in (None, "float16"):
        assert aligned(RNNClassifier.load(classifier.save(tmp_path / f"c-{storage}", storage=storage)).params_)
    assert aligned(carried_tensors(language_model))


def test_float16_storage_refuses_what_it_cannot_hold(classifier, forecaster, tmp_path):
    with pytest.raises(ValueError, match=r"^storage: expected None or 'float16', got 'int8'$"):
        classifier.save(tmp_path / "x", storage="int8")
    with pytest.raises(ValueError, match=r"^storage float16: tensor '.*' is float64; float16 storage is for models "
                                         r"that compute in float32 \(they load back as float32\)$"):
        forecaster.save(tmp_path / "f", storage="float16")  # the forecaster computes in float64
    big = RNNClassifier.load(classifier.save(tmp_path / "c"))
    big.params_["head.bias"] = big.params_["head.bias"] + 1e5
    with pytest.raises(ValueError, match=r"^storage float16: tensor 'head.bias' holds 100\d+, beyond float16's "
                                         r"largest value 65504 \(save it without storage='float16'\)$"):
        big.save(tmp_path / "big", storage="float16")
    assert not (tmp_path / "big").exists()
    # a config that says float16 over float32 tensors, or names another storage: one line naming the file
    path = classifier.save(tmp_path / "c32")
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "storage": "float16"}))
    with pytest.raises(ValueError, match=r"model\.safetensors: tensor '.*' has dtype float32, expected float16 "
                                         r"\(config.json says storage float16\)$"):
        RNNClassifier.load(path)
    (path / "config.json").write_text(json.dumps({**config, "storage": "bfloat16"}))
    with pytest.raises(ValueError, match=r"config\.json: invalid classifier config \(storage: expected 'float16' "
                                         r'or no field, got "bfloat16"\)$'):
        RNNClassifier.load(path)
    # float16 tensors without the record: refused as before
    half = classifier.save(tmp_path / "c16", storage="float16")
    config = json.loads((half / "config.json").read_text())
    (half / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "storage"}))
    with pytest.raises(ValueError, match=r"has dtype float16, expected float32 or float64 .*float16 only with "
                                         r"config.json's storage float16\)$"):
        RNNClassifier.load(half)


def test_load_resolves_bundled_model_names():
    model = RNNClassifier.load("sst2-best")
    assert model.predict(["I love this"]).tolist() == ["positive"]
    assert RNNClassifier.load("sst2-rnn").net_config_.cell == "rnn"


def test_load_of_a_missing_directory_names_it(tmp_path):
    from unrolled.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match=f"^{tmp_path / 'nothing'}: checkpoint directory not found$"):
        RNNForecaster.load(tmp_path / "nothing")


def test_every_estimator_sets_the_class_attributes_the_base_reads():
    for cls in (RNNClassifier, RNNForecaster, RNNLanguageModel):
        assert issubclass(cls, Estimator)
        assert cls.KIND and cls._CONFIG_NAME and cls._FIT_CALL.startswith("fit(")
