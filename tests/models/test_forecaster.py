"""RNNForecaster (models/forecaster.py): it beats the naive forecast, determinism, checkpoints, no leakage
through the scaler, recursive forecasts, and the errors a user can run into."""

from __future__ import annotations

import numpy as np
import pytest

from unrolled.models.forecaster import NotFittedError, RNNForecaster
from unrolled.timeseries.series import StandardScaler

T, SPLIT = 150, 126  # the last 24 points are the test part
SMALL = dict(window=12, horizon=12, hidden_size=8, epochs=40)


def _series(seed: int = 0) -> np.ndarray:
    """A noisy monthly-style series with trend: 10 + 0.1 t + 3 sin(2πt/12) + N(0, 0.3²)."""
    t = np.arange(T)
    return 10 + 0.1 * t + 3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(seed).normal(0, 0.3, T)


VALUES = _series()
DATES = np.datetime64("2010-01-01") + np.arange(T) * np.timedelta64(30, "D")


def test_rolling_forecast_beats_the_naive_last_value_forecast():
    model = RNNForecaster(**SMALL).fit(VALUES[:SPLIT])
    origins = range(SPLIT, T, 12)  # two 12-step forecasts cover the last 24 points
    forecast = np.concatenate([model.predict(VALUES[:o]) for o in origins])
    naive = np.concatenate([np.repeat(VALUES[o - 1], 12) for o in origins])
    model_mae = np.mean(np.abs(forecast - VALUES[SPLIT:]))
    naive_mae = np.mean(np.abs(naive - VALUES[SPLIT:]))
    assert model_mae < 0.3 * naive_mae, (model_mae, naive_mae)
    assert model.predict(VALUES[:SPLIT]).shape == (12,)
    assert len(model.history_.epochs) == 40


def test_same_seed_gives_identical_weights_and_another_seed_does_not():
    kw = {**SMALL, "epochs": 3}
    a = RNNForecaster(random_state=3, **kw).fit(VALUES)
    b = RNNForecaster(random_state=3, **kw).fit(VALUES)
    c = RNNForecaster(random_state=4, **kw).fit(VALUES)
    assert list(a.params_) == list(b.params_)
    assert all(np.array_equal(a.params_[k], b.params_[k]) for k in a.params_)
    assert not np.array_equal(a.params_["head.weight"], c.params_["head.weight"])


def test_checkpoint_round_trip_forecasts_identically(tmp_path):
    model = RNNForecaster(log=True, calendar=True, validation_fraction=0.2, patience=3, **SMALL)
    model.fit(VALUES[:SPLIT], DATES[:SPLIT], columns=["sales"])
    model.save(tmp_path / "ckpt", extra={"note": "test"})
    loaded = RNNForecaster.load(tmp_path / "ckpt")
    assert loaded.get_params() == model.get_params()
    assert loaded.columns_ == ("sales",) and loaded.config_["note"] == "test"
    assert loaded.history_.to_json() == model.history_.to_json()
    np.testing.assert_array_equal(loaded.forecast(VALUES, 30, DATES), model.forecast(VALUES, 30, DATES))
    with pytest.raises(ValueError, match="kind is 'forecaster'"):
        from unrolled.models.classifier import RNNClassifier

        RNNClassifier.load(tmp_path / "ckpt")


def test_early_stopping_keeps_the_best_validation_epoch():
    model = RNNForecaster(validation_fraction=0.25, patience=2, **{**SMALL, "epochs": 200, "lr": 0.05})
    history = model.fit(VALUES[:SPLIT]).history_
    assert history.stopped_early
    assert len(history.epochs) == history.best_epoch + 2
    assert history.best_metric == min(e.dev_metric for e in history.epochs)


