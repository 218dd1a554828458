"""The robustness suite's harness: run a command on bad input and hold it to the promises of
docs/reliability.md — the exit code, one error line that names what the user gave, no traceback, nothing
left behind, nothing that existed changed.

``run_cli`` calls :func:`unrolled.cli.main` in-process (fast); ``run_process`` starts ``python -m unrolled``
(for what only a real process shows: the interpreter's own tracebacks, signals, stdin streaming).
``Snapshot`` records a directory tree (names and bytes) so that a case can assert it is unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from unrolled.cli import main


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(*argv: str, stdin: str = "", cwd: Path | None = None) -> Result:
    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err):  # argparse writes its usage errors to sys.stderr
            code = main([str(a) for a in argv], out=out, err=err, stdin=io.StringIO(stdin))
    finally:
        os.chdir(previous)
    return Result(code, out.getvalue(), err.getvalue())


def run_process(*argv: str, stdin: str | bytes = "", cwd: Path | None = None, timeout: float = 120,
                env: dict[str, str] | None = None) -> Result:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    done = subprocess.run([sys.executable, "-m", "unrolled", *map(str, argv)], input=data, capture_output=True,
                          cwd=cwd, timeout=timeout, env={**os.environ, **(env or {})})
    return Result(done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))


def assert_clean_error(result: Result, *, code: int = 1, names: tuple[str, ...] = ()) -> str:
    """The run failed with ``code``, printed exactly one non-empty line on stderr (prefixed "unrolled"),
    no traceback, and the line contains every string of ``names`` (the file, the line, the field, the flag);
    returns the line."""
    assert result.code == code, f"exit {result.code}, expected {code}; stderr: {result.err!r}"
    assert "Traceback" not in result.err, result.err
    lines = result.error_lines
    assert len(lines) == 1, f"expected one error line, got {len(lines)}: {result.err!r}"
    line = lines[0]
    assert line.startswith("unrolled"), line
    for name in names:
        assert str(name) in line, f"{name!r} not named in {line!r}"
    return line


class Snapshot:
    """Every file under ``root`` with the sha256 of its bytes; ``assert_unchanged`` after the run."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.files = self._take()

    def _take(self) -> dict[str, str]:
        files = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                rel = str(path.relative_to(self.root))
                files[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        return files

    def assert_unchanged(self) -> None:
        now = self._take()
        added = sorted(set(now) - set(self.files))
        removed = sorted(set(self.files) - set(now))
        changed = sorted(k for k in set(now) & set(self.files) if now[k] != self.files[k])
        assert not (added or removed or changed), f"added {added}, removed {removed}, changed {changed}"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory; tests write their inputs here, then snapshot it."""
    return tmp_path


def run_cli_captured(*argv: str, stdin: str = "", cwd: Path | None = None) -> Result:
    """``run_cli``, with what argparse writes to sys.stderr itself (usage errors, exit 2) and anything
    written to sys.stdout/sys.stderr directly (warnings) in the result too."""
    import contextlib

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        result = run_cli(*argv, stdin=stdin, cwd=cwd)
    return Result(result.code, out.getvalue() + result.out, err.getvalue() + result.err)


def copy_checkpoint(source: Path, target: Path) -> Path:
    """A copy of the checkpoint directory ``source`` at ``target`` (to damage without touching the original)."""
    import shutil

    shutil.copytree(source, target)
    return target


def edit_json(path: Path, change) -> None:
    """Read the JSON file ``path``, let ``change(obj)`` edit it in place, write it back."""
    import json

    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))


def edit_tensors(path: Path, change) -> None:
    """Read model.safetensors ``path``, let ``change(tensors)`` edit the dict in place, write it back."""
    from safetensors.numpy import load_file, save_file

    tensors = dict(load_file(str(path)))
    change(tensors)
    save_file(tensors, str(path))


def train_tiny_models(root: Path) -> dict[str, Path]:
    """One tiny checkpoint of each kind under ``root`` (trained by the CLI in about a second, all five), with
    the files they were trained on: {"classifier", "language_model", "forecaster", "translator",
    "speech_recognizer", and the data: "tsv", "text", "csv", "source", "target", "wav", "recordings"}."""
    import numpy as np

    from tests.audio.test_digits import make_fsdd

    root.mkdir(parents=True, exist_ok=True)
    paths = {"tsv": root / "tiny.tsv", "text": root / "tiny.txt", "csv": root / "series.csv",
             "source": root / "train.de", "target": root / "train.en"}
    paths["tsv"].write_text("sentence\tlabel\n" + "".join(
        f"{'good fun' if i % 2 else 'bad dull'} film {i}\t{i % 2}\n" for i in range(20)))
    paths["text"].write_text("abcab cabc " * 40)
    paths["csv"].write_text("y\n" + "".join(f"{np.sin(i / 3):.4f}\n" for i in range(60)))
    paths["source"].write_text("".join(f"eins rot {i % 3} .\n" for i in range(30)))
    paths["target"].write_text("".join(f"red one {i % 3} .\n" for i in range(30)))
    paths["recordings"] = make_fsdd(root / "recordings", speakers=("ann", "bob"), digits="01", takes=range(7))
    paths["wav"] = paths["recordings"] / "0_ann_0.wav"
    small = ["--epochs", "1", "--hidden-size", "4", "--quiet"]
    commands = {
        "classifier": ["--train", paths["tsv"], "--embedding-dim", "4"],
        "language_model": ["--task", "lm", "--text", paths["text"], "--embedding-dim", "4", "--batch-size", "2",
                           "--bptt", "8"],
        "forecaster": ["--task", "forecast", "--csv", paths["csv"], "--column", "y", "--window", "4",
                       "--horizon", "2"],
        "translator": ["--task", "translate", "--source", paths["source"], "--target", paths["target"],
                       "--embedding-dim", "4", "--min-freq", "1"],
        "speech_recognizer": ["--task", "speech", "--data", paths["recordings"], "--n-mels", "8", "--n-mfcc", "4",
                              "--batch-size", "8", "--validation-fraction", "0"],
    }
    for kind, argv in commands.items():
        paths[kind] = root / kind
        result = run_cli("train", *argv, *small, "--out", paths[kind])
        assert result.code == 0, (kind, result.err)
    return paths
