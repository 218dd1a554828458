import json

import numpy as np
import pytest

from unrolled.timeseries.baselines import naive, seasonal_naive
from unrolled.timeseries.evaluate import Evaluation, compare, rolling_origin
from unrolled.timeseries.metrics import mae


def test_origins_and_shapes():
    values = np.arange(20.0)  # T = 20
    ev = rolling_origin(values, test_size=6, horizon=3, forecast_fn=lambda o: np.full(3, float(o)))
    assert isinstance(ev, Evaluation)
    assert ev.origins.tolist() == [14, 15, 16, 17]  # T - test_size ... T - horizon
    assert ev.forecasts.shape == ev.actuals.shape == (4, 3)
    assert ev.actuals.tolist() == [[14, 15, 16], [15, 16, 17], [16, 17, 18], [17, 18, 19]]
    assert ev.forecasts[:, 0].tolist() == [14, 15, 16, 17]
    np.testing.assert_allclose(ev.per_step, [0.0, 1.0, 2.0])


def test_forecast_fn_never_sees_past_the_origin():
    values = np.arange(30.0)
    horizon = 4
    seen = []

    def forecast_fn(origin):
        history = values[:origin]
        assert history.size == origin and history[-1] < values[origin]  # only data before the origin
        assert origin + horizon <= values.size
        seen.append(origin)
        return naive(history, horizon)

    ev = rolling_origin(values, test_size=10, horizon=horizon, forecast_fn=forecast_fn)
    assert seen == list(range(20, 27))
    # naive forecast from the last seen value: error at step k is k
    np.testing.assert_allclose(ev.per_step, [1, 2, 3, 4])


def test_metrics_over_all_pairs_and_json():
    values = np.arange(1.0, 21.0)
    ev = rolling_origin(values, test_size=5, horizon=2, forecast_fn=lambda o: naive(values[:o], 2))
    m = ev.metrics(values[:15], season=1)
    assert set(m) == {"mae", "rmse", "mape", "mase"}
    assert m["mae"] == pytest.approx(mae(ev.actuals, ev.forecasts)) and m["mae"] == pytest.approx(1.5)
    assert m["mase"] == pytest.approx(1.5)  # in-sample naive scale is 1
    out = json.loads(json.dumps(ev.to_json()))
    assert out["origins"] == [15, 16, 17, 18] and out["per_step_mae"] == [1.0, 2.0]


def test_bad_forecast_shape_and_sizes():
    values = np.arange(10.0)
    with pytest.raises(ValueError, match="shape"):
        rolling_origin(values, 4, 2, lambda o: np.zeros(3))
    with pytest.raises(ValueError, match="no origin"):
        rolling_origin(values, 1, 2, lambda o: np.zeros(2))
    with pytest.raises(ValueError, match="no history"):
        rolling_origin(values, 10, 2, lambda o: np.zeros(2))


def test_compare_uses_training_part_for_mase():
    rng = np.random.default_rng(0)
    values = 10 + np.tile([0.0, 5.0, 2.0, 8.0], 12) + rng.normal(0, 0.5, 48)
    values[40:] += 100.0  # a jump in the tail: MASE scaled with the tail included would differ a lot
    forecasters = {
        "naive": lambda o: naive(values[:o], 4),
        "seasonal": lambda o: seasonal_naive(values[:o], 4, 4),
    }
    result = compare(values, test_size=8, horizon=4, season=4, forecasters=forecasters)
    assert set(result) == {"naive", "seasonal"}
    train = values[:40]
    scale = np.mean(np.abs(train[4:] - train[:-4]))
    for name, fn in forecasters.items():
        ev = rolling_origin(values, 8, 4, fn)
        assert result[name]["mae"] == pytest.approx(mae(ev.actuals, ev.forecasts))
        assert result[name]["mase"] == pytest.approx(result[name]["mae"] / scale)
