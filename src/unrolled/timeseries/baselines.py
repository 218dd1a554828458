"""Baseline forecasters, each ``(history (t,), horizon) -> (horizon,)`` float64.

``naive`` and ``seasonal_naive`` need only NumPy. ``holt_winters`` needs the optional dependency statsmodels
(``pip install statsmodels``); without it, it raises :class:`DependencyError`.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["DependencyError", "naive", "seasonal_naive", "holt_winters"]


class DependencyError(ImportError, RuntimeError):
    """An optional dependency is not installed (a RuntimeError too, so the command line reports one line)."""


def _check(history: np.ndarray, horizon: int) -> np.ndarray:
    history = np.asarray(history, dtype=np.float64)
    if history.ndim != 1 or history.size == 0:
        raise ValueError(f"history: expected a non-empty (t,) array, got shape {history.shape}")
    if not np.all(np.isfinite(history)):
        raise ValueError("history contains NaN or infinity")
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    return history


def naive(history: np.ndarray, horizon: int) -> np.ndarray:
    """The last observed value, repeated ``horizon`` times."""
    history = _check(history, horizon)
    return np.full(horizon, history[-1])


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The value one season back: step h (0-based) gets ``history[t − season + h % season]``."""
    history = _check(history, horizon)
    if season < 1:
        raise ValueError(f"season must be at least 1, got {season}")
    if history.size < season:
        raise ValueError(f"history: {history.size} values, but season {season} needs at least {season}")
    last_season = history[-season:]
    return last_season[np.arange(horizon) % season].copy()


def holt_winters(
    history: np.ndarray,
    horizon: int,
    season: int,
    *,
    trend: str | None = "add",
    seasonal: str | None = "mul",
    damped: bool = False,
) -> np.ndarray:
    """Holt-Winters exponential smoothing via ``statsmodels.tsa.holtwinters.ExponentialSmoothing(...).fit()``.

    Multiplicative components need strictly positive data: when ``history`` has a value <= 0, a ``"mul"``
    seasonal (or trend) component is fitted as ``"add"`` instead. statsmodels' fitting warnings (e.g. about
    convergence) are silenced. Raises :class:`DependencyError` when statsmodels is not installed.
    """
    history = _check(history, horizon)
    try:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing
    except ImportError:
        raise DependencyError("holt_winters needs statsmodels: pip install statsmodels") from None
    if history.min() <= 0:  # multiplicative components are undefined for non-positive data
        seasonal = "add" if seasonal == "mul" else seasonal
        trend = "add" if trend == "mul" else trend
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ExponentialSmoothing(
            history,
            trend=trend,
            seasonal=seasonal,
            seasonal_periods=season if seasonal is not None else None,
            damped_trend=damped,
        )
        result = model.fit()
        forecast = np.asarray(result.forecast(horizon), dtype=np.float64)
    return forecast
