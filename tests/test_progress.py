"""The training progress reporter every task's `unrolled train` uses (unrolled.cli.common.Progress)."""

from __future__ import annotations

import io

from unrolled.cli.common import Progress
from unrolled.train import EpochResult


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def epoch(n: int, loss: float = 0.5, metric: float | None = None, improved: bool = False) -> EpochResult:
    return EpochResult(n, loss, metric, 1e-3, 2.0, improved)


def test_live_line_has_elapsed_eta_rate_and_running_loss():
    now = [0.0]
    stream = Terminal()
    progress = Progress(stream, quiet=False, clock=lambda: now[0])
    progress.on_train_begin(steps_per_epoch=10, epochs=2)
    for step in range(1, 6):
        now[0] = step * 1.0  # one step a second
        progress.on_batch_end(step, loss=float(step))
    line = stream.getvalue().split("\r")[-1]
    assert line.startswith("epoch 1/2 [")
    assert "5/10" in line and "00:05 elapsed" in line and "ETA 00:15" in line and "1.0 steps/s" in line
    assert "loss 3.0000" in line  # the mean of the recent losses 1..5
    progress.on_epoch_end(epoch(1, 0.25, 0.8, True), None)
    assert stream.getvalue().endswith("\r\033[Kepoch 1/2  loss 0.2500  dev accuracy 0.8000  2.0s *\n")


def test_not_a_terminal_one_line_per_epoch_and_at_most_about_25():
    stream = io.StringIO()
    progress = Progress(stream, quiet=False, metric="val MSE")
    progress.on_train_begin(steps_per_epoch=3, epochs=300)
    for n in range(1, 301):
        progress.on_batch_end(n * 3, 1.0)
        progress.on_epoch_end(epoch(n, improved=n == 150, metric=0.1 if n == 150 else None), None)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0].startswith("epoch 1/300") and lines[-1].startswith("epoch 300/300")
    assert any(line.startswith("epoch 150/300") and "val MSE 0.1000" in line for line in lines)
    assert 20 <= len(lines) <= 27
    short = io.StringIO()
    progress = Progress(short, quiet=False)
    progress.on_train_begin(steps_per_epoch=3, epochs=10)
    for n in range(1, 11):
        progress.on_epoch_end(epoch(n), None)
    assert len(short.getvalue().splitlines()) == 10  # short runs: every epoch


def test_quiet_prints_nothing():
    stream = Terminal()
    progress = Progress(stream, quiet=True)
    progress.on_train_begin(steps_per_epoch=2, epochs=1)
    progress.on_batch_end(1, 0.3)
    progress.on_epoch_end(epoch(1), None)
    assert stream.getvalue() == ""


def test_forecast_training_reports_progress(tmp_path):
    from unrolled.cli import main

    csv = tmp_path / "s.csv"
    csv.write_text("y\n" + "\n".join(str(i % 7) for i in range(80)) + "\n")
    err = io.StringIO()
    code = main(["train", "--task", "forecast", "--csv", str(csv), "--column", "y", "--window", "8", "--horizon", "2",
                 "--hidden-size", "4", "--epochs", "3", "--out", str(tmp_path / "m")], out=io.StringIO(), err=err)
    assert code == 0, err.getvalue()
    assert [line.split()[1] for line in err.getvalue().splitlines()] == ["1/3", "2/3", "3/3"]
