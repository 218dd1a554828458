"""Rolling-origin evaluation on a held-out tail: the same code scores the RNN and the baselines.

With T values and a tail of ``test_size``, the forecast origins are o = T − test_size, …, T − horizon (every
origin whose whole horizon lies in the tail). At each origin ``forecast_fn(o)`` must return (K,) forecasts of
``values[o : o + K]`` using only data before index o (it gets the index, so it can also use exogenous columns
and dates up to o).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from unrolled.timeseries.metrics import mae, mape, mase, rmse

__all__ = ["Evaluation", "rolling_origin", "compare"]


@dataclass(frozen=True)
class Evaluation:
    """Forecasts from :func:`rolling_origin`: O origins, horizon K."""

    origins: np.ndarray  # (O,) int
    forecasts: np.ndarray  # (O, K)
    actuals: np.ndarray  # (O, K)

    @property
    def per_step(self) -> np.ndarray:
        """MAE at each step ahead, (K,): entry k averages |error| over origins at step k + 1."""
        return np.mean(np.abs(self.actuals - self.forecasts), axis=0)

    def metrics(self, insample: np.ndarray, season: int = 1) -> dict[str, float]:
        """MAE, RMSE, MAPE (percent, zero actuals left out) and MASE over all (origin, step) pairs.

        ``insample`` is the training series (values before the first origin) that scales MASE at lag
        ``season``.
        """
        return {
            "mae": mae(self.actuals, self.forecasts),
            "rmse": rmse(self.actuals, self.forecasts),
            "mape": mape(self.actuals, self.forecasts),
            "mase": mase(self.actuals, self.forecasts, insample, season),
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of origins, forecasts, actuals and per-step MAE."""
        return {
            "origins": self.origins.tolist(),
            "forecasts": self.forecasts.tolist(),
            "actuals": self.actuals.tolist(),
            "per_step_mae": self.per_step.tolist(),
        }


def rolling_origin(
    values: np.ndarray, test_size: int, horizon: int, forecast_fn: Callable[[int], np.ndarray]
) -> Evaluation:
    """Call ``forecast_fn(o)`` at every origin o in [T − test_size, T − horizon] and collect the forecasts.

    ``values`` is the (T,) target series. ``forecast_fn`` must return (horizon,) forecasts for
    ``values[o : o + horizon]`` from data before o only.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"values: expected the (T,) target series, got shape {values.shape}")
    t_len = values.shape[0]
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    if test_size < horizon:
        raise ValueError(f"test_size {test_size} is shorter than horizon {horizon}: no origin fits")
    if test_size >= t_len:
        raise ValueError(f"test_size {test_size} leaves no history in a series of {t_len} values")
    origins = np.arange(t_len - test_size, t_len - horizon + 1)
    forecasts = np.empty((len(origins), horizon))
    actuals = np.empty((len(origins), horizon))
    for i, o in enumerate(origins):
        forecast = np.asarray(forecast_fn(int(o)), dtype=np.float64)
        if forecast.shape != (horizon,):
            raise ValueError(f"forecast_fn({o}) returned shape {forecast.shape}, expected ({horizon},)")
        forecasts[i] = forecast
        actuals[i] = values[o : o + horizon]
    return Evaluation(origins=origins, forecasts=forecasts, actuals=actuals)


def compare(
    values: np.ndarray,
    test_size: int,
    horizon: int,
    season: int,
    forecasters: dict[str, Callable[[int], np.ndarray]],
) -> dict[str, dict[str, float]]:
    """Score several ``forecast_fn(origin)`` callables on the same tail; MASE uses ``values[:T − test_size]``.

    Returns ``{name: {"mae", "rmse", "mape", "mase"}}``. To score a history-only baseline, wrap it:
    ``lambda o: naive(values[:o], horizon)``.
    """
    values = np.asarray(values, dtype=np.float64)
    insample = values[: values.shape[0] - test_size]
    return {
        name: rolling_origin(values, test_size, horizon, fn).metrics(insample, season)
        for name, fn in forecasters.items()
    }
