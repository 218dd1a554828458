"""A training run's promises at the command line: output paths checked before any work, an interrupted run's
state never overwritten, ``--resume`` refusing what would not continue the same run, and every exception one
line (in-process, with a signal simulated by the loop's interrupt flag; tests/robustness/test_kill.py sends real
signals)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.robustness.conftest import Snapshot, assert_clean_error, run_cli
from unrolled.resume import StopSignals

ROWS = ["sentence\tlabel"] + [f"{'good fine great' if i % 2 else 'bad dull awful'} {i}\t{i % 2}" for i in range(40)]
TRAIN = ["train", "--train", "train.tsv", "--epochs", "3", "--hidden-size", "4", "--embedding-dim", "4",
         "--batch-size", "4", "--quiet"]


@pytest.fixture
def data(workdir):
    (workdir / "train.tsv").write_text("\n".join(ROWS) + "\n")
    return workdir


def _interrupt_at(monkeypatch, step: int) -> None:
    """Make the run's StopSignals report a SIGTERM once ``step`` steps are done (as a real signal would)."""
    from unrolled.cli import common

    original = common.progress_callbacks

    class Trigger:
        def __init__(self, flag):
            self.flag = flag

        def on_batch_end(self, done, loss):
            if done == step:
                self.flag.requested = 15

    def patched(args, model):
        callbacks = original(args, model)
        return [Trigger(args.resume_plan.signals), *callbacks] if callbacks else callbacks

    for module in ("unrolled.cli.classify", "unrolled.cli.forecast"):
        monkeypatch.setattr(f"{module}.progress_callbacks", patched)


def test_an_interrupted_run_exits_143_keeps_its_state_and_resumes_to_the_same_model(data, monkeypatch):
    assert run_cli(*TRAIN, "--out", "ref", cwd=data).code == 0
    _interrupt_at(monkeypatch, 12)
    result = run_cli(*TRAIN, "--out", "m", cwd=data)
    line = assert_clean_error(result, code=143, names=("SIGTERM", "m.partial", "unrolled train --resume m"))
    assert "epoch 2, step 12" in line
    assert not (data / "m").exists() and (data / "m.partial" / "training-state.json").is_file()
    # a new run to the same --out would throw the state away: refused, nothing changed
    snapshot = Snapshot(data)
    assert_clean_error(run_cli(*TRAIN, "--out", "m", cwd=data), names=("m.partial", "--resume m"))
    snapshot.assert_unchanged()
    monkeypatch.undo()
    assert run_cli("train", "--resume", "m", "--quiet", cwd=data).code == 0
    assert (data / "m" / "model.safetensors").read_bytes() == (data / "ref" / "model.safetensors").read_bytes()
    assert not (data / "m.partial").exists()


def test_resume_runs_in_the_directory_the_run_started_in(data, monkeypatch, tmp_path_factory):
    assert run_cli(*TRAIN, "--out", "ref", cwd=data).code == 0
    _interrupt_at(monkeypatch, 5)
    assert run_cli(*TRAIN, "--out", "m", cwd=data).code == 143
    monkeypatch.undo()
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    assert run_cli("train", "--resume", str(data / "m"), "--quiet", cwd=elsewhere).code == 0
    assert (data / "m" / "model.safetensors").read_bytes() == (data / "ref" / "model.safetensors").read_bytes()
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("extra, names", [
    (["--lr", "0.1"], ("--lr", "--resume continues")),
    (["--epochs=9"], ("--epochs",)),
    (["--out", "x"], ("--out",)),
])
def test_resume_takes_no_training_options(data, monkeypatch, extra, names):
    _interrupt_at(monkeypatch, 5)
    assert run_cli(*TRAIN, "--out", "m", cwd=data).code == 143
    snapshot = Snapshot(data)
    assert_clean_error(run_cli("train", "--resume", "m", *extra, cwd=data), code=2, names=names)
    snapshot.assert_unchanged()


def test_resume_refuses_changed_or_missing_data(data, monkeypatch):
    _interrupt_at(monkeypatch, 5)
    assert run_cli(*TRAIN, "--out", "m", cwd=data).code == 143
    monkeypatch.undo()
    (data / "train.tsv").write_text("\n".join(ROWS[:-1]) + "\n")
    snapshot = Snapshot(data)
    assert_clean_error(run_cli("train", "--resume", "m", cwd=data), names=("train.tsv", "changed since"))
    snapshot.assert_unchanged()
    (data / "train.tsv").unlink()
    assert_clean_error(run_cli("train", "--resume", "m", cwd=data), names=("train.tsv", "gone"))


