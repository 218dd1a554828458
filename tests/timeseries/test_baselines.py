import builtins

import numpy as np
import pytest

from unrolled.timeseries import baselines
from unrolled.timeseries.baselines import DependencyError, holt_winters, naive, seasonal_naive


def test_naive():
    assert naive(np.array([1.0, 5.0, 3.0]), 4).tolist() == [3.0, 3.0, 3.0, 3.0]


def test_seasonal_naive_repeats_last_season():
    history = np.array([9.0, 1.0, 2.0, 3.0, 10.0, 20.0, 30.0])
    assert seasonal_naive(history, 7, season=3).tolist() == [10, 20, 30, 10, 20, 30, 10]
    assert seasonal_naive(history, 2, season=3).tolist() == [10, 20]
    assert seasonal_naive(history, 2, season=1).tolist() == [30, 30]
    with pytest.raises(ValueError, match="season 8"):
        seasonal_naive(history, 2, season=8)


def test_bad_history():
    with pytest.raises(ValueError):
        naive(np.array([]), 1)
    with pytest.raises(ValueError):
        naive(np.array([1.0, np.nan]), 1)
    with pytest.raises(ValueError):
        naive(np.array([1.0]), 0)


def airline_like(n: int = 144) -> np.ndarray:
    t = np.arange(n)
    rng = np.random.default_rng(1)
    return (100 + 2.0 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / 12)) * (1 + 0.01 * rng.standard_normal(n))


def test_holt_winters_sensible_on_airline_like_data():
    pytest.importorskip("statsmodels")
    y = airline_like(144)
    forecast = holt_winters(y[:120], 24, season=12)
    assert forecast.shape == (24,) and np.all(np.isfinite(forecast))
    # far better than the seasonal naive forecast on trend * season data
    hw_err = np.mean(np.abs(forecast - y[120:]))
    snaive_err = np.mean(np.abs(seasonal_naive(y[:120], 24, 12) - y[120:]))
    assert hw_err < 0.5 * snaive_err
    assert np.mean(np.abs(forecast - y[120:]) / y[120:]) < 0.05


def test_holt_winters_falls_back_to_additive_on_non_positive_data():
    pytest.importorskip("statsmodels")
    y = airline_like(96) - 250.0  # has negative values: multiplicative seasonality is undefined
    assert y.min() < 0
    forecast = holt_winters(y, 12, season=12, seasonal="mul")
    assert forecast.shape == (12,) and np.all(np.isfinite(forecast))


def test_holt_winters_without_statsmodels(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("statsmodels"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(DependencyError) as exc:
        baselines.holt_winters(airline_like(48), 12, season=12)
    assert "\n" not in str(exc.value) and "pip install statsmodels" in str(exc.value)
    assert isinstance(exc.value, ImportError) and isinstance(exc.value, RuntimeError)
