"""Time-series forecasting benchmark: the RNN forecaster against naive, seasonal-naive and Holt-Winters
baselines on the shared series, evaluated by the same rolling-origin code on a held-out tail.

    UNROLLED_DATA_DIR=../shared/data python benchmarks/forecast.py            # 5 seeds, writes docs/
    UNROLLED_DATA_DIR=../shared/data python benchmarks/forecast.py --seeds 0  # quick look

Airline passengers: monthly 1949-1960, the last 24 months held out, horizon 12, season 12.
Daily minimum temperatures (Melbourne): the last 365 days held out, horizons 1 and 7, season 365.
The RNN trains on everything before the held-out tail (its scaling too) and forecasts from every origin
in the tail; the baselines forecast from the same origins. Results go to stdout and to the "Forecasting"
section of docs/forecasting.md, with a plot of the airline forecast in docs/forecast_airline.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from unrolled.models.forecaster import RNNForecaster
from unrolled.timeseries import baselines
from unrolled.timeseries.evaluate import compare
from unrolled.timeseries.series import read_series


@dataclass(frozen=True)
class Task:
    name: str
    file: str
    column: str
    date_column: str
    test_size: int
    horizon: int
    season: int
    model: dict = field(default_factory=dict)
    holt_winters: bool = True


TASKS = (
    Task("airline, h=12", "airline_passengers.csv", "Passengers", "Month", 24, 12, 12,
         dict(window=24, cell="lstm", hidden_size=32, log=True, delta=True, epochs=300, batch_size=16, lr=5e-3)),
    Task("min temperature, h=1", "daily_min_temperatures.csv", "Temp", "Date", 365, 1, 365,
         dict(window=30, cell="gru", hidden_size=32, calendar=True, delta=True, epochs=20, batch_size=64, lr=3e-3),
         holt_winters=False),
    Task("min temperature, h=7", "daily_min_temperatures.csv", "Temp", "Date", 365, 7, 365,
         dict(window=30, cell="gru", hidden_size=32, calendar=True, delta=True, epochs=20, batch_size=64, lr=3e-3),
         holt_winters=False),
)


# Tried on the airline validation tail (the 24 months before the held-out test tail; the models train on
# the 96 months before that): `--tune`. The configuration with the lowest mean validation RMSE over the
# seeds becomes TASKS[0]'s model.
AIRLINE_CANDIDATES = {
    "gru-h32-w24": dict(window=24, cell="gru", hidden_size=32, log=True, delta=True, epochs=300, batch_size=16, lr=5e-3),
    "gru-h16-w24": dict(window=24, cell="gru", hidden_size=16, log=True, delta=True, epochs=300, batch_size=16, lr=5e-3),
    "gru-h32-w36": dict(window=36, cell="gru", hidden_size=32, log=True, delta=True, epochs=300, batch_size=16, lr=5e-3),
    "gru-h32-w24-e150": dict(window=24, cell="gru", hidden_size=32, log=True, delta=True, epochs=150, batch_size=16,
                             lr=5e-3),
    "lstm-h32-w24": dict(window=24, cell="lstm", hidden_size=32, log=True, delta=True, epochs=300, batch_size=16,
                         lr=5e-3),
    "gru-h32-w24-d2": dict(window=24, cell="gru", hidden_size=32, log=True, delta=True, epochs=300, batch_size=16,
                           lr=5e-3, dropout=0.2),
}


TUNING_RESULT = """\
| candidate | validation RMSE (mean ± std) | validation MASE |
|---|---:|---:|
| gru-h32-w24 | 35.77 ± 1.84 | 0.974 |
| gru-h16-w24 | 36.83 ± 1.74 | 1.016 |
| gru-h32-w36 | 40.97 ± 1.57 | 1.099 |
| gru-h32-w24-e150 | 37.83 ± 0.81 | 1.036 |
| lstm-h32-w24 | 35.46 ± 1.75 | 0.959 |
| gru-h32-w24-d2 | 37.43 ± 1.30 | 1.034 |
"""  # the output of `--tune` (seeds 0-4), kept so the report shows how the configuration was picked


def tune_airline(seeds: list[int]) -> str:
    """Validation RMSE of each candidate (mean ± std over seeds); never reads the test tail."""
    task = TASKS[0]
    series = read_series(data_dir() / task.file, column=task.column, date_column=task.date_column)
    values, dates = series.values[: -task.test_size], series.dates[: -task.test_size]  # the test tail is cut off
    target, val = values[:, 0], task.test_size
    cut = len(values) - val
    lines = ["| candidate | validation RMSE (mean ± std) | validation MASE |", "|---|---:|---:|"]
    for name, kwargs in AIRLINE_CANDIDATES.items():
        rmses, mases = [], []
        for seed in seeds:
            model = RNNForecaster(horizon=task.horizon, random_state=seed, **kwargs).fit(values[:cut], dates=dates[:cut])
            m = compare(target, val, task.horizon, task.season,
                        {"rnn": lambda o: model.predict(values[:o], dates=dates[:o])})["rnn"]
            rmses.append(m["rmse"])
            mases.append(m["mase"])
        lines.append(f"| {name} | {np.mean(rmses):.2f} ± {np.std(rmses):.2f} | {np.mean(mases):.3f} |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def data_dir() -> Path:
    root = os.environ.get("UNROLLED_DATA_DIR")
    if not root or not (Path(root) / "timeseries").is_dir():
        sys.exit("set UNROLLED_DATA_DIR to the shared data folder (it holds timeseries/)")
    return Path(root) / "timeseries"


def run_task(task: Task, seeds: list[int], log=print) -> dict:
    series = read_series(data_dir() / task.file, column=task.column, date_column=task.date_column,
                         fill="interpolate")
    values, dates = series.values, series.dates
    target = values[:, 0]
    cut = len(values) - task.test_size
    h, m = task.horizon, task.season
    baseline_fns = {
        "naive": lambda o: baselines.naive(target[:o], h),
        "seasonal naive": lambda o: baselines.seasonal_naive(target[:o], h, m),
    }
    if task.holt_winters:
        baseline_fns["Holt-Winters"] = lambda o: baselines.holt_winters(target[:o], h, m)
    result = {"task": task, "baselines": compare(target, task.test_size, h, m, baseline_fns), "rnn": [], "models": []}
    for seed in seeds:
        started = time.perf_counter()
        model = RNNForecaster(horizon=h, random_state=seed, **task.model)
        model.fit(values[:cut], dates=dates[:cut])
        seconds = time.perf_counter() - started
        metrics = compare(target, task.test_size, h, m, {"rnn": lambda o: model.predict(values[:o], dates=dates[:o])})
        result["rnn"].append({**metrics["rnn"], "seed": seed, "seconds": seconds})
        result["models"].append(model)
        log(f"  {task.name} seed {seed}: MAE {metrics['rnn']['mae']:.3f} RMSE {metrics['rnn']['rmse']:.3f} "
            f"MASE {metrics['rnn']['mase']:.3f} ({seconds:.0f} s)")
    return result


def table(result: dict) -> str:
    task = result["task"]
    lines = [f"### {task.name}: last {task.test_size} values held out, horizon {task.horizon}, "
             f"{task.test_size - task.horizon + 1} forecast origins, MASE scaled by the in-sample "
             f"seasonal-naive error (season {task.season})\n",
             "| forecaster | MAE | RMSE | MAPE % | MASE |", "|---|---:|---:|---:|---:|"]
    runs = result["rnn"]

    def spread(key: str, digits: int) -> str:
        v = np.array([r[key] for r in runs])
        return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"

    lines.append(f"| RNN ({task.model.get('cell', 'gru').upper()}, mean ± std over {len(runs)} seeds) | "
                 f"{spread('mae', 3)} | {spread('rmse', 3)} | {spread('mape', 2)} | {spread('mase', 3)} |")
    for name, m in result["baselines"].items():
        lines.append(f"| {name} | {m['mae']:.3f} | {m['rmse']:.3f} | {m['mape']:.2f} | {m['mase']:.3f} |")
    per_seed = ", ".join(f"seed {r['seed']}: MAE {r['mae']:.3f}, RMSE {r['rmse']:.3f}" for r in runs)
    lines.append(f"\nEvery seed: {per_seed}. Training time {np.mean([r['seconds'] for r in runs]):.0f} s per model "
                 f"(2 cores). Model: `RNNForecaster({', '.join(f'{k}={v!r}' for k, v in task.model.items())})`.\n")
    return "\n".join(lines)


def verdicts(results: list[dict]) -> str:
    """The issue's targets, checked against the numbers above."""
    lines = []
    airline = results[0]
    rnn_mase = np.mean([r["mase"] for r in airline["rnn"]])
    rnn_rmse = np.mean([r["rmse"] for r in airline["rnn"]])
    hw = airline["baselines"].get("Holt-Winters")
    lines.append(f"- Airline: MASE {rnn_mase:.3f} (target < 1: {'met' if rnn_mase < 1 else 'missed'})" + (
        f"; RMSE {rnn_rmse:.2f} vs Holt-Winters {hw['rmse']:.2f}, ratio {rnn_rmse / hw['rmse']:.3f} "
        f"(target ≤ 1.10: {'met' if rnn_rmse <= 1.1 * hw['rmse'] else 'missed'})" if hw else ""))
    for result in results[1:]:
        rnn_mae = np.mean([r["mae"] for r in result["rnn"]])
        best = min(result["baselines"]["naive"]["mae"], result["baselines"]["seasonal naive"]["mae"])
        lines.append(f"- {result['task'].name}: MAE {rnn_mae:.3f} vs the better of naive and seasonal naive "
                     f"{best:.3f} (target: lower: {'met' if rnn_mae < best else 'missed'})")
    return "\n".join(lines)


