"""The command line, called in-process: exit codes, text and JSON output."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from unrolled.cli import main


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_demo_trains_and_predicts_the_seed_sentence():
    code, text = run("demo", "--epochs", "40", "i love this", "i hate this")
    assert code == 0
    lines = text.splitlines()
    first_loss = float(lines[0].split("loss")[1].split()[0])
    last_loss = float(lines[-3].split("loss")[1].split()[0])
    assert last_loss < first_loss / 10
    assert lines[-2].startswith("'i love this' -> positive")
    assert lines[-1].startswith("'i hate this' -> negative")


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_demo_json_has_history_and_predictions(cell):
    code, text = run("demo", "--cell", cell, "--epochs", "5", "--json", "great film")
    assert code == 0
    data = json.loads(text)
    assert data["cell"] == cell
    assert [h["epoch"] for h in data["history"]] == [1, 2, 3, 4, 5]
    (prediction,) = data["predictions"]
    assert prediction["text"] == "great film"
    assert prediction["label"] in ("negative", "positive")
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)


def test_demo_is_deterministic_under_a_seed():
    assert run("demo", "--epochs", "5", "--json", "--seed", "3") == run("demo", "--epochs", "5", "--json", "--seed", "3")
    assert run("demo", "--epochs", "5", "--json", "--seed", "3") != run("demo", "--epochs", "5", "--json", "--seed", "4")


@pytest.mark.parametrize("argv", [["demo", "--epochs", "0"], ["demo", "--cell", "transformer"], ["frobnicate"], []])
def test_usage_errors_exit_2(argv, capsys):
    code, _ = run(*argv)
    assert code == 2


def test_version_and_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "unrolled", "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.startswith("unrolled ")
