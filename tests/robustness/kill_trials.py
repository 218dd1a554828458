"""Kill-and-resume trials, shared by tests/robustness/test_kill.py (a few per task) and benchmarks/resume.py
(ten per task, for docs/reliability.md).

A trial starts ``unrolled train`` as a real process over an ``--out`` that already holds an older model, sends it
SIGINT, SIGTERM or SIGKILL at a random moment (or kills it inside a checkpoint save), and then checks the
promises: the exit code (130, 143, or killed), ``--out`` still the previous model byte for byte or a complete
new one, no stray temporary directories once the next command has run, and ``unrolled train --resume`` (or, when
the run was killed before its first state was saved, the same command again) ending with a model.safetensors
identical to that of a run never interrupted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}

# Runs inside the child: SIGKILL itself at the N-th call of a checkpoint-writing step (the save's renames and
# file writes), to land a kill inside a save rather than between them.
_KILL_IN_SAVE = """
import os, signal, sys
import unrolled.checkpoint as checkpoint
where, n = sys.argv[1], int(sys.argv[2])
calls = [0]
def wrap(real):
    def call(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return call
if where == "rename":
    checkpoint.os.rename = wrap(os.rename)
else:
    checkpoint._write_file = wrap(checkpoint._write_file)
from unrolled.cli import main
sys.exit(main(sys.argv[3:]))
"""


def write_task_data(task: str, folder: Path) -> list[str]:
    """Small data for ``task`` in ``folder`` and the ``unrolled train`` options (without --out) that train on
    it for a few seconds, saving state every few steps."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if task == "classify":
        good, bad = "good great fun loved fine superb".split(), "bad awful poor hated dull boring".split()
        rows = ["sentence\tlabel"]
        for i in range(600):
            words = rng.choice(good if i % 2 else bad, size=rng.integers(3, 12)).tolist() + rng.choice(good + bad, 3).tolist()
            rows.append(f"{' '.join(words)}\t{i % 2}")
        (folder / "train.tsv").write_text("\n".join(rows) + "\n")
        (folder / "dev.tsv").write_text("\n".join(rows[:61]) + "\n")
        return ["--train", "train.tsv", "--dev", "dev.tsv", "--epochs", "8", "--hidden-size", "96", "--cell", "lstm",
                "--embedding-dim", "16", "--batch-size", "4", "--dropout", "0.2", "--patience", "10",
                "--checkpoint-every", "20"]
    if task == "lm":
        words = "the cat sat on a mat while dogs ran past old trees near quiet rivers".split()
        (folder / "text.txt").write_text(" ".join(rng.choice(words, 3000).tolist()) + "\n")
        return ["--task", "lm", "--text", "text.txt", "--level", "char", "--epochs", "4", "--hidden-size", "128",
                "--embedding-dim", "16", "--batch-size", "8", "--bptt", "16", "--dropout", "0.1",
                "--checkpoint-every", "20"]
    if task == "forecast":
        t = np.arange(1200)
        values = np.sin(t / 8.0) + 0.3 * np.sin(t / 37.0) + 0.05 * rng.standard_normal(len(t))
        (folder / "series.csv").write_text("y\n" + "\n".join(f"{v:.6f}" for v in values) + "\n")
        return ["--task", "forecast", "--csv", "series.csv", "--column", "y", "--window", "24", "--horizon", "4",
                "--epochs", "5", "--hidden-size", "64", "--batch-size", "8", "--dropout", "0.1",
                "--checkpoint-every", "20"]
    if task == "translate":
        numbers, colours = "one two three four five six".split(), "red green blue black white pink".split()
        sources, targets = [], []
        for _ in range(300):
            pairs = [(rng.choice(numbers), rng.choice(colours)) for _ in range(rng.integers(1, 4))]
            sources.append(" ".join(f"{a} {b}" for a, b in pairs))
            targets.append(" ".join(f"{b.upper()} {a.upper()}" for a, b in pairs))
        (folder / "src.txt").write_text("\n".join(sources) + "\n")
        (folder / "tgt.txt").write_text("\n".join(targets) + "\n")
        (folder / "dev-src.txt").write_text("\n".join(sources[:20]) + "\n")
        (folder / "dev-tgt.txt").write_text("\n".join(targets[:20]) + "\n")
        return ["--task", "translate", "--source", "src.txt", "--target", "tgt.txt", "--dev-source", "dev-src.txt",
                "--dev-target", "dev-tgt.txt", "--epochs", "6", "--hidden-size", "48", "--embedding-dim", "16",
                "--batch-size", "8", "--dropout", "0.1", "--checkpoint-every", "15"]
    if task == "speech":
        from unrolled.audio.wav import write_wav

        recordings = folder / "recordings"
        recordings.mkdir(exist_ok=True)
        seconds = np.arange(2400) / 8000
        for s, speaker in enumerate(("ann", "bob", "cy")):
            for digit in range(4):
                for take in range(8):
                    f = (300 + 150 * digit) * (1 + 0.05 * s)
                    tone = 0.4 * np.sin(2 * np.pi * f * seconds) * np.hanning(len(seconds))
                    write_wav(recordings / f"{digit}_{speaker}_{take}.wav", tone + 0.01 * rng.standard_normal(len(seconds)),
                              8000)
        return ["--task", "speech", "--data", "recordings", "--split", "all", "--epochs", "10", "--hidden-size", "64",
                "--num-layers", "1", "--batch-size", "4", "--n-mels", "16", "--n-mfcc", "10", "--checkpoint-every", "10"]
    raise ValueError(task)


def run_unrolled(argv: list[str], cwd: Path, *, code: str | None = None, extra: list[str] = (),
                 timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "unrolled", *argv] if code is None else [sys.executable, "-c", code, *extra, *argv]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})


