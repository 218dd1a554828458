"""Before/after: this checkout against an earlier commit, measured side by side in one run.

What a refactoring must not make slower, interleaved run by run so that the shared machine's noise hits both
trees alike:

- ``unrolled predict "I love this"`` as a whole process (start-up, imports, loading the bundled model);
- B = 1 prediction of 16 tokens (``RNNClassifier``'s inference call on a 1 × 16 batch, E = H = 128, 1 thread),
  for each cell, in a fresh process per tree.

The earlier commit is checked out into a temporary git worktree and its C extension built there
(``python setup.py build_ext --inplace``: needs gcc, as ``pip install`` does); both trees then run from source
through ``PYTHONPATH``. Results go to stdout as a table and to ``--out`` (default docs/before_after.md).

    python benchmarks/before_after.py --base ed4a45d
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# One B = 1 measurement in a child process; works on both trees (the inference entry point was
# classifier_logits before the architecture change, classifier_forward(keep_cache=False) after it).
LATENCY_CHILD = r"""
import json, sys, time
import numpy as np
from threadpoolctl import threadpool_limits
from unrolled.models import classifier_net as net
cell, calls, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = net.ClassifierNetConfig(vocab_size=1000, embedding_dim=128, hidden_size=128, num_classes=2, cell=cell)
params = net.init_classifier_params(config, np.random.default_rng(0))
ids = np.random.default_rng(1).integers(1, 1000, size=(1, 16))
if hasattr(net, "classifier_logits"):
    infer = lambda: net.classifier_logits(params, config, ids)
else:
    infer = lambda: net.classifier_forward(params, config, ids, keep_cache=False)[0]
with threadpool_limits(1):
    for _ in range(200):
        infer()
    best = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            infer()
        best.append((time.perf_counter() - start) / calls)
print(json.dumps(min(best)))
"""


def _env(src: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(src), OPENBLAS_NUM_THREADS="1")


def prepare_base(commit: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), commit], check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=where, check=True,
                   capture_output=True)
    return where / "src"


def predict_seconds(src: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "unrolled", "predict", "I love this"], env=_env(src), check=True,
                   capture_output=True)
    return time.perf_counter() - start


def latency_seconds(src: Path, cell: str, calls: int, rounds: int) -> float:
    result = subprocess.run([sys.executable, "-c", LATENCY_CHILD, cell, str(calls), str(rounds)], env=_env(src),
                            check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the earlier commit to compare with")
    parser.add_argument("--runs", type=int, default=15, help="whole-process runs per tree (default: 15)")
    parser.add_argument("--latency-runs", type=int, default=5, help="B = 1 processes per tree and cell (default: 5)")
    parser.add_argument("--out", default="docs/before_after.md", help="Markdown report path; '-' for stdout only")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="unrolled-base-") as tmp:
        base = prepare_base(args.base, Path(tmp) / "tree")
        try:
            trees = {"before": base, "after": ROOT / "src"}
            process = {name: [] for name in trees}
            for _ in range(args.runs):  # interleaved
                for name, src in trees.items():
                    process[name].append(predict_seconds(src))
            latency = {cell: {name: [] for name in trees} for cell in ("rnn", "gru", "lstm")}
            for _ in range(args.latency_runs):
                for cell in latency:
                    for name, src in trees.items():
                        latency[cell][name].append(latency_seconds(src, cell, 300, 5))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base.parent)],
                           capture_output=True)

    rows = [("`unrolled predict \"I love this\"`, whole process, median of runs",
             statistics.median(process["before"]), statistics.median(process["after"]), "s")]
    for cell, times in latency.items():
        rows.append((f"B = 1, T = 16 prediction, {cell}, 1 thread, best of processes",
                     min(times["before"]) * 1e6, min(times["after"]) * 1e6, "µs"))
    lines = [
        f"# Before/after: {args.base} vs this checkout",
        "",
        f"`python benchmarks/before_after.py --base {args.base}`; trees measured interleaved in one run "
        f"({args.runs} whole-process runs per tree, {args.latency_runs} B = 1 processes per tree and cell).",
        "",
        "| measurement | before | after | after / before |",
        "|---|---:|---:|---:|",
    ]
    for label, before, after, unit in rows:
        digits = 3 if unit == "s" else 1
        lines.append(f"| {label} | {before:.{digits}f} {unit} | {after:.{digits}f} {unit} | {after / before:.2f} |")
    report = "\n".join(lines) + "\n"
    sys.stdout.write(report)
    if args.out != "-":
        Path(args.out).write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
