import numpy as np
import pytest

from unrolled.timeseries.metrics import mae, mape, mase, rmse

ACTUAL = np.array([2.0, 4.0, 0.0, 5.0])
FORECAST = np.array([3.0, 2.0, 1.0, 5.0])  # errors 1, -2, 1, 0


def test_mae_rmse_by_hand():
    assert mae(ACTUAL, FORECAST) == pytest.approx(4 / 4)
    assert rmse(ACTUAL, FORECAST) == pytest.approx(np.sqrt((1 + 4 + 1 + 0) / 4))


def test_mape_excludes_zero_actuals():
    # kept: |1|/2, |2|/4, 0/5 -> (0.5 + 0.5 + 0) / 3
    assert mape(ACTUAL, FORECAST) == pytest.approx(100 * 1.0 / 3)
    with pytest.raises(ValueError, match="every actual value is 0"):
        mape(np.zeros(3), np.ones(3))


def test_mase_with_season():
    insample = np.array([1.0, 2.0, 4.0, 7.0, 11.0])
    # season 1: diffs 1, 2, 3, 4 -> scale 2.5; season 2: diffs 3, 5, 7 -> scale 5
    assert mase(ACTUAL, FORECAST, insample, season=1) == pytest.approx(1.0 / 2.5)
    assert mase(ACTUAL, FORECAST, insample, season=2) == pytest.approx(1.0 / 5.0)


def test_any_equal_shapes_and_mismatch():
    a = ACTUAL.reshape(2, 2)
    f = FORECAST.reshape(2, 2)
    assert mae(a, f) == mae(ACTUAL, FORECAST)
    with pytest.raises(ValueError, match="shape"):
        mae(ACTUAL, FORECAST[:3])
    with pytest.raises(ValueError, match="scale is 0"):
        mase(ACTUAL, FORECAST, np.ones(5), season=1)
