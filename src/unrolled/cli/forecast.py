"""Forecasting: ``unrolled train --task forecast`` and ``unrolled forecast``.

The model options are :class:`unrolled.RNNForecaster`'s parameters (defaults read from it); reading the
series and the held-out evaluation belong to the command. Like the whole CLI, this module only orchestrates
library calls and prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unrolled.cli.common import (
    SEED_PARAM,
    Command,
    Param,
    Progress,
    Streams,
    UsageError,
    add_params,
    check_out_dir,
    command_line,
    file_summary,
    model_option,
    named_for_the_user,
    nonnegative_int,
    optimizer_params,
    param_values,
    progress_callbacks,
    positive_int,
    recurrent_params,
    training_runtime,
    write_json,
)


def model_params() -> tuple[Param, ...]:
    """RNNForecaster's parameters as options."""
    return (
        Param("window", "input window length", positive_int),
        Param("horizon", "values forecast at once", positive_int),
        Param("log", "model log values (multiplicative seasonality)"),
        Param("calendar", "add time-of-year inputs (needs --date-column)"),
        *recurrent_params("dropout between layers and on the final state"),
        *optimizer_params(),
        SEED_PARAM,
    )


TRAIN_HELP = """\
--task forecast: train a forecaster on one column of a CSV series: windows of --window values predict the
next --horizon values. With --test-size N the last N values are held out: the model trains on the rest
and is evaluated on that tail from every forecast origin, beside the naive, seasonal-naive (--season) and
Holt-Winters baselines.

example:
  unrolled train --task forecast --csv airline_passengers.csv --column Passengers --date-column Month \\
      --window 24 --horizon 12 --season 12 --log --test-size 24 --out models/airline
"""

FORECAST_HELP = """\
Forecast the next values of a series with a trained forecaster: reads the series (the same columns the
model was trained on) from a CSV file and forecasts --steps values after its last row; beyond the model's
horizon the forecast is rolled out recursively (not possible with exogenous columns).

example:
  unrolled forecast --model models/airline --csv airline_passengers.csv --steps 24 --plot airline.png
"""


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from unrolled.models.forecaster import RNNForecaster

    group = parser.add_argument_group("data and evaluation")
    group.add_argument("--csv", metavar="FILE", help="the series, a CSV file with a header (required)")
    group.add_argument("--column", help="the column to forecast (required)")
    group.add_argument("--date-column", help="dates (YYYY-MM or YYYY-MM-DD); must be sorted and unique")
    group.add_argument("--exog", nargs="+", default=[], metavar="COLUMN", help="exogenous input columns")
    group.add_argument("--fill", choices=("error", "interpolate"), default="error",
                       help="a missing value is an error (default) or is interpolated linearly")
    group.add_argument("--test-size", type=nonnegative_int, default=0, metavar="N",
                       help="hold out the last N values; train on the rest and evaluate on them")
    group.add_argument("--season", type=positive_int,
                       help="with --test-size: season length, e.g. 12 for monthly data, for the seasonal "
                            "baselines and MASE")
    group.add_argument("--plot", metavar="FILE", help="with --test-size: draw the held-out tail and the forecasts")
    add_params(parser.add_argument_group("model and training (RNNForecaster's parameters)"), RNNForecaster,
               model_params())


def add_forecast_arguments(parser: argparse.ArgumentParser) -> None:
    model_option(parser, None, "a forecaster")
    parser.add_argument("--csv", required=True, metavar="FILE", help="the series to continue")
    parser.add_argument("--steps", type=positive_int, help="values to forecast (default: the model's horizon)")
    parser.add_argument("--plot", metavar="FILE", help="draw the recent history and the forecast")
    parser.add_argument("--json", action="store_true", help="print the forecast as JSON")


def _holt_winters_available() -> bool:
    try:
        import statsmodels  # noqa: F401  (optional: only the Holt-Winters baseline needs it)
    except ImportError:
        return False
    return True


def evaluate_on_tail(model, values, dates, test_size: int, season: int | None) -> dict:
    """Rolling-origin evaluation of the model and the baselines on the last ``test_size`` values.
    Holt-Winters joins when statsmodels is installed and the training part holds two full seasons."""
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
        if _holt_winters_available() and len(values) - test_size >= 2 * season:
            forecasters["holt_winters"] = lambda o: baselines.holt_winters(target[:o], horizon, season)
    return compare(target, test_size, horizon, season or 1, forecasters)