@dataclass
class Task:
    """A task's data, its options, the reference model bytes and how long a whole run takes."""

    name: str
    folder: Path
    argv: list[str]
    reference: bytes
    previous: Path  # an older complete model, copied into --out before each trial
    seconds: float


def prepare(name: str, folder: Path) -> Task:
    argv = ["train", *write_task_data(name, folder), "--quiet"]
    started = time.perf_counter()
    done = run_unrolled([*argv, "--out", "reference"], folder)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{name}: the reference run failed: {done.stderr}")
    previous = run_unrolled([*argv, "--epochs", "1", "--seed", "99", "--out", "previous"], folder)
    if previous.returncode != 0:
        raise RuntimeError(f"{name}: the previous model's run failed: {previous.stderr}")
    return Task(name, folder, argv, (folder / "reference" / "model.safetensors").read_bytes(),
                folder / "previous", seconds)


def _tree(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())} if path.is_dir() else {}


@dataclass
class Trial:
    task: str
    how: str  # SIGINT, SIGTERM, SIGKILL, or kill-in-save:rename:N / kill-in-save:write:N
    after: float  # seconds before the signal (signals only)
    exit_code: int
    state_saved: bool  # an OUT.partial was there to resume from
    out_kept: bool  # --out was the previous model, byte for byte, or a complete new one
    identical: bool  # the final model.safetensors is the uninterrupted run's
    clean: bool  # no .tmp-/.old- directories and no OUT.partial left at the end
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.out_kept and self.identical and self.clean and not self.problem


def run_trial(task: Task, out_name: str, how: str, rng: np.random.Generator) -> Trial:
    """One trial (see the module docstring); ``how`` is a signal name or "save:rename:N" / "save:write:N"."""
    folder, out = task.folder, task.folder / out_name
    partial = folder / f"{out_name}.partial"
    for path in (out, partial):
        shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(task.previous, out)
    previous = _tree(out)
    argv = [*task.argv, "--out", out_name]
    after = 0.0
    if how in SIGNALS:
        process = subprocess.Popen([sys.executable, "-m", "unrolled", *argv], cwd=folder, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
        started = time.perf_counter()
        if how != "SIGKILL":  # Ctrl-C and SIGTERM while it trains: from its first saved state on
            while not partial.exists() and process.poll() is None and time.perf_counter() - started < 120:
                time.sleep(0.01)
        time.sleep(float(rng.uniform(0.0, 0.7 * task.seconds)))  # SIGKILL: from the start, before any state too
        after = time.perf_counter() - started
        process.send_signal(SIGNALS[how])
        _, err = process.communicate(timeout=300)
        code = process.returncode
        expected = {"SIGINT": 130, "SIGTERM": 143, "SIGKILL": -9}[how]
    else:
        _, where, n = how.split(":")
        done = run_unrolled(argv, folder, code=_KILL_IN_SAVE, extra=[where, n])
        code, err, expected = done.returncode, done.stderr, -9
    problem = ""
    if code not in (expected, 0):
        problem = f"exit {code}, expected {expected}: {err.strip()[-300:]}"
    elif code not in (0, -9) and (len(err.strip().splitlines()) != 1 or "Traceback" in err):
        problem = f"not one line on stderr: {err!r}"
    now = _tree(out)
    if not now and any(folder.glob(f".{out_name}.old-*")):  # killed between a save's renames: the load finds it
        from unrolled.checkpoint import recover_interrupted_save

        recover_interrupted_save(out, stale_after=0.0)
        now = _tree(out)
    out_kept = now == previous or (now.get("model.safetensors") == task.reference and "config.json" in now)
    state_saved = (partial / "training-state.json").is_file() or any(folder.glob(f".{out_name}.partial.old-*"))
    if code == 0 and state_saved:
        problem = problem or "a finished run left its .partial behind"
    if state_saved:
        follow = run_unrolled(["train", "--resume", out_name, "--quiet"], folder)
    elif now.get("model.safetensors") == task.reference:
        follow = None  # it finished (or was killed after its final save): nothing to redo
    else:
        follow = run_unrolled(argv, folder)  # killed before its first state: the same command starts again
    if follow is not None and follow.returncode != 0:
        problem = problem or f"resume failed: {follow.stderr.strip()[-300:]}"
    final = out / "model.safetensors"
    identical = final.is_file() and final.read_bytes() == task.reference
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(f".{out_name}.") or p == partial]
    return Trial(task.name, how, round(after, 2), code, state_saved, out_kept, identical, not leftovers,
                 problem or (f"left behind: {leftovers}" if leftovers else ""))