@pytest.mark.parametrize("setup, names", [
    (lambda d: None, ("nothing", "no interrupted run to resume")),
    (lambda d: shutil.copytree(d / "ref", d / "nothing"), ("nothing", "a finished model")),
    (lambda d: (d / "nothing").mkdir(), ("nothing", "no interrupted run")),
])
def test_resume_with_nothing_to_resume_is_one_line(data, setup, names):
    assert run_cli(*TRAIN, "--out", "ref", cwd=data).code == 0
    setup(data)
    snapshot = Snapshot(data)
    assert_clean_error(run_cli("train", "--resume", "nothing", cwd=data), names=names)
    snapshot.assert_unchanged()


def test_a_damaged_state_is_one_line_naming_the_file(data, monkeypatch):
    _interrupt_at(monkeypatch, 5)
    assert run_cli(*TRAIN, "--out", "m", cwd=data).code == 143
    (data / "m.partial" / "training-state.json").write_text("{")
    assert_clean_error(run_cli("train", "--resume", "m", cwd=data), names=("training-state.json", "invalid JSON"))


@pytest.mark.parametrize("options, names", [
    (["--engine", "torch", "--checkpoint-every", "3"], ("--checkpoint-every", "NumPy engine")),
    (["--checkpoint-every", "0"], ("--checkpoint-every",)),
])
def test_checkpoint_every_needs_a_resumable_run(data, options, names):
    if "torch" in options:
        pytest.importorskip("torch")
    snapshot = Snapshot(data)
    assert_clean_error(run_cli(*TRAIN, "--out", "m", *options, cwd=data), code=2, names=names)
    snapshot.assert_unchanged()


def test_output_paths_are_checked_before_training(data):
    assert run_cli(*TRAIN, "--out", "m", cwd=data).code == 0
    (data / "notadir").write_text("x")
    (data / "m.partial").write_text("a file where the run's state would go")
    snapshot = Snapshot(data)
    assert_clean_error(run_cli(*TRAIN, "--out", "m", cwd=data), names=("m.partial", "not a directory"))
    assert_clean_error(run_cli(*TRAIN, "--out", "notadir/m", cwd=data), names=("--out", "notadir", "not a directory"))
    snapshot.assert_unchanged()


def test_a_forecast_plot_that_cannot_be_written_fails_before_training_and_keeps_the_model(workdir):
    values = np.sin(np.arange(120) / 4.0)
    (workdir / "s.csv").write_text("y\n" + "\n".join(f"{v:.5f}" for v in values) + "\n")
    argv = ["train", "--task", "forecast", "--csv", "s.csv", "--column", "y", "--window", "8", "--horizon", "2",
            "--epochs", "1", "--hidden-size", "4", "--test-size", "10", "--quiet"]
    assert run_cli(*argv, "--out", "m", cwd=workdir).code == 0
    snapshot = Snapshot(workdir)
    assert_clean_error(run_cli(*argv, "--out", "m", "--plot", "nodir/p.png", cwd=workdir),
                       names=("--plot", "nodir"))
    (workdir / "adir").mkdir()
    snapshot = Snapshot(workdir)
    assert_clean_error(run_cli(*argv, "--out", "m", "--plot", "adir", cwd=workdir), names=("--plot", "is a folder"))
    snapshot.assert_unchanged()


@pytest.mark.parametrize("error", [TypeError("unsupported operand"), IndexError("index 9 is out of bounds"),
                                   AttributeError("'NoneType' object has no attribute 'shape'"), KeyError("x"),
                                   MemoryError()])
def test_any_exception_reaching_the_cli_is_one_line(data, monkeypatch, error):
    def boom(*args, **kwargs):
        raise error

    monkeypatch.setattr("unrolled.models.classifier.RNNClassifier.fit", boom)
    snapshot = Snapshot(data)
    line = assert_clean_error(run_cli(*TRAIN, "--out", "m", cwd=data),
                              names=("out of memory",) if isinstance(error, MemoryError) else (type(error).__name__,))
    assert "--debug" in line or isinstance(error, MemoryError)
    snapshot.assert_unchanged()
    with pytest.raises(type(error)):
        run_cli("--debug", *TRAIN, "--out", "m", cwd=data)


def test_stop_signals_turn_the_first_signal_into_a_request_and_the_second_into_an_interrupt():
    import os
    import signal

    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_nothing_a_user_loads_is_unpickled():
    """No pickle anywhere on the load paths: no pickle/marshal/shelve/joblib loads, no np.load with pickles
    allowed, no torch.load of whole objects, in the whole package."""
    import re
    from pathlib import Path

    import unrolled

    banned = re.compile(r"pickle\.loads?\(|marshal\.loads?\(|shelve\.open|joblib\.load|allow_pickle\s*=\s*True|"
                        r"torch\.load\((?![^)]*weights_only\s*=\s*True)")
    found = [f"{path}:{number}" for path in Path(unrolled.__file__).parent.rglob("*.py")
             for number, line in enumerate(path.read_text().splitlines(), 1) if banned.search(line)]
    assert found == []
