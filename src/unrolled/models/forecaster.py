"""``RNNForecaster``: time-series forecasting with a recurrent network, in scikit-learn's style.

    values (T, F) -> [log target] -> scale -> [+ calendar columns] -> windows (N, W, F') -> recurrent layer
    -> final state -> linear -> the next K = horizon target values at once -> unscale -> [exp]

Column 0 of ``values`` is the target; further columns are exogenous inputs (known up to the forecast origin).

Leakage: the scaler is fitted on exactly the values passed to ``fit`` and on nothing else, so pass only the
training part of a series; ``predict`` and ``forecast`` reuse the training statistics for any history.

With ``delta=True`` (the default) the network works relative to each window's last observed target value
z_last (scaled units): the window's target column enters as z - z_last and the network predicts
z[t+k] - z_last, which the forecast adds back. The network then never sees the level of the series, so it can
follow a trend beyond the range of the training values.

``__init__`` only stores its arguments; ``fit`` validates, trains with :func:`unrolled.train.fit` and sets
the learned attributes, which end in ``_``. The library never prints.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unrolled.checkpoint import Checkpoint
from unrolled.memory import check_training_memory
from unrolled.models import _restore as restore
from unrolled.models._estimator import Estimator, NotFittedError
from unrolled.models.forecaster_net import (
    ForecasterNetConfig,
    forecaster_backward,
    forecaster_forward,
    init_forecaster_params,
)
from unrolled.nn._validation import check_positive_int, check_probability
from unrolled.timeseries.series import StandardScaler, calendar_features, future_dates, make_windows
from unrolled.train import TorchTask, TrainConfig, TrainHistory, check_engine

__all__ = ["RNNForecaster", "NotFittedError"]

KIND = "forecaster"
MAX_STEPS = 100_000  # the most values one forecast call rolls out


def _as_values(name: str, values: object, columns: int | None = None) -> np.ndarray:
    """(T,) or (T, F) finite numbers -> (T, F) float64 (F = ``columns`` when given)."""
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected an array of numbers") from None
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name}: expected shape (T,) or (T, F), got {array.shape}")
    if columns is not None and array.shape[1] != columns:
        raise ValueError(f"{name}: expected {columns} column{'s' if columns > 1 else ''} (as in fit), "
                         f"got {array.shape[1]}")
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        raise ValueError(f"{name}: row {bad[0][0]}, column {bad[0][1]} is not a finite number")
    return array


def _as_dates(dates: object, length: int) -> np.ndarray:
    try:
        dates = np.asarray(dates).astype("datetime64[D]")
    except (TypeError, ValueError):
        raise ValueError("dates: expected datetime64 values (or ISO date strings)") from None
    if dates.shape != (length,):
        raise ValueError(f"dates: expected shape ({length},), one date per row of values, got {dates.shape}")
    return dates


class RNNForecaster(Estimator):
    """A recurrent forecaster that predicts the next ``horizon`` values of a series from the last ``window``.

    Parameters
    ----------
    window : W, the number of past steps the network reads
    horizon : K, the number of future steps predicted at once
    cell, hidden_size, num_layers, dropout : the network's shape (see :class:`ForecasterNetConfig`)
    epochs, batch_size, lr, clip_norm, patience : training (see :class:`unrolled.train.TrainConfig`);
        early stopping needs ``validation_fraction`` > 0
    log : model log(target) (multiplicative seasonality); the target must be positive. Exogenous columns
        are not logged.
    delta : predict changes relative to the window's last target value (see the module docstring)
    calendar : append ``calendar_features(dates)`` (position in the year) to the inputs; needs ``dates``
    validation_fraction : the last windows kept out of training for early stopping (0 = none); the best
        epoch's weights (lowest validation MSE) are kept
    random_state : int seed; the same seed and data give identical weights

    Attributes (after fit)
    ----------------------
    columns_ : tuple of str, the names of the value columns (target first)
    n_features_in_ : F, the number of value columns
    scaler_ : StandardScaler fitted on the (logged) values passed to fit
    net_config_ : ForecasterNetConfig
    params_ : dict of arrays under PyTorch names
    history_ : TrainHistory
    """

    def __init__(
        self,
        *,
        window: int = 24,
        horizon: int = 12,
        cell: str = "gru",
        hidden_size: int = 32,
        num_layers: int = 1,
        dropout: float = 0.0,
        epochs: int = 300,
        batch_size: int = 16,
        lr: float = 5e-3,
        clip_norm: float | None = 1.0,
        patience: int | None = None,
        log: bool = False,
        delta: bool = True,
        calendar: bool = False,
        validation_fraction: float = 0.0,
        random_state: int = 0,
    ) -> None:
        self.window = window
        self.horizon = horizon
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.clip_norm = clip_norm
        self.patience = patience
        self.log = log
        self.delta = delta
        self.calendar = calendar
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    # --- scikit-learn protocol (tags built by Estimator.__sklearn_tags__) ------------------------------

    KIND = KIND
    _CONFIG_NAME = "forecaster"
    _FIT_CALL = "fit(values)"
    _estimator_type = "regressor"
    _SKLEARN_INPUT_TAGS = {"one_d_array": True, "two_d_array": True}  # values (T,) or (T, F)

    # --- preprocessing -------------------------------------------------------------------------------

    def _log(self, name: str, values: np.ndarray) -> np.ndarray:
        if not self.log:
            return values
        target = values[:, 0]
        if (target <= 0).any():
            row = int(np.argmax(target <= 0))
            column = self.columns_[0] if hasattr(self, "columns_") else "0"
            raise ValueError(f"{name}: column {column!r} must be positive for log=True, "
                             f"got {target[row]} at row {row}")
        values = values.copy()
        values[:, 0] = np.log(target)
        return values

    def _inputs(self, name: str, values: np.ndarray, dates: object) -> np.ndarray:
        """(T, F) checked values -> (T, F') network inputs: log, scale, calendar columns."""
        scaled = self.scaler_.transform(self._log(name, values))
        if not self.calendar:
            return scaled
        if dates is None:
            raise ValueError("dates: calendar=True needs the date of every row of values")
        return np.concatenate([scaled, calendar_features(_as_dates(dates, len(values)))], axis=1)

    def _relative(self, x: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """With delta, the windows' target column and the targets minus each window's last target value."""
        if not self.delta:
            return x, y
        last = x[:, -1, 0].copy()  # (N,)
        x = x.copy()
        x[:, :, 0] -= last[:, None]
        return x, None if y is None else y - last[:, None]

    # --- training ------------------------------------------------------------------------------------

    def fit(
        self,
        values: object,
        dates: object | None = None,
        *,
        columns: Sequence[str] | None = None,
        callbacks: Sequence[object] = (),
        engine: str = "numpy",
        device: str | None = None,
        distributed=None,
    ) -> RNNForecaster:
        """Train on ``values`` (T,) or (T, F), target first; ``dates`` (T,) datetime64 for ``calendar``.

        Pass only the training part of a series: the scaler is fitted on exactly these values. ``columns``
        names the value columns (default "y", "x1", "x2", …). Returns self. ``engine``, ``device``,
        ``distributed``: the torch engine and data-parallel training, as :meth:`unrolled.RNNClassifier.fit`.
        """
        check_engine(engine, device)
        values = _as_values("values", values)
        t_len, n_features = values.shape
        check_positive_int("window", self.window)
        net_config = ForecasterNetConfig(
            input_size=n_features + (2 if self.calendar else 0), hidden_size=self.hidden_size,
            horizon=self.horizon, cell=self.cell, num_layers=self.num_layers, dropout=self.dropout,
        )
        train_config = TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, clip_norm=self.clip_norm,
            patience=self.patience, seed=self.random_state,
        )
        check_probability("validation_fraction", self.validation_fraction, noun="a number")
        needed = self.window + self.horizon
        if t_len < needed:
            raise ValueError(f"values: {t_len} rows, but window {self.window} + horizon {self.horizon} needs "
                             f"at least {needed}")
        columns = tuple(columns) if columns is not None else ("y",) + tuple(f"x{i}" for i in range(1, n_features))
        if len(columns) != n_features:
            raise ValueError(f"columns: expected {n_features} names (one per column of values), got {len(columns)}")
        started = time.perf_counter()

        self.columns_ = columns
        self.n_features_in_ = n_features
        self.scaler_ = StandardScaler().fit(self._log("values", values))  # training values only
        self.net_config_ = net_config
        x, y = self._relative(*make_windows(self._inputs("values", values, dates), self.window, self.horizon))
        n_dev = int(round(len(x) * self.validation_fraction))
        if self.validation_fraction > 0 and not 1 <= n_dev < len(x):
            raise ValueError(f"validation_fraction: {self.validation_fraction} of {len(x)} windows leaves no "
                             "training or no validation window")
        n_train = len(x) - n_dev
        if distributed is not None:
            distributed.check_size(n_train, "training windows")
        check_training_memory(net_config, batch_size=min(self.batch_size, n_train), steps=self.window, itemsize=8,
                              device=device, length=(f"window {self.window}", "lower window"))
        self.params_ = init_forecaster_params(net_config, np.random.default_rng([self.random_state, 1]))

        def make_batches(rng: np.random.Generator) -> list[np.ndarray]:
            order = rng.permutation(n_train)
            return [order[i : i + train_config.batch_size] for i in range(0, n_train, train_config.batch_size)]

        def batch_inputs(batch: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
            return {"x": x[batch], "y": y[batch]}

        def batch_loss(batch: np.ndarray, rng: np.random.Generator):
            b = batch_inputs(batch, rng)
            _, loss, cache = forecaster_forward(self.params_, net_config, b["x"], targets=b["y"], training=True,
                                                rng=rng)
            return loss, forecaster_backward(cache)

        evaluate = None
        if n_dev:

            def evaluate() -> float:  # validation MSE in scaled units (lower is better)
                return forecaster_forward(self.params_, net_config, x[n_train:], targets=y[n_train:])[1]

        self.history_: TrainHistory = self._train_loop(
            make_batches, batch_loss, train_config, evaluate=evaluate, higher_is_better=False, callbacks=callbacks,
            engine=engine, device=device, distributed=distributed,
            torch_task=TorchTask(net_config, batch_inputs, "forecaster"),
        )
        self.training_seconds_ = time.perf_counter() - started + self.seconds_before_resume_
        return self

    # --- inference -----------------------------------------------------------------------------------

    def predict(self, history: object, dates: object | None = None) -> np.ndarray:
        """The next ``horizon`` target values (original units) after ``history`` (t,) or (t, F), t >= window.

        Only the last ``window`` rows are used; ``dates`` (t,) are needed with ``calendar``.
        """
        self._check_fitted()
        history = _as_values("history", history, self.n_features_in_)
        if len(history) < self.window:
            raise ValueError(f"history: {len(history)} rows, but the model reads the last {self.window}")
        inputs = self._inputs("history", history, dates)[-self.window :]  # (W, F')
        return self._predict_windows(inputs[None])[0]

    def _predict_windows(self, inputs: np.ndarray) -> np.ndarray:
        """(N, W, F') network inputs -> (N, K) forecasts of the target in original units."""
        x, _ = self._relative(inputs)
        pred, _, _ = forecaster_forward(self.params_, self.net_config_, x)
        scaled = pred + (inputs[:, -1, :1] if self.delta else 0.0)  # (N, K)
        out = self.scaler_.inverse_target(scaled)
        return np.exp(out) if self.log else out

    def forecast(self, history: object, steps: int, dates: object | None = None) -> np.ndarray:
        """The next ``steps`` target values after ``history``.

        Up to ``horizon`` steps this is the start of :meth:`predict`. Beyond it the forecast is recursive:
        the predictions are appended to the history (and, with ``calendar``, the dates extended by their
        spacing, monthly series by calendar month) and the model predicts again. That needs the future of
        every input column, so it is refused with exogenous columns.
        """
        self._check_fitted()
        check_positive_int("steps", steps)
        if steps > MAX_STEPS:
            raise ValueError(f"steps: expected at most {MAX_STEPS:,} (a recursive forecast that far ahead says "
                             f"little), got {steps:,}")
        if steps <= self.horizon:
            return self.predict(history, dates)[:steps]
        if self.n_features_in_ > 1:
            raise ValueError(f"steps: {steps} is beyond the horizon ({self.horizon}), which needs the future "
                             f"values of the exogenous columns {', '.join(self.columns_[1:])}; forecast at "
                             f"most {self.horizon} steps")
        history = _as_values("history", history, 1)[:, 0]
        if self.calendar:
            if dates is None:
                raise ValueError("dates: calendar=True needs the date of every row of history")
            dates = _as_dates(dates, len(history))
            if len(dates) < 2:
                raise ValueError("dates: extending the dates beyond the history needs at least 2 of them")
            dates = np.concatenate([dates, future_dates(dates, steps)])  # spaced like the history's
        predictions: list[np.ndarray] = []
        done, context = 0, history
        while done < steps:  # each prediction reads only the last window of history and predictions
            end = len(history) + done
            pred = self.predict(context, dates[end - len(context) : end] if self.calendar else None)
            predictions.append(pred)
            done += len(pred)
            context = np.concatenate([context, pred])[-self.window :]
        return np.concatenate(predictions)[:steps]

    def score(self, values: object, dates: object | None = None) -> float:
        """R², the coefficient of determination of the model's forecasts over ``values`` (higher is better, as
        scikit-learn expects: 1 is perfect, 0 no better than forecasting the mean, below 0 worse).

        Every window of ``values`` (T,) or (T, F), rows i to i + W - 1 for i = 0 … T - W - K, is a forecast
        origin, and the model predicts the next K = ``horizon`` target values from it as :meth:`predict` does
        with that window as the history (``dates`` (T,) are needed with ``calendar``). With y the true and ŷ
        the forecast values (original units) of all N·K (window, step) pairs and ȳ the mean of y:

            R² = 1 - Σ (y - ŷ)² / Σ (y - ȳ)²

        pooled over the steps (``sklearn.metrics.r2_score`` of the flattened arrays). A constant y gives 1.0
        for exact forecasts and 0.0 otherwise, as scikit-learn does. Pass only data the model was not fitted on
        to measure how it forecasts.
        """
        self._check_fitted()
        values = _as_values("values", values, self.n_features_in_)
        needed = self.window + self.horizon
        if len(values) < needed:
            raise ValueError(f"values: {len(values)} rows, but window {self.window} + horizon {self.horizon} needs "
                             f"at least {needed}")
        inputs, _ = make_windows(self._inputs("values", values, dates), self.window, self.horizon)  # (N, W, F')
        _, truth = make_windows(values, self.window, self.horizon)  # (N, K) the target, original units
        residual = float(np.sum((truth - self._predict_windows(inputs)) ** 2))
        total = float(np.sum((truth - truth.mean()) ** 2))
        if total == 0.0:
            return 1.0 if residual == 0.0 else 0.0
        return 1.0 - residual / total

    # --- checkpoints (save and load: Estimator) -------------------------------------------------------

    def _config_fields(self) -> dict[str, Any]:
        return {"scaler": self.scaler_.to_json(), "columns": list(self.columns_)}

    def _restore_config(self, config: dict[str, Any]) -> None:
        self.net_config_ = restore.net_config(ForecasterNetConfig, config)
        check_positive_int("estimator.window", self.window)
        if self.horizon != self.net_config_.horizon:
            raise ValueError(f"estimator.horizon {self.horizon} does not match model.horizon "
                             f"{self.net_config_.horizon}")
        self.scaler_ = _restored_scaler(restore.field(config, "scaler"))
        columns = restore.field(config, "columns")
        if (not isinstance(columns, list) or not columns or not all(isinstance(c, str) and c for c in columns)
                or len(set(columns)) != len(columns)):
            raise ValueError(f"columns: expected an array of distinct column names, got {restore.json_value(columns)}")
        self.columns_ = tuple(columns)
        inputs = len(columns) + (2 if self.calendar else 0)
        if inputs != self.net_config_.input_size:
            raise ValueError(f"model.input_size {self.net_config_.input_size} does not match the {len(columns)} "
                             f"column(s){' and 2 calendar features' if self.calendar else ''} ({inputs} inputs)")
        _check_series_record(config.get("series", {}))

    def _restore_checkpoint(self, checkpoint: Checkpoint, path: Path) -> None:
        self.n_features_in_ = len(self.columns_)
        if self.scaler_.mean_.shape != (self.n_features_in_,):
            raise ValueError(f"{path / 'config.json'}: the scaler has {self.scaler_.mean_.shape[0]} columns, but "
                             f"columns names {self.n_features_in_}")


def _restored_scaler(obj: object) -> StandardScaler:
    """config.json's "scaler": {"mean": [numbers], "scale": [positive numbers]}, one of each per column."""
    expected = 'expected {"mean": [numbers], "scale": [positive numbers]} of one length'
    if not isinstance(obj, dict) or set(obj) != {"mean", "scale"}:
        raise ValueError(f"scaler: {expected}, got {restore.json_value(obj)}")
    for name in ("mean", "scale"):
        values = obj[name]
        if not isinstance(values, list) or not values or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise ValueError(f"scaler.{name}: {expected}, got {restore.json_value(values)}")
    if len(obj["mean"]) != len(obj["scale"]):
        raise ValueError(f"scaler: {len(obj['mean'])} means but {len(obj['scale'])} scales")
    bad = next((i for i, v in enumerate(obj["scale"]) if not v > 0), None)
    if bad is not None:
        raise ValueError(f"scaler.scale[{bad}]: expected a positive number, got {obj['scale'][bad]!r}")
    return StandardScaler.from_json(obj)


def _check_series_record(series: object) -> None:
    """config.json's "series", the record ``unrolled train --task forecast`` adds of the columns it read (what
    ``unrolled forecast`` reads again): column and date_column names, exog names, fill."""
    if not isinstance(series, dict):
        raise ValueError(f"series: expected an object, got {restore.json_value(series)}")
    for name, accepts in (("column", lambda v: isinstance(v, str)), ("date_column", lambda v: v is None or
                          isinstance(v, str)), ("fill", lambda v: isinstance(v, str)),
                          ("exog", lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v))):
        if name in series and not accepts(series[name]):
            what = "an array of column names" if name == "exog" else "a string"
            raise ValueError(f"series.{name}: expected {what}, got {restore.json_value(series[name])}")