def run_train(args: argparse.Namespace, streams: Streams) -> None:
    from unrolled.models.forecaster import RNNForecaster
    from unrolled.timeseries.series import read_series

    out = streams.out
    if not args.csv or not args.column:
        raise UsageError("--csv FILE and --column NAME are required for --task forecast")
    if args.calendar and not args.date_column:
        raise UsageError("--calendar needs --date-column")
    if not args.test_size and (args.season or args.plot):
        raise UsageError("--season and --plot evaluate on a held-out tail: they need --test-size")
    if args.test_size and args.test_size < args.horizon:
        raise UsageError(f"--test-size {args.test_size} is shorter than --horizon {args.horizon}")
    runtime = training_runtime(args)  # --engine/--device checked, torchrun's group joined
    out_dir = check_out_dir(args.out)

    series = read_series(args.csv, column=args.column, date_column=args.date_column, exog_columns=args.exog,
                         fill=args.fill)
    values, dates = series.values, series.dates
    length = len(values)
    cut = length - args.test_size
    needed = args.window + args.horizon
    if cut < needed:
        left = f" leave {cut} for training after --test-size {args.test_size}" if args.test_size else ""
        raise ValueError(f"{args.csv}: {length} values{left}, but --window {args.window} + --horizon "
                         f"{args.horizon} needs at least {needed}")
    if args.season and cut <= args.season:
        raise ValueError(f"{args.csv}: {cut} training values do not span one season (--season {args.season}), "
                         "which MASE and the seasonal baselines need")
    model = RNNForecaster(**param_values(args, RNNForecaster, model_params()))
    with named_for_the_user({"values": args.csv}, model_params()):
        model.fit(values[:cut], dates=None if dates is None else dates[:cut], columns=series.columns,
                  callbacks=[Progress(streams.err, args.quiet or args.json, metric="val MSE"),
                             *progress_callbacks(args, model)], **runtime.fit_options)
    if not runtime.is_main:
        return  # rank 0 writes the checkpoint and evaluates
    extra = {
        "series": {"column": args.column, "date_column": args.date_column, "exog": list(args.exog), "fill": args.fill},
        "data": {"train": {**file_summary(args.csv, length, 0), "trained_on": cut}},
        "command": command_line(args),
    }
    model.save(out_dir, extra=extra)  # saved before the evaluation, which cannot lose it
    metrics = evaluate_on_tail(model, values, dates, args.test_size, args.season) if args.test_size else {}
    if metrics:
        model.save(out_dir, extra={**extra, "evaluation": {"test_size": args.test_size, "season": args.season,
                                                           "metrics": metrics}})
    if metrics and args.plot:
        _plot_tail(model, series, args)
    if args.json:
        write_json({"out": str(out_dir), "values": length, "trained_on": cut, "metrics": metrics}, out)
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


def run_forecast(args: argparse.Namespace, streams: Streams) -> None:
    import numpy as np

    from unrolled.models.forecaster import RNNForecaster
    from unrolled.timeseries.series import SeriesError, future_dates, read_series

    out = streams.out
    if args.plot:
        from unrolled.plot import check_plot_path

        check_plot_path(args.plot, f"--plot {args.plot}")
    model = RNNForecaster.load(args.model)
    spec = model.config_.get("series", {})
    if not spec.get("column"):
        raise ValueError(f"{Path(args.model) / 'config.json'}: no 'series' entry naming the column to read")
    series = read_series(args.csv, column=spec["column"], date_column=spec.get("date_column"),
                         exog_columns=spec.get("exog", ()), fill=spec.get("fill", "error"))
    needed = max(model.window, 2 if series.dates is not None else 1)  # two dates tell the spacing
    if len(series) < needed:
        count = f"{len(series)} value{'s' if len(series) != 1 else ''}"
        raise SeriesError(args.csv, f"{count}, but the forecast needs at least {needed} (the model was trained "
                                    f"with --window {model.window})")
    steps = args.steps or model.horizon
    with named_for_the_user({"steps": "--steps"}):  # the library's "steps: …" is --steps
        forecast = model.forecast(series.values, steps, dates=series.dates)
    future = None if series.dates is None else future_dates(series.dates, steps)
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
        write_json({"model": args.model, "column": spec["column"], "forecast": rows}, out)
        return
    for row in rows:
        out.write(f"{row['step']:>4}  {row['date'] or '':<10}  {row['value']:.4f}\n")


def _plot_tail(model, series, args: argparse.Namespace) -> None:
    """History before the tail, the tail's actual values, and each forecaster's forecast from the first
    origin of the tail (one curve each, readable at a glance)."""
    import numpy as np

    from unrolled.plot import plot_forecast
    from unrolled.timeseries import baselines

    values, dates = series.values, series.dates
    origin = len(values) - args.test_size
    x = np.arange(len(values)) if dates is None else dates
    # Beyond the horizon the forecast is rolled out, which exogenous inputs (their future unknown) forbid.
    steps = args.test_size if values.shape[1] == 1 else model.horizon
    target = values[:, 0]
    curves = {"rnn": model.forecast(values[:origin], steps, dates=None if dates is None else dates[:origin])}
    curves["naive"] = baselines.naive(target[:origin], steps)
    if args.season:
        curves["seasonal naive"] = baselines.seasonal_naive(target[:origin], steps, args.season)
        if _holt_winters_available() and origin >= 2 * args.season:
            curves["Holt-Winters"] = baselines.holt_winters(target[:origin], steps, args.season)
    shown = max(0, origin - 4 * steps)
    plot_forecast(
        args.plot,
        title=f"{args.column}: last {args.test_size} values held out, forecast from {x[origin]}",
        history=(x[shown:origin], target[shown:origin]),
        actual=(x[origin:], target[origin:]),
        forecasts={name: (x[origin : origin + steps], curve) for name, curve in curves.items()},
    )


TRAIN = Command(TRAIN_HELP, add_train_arguments, run_train)
COMMANDS = {"forecast": Command(FORECAST_HELP, add_forecast_arguments, run_forecast)}
