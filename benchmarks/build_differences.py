"""How far apart the kernel builds' float32 results are: the same classifier networks, batches and weights run
through each kernel set the CPU can run, each in its own process, against one float64 reference.

    PYTHONPATH=src python benchmarks/build_differences.py            # prints the table, writes docs/performance.md

Kernel sets: the NumPy kernels (``UNROLLED_FUSED=0``) and the C extension's float32 builds, capped with
``UNROLLED_FUSED_ISA`` (baseline, AVX2 + FMA, AVX-512; a build the CPU lacks falls back to a narrower one and is
reported once). Cases: every cell, E = H = 128, last-state pooling, one forward pass with the loss and one
backward pass, on 1 row × 16 steps (B = 1: the row-by-row product, and in the AVX-512 build the C input
projection of up to 32 rows), 3 rows × 16 steps (the C forward loop's row-by-row product) and 32 rows × 128 steps
(the packed product; large enough for the C loops to split the rows over two threads, run both ways). Reported per build: the largest normwise relative difference max|a − b| / max|b| over the
logits, the loss and every gradient, against the float64 NumPy result of the same case (rounding error), and
against the float32 NumPy kernels (how far the C build is from the reference implementation).

The table goes into docs/performance.md between ``<!-- kept: builds -->`` and ``<!-- /kept -->`` (kept by
benchmarks/speed.py when it rewrites the page).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- kept: builds -->", "<!-- /kept -->"
CELLS = ("rnn", "gru", "lstm")
CASES = ((1, 16), (3, 16), (32, 128))  # (rows, steps)
WIDTH, VOCAB = 128, 1000
BUILDS = {"numpy": {"UNROLLED_FUSED": "0"}, "baseline": {"UNROLLED_FUSED_ISA": "baseline"},
          "avx2": {"UNROLLED_FUSED_ISA": "avx2"}, "avx512": {"UNROLLED_FUSED_ISA": "avx512"}}


def compute(out: str, dtype: str, threads: int) -> None:
    """In this process's kernel set: every case's logits, loss and gradients, into the .npz file ``out``."""
    from unrolled.models.classifier_net import (ClassifierNetConfig, classifier_backward, classifier_forward,
                                                 init_classifier_params)
    from unrolled.nn import fused

    if fused.ACTIVE:
        fused.set_num_threads(threads)
    arrays = {}
    for cell in CELLS:
        for rows, steps in CASES:
            config = ClassifierNetConfig(vocab_size=VOCAB, embedding_dim=WIDTH, hidden_size=WIDTH, num_classes=2,
                                         cell=cell, pooling="last")
            rng = np.random.default_rng(rows)
            params = {k: v.astype(dtype) for k, v in init_classifier_params(config, rng).items()}
            ids = rng.integers(1, VOCAB, size=(rows, steps))
            targets = rng.integers(0, 2, size=rows)
            logits, loss, cache = classifier_forward(params, config, ids, targets=targets, training=True, rng=rng)
            grads = classifier_backward(cache)
            name = f"{cell}/{rows}"
            arrays[f"{name}/logits"], arrays[f"{name}/loss"] = logits, np.asarray(loss)
            for key, grad in grads.items():
                arrays[f"{name}/{key}"] = grad.to_dense() if hasattr(grad, "to_dense") else grad
    np.savez(out, **arrays)
    print(json.dumps({"instruction_set": fused.INSTRUCTION_SET if fused.ACTIVE else "numpy"}))


def run_build(env: dict[str, str], out: str, dtype: str = "float32", threads: int = 1) -> str:
    """Run :func:`compute` in a fresh process with ``env``; returns the float32 build it picked."""
    child = {**os.environ, **env, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, __file__, "--child", out, dtype, str(threads)], env=child,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["instruction_set"]


def normwise(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max() / max(np.abs(b).max(), 1e-30))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", nargs=3, metavar=("OUT", "DTYPE", "THREADS"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"), help="'-' for stdout only")
    args = parser.parse_args()
    if args.child:
        compute(args.child[0], args.child[1], int(args.child[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        run_build(BUILDS["numpy"], f"{tmp}/ref.npz", "float64")
        reference = dict(np.load(f"{tmp}/ref.npz"))
        runs, seen = {}, set()
        for build, env in BUILDS.items():
            for threads in ((1,) if build == "numpy" else (1, 2)):
                picked = run_build(env, f"{tmp}/{build}-{threads}.npz", threads=threads)
                if picked in seen and threads == 1:
                    break  # the CPU lacks this build: it ran a narrower one already reported
                seen.add(picked)
                runs[(picked, threads)] = dict(np.load(f"{tmp}/{build}-{threads}.npz"))
    numpy32 = runs[("numpy", 1)]
    rows = []
    for (picked, threads), values in runs.items():
        worst_ref = max(normwise(values[k], reference[k]) for k in reference)
        worst_np = max(normwise(values[k], numpy32[k]) for k in reference)
        by_kind = {kind: max(normwise(values[k], reference[k]) for k in reference if k.endswith(kind))
                   for kind in ("/logits", "/loss")}
        same_1 = "" if threads == 1 else ("yes" if all(np.array_equal(values[k], runs[(picked, 1)][k])
                                                        for k in reference) else "**no**")
        twins = [other for (other, t), got in runs.items() if t == 1 and other != picked
                 and all(np.array_equal(values[k], got[k]) for k in reference)]
        rows.append((picked, threads, by_kind["/logits"], by_kind["/loss"], worst_ref, worst_np, same_1,
                     ", ".join(twins) or "none"))
    lines = [BEGIN, "", "## float32 differences between the kernel builds (benchmarks/build_differences.py)", "",
             f"Every cell's classifier network (E = H = {WIDTH}, last-state pooling, vocabulary {VOCAB:,}) on "
             f"batches of {', '.join(f'{r} rows × {t} steps' for r, t in CASES)}, one forward pass with the loss and "
             "one backward pass, in each kernel set this CPU runs, each in its own process. Normwise relative "
             "difference max|a − b| / max|b|, the largest over the cells, the batches and every logit, loss "
             "and gradient, against the float64 NumPy result (rounding error of float32) and against the "
             "float32 NumPy kernels. *2 threads = 1 thread*: every value bit for bit the same with the C "
             "loops' rows split over two threads; *bit for bit equal to*: the other kernel sets (1 thread) whose "
             "every value is this one's.", "",
             "| kernel set | threads | logits vs float64 | loss vs float64 | worst vs float64 | worst vs float32 NumPy kernels | 2 threads = 1 thread | bit for bit equal to |",
             "|---|---:|---:|---:|---:|---:|---|---|"]
    lines += [f"| {p} | {t} | {a:.1e} | {b:.1e} | {c:.1e} | {d:.1e} | {e} | {f} |" for p, t, a, b, c, d, e, f in rows]
    lines += ["", "Rerun: `PYTHONPATH=src python benchmarks/build_differences.py`", "", END]
    text = "\n".join(lines)
    print(text)
    if args.out == "-":
        return
    page = Path(args.out).read_text() if os.path.exists(args.out) else ""
    start, end = page.find(BEGIN), page.find(END, page.find(BEGIN))
    page = (page[:start] + text + page[end + len(END):] if start >= 0 and end > start
            else page.rstrip() + "\n\n" + text + "\n")
    Path(args.out).write_text(page)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
