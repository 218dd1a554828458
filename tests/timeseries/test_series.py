import json
import os
from pathlib import Path

import numpy as np
import pytest

from unrolled.data.readers import DataError
from unrolled.timeseries.series import (
    Series,
    SeriesError,
    StandardScaler,
    calendar_features,
    make_windows,
    read_series,
)


def write(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def one_line_error(exc: pytest.ExceptionInfo, path: Path, line: int | None = None, field: str | None = None) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(str(path))
    assert isinstance(exc.value, DataError) and isinstance(exc.value, ValueError)
    if line is not None:
        assert msg.startswith(f"{path}:{line}:")
        assert exc.value.line == line
    if field is not None:
        assert f"field {field!r}" in msg
    return msg


# --- the real files ---------------------------------------------------------------------------------------


def _data_dir() -> Path:
    root = os.environ.get("UNROLLED_DATA_DIR")
    if not root:
        pytest.skip("UNROLLED_DATA_DIR is not set (it points at the shared data folder)")
    return Path(root) / "timeseries"


def test_real_airline_passengers():
    s = read_series(_data_dir() / "airline_passengers.csv", column="Passengers", date_column="Month")
    assert s.values.shape == (144, 1) and s.values.dtype == np.float64
    assert s.columns == ("Passengers",)
    assert s.dates[0] == np.datetime64("1949-01-01") and s.dates[-1] == np.datetime64("1960-12-01")
    assert s.values[:3, 0].tolist() == [112.0, 118.0, 132.0]
    assert s.values.min() == 104 and s.values.max() == 622
    assert s.values.mean() == pytest.approx(280.30, abs=0.01)
    feats = calendar_features(s.dates)
    assert feats.shape == (144, 2)
    np.testing.assert_allclose(feats[12], feats[0], atol=1e-12)  # same month a year later


def test_real_daily_min_temperatures():
    s = read_series(_data_dir() / "daily_min_temperatures.csv", column="Temp", date_column="Date")
    assert s.values.shape == (3650, 1)
    assert s.dates[0] == np.datetime64("1981-01-01") and s.dates[-1] == np.datetime64("1990-12-31")
    assert np.datetime64("1984-12-31") not in s.dates
    assert s.values.min() == 0.0 and s.values.max() == pytest.approx(26.3)


def test_real_sunspots():
    s = read_series(_data_dir() / "monthly_sunspots.csv", column="Sunspots", date_column="Month")
    assert s.values.shape == (2820, 1)


# --- small files ------------------------------------------------------------------------------------------


def test_reads_target_exog_and_dates(tmp_path):
    path = write(tmp_path, "Date,y,x\n2020-01-01,1.5,10\n2020-01-02,2,20\n2020-01-04,-3e0,30\n")
    s = read_series(path, column="y", date_column="Date", exog_columns=["x"])
    assert isinstance(s, Series)
    assert s.values.tolist() == [[1.5, 10.0], [2.0, 20.0], [-3.0, 30.0]]
    assert s.columns == ("y", "x")
    assert s.dates.dtype == np.dtype("datetime64[D]")
    assert s.dates.tolist() == [np.datetime64(d).item() for d in ("2020-01-01", "2020-01-02", "2020-01-04")]
    assert s.path == str(path)


def test_monthly_dates_are_first_of_month_and_no_date_column(tmp_path):
    path = write(tmp_path, "Month,P\n1949-01,112\n1949-02,118\n")
    s = read_series(path, column="P", date_column="Month")
    assert list(s.dates) == [np.datetime64("1949-01-01"), np.datetime64("1949-02-01")]
    assert read_series(path, column="P").dates is None


def test_trailing_blank_lines_and_crlf(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(b"Month,P\r\n1949-01,1\r\n1949-02,2\r\n\r\n")
    assert read_series(path, column="P", date_column="Month").values[:, 0].tolist() == [1.0, 2.0]


def test_error_pickles(tmp_path):
    import pickle

    err = pickle.loads(pickle.dumps(SeriesError("a.csv", "not a number: 'x'", line=3, field="y")))
    assert type(err) is SeriesError and str(err) == "a.csv:3: field 'y': not a number: 'x'"


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(SeriesError, match="no such file") as exc:
        read_series(tmp_path / "nope.csv", column="y")
    one_line_error(exc, tmp_path / "nope.csv")
    with pytest.raises(SeriesError, match="directory") as exc:
        read_series(tmp_path, column="y")
    one_line_error(exc, tmp_path)


def test_empty_file_and_header_only(tmp_path):
    empty = write(tmp_path, "", "empty.csv")
    with pytest.raises(SeriesError, match="empty file") as exc:
        read_series(empty, column="y")
    one_line_error(exc, empty)
    header_only = write(tmp_path, "Month,y\n", "header.csv")
    with pytest.raises(SeriesError, match="no data rows") as exc:
        read_series(header_only, column="y")
    one_line_error(exc, header_only)


def test_missing_column_lists_columns(tmp_path):
    path = write(tmp_path, "Month,Passengers\n1949-01,112\n")
    with pytest.raises(SeriesError) as exc:
        read_series(path, column="passengers", date_column="Month")
    msg = one_line_error(exc, path, line=1, field="passengers")
    assert "'Month', 'Passengers'" in msg
    with pytest.raises(SeriesError) as exc:
        read_series(path, column="Passengers", date_column="Date")
    one_line_error(exc, path, line=1, field="Date")
    with pytest.raises(SeriesError) as exc:
        read_series(path, column="Passengers", exog_columns=["temp"])
    one_line_error(exc, path, line=1, field="temp")


def test_non_numeric_cell(tmp_path):
    path = write(tmp_path, "Month,y\n1949-01,1\n1949-02,abc\n")
    with pytest.raises(SeriesError) as exc:
        read_series(path, column="y", date_column="Month")
    msg = one_line_error(exc, path, line=3, field="y")
    assert msg == f"{path}:3: field 'y': not a number: 'abc'"


def test_non_finite_cell(tmp_path):
    path = write(tmp_path, "y\n1\nnan\n")
    with pytest.raises(SeriesError) as exc:
        read_series(path, column="y")
    one_line_error(exc, path, line=3, field="y")


def test_missing_value_is_an_error_by_default(tmp_path):
    path = write(tmp_path, "Month,y,x\n1949-01,1,5\n1949-02,,6\n1949-03,3,7\n")
    with pytest.raises(SeriesError, match="missing value") as exc:
        read_series(path, column="y", date_column="Month")
    one_line_error(exc, path, line=3, field="y")


def test_interpolation_fills_a_gap_linearly(tmp_path):
    path = write(tmp_path, "Month,y,x\n1949-01,1,10\n1949-02,,\n1949-03, ,\n1949-04,7,40\n1949-05,8,50\n")
    s = read_series(path, column="y", date_column="Month", exog_columns=["x"], fill="interpolate")
    assert s.values[:, 0].tolist() == pytest.approx([1.0, 3.0, 5.0, 7.0, 8.0])
    assert s.values[:, 1].tolist() == pytest.approx([10.0, 20.0, 30.0, 40.0, 50.0])


@pytest.mark.parametrize(("text", "line"), [("y\n\n2\n3\n", 2), ("y\n1\n2\n\n", 4)])
def test_interpolation_refuses_missing_first_or_last(tmp_path, text, line):
    path = write(tmp_path, text.replace("\n\n", "\n \n"))
    with pytest.raises(SeriesError, match="missing (first|last) value") as exc:
        read_series(path, column="y", fill="interpolate")
    one_line_error(exc, path, line=line, field="y")


def test_ragged_row(tmp_path):
    path = write(tmp_path, "Month,y\n1949-01,1\n1949-02,2,9\n")
    with pytest.raises(SeriesError, match="expected 2 fields") as exc:
        read_series(path, column="y", date_column="Month")
    one_line_error(exc, path, line=3)


def test_blank_line_in_the_middle(tmp_path):
    path = write(tmp_path, "y\n1\n\n2\n")
    with pytest.raises(SeriesError, match="blank line") as exc:
        read_series(path, column="y")
    one_line_error(exc, path, line=3)


@pytest.mark.parametrize("bad", ["1949/01/02", "1949-13", "1981-02-30", "yesterday", ""])
def test_unparseable_date(tmp_path, bad):
    path = write(tmp_path, f"Date,y\n1949-01-01,1\n{bad},2\n")
    with pytest.raises(SeriesError) as exc:
        read_series(path, column="y", date_column="Date")
    one_line_error(exc, path, line=3, field="Date")


def test_unsorted_dates_name_the_breaking_line(tmp_path):
    path = write(tmp_path, "Date,y\n2020-01-01,1\n2020-01-03,2\n2020-01-02,3\n2020-01-04,4\n")
    with pytest.raises(SeriesError, match="out of order") as exc:
        read_series(path, column="y", date_column="Date")
    msg = one_line_error(exc, path, line=4, field="Date")
    assert "2020-01-02" in msg and "2020-01-03" in msg and "line 3" in msg


def test_duplicate_dates_name_both_lines(tmp_path):
    path = write(tmp_path, "Month,y\n1949-01,1\n1949-02,2\n1949-02,3\n")
    with pytest.raises(SeriesError, match="duplicate date") as exc:
        read_series(path, column="y", date_column="Month")
    msg = one_line_error(exc, path, line=4, field="Month")
    assert "line 3" in msg


def test_bad_arguments(tmp_path):
    path = write(tmp_path, "y\n1\n")
    with pytest.raises(ValueError, match="fill"):
        read_series(path, column="y", fill="zero")


# --- calendar features ------------------------------------------------------------------------------------


def test_calendar_features_monthly():
    dates = np.arange("2000-01", "2001-03", dtype="datetime64[M]").astype("datetime64[D]")
    feats = calendar_features(dates)
    assert feats.shape == (14, 2) and feats.dtype == np.float64
    np.testing.assert_allclose(feats[0], [0.0, 1.0], atol=1e-12)  # January: phase 0
    np.testing.assert_allclose(feats[3], [1.0, 0.0], atol=1e-12)  # April: phase 3/12
    np.testing.assert_allclose(feats[6], [0.0, -1.0], atol=1e-12)  # July: phase 6/12
    np.testing.assert_allclose(feats[12], feats[0], atol=1e-12)


def test_calendar_features_daily():
    dates = np.arange("2001-01-01", "2001-12-31", dtype="datetime64[D]")
    feats = calendar_features(dates)
    angle = 2 * np.pi * 10 / 365.25  # 2001-01-11 is day 11: phase 10/365.25
    np.testing.assert_allclose(feats[10], [np.sin(angle), np.cos(angle)], atol=1e-12)
    # the same dates passed as monthly would give the month phase instead
    assert not np.allclose(calendar_features(dates, freq="monthly")[10], feats[10])


def test_calendar_features_needs_two_dates_or_freq():
    with pytest.raises(ValueError, match="freq"):
        calendar_features(np.array(["2000-01-01"], dtype="datetime64[D]"))
    one = calendar_features(np.array(["2000-04-01"], dtype="datetime64[D]"), freq="monthly")
    np.testing.assert_allclose(one, [[1.0, 0.0]], atol=1e-12)


# --- windows ----------------------------------------------------------------------------------------------


def test_make_windows_hand_example():
    values = np.array([[0, 10], [1, 11], [2, 12], [3, 13], [4, 14], [5, 15]], dtype=float)  # T=6, F=2
    x, y = make_windows(values, window=2, horizon=2)
    expected_x = [
        [[0, 10], [1, 11]],
        [[1, 11], [2, 12]],
        [[2, 12], [3, 13]],
    ]
    expected_y = [[2, 3], [3, 4], [4, 5]]
    assert x.shape == (3, 2, 2) and y.shape == (3, 2)
    assert x.tolist() == expected_x
    assert y.tolist() == expected_y


def test_make_windows_one_dimensional_and_exact_fit():
    x, y = make_windows(np.arange(5.0), window=3, horizon=2)
    assert x.shape == (1, 3, 1) and x[0, :, 0].tolist() == [0, 1, 2] and y.tolist() == [[3, 4]]


def test_make_windows_too_short():
    with pytest.raises(ValueError) as exc:
        make_windows(np.zeros((30, 1)), window=24, horizon=12)
    assert str(exc.value) == "series: 30 values, but window 24 + horizon 12 needs at least 36"


# --- scaler -----------------------------------------------------------------------------------------------


def test_scaler_fitted_on_train_only():
    rng = np.random.default_rng(0)
    values = np.column_stack([np.linspace(0, 100, 50), rng.normal(5, 2, 50)])
    k = 30
    scaler = StandardScaler().fit(values[:k])
    np.testing.assert_allclose(scaler.mean_, values[:k].mean(axis=0))
    np.testing.assert_allclose(scaler.scale_, values[:k].std(axis=0))
    assert not np.allclose(scaler.mean_, values.mean(axis=0))  # so a fit on everything would be caught
    tail = scaler.transform(values[k:])
    np.testing.assert_allclose(tail, (values[k:] - values[:k].mean(axis=0)) / values[:k].std(axis=0))
    # changing the tail does not change the fitted statistics
    changed = values.copy()
    changed[k:] *= 1000
    other = StandardScaler().fit(changed[:k])
    np.testing.assert_array_equal(other.mean_, scaler.mean_)
    np.testing.assert_array_equal(other.scale_, scaler.scale_)


def test_scaler_inverse_target_and_constant_column():
    values = np.array([[1.0, 7.0], [3.0, 7.0], [5.0, 7.0]])
    scaler = StandardScaler().fit(values)
    assert scaler.scale_[1] == 1.0  # constant column: std 0 -> 1
    z = scaler.transform(values)
    np.testing.assert_allclose(z[:, 1], 0.0)
    y = z[:, 0].reshape(3, 1) * np.ones((1, 4))  # any shape
    np.testing.assert_allclose(scaler.inverse_target(y), values[:, :1] * np.ones((1, 4)))


def test_scaler_json_round_trip_and_not_fitted():
    with pytest.raises(ValueError, match="not fitted"):
        StandardScaler().transform(np.zeros((2, 1)))
    scaler = StandardScaler().fit(np.array([[1.0, 2.0], [3.0, 6.0]]))
    again = StandardScaler.from_json(json.loads(json.dumps(scaler.to_json())))
    np.testing.assert_array_equal(again.mean_, scaler.mean_)
    np.testing.assert_array_equal(again.scale_, scaler.scale_)
    with pytest.raises(ValueError):
        StandardScaler.from_json({"mean": [0.0]})


def test_future_dates_step_by_calendar_month_or_by_the_spacing():
    from unrolled.timeseries.series import future_dates

    monthly = np.array(["1960-10-01", "1960-11-01", "1960-12-01"], dtype="datetime64[D]")
    assert [str(d) for d in future_dates(monthly, 3)] == ["1961-01-01", "1961-02-01", "1961-03-01"]
    daily = np.array(["1990-12-30", "1990-12-31"], dtype="datetime64[D]")
    assert [str(d) for d in future_dates(daily, 2)] == ["1991-01-01", "1991-01-02"]
    with pytest.raises(ValueError, match="at least two dates"):
        future_dates(monthly[:1], 2)
