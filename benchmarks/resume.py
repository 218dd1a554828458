"""Kill-and-resume trials per task, for docs/reliability.md.

For each task (classify, lm, forecast, translate, speech): ten runs of ``unrolled train`` stopped at a random
moment — SIGINT, SIGTERM and SIGKILL in turn — each followed by ``unrolled train --resume`` (or, when a SIGKILL
came before the first saved state, the same command again), plus kills landed inside the checkpoint save (at
each rename and at file writes). Every trial checks the exit code, that ``--out`` kept the previous model or got
a complete new one, that nothing was left behind, and that the final model.safetensors is byte-identical to an
uninterrupted run's (tests/robustness/kill_trials.py holds the trial).

    python benchmarks/resume.py                 # 10 trials per task, writes docs/reliability.md's table
    python benchmarks/resume.py --trials 3 --no-write
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from _common import write_between_markers  # noqa: E402

from tests.robustness.kill_trials import SIGNALS, prepare, run_trial  # noqa: E402

DOC = ROOT / "docs" / "reliability.md"
RESULTS = ROOT / "docs" / "results" / "resume.json"
TASKS = ["classify", "lm", "forecast", "translate", "speech"]
IN_SAVE = ["save:rename:1", "save:rename:2", "save:rename:3", "save:write:1", "save:write:4", "save:write:7"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10, help="signal trials per task")
    parser.add_argument("--tasks", nargs="+", default=TASKS, choices=TASKS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    signals = list(SIGNALS)
    rows, trials = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.tasks:
            task = prepare(name, Path(tmp) / name)
            done = [run_trial(task, f"m{i}", signals[i % len(signals)], rng) for i in range(args.trials)]
            if name == "classify":
                done += [run_trial(task, "m-save", how, rng) for how in IN_SAVE]
            trials += done
            for how in [*signals, *(IN_SAVE if name == "classify" else [])]:
                group = [t for t in done if t.how == how]
                if group:
                    rows.append(_row(name, task.seconds, how, group))
                    print(_format(rows[-1]), flush=True)
    text = _table(rows, trials)
    print("\n" + text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({"rows": rows, "trials": [t.__dict__ for t in trials]}, indent=1) + "\n")
        write_between_markers(DOC, "resume", text)


def _row(task: str, seconds: float, how: str, group: list) -> dict:
    codes = Counter(t.exit_code for t in group)
    return {"task": task, "run_seconds": round(seconds, 1), "how": how, "trials": len(group),
            "interrupted": sum(t.exit_code != 0 for t in group), "resumed": sum(t.state_saved for t in group),
            "out_kept": sum(t.out_kept for t in group), "identical": sum(t.identical for t in group),
            "clean": sum(t.clean for t in group), "ok": sum(t.ok for t in group),
            "exit_codes": ", ".join(f"{code}×{n}" for code, n in sorted(codes.items())),
            "problems": [t.problem for t in group if t.problem]}


def _format(row: dict) -> str:
    return (f"| {row['task']} | {row['how']} | {row['trials']} | {row['interrupted']} | {row['resumed']} | "
            f"{row['exit_codes']} | {row['out_kept']}/{row['trials']} | {row['identical']}/{row['trials']} | "
            f"{row['clean']}/{row['trials']} |")


def _table(rows: list[dict], trials: list) -> str:
    ok = sum(t.ok for t in trials)
    lines = ["| task | stopped by | trials | interrupted | resumed from a state | exit codes | --out kept or complete "
             "| bit-identical after resume | nothing left behind |",
             "|---|---|---|---|---|---|---|---|---|", *map(_format, rows), "",
             f"All trials: {ok} of {len(trials)} kept every promise. \"interrupted\": the signal came before the run "
             "ended (the others finished first and are checked the same way); \"resumed from a state\": an "
             "OUT.partial was there (a SIGKILL before the first saved state means starting again, which must give "
             "the same model too). Exit code -9: killed."]
    problems = [f"- {t.task} {t.how}: {t.problem}" for t in trials if t.problem]
    return "\n".join(lines + (["", "Problems:", *problems] if problems else []))


if __name__ == "__main__":
    main()
