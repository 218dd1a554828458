"""Point-forecast errors: MAE, RMSE, MAPE (percent) and MASE.

Each takes ``actual`` and ``forecast`` arrays of any equal shape and averages over every element.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mae", "rmse", "mape", "mase"]


def _pair(actual: np.ndarray, forecast: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    if a.shape != f.shape:
        raise ValueError(f"actual and forecast differ in shape: {a.shape} vs {f.shape}")
    if a.size == 0:
        raise ValueError("actual and forecast are empty")
    return a, f


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean absolute error."""
    a, f = _pair(actual, forecast)
    return float(np.mean(np.abs(a - f)))


def rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Root mean squared error."""
    a, f = _pair(actual, forecast)
    return float(np.sqrt(np.mean((a - f) ** 2)))


def mape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean absolute percentage error, in percent: ``100 * mean(|a − f| / |a|)``.

    Elements whose actual value is exactly 0 are left out (their percentage error is undefined); if every
    actual value is 0 this raises ValueError.
    """
    a, f = _pair(actual, forecast)
    keep = a != 0
    if not keep.any():
        raise ValueError("mape: every actual value is 0, so no percentage error is defined")
    return float(100.0 * np.mean(np.abs(a[keep] - f[keep]) / np.abs(a[keep])))


def mase(actual: np.ndarray, forecast: np.ndarray, insample: np.ndarray, season: int = 1) -> float:
    """Mean absolute scaled error: MAE / mean(|insample[t] − insample[t − season]|).

    The scale is the in-sample MAE of the seasonal naive forecast (``season=1``: the naive forecast), so
    MASE < 1 means better than that baseline did in sample. ``insample`` is the (T,) training series.
    """
    insample = np.asarray(insample, dtype=np.float64).reshape(-1)
    if season < 1:
        raise ValueError(f"mase: season must be at least 1, got {season}")
    if insample.size <= season:
        raise ValueError(f"mase: insample has {insample.size} values, needs more than season {season}")
    scale = float(np.mean(np.abs(insample[season:] - insample[:-season])))
    if scale == 0:
        raise ValueError(f"mase: insample is constant at lag {season}, so the scale is 0")
    return mae(actual, forecast) / scale
