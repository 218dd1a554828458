"""The speech commands end to end: train --task speech (isolated and --connected), transcribe, evaluate,
explain (table, JSON, plot), their one-line errors, and a run on a small subset of the real FSDD recordings."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from tests.audio.test_digits import make_fsdd
from unrolled.cli import main

SMALL = ["--hidden-size", "16", "--num-layers", "1", "--n-mels", "20", "--n-mfcc", "10", "--lr", "0.01",
         "--batch-size", "16", "--time-masks", "0", "--feature-masks", "0"]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], out=out, err=err, stdin=io.StringIO(""))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def fsdd(tmp_path_factory):
    return make_fsdd(tmp_path_factory.mktemp("cli") / "recordings")


@pytest.fixture(scope="module")
def isolated(fsdd, tmp_path_factory):
    model = tmp_path_factory.mktemp("models") / "digits"
    code, out, err = run("train", "--task", "speech", "--data", fsdd, "--epochs", "10", *SMALL, "--out", model)
    assert code == 0, err
    return model, out


def test_train_scores_the_official_test_part(isolated):
    model, out = isolated
    assert "FSDD official split" in out and "held-out official: accuracy" in out
    config = json.loads((model / "config.json").read_text())
    assert config["kind"] == "speech_recognizer" and config["data"]["split"] == "official"
    assert config["metrics"]["held-out official"]["n"] == 3 * 4 * 5
    assert config["metrics"]["held-out official"]["accuracy"] >= 0.9


def test_transcribe_evaluate_explain(isolated, fsdd, tmp_path):
    model, _ = isolated
    wav = fsdd / "2_bob_1.wav"
    code, out, err = run("transcribe", "--model", model, wav, fsdd / "3_cy_0.wav")
    assert code == 0, err
    lines = [line.split("\t") for line in out.splitlines()]
    assert [(line[0], line[1]) for line in lines] == [(str(wav), "2"), (str(fsdd / "3_cy_0.wav"), "3")]
    assert all(0 < float(line[2]) <= 1 for line in lines)
    code, out, _ = run("transcribe", "--model", model, wav, "--json")
    assert json.loads(out)["transcript"] == "2"
    code, out, err = run("evaluate", "--model", model, fsdd)
    assert code == 0, err
    assert "84 utterances" in out and "confusion (rows: true, columns: predicted)" in out
    code, out, _ = run("evaluate", "--model", model, fsdd, "--json")
    assert json.loads(out)["classes"]["confusion_matrix"]["labels"] == ["0", "1", "2", "3"]
    plot = tmp_path / "explain.png"
    code, out, err = run("explain", "--model", model, wav, "--plot", plot)
    assert code == 0, err
    assert "transcript: 2" in out and plot.stat().st_size > 1000
    code, out, _ = run("explain", "--model", model, wav, "--json")
    trace = json.loads(out)
    assert trace["transcript"] == "2" and len(trace["posteriors"]) == trace["frames"]


def test_connected_ctc_end_to_end(fsdd, tmp_path):
    model = tmp_path / "connected"
    code, out, err = run("train", "--task", "speech", "--data", fsdd, "--split", "speakers=cy", "--connected", "80",
                         "--connected-test", "10", "--stack", "2", "--epochs", "2", *SMALL, "--out", model, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["symbols"][0] == "<blank>" and summary["data"]["connected"] == 80
    assert summary["metrics"]["held-out speakers=cy"]["n"] == 10
    from unrolled.audio.digits import connected_digits, fsdd_recordings, write_connected_digits

    manifest = write_connected_digits(tmp_path / "set", connected_digits(fsdd_recordings(fsdd), 3, seed=9))
    code, out, err = run("evaluate", "--model", model, manifest)
    assert code == 0 and "3 utterances" in out, err
    code, out, err = run("explain", "--model", model, tmp_path / "set" / "00000.wav", "--beam", "2")
    assert code == 0 and "emits" in out, err


@pytest.mark.parametrize("argv, message", [
    (["--split", "random"], "split: expected official"),
    (["--split", "speakers=zed"], "zed not among the recordings' speakers"),
    (["--connected", "5", "--objective", "classify"], "need --objective ctc"),
])
def test_train_errors(fsdd, tmp_path, argv, message):
    code, _, err = run("train", "--task", "speech", "--data", fsdd, *argv, "--out", tmp_path / "m")
    assert code in (1, 2) and message in err and len(err.strip().splitlines()) == 1


def test_transcribe_errors(isolated, tmp_path):
    model, _ = isolated
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"")
    code, _, err = run("transcribe", "--model", model, bad)
    assert code == 1 and "bad.wav: an empty file" in err
    code, _, err = run("transcribe", "--model", tmp_path / "nothing", bad)
    assert code == 1 and "nothing" in err
    code, _, err = run("explain", "--model", model, bad, "--label", "2")
    assert code == 2 and "--label applies to classifiers of text" in err


def test_real_fsdd_subset(tmp_path):
    """Ten takes of three digits from two real speakers: train, then transcribe a held-out take."""
    root = os.environ.get("UNROLLED_DATA_DIR")
    folder = Path(root or "") / "fsdd" / "recordings"
    if not root or not folder.is_dir():
        pytest.skip("UNROLLED_DATA_DIR does not hold fsdd/recordings")
    subset = tmp_path / "recordings"
    subset.mkdir()
    for digit in "017":
        for speaker in ("theo", "jackson"):
            for take in range(10):
                (subset / f"{digit}_{speaker}_{take}.wav").symlink_to(folder / f"{digit}_{speaker}_{take}.wav")
    model = tmp_path / "model"
    code, out, err = run("train", "--task", "speech", "--data", subset, "--epochs", "12", "--hidden-size", "32",
                         "--num-layers", "1", "--lr", "0.005", "--validation-fraction", "0", "--out", model)
    assert code == 0, err
    accuracy = json.loads((model / "config.json").read_text())["metrics"]["held-out official"]["accuracy"]
    assert accuracy >= 0.8, out
    code, out, _ = run("transcribe", "--model", model, subset / "7_theo_2.wav")
    assert out.split("\t")[1] == "7"