def plot_airline(result: dict, path: Path) -> None:
    from unrolled.plot import plot_forecast

    task = result["task"]
    series = read_series(data_dir() / task.file, column=task.column, date_column=task.date_column)
    values, dates, target = series.values, series.dates, series.values[:, 0]
    origin = len(values) - task.test_size
    model = result["models"][0]
    steps = task.test_size
    curves = {
        "rnn": model.forecast(values[:origin], steps, dates=dates[:origin]),
        "seasonal naive": baselines.seasonal_naive(target[:origin], steps, task.season),
        "Holt-Winters": baselines.holt_winters(target[:origin], steps, task.season),
        "naive": baselines.naive(target[:origin], steps),
    }
    plot_forecast(path, title=f"Airline passengers: the last {steps} months held out, forecasts from "
                  f"{str(dates[origin])[:7]} (RNN: seed 0)",
                  history=(dates[:origin], target[:origin]), actual=(dates[origin:], target[origin:]),
                  forecasts={name: (dates[origin:], curve) for name, curve in curves.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", default="docs/forecasting.md")
    parser.add_argument("--tune", action="store_true", help="only compare AIRLINE_CANDIDATES on the validation tail")
    args = parser.parse_args()
    if args.tune:
        print(tune_airline(args.seeds))
        return
    results = [run_task(task, args.seeds) for task in TASKS]
    body = "\n\n".join(table(r) for r in results)
    text = f"""# Forecasting

Made by `benchmarks/forecast.py` on {date.today()} ({os.cpu_count()} cores); rerun:
`UNROLLED_DATA_DIR=../shared/data python benchmarks/forecast.py --seeds {' '.join(map(str, args.seeds))}`.

Each forecaster predicts from every origin in the held-out tail whose whole horizon lies in the tail,
using only the values before the origin; the metrics pool all (origin, step) pairs. The RNN is trained
once per seed on the values before the tail, and its scaling is fitted on those values only. MAPE leaves
out actual values of 0 (the temperature series has some). Holt-Winters: statsmodels' ExponentialSmoothing,
additive trend, multiplicative season. The RNN configurations below were written down before the first
run and not tuned on the held-out tails (there is no separate validation split for these series).

{body}

## Against the targets

{verdicts(results)}

![airline forecast](forecast_airline.png)
"""
    text += f"""
## Tuning (airline, validation tail)

The airline configuration was chosen on the 24 months before the test tail (models trained on the 96
months before those), 5 seeds each, by `python benchmarks/forecast.py --tune`; the lowest mean validation
RMSE won (the LSTM, by a margin well inside the spread). The temperature configuration was not tuned.

{TUNING_RESULT}
"""
    print(text)
    Path(args.out).write_text(text)
    plot_airline(results[0], Path(args.out).parent / "forecast_airline.png")


if __name__ == "__main__":
    main()
