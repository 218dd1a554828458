"""The forecasting commands: ``unrolled train --task forecast`` and ``unrolled forecast``.

Like :mod:`unrolled.cli`, this module only orchestrates library calls and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

import numpy as np

from unrolled.cli import UsageError, _file_summary, _positive_int, with_defaults

FORECAST_DEFAULTS = {"hidden": 32, "epochs": 300, "batch_size": 16, "lr": 5e-3, "clip_norm": 1.0}

FORECAST_HELP = """\
Forecast the next values of a series with a trained forecaster: reads the series (the same columns the
model was trained on) from a CSV file and forecasts --steps values after its last row; beyond the model's
horizon the forecast is rolled out recursively (not possible with exogenous columns).

example:
  unrolled forecast --model models/airline --csv airline_passengers.csv --steps 24 --plot airline.png
"""


def add_forecast_training_options(train: argparse.ArgumentParser) -> None:
    group = train.add_argument_group("forecast: data and model")
    group.add_argument("--csv", metavar="FILE", help="the series, a CSV file with a header (required for forecast)")
    group.add_argument("--column", help="the column to forecast (required for forecast)")
    group.add_argument("--date-column", help="dates (YYYY-MM or YYYY-MM-DD); must be sorted and unique")
    group.add_argument("--exog", nargs="+", default=[], metavar="COLUMN", help="exogenous input columns")
    group.add_argument("--fill", choices=("error", "interpolate"), default="error",
                       help="a missing value is an error (default) or is interpolated linearly")
    group.add_argument("--window", type=_positive_int, default=24, help="input window length (default: 24)")
    group.add_argument("--horizon", type=_positive_int, default=12, help="values forecast at once (default: 12)")
    group.add_argument("--season", type=_positive_int,
                       help="season length, e.g. 12 for monthly data: seasonal baselines and MASE")
    group.add_argument("--log", action="store_true", help="model log values (multiplicative seasonality)")
    group.add_argument("--calendar", action="store_true", help="add time-of-year inputs (needs --date-column)")
    group.add_argument("--test-size", type=int, default=0, metavar="N",
                       help="hold out the last N values; train on the rest and evaluate on them")
    group.add_argument("--plot", metavar="FILE", help="with --test-size: draw the held-out tail and the forecasts")


def add_forecast_command(commands, command) -> None:
    forecast = command("forecast", "forecast the next values of a series", FORECAST_HELP)
    forecast.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory of a forecaster")
    forecast.add_argument("--csv", required=True, metavar="FILE", help="the series to continue")
    forecast.add_argument("--steps", type=_positive_int, help="values to forecast (default: the model's horizon)")
    forecast.add_argument("--plot", metavar="FILE", help="draw the recent history and the forecast")
    forecast.add_argument("--json", action="store_true", help="print the forecast as JSON")


def evaluate_on_tail(model, values: np.ndarray, dates, test_size: int, season: int | None) -> dict:
    """Rolling-origin evaluation of the model and the baselines on the last ``test_size`` values."""
    from unrolled.timeseries import baselines
    from unrolled.timeseries.evaluate import compare

    target = values[:, 0]
    horizon = model.horizon
    forecasters = {
        "rnn": lambda o: model.predict(values[:o], dates=None if dates is None else dates[:o]),
        "naive": lambda o: baselines.naive(target[:o], horizon),
    }
    if season:
        forecasters["seasonal_naive"] = lambda o: baselines.seasonal_naive(target[:o], horizon, season)
        try:
            import statsmodels  # noqa: F401  (optional: only the Holt-Winters baseline needs it)

            forecasters["holt_winters"] = lambda o: baselines.holt_winters(target[:o], horizon, season)
        except ImportError:
            pass
    return compare(target, test_size, horizon, season or 1, forecasters)


def run_train_forecast(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    from unrolled.models.forecaster import RNNForecaster
    from unrolled.timeseries.series import read_series

    if not args.csv or not args.column:
        raise UsageError("--csv FILE and --column NAME are required for --task forecast")
    if args.calendar and not args.date_column:
        raise UsageError("--calendar needs --date-column")
    if args.test_size < 0:
        raise UsageError(f"--test-size: expected a number >= 0, got {args.test_size}")
    args = with_defaults(args, FORECAST_DEFAULTS)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {args.out}: exists and is not a directory")

    series = read_series(args.csv, column=args.column, date_column=args.date_column, exog_columns=args.exog,
                         fill=args.fill)
    values, dates = series.values, series.dates
    length = len(values)
    needed = args.window + args.horizon
    if args.test_size and length - args.test_size < needed:
        raise ValueError(f"{args.csv}: {length} values leave {length - args.test_size} for training after "
                         f"--test-size {args.test_size}, but window {args.window} + horizon {args.horizon} "
                         f"needs at least {needed}")
    if args.test_size and args.test_size < args.horizon:
        raise UsageError(f"--test-size {args.test_size} is shorter than --horizon {args.horizon}")
    cut = length - args.test_size
    model = RNNForecaster(
        window=args.window, horizon=args.horizon, cell=args.cell, hidden_size=args.hidden, num_layers=args.layers,
        dropout=args.dropout, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, clip_norm=args.clip_norm,
        log=args.log, calendar=args.calendar, random_state=args.seed,
    )
    model.fit(values[:cut], dates=None if dates is None else dates[:cut], columns=series.columns)

    metrics = evaluate_on_tail(model, values, dates, args.test_size, args.season) if args.test_size else {}
    if metrics and args.plot:
        _plot_tail(model, series, args)
    command = ["unrolled", *sys.argv[1:]] if sys.argv and Path(sys.argv[0]).name in ("unrolled", "__main__.py") else None
    extra = {
        "series": {"column": args.column, "date_column": args.date_column, "exog": list(args.exog), "fill": args.fill},
        "evaluation": {"test_size": args.test_size, "season": args.season, "metrics": metrics},
        "data": {"train": _file_summary(args.csv, length, 0)},
        "command": command,
    }
    model.save(out_dir, extra=extra)
    if args.json:
        json.dump({"out": str(out_dir), "values": length, "trained_on": cut, "metrics": metrics}, out, indent=2)
        out.write("\n")
    elif not args.quiet:
        out.write(f"saved {out_dir}: trained on {cut} of {length} values\n")
        if metrics:
            out.write(metrics_table(metrics, args.test_size, args.horizon))


def metrics_table(metrics: dict[str, dict[str, float]], test_size: int, horizon: int) -> str:
    lines = [f"\nheld-out last {test_size} values, every forecast origin, horizon {horizon}:\n",
             f"{'forecaster':<16}{'MAE':>10}{'RMSE':>10}{'MAPE %':>10}{'MASE':>8}\n"]
    for name, m in metrics.items():
        lines.append(f"{name:<16}{m['mae']:>10.3f}{m['rmse']:>10.3f}{m['mape']:>10.2f}{m['mase']:>8.3f}\n")
    return "".join(lines)


def _future_dates(dates: np.ndarray | None, steps: int) -> np.ndarray | None:
    """Dates after the last one, spaced like the series (monthly series step by calendar month)."""
    if dates is None:
        return None
    spacing = np.median(np.diff(dates).astype(np.int64))
    if 28 <= spacing <= 31:  # monthly
        months = dates[-1].astype("datetime64[M]") + np.arange(1, steps + 1)
        return months.astype("datetime64[D]")
    return dates[-1] + np.arange(1, steps + 1) * np.timedelta64(int(spacing), "D")


def run_forecast(args: argparse.Namespace, out: TextIO) -> None:
    from unrolled.checkpoint import load_checkpoint
    from unrolled.models.forecaster import RNNForecaster
    from unrolled.timeseries.series import read_series

    model = RNNForecaster.load(args.model)
    spec = load_checkpoint(args.model, kind="forecaster").config.get("series", {})
    if not spec.get("column"):
        raise ValueError(f"{Path(args.model) / 'config.json'}: no 'series' entry naming the column to read")
    series = read_series(args.csv, column=spec["column"], date_column=spec.get("date_column"),
                         exog_columns=spec.get("exog", ()), fill=spec.get("fill", "error"))
    steps = args.steps or model.horizon
    forecast = model.forecast(series.values, steps, dates=series.dates)
    future = _future_dates(series.dates, steps)
    if args.plot:
        from unrolled.plot import plot_forecast

        recent = min(len(series.values), max(4 * steps, 48))
        x_hist = np.arange(len(series.values))[-recent:] if future is None else series.dates[-recent:]
        x_future = np.arange(len(series.values), len(series.values) + steps) if future is None else future
        plot_forecast(args.plot, title=f"{spec['column']}: forecast of {steps} steps",
                      history=(x_hist, series.values[-recent:, 0]), forecasts={"rnn": (x_future, forecast)})
    rows = [{"step": i + 1, "date": None if future is None else str(future[i]), "value": float(v)}
            for i, v in enumerate(forecast)]
    if args.json:
        json.dump({"model": args.model, "column": spec["column"], "forecast": rows}, out, indent=2)
        out.write("\n")
        return
    for row in rows:
        out.write(f"{row['step']:>4}  {row['date'] or '':<10}  {row['value']:.4f}\n")


def _plot_tail(model, series, args: argparse.Namespace) -> None:
    """History before the tail, the tail's actual values, and each forecaster's forecast from the first
    origin of the tail (one curve each, readable at a glance)."""
    from unrolled.plot import plot_forecast
    from unrolled.timeseries import baselines

    values, dates = series.values, series.dates
    origin = len(values) - args.test_size
    x = np.arange(len(values)) if dates is None else dates
    steps = args.test_size
    target = values[:, 0]
    curves = {"rnn": model.forecast(values[:origin], steps, dates=None if dates is None else dates[:origin])}
    curves["naive"] = baselines.naive(target[:origin], steps)
    if args.season:
        curves["seasonal naive"] = baselines.seasonal_naive(target[:origin], steps, args.season)
        try:
            curves["Holt-Winters"] = baselines.holt_winters(target[:origin], steps, args.season)
        except ImportError:
            pass
    shown = max(0, origin - 4 * steps)
    plot_forecast(
        args.plot,
        title=f"{args.column}: last {steps} values held out, forecast from {x[origin]}",
        history=(x[shown:origin], target[shown:origin]),
        actual=(x[origin:], target[origin:]),
        forecasts={name: (x[origin:], curve) for name, curve in curves.items()},
    )
