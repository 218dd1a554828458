"""Time-series forecasting: read a series, window and scale it, baselines, metrics and rolling-origin evaluation.

statsmodels is optional: only :func:`holt_winters` needs it.
"""

from unrolled.timeseries.baselines import DependencyError, holt_winters, naive, seasonal_naive
from unrolled.timeseries.evaluate import Evaluation, compare, rolling_origin
from unrolled.timeseries.metrics import mae, mape, mase, rmse
from unrolled.timeseries.series import (
    Series,
    SeriesError,
    StandardScaler,
    calendar_features,
    future_dates,
    make_windows,
    read_series,
)

__all__ = [
    "DependencyError",
    "Evaluation",
    "Series",
    "SeriesError",
    "StandardScaler",
    "calendar_features",
    "future_dates",
    "compare",
    "holt_winters",
    "mae",
    "make_windows",
    "mape",
    "mase",
    "naive",
    "read_series",
    "rmse",
    "rolling_origin",
    "seasonal_naive",
]
