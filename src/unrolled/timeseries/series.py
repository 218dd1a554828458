"""Read a time series from CSV, add calendar features, cut it into windows, and scale it.

Dimension letters: T time steps, F columns (target first, then exogenous), N windows, W window length,
K forecast horizon.

Every problem with a file is one :class:`SeriesError` (a :class:`unrolled.data.readers.DataError`), so the
message names the file, the line and the field::

    data/air.csv:17: field 'Passengers': not a number: 'abc'
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unrolled.data.readers import DataError, _open_lines, check_readable_file

__all__ = ["SeriesError", "Series", "read_series", "calendar_features", "make_windows", "StandardScaler"]

_DATE_RE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")
_MONTHLY_SPACING_DAYS = 28  # a median spacing of at least this many days means monthly data


class SeriesError(DataError):
    """A problem with a series file: ``"<path>:<line>: field '<field>': <problem>"`` (also a ValueError)."""

    def __reduce__(self):
        return (_rebuild_series_error, (self.path, self.problem, self.line, self.field))


def _rebuild_series_error(path: str, problem: str, line: int | None, field: str | None) -> SeriesError:
    return SeriesError(path, problem, line=line, field=field)


@dataclass(frozen=True)
class Series:
    """A series read by :func:`read_series`.

    ``values`` is (T, F) float64 with the target column first, then the exogenous columns in the order given;
    ``columns`` names them; ``dates`` is (T,) datetime64[D] or None when no date column was read.
    """

    values: np.ndarray  # (T, F) float64
    columns: tuple[str, ...]
    dates: np.ndarray | None  # (T,) datetime64[D]
    path: str

    @property
    def target(self) -> np.ndarray:
        """The target column, (T,)."""
        return self.values[:, 0]

    def __len__(self) -> int:
        return int(self.values.shape[0])


def _series_error(error: DataError) -> SeriesError:
    return SeriesError(error.path, error.problem, line=error.line, field=error.field)


def _parse_date(text: str, display: str, line: int, field: str) -> np.datetime64:
    text = text.strip()
    if not text:
        raise SeriesError(display, "empty value", line=line, field=field)
    if _DATE_RE.match(text):
        try:
            return np.datetime64(text, "D")  # "YYYY-MM" becomes the first of the month
        except ValueError:
            pass
    raise SeriesError(display, f"not a date (expected YYYY-MM-DD or YYYY-MM): {text!r}", line=line, field=field)


def _parse_value(text: str, display: str, line: int, field: str) -> float:
    """The cell as a float; NaN for an empty cell (a missing value)."""
    text = text.strip()
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise SeriesError(display, f"not a number: {text!r}", line=line, field=field) from None
    if not math.isfinite(value):
        raise SeriesError(display, f"not a finite number: {text!r}", line=line, field=field)
    return value


def read_series(
    path: str | os.PathLike[str],
    *,
    column: str,
    date_column: str | None = None,
    exog_columns: Sequence[str] = (),
    fill: str = "error",
) -> Series:
    """Read a CSV file with a header row (optionally gzip-compressed) into a :class:`Series`.

    ``column`` is the target; ``exog_columns`` are read after it as further input columns. With
    ``date_column`` the dates are parsed (``YYYY-MM-DD``, or ``YYYY-MM`` meaning the first of the month) and
    must be strictly increasing. An empty value cell is an error with ``fill="error"``; with
    ``fill="interpolate"`` it is filled linearly from its neighbours by position (not by date), but a missing
    first or last value is still an error. Every problem raises one :class:`SeriesError` naming the file,
    the line and the field. Blank lines at the end of the file are ignored. The file is read line by line as
    :mod:`unrolled.data.readers` reads data files: UTF-8 checked per line, a BOM dropped, only a regular file,
    no NUL bytes, lines of at most 8 MiB.
    """
    display = os.fspath(path)
    if fill not in ("error", "interpolate"):
        raise ValueError(f"fill: expected 'error' or 'interpolate', got {fill!r}")
    value_columns = (column, *exog_columns)
    repeated = next((name for i, name in enumerate(value_columns) if name in value_columns[:i]), None)
    if repeated is not None:
        where = "the target and an exogenous column" if repeated == column else "an exogenous column twice"
        raise ValueError(f"{display}: column {repeated!r} is given as {where}")
    if date_column is not None and date_column in value_columns:
        raise ValueError(f"{display}: column {date_column!r} is given as the date column and as a value column")
    try:
        check_readable_file(display)
    except DataError as error:
        raise _series_error(error) from None

    rows: list[list[float]] = []
    row_lines: list[int] = []
    dates: list[np.datetime64] = []
    date_lines: dict[np.datetime64, int] = {}
    reader = None
    try:
        # Line by line as the data readers read (gzip, UTF-8 named by line, a length limit, no NUL bytes).
        with _open_lines(display, display.lower().endswith(".gz")) as lines:
            reader = csv.reader(text + "\n" for _, text in lines)
            header = next(reader, None)
            if header is None:
                raise SeriesError(display, "empty file: no header line")
            names = [h.strip() for h in header]
            found = ", ".join(repr(n) for n in names)
            wanted = [*value_columns, *([] if date_column is None else [date_column])]
            for name in wanted:
                if name not in names:
                    raise SeriesError(display, f"missing column (columns: {found})", line=1, field=name)
            value_index = [names.index(c) for c in value_columns]
            date_index = None if date_column is None else names.index(date_column)
            blank_line = None
            for cells in reader:
                line = reader.line_num
                if not cells:
                    blank_line = blank_line or line
                    continue
                if blank_line is not None:
                    raise SeriesError(display, "blank line", line=blank_line)
                if len(cells) != len(names):
                    problem = f"expected {len(names)} fields ({', '.join(names)}), got {len(cells)}"
                    raise SeriesError(display, problem, line=line)
                if date_index is not None:
                    date = _parse_date(cells[date_index], display, line, date_column)
                    if date in date_lines:
                        problem = f"duplicate date {date} (also on line {date_lines[date]})"
                        raise SeriesError(display, problem, line=line, field=date_column)
                    if dates and date < dates[-1]:
                        problem = f"dates out of order: {date} comes after {dates[-1]} (line {row_lines[-1]})"
                        raise SeriesError(display, problem, line=line, field=date_column)
                    date_lines[date] = line
                    dates.append(date)
                rows.append([_parse_value(cells[i], display, line, c) for i, c in zip(value_index, value_columns)])
                row_lines.append(line)
    except SeriesError:
        raise
    except DataError as error:
        raise _series_error(error) from None
    except csv.Error as exc:
        raise SeriesError(display, f"broken CSV: {exc}", line=reader.line_num if reader else None) from None
    if not rows:
        raise SeriesError(display, "no data rows")

    values = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(value_columns))  # (T, F)
    for j, name in enumerate(value_columns):
        missing = np.isnan(values[:, j])
        if not missing.any():
            continue
        first = int(np.argmax(missing))
        if fill == "error":
            problem = "missing value (fill='interpolate', --fill interpolate, fills gaps)"
            raise SeriesError(display, problem, line=row_lines[first], field=name)
        for end in (0, len(values) - 1):
            if missing[end]:
                where = "first" if end == 0 else "last"
                problem = f"missing {where} value (interpolation needs values on both sides)"
                raise SeriesError(display, problem, line=row_lines[end], field=name)
        position = np.arange(len(values))
        values[missing, j] = np.interp(position[missing], position[~missing], values[~missing, j])
    return Series(
        values=values,
        columns=tuple(value_columns),
        dates=None if date_column is None else np.array(dates, dtype="datetime64[D]"),
        path=display,
    )


def calendar_features(dates: np.ndarray, freq: str | None = None) -> np.ndarray:
    """Position in the year as (T, 2) float64 ``[sin, cos]`` of ``2*pi*phase``.

    The phase is (month − 1)/12 for monthly data and (day-of-year − 1)/365.25 for daily data. ``freq``
    ("monthly" or "daily") is inferred from the median spacing of ``dates`` when not given (at least 28 days
    means monthly); pass it for fewer than two dates (e.g. a single future date).
    """
    dates = np.asarray(dates).astype("datetime64[D]")
    if dates.ndim != 1:
        raise ValueError(f"dates: expected a (T,) array, got shape {dates.shape}")
    if freq is None:
        if len(dates) < 2:
            raise ValueError("calendar_features: cannot infer the frequency from fewer than 2 dates; pass freq=")
        freq = _frequency(dates)
    if freq == "monthly":
        phase = (dates.astype("datetime64[M]").astype(np.int64) % 12) / 12.0
    elif freq == "daily":
        phase = (dates - dates.astype("datetime64[Y]")).astype(np.int64) / 365.25
    else:
        raise ValueError(f"freq: expected 'monthly', 'daily' or None, got {freq!r}")
    angle = 2.0 * np.pi * phase
    return np.stack([np.sin(angle), np.cos(angle)], axis=1).astype(np.float64)  # (T, 2)


def make_windows(values: np.ndarray, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut (T, F) values (or a (T,) series) into supervised pairs.

    Returns X (N, W, F) and Y (N, K) with N = T − W − K + 1, ``X[i] = values[i:i+W]`` and
    ``Y[i] = values[i+W : i+W+K, 0]`` (the target is column 0).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"values: expected a (T, F) array, got shape {values.shape}")
    if window < 1 or horizon < 1:
        raise ValueError(f"window and horizon must be at least 1, got window {window}, horizon {horizon}")
    t_len = values.shape[0]
    if t_len < window + horizon:
        raise ValueError(
            f"series: {t_len} values, but window {window} + horizon {horizon} needs at least {window + horizon}"
        )
    n = t_len - window - horizon + 1
    starts = np.arange(n)
    x = values[starts[:, None] + np.arange(window)]  # (N, W, F)
    y = values[starts[:, None] + window + np.arange(horizon), 0]  # (N, K)
    return x, y


class StandardScaler:
    """Per-column standardisation ``(v − mean_) / scale_``; a constant column gets scale 1.

    Fit it on the training part only (values before the first forecast origin); :meth:`inverse_target`
    undoes the scaling of column 0 (the target) for forecasts of any shape.
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None  # (F,)
        self.scale_: np.ndarray | None = None  # (F,)

    def fit(self, values: np.ndarray) -> StandardScaler:
        """Learn each column's mean and standard deviation from (T, F) or (T,) values."""
        values = self._as_2d(values)
        if values.shape[0] == 0:
            raise ValueError("StandardScaler.fit: no values")
        if not np.all(np.isfinite(values)):
            raise ValueError("StandardScaler.fit: values contain NaN or infinity")
        std = values.std(axis=0)
        self.mean_ = values.mean(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Scale (T, F) values (or a (T,) series when fitted on one column) with the fitted statistics."""
        mean, scale = self._fitted()
        arr = np.asarray(values, dtype=np.float64)
        two_d = self._as_2d(arr)
        if two_d.shape[1] != mean.shape[0]:
            raise ValueError(f"values: fitted on {mean.shape[0]} columns, got {two_d.shape[1]}")
        return ((two_d - mean) / scale).reshape(arr.shape)

    def inverse_target(self, y: np.ndarray) -> np.ndarray:
        """Undo the scaling of column 0 (the target) for an array of any shape."""
        mean, scale = self._fitted()
        return np.asarray(y, dtype=np.float64) * scale[0] + mean[0]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"mean": [...], "scale": [...]}``."""
        mean, scale = self._fitted()
        return {"mean": mean.tolist(), "scale": scale.tolist()}

    @classmethod
    def from_json(cls, obj: Any) -> StandardScaler:
        """Rebuild from :meth:`to_json` output."""
        if not isinstance(obj, dict) or set(obj) != {"mean", "scale"}:
            raise ValueError("StandardScaler.from_json: expected an object with fields 'mean' and 'scale'")
        mean = np.asarray(obj["mean"], dtype=np.float64)
        scale = np.asarray(obj["scale"], dtype=np.float64)
        if mean.ndim != 1 or mean.shape != scale.shape or not np.all(scale > 0):
            raise ValueError("StandardScaler.from_json: 'mean' and 'scale' must be equal-length lists, scale > 0")
        scaler = cls()
        scaler.mean_, scaler.scale_ = mean, scale
        return scaler

    def _fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if self.mean_ is None or self.scale_ is None:
            raise ValueError("StandardScaler is not fitted yet: call fit(train_values) first")
        return self.mean_, self.scale_

    @staticmethod
    def _as_2d(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            return values[:, None]
        if values.ndim != 2:
            raise ValueError(f"values: expected a (T, F) or (T,) array, got shape {values.shape}")
        return values


def _frequency(dates: np.ndarray) -> str:
    """"monthly" or "daily", from the median spacing of at least two dates."""
    spacing = float(np.median(np.diff(dates).astype(np.int64)))
    return "monthly" if spacing >= _MONTHLY_SPACING_DAYS else "daily"


def future_dates(dates: np.ndarray, steps: int) -> np.ndarray:
    """The ``steps`` dates after the last of ``dates`` (T >= 2), spaced like them: monthly series step by
    calendar month (first of the month), others by the median spacing in days."""
    dates = np.asarray(dates, dtype="datetime64[D]")
    if len(dates) < 2:
        raise ValueError("dates: need at least two dates to tell the spacing of the series")
    if _frequency(dates) == "monthly":
        months = dates[-1].astype("datetime64[M]") + np.arange(1, steps + 1)
        return months.astype("datetime64[D]")
    spacing = int(round(np.median(np.diff(dates).astype(np.int64))))
    return dates[-1] + np.arange(1, steps + 1) * np.timedelta64(spacing, "D")