def test_the_scaler_sees_only_the_values_passed_to_fit():
    k = SPLIT
    model = RNNForecaster(**{**SMALL, "epochs": 1}).fit(VALUES[:k])
    assert model.scaler_.to_json() == StandardScaler().fit(VALUES[:k, None]).to_json()
    np.testing.assert_allclose(model.scaler_.transform(VALUES[:k, None]).mean(), 0.0, atol=1e-12)
    altered = VALUES.copy()
    altered[k:] += 1000.0  # a different future must not change what was learned from the past
    other = RNNForecaster(**{**SMALL, "epochs": 1}).fit(altered[:k])
    assert other.scaler_.to_json() == model.scaler_.to_json()
    assert all(np.array_equal(model.params_[n], other.params_[n]) for n in model.params_)


def test_recursive_forecast_beyond_the_horizon():
    model = RNNForecaster(**{**SMALL, "epochs": 5}).fit(VALUES[:SPLIT])
    history = VALUES[:SPLIT]
    forecast = model.forecast(history, 30)
    assert forecast.shape == (30,) and np.isfinite(forecast).all()
    np.testing.assert_array_equal(forecast[:12], model.predict(history))
    np.testing.assert_array_equal(forecast[12:24], model.predict(np.concatenate([history, forecast[:12]])))
    np.testing.assert_array_equal(model.forecast(history, 5), forecast[:5])


def test_exogenous_columns_are_used_but_block_recursive_forecasts():
    values = np.column_stack([VALUES, np.sin(np.arange(T))])
    model = RNNForecaster(**{**SMALL, "epochs": 2}).fit(values[:SPLIT], columns=["y", "promo"])
    assert model.net_config_.input_size == 2 and model.forecast(values, 12).shape == (12,)
    with pytest.raises(ValueError, match="beyond the horizon.*promo"):
        model.forecast(values, 13)
    with pytest.raises(ValueError, match="history: expected 2 columns"):
        model.predict(VALUES)


def test_calendar_features_need_dates():
    model = RNNForecaster(calendar=True, **{**SMALL, "epochs": 1})
    with pytest.raises(ValueError, match="calendar=True needs the date"):
        model.fit(VALUES)
    model.fit(VALUES, DATES)
    assert model.net_config_.input_size == 3
    with pytest.raises(ValueError, match="calendar=True needs the date"):
        model.predict(VALUES)
    with pytest.raises(ValueError, match=r"dates: expected shape \(150,\)"):
        model.predict(VALUES, DATES[:-1])


def test_log_needs_positive_values_and_names_the_column():
    values = VALUES.copy()
    values[7] = 0.0
    with pytest.raises(ValueError, match="column 'sales' must be positive for log=True.*row 7"):
        RNNForecaster(log=True, **SMALL).fit(values, columns=["sales"])
    model = RNNForecaster(log=True, **{**SMALL, "epochs": 1}).fit(VALUES)
    with pytest.raises(ValueError, match="history: column 'y' must be positive"):
        model.predict(-VALUES)


def test_input_errors():
    with pytest.raises(ValueError, match="values: 23 rows, but window 12 \\+ horizon 12 needs at least 24"):
        RNNForecaster(**SMALL).fit(VALUES[:23])
    with pytest.raises(ValueError, match="values: row 3, column 0 is not a finite number"):
        RNNForecaster(**SMALL).fit(np.where(np.arange(T) == 3, np.nan, VALUES))
    with pytest.raises(NotFittedError):
        RNNForecaster().predict(VALUES)
    model = RNNForecaster(**{**SMALL, "epochs": 1}).fit(VALUES)
    with pytest.raises(ValueError, match="history: 11 rows, but the model reads the last 12"):
        model.predict(VALUES[:11])
    with pytest.raises(ValueError, match="steps: expected a positive integer"):
        model.forecast(VALUES, 0)
    with pytest.raises(ValueError, match="columns: expected 1 names"):
        RNNForecaster(**SMALL).fit(VALUES, columns=["a", "b"])


def test_sklearn_protocol():
    model = RNNForecaster(window=6, cell="lstm")
    assert model.get_params()["window"] == 6 and model.get_params()["epochs"] == 300
    assert repr(model) == "RNNForecaster(window=6, cell='lstm')"
    assert model.set_params(horizon=3) is model and model.horizon == 3
    with pytest.raises(ValueError, match="not a parameter"):
        model.set_params(windows=3)
