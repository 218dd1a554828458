"""The time loops' recurrent product on each backend, side by side: which one should the loops call?

Every step of a time loop multiplies the previous state by the same W_hh: forward h (N, H) · W_hhᵀ (H, G·H),
backward (BPTT's dh) da (N, G·H) · W_hh (G·H, H). The products are small (N = a batch's rows), so what
matters is how each backend handles one such product after another with the same W_hh:

- **OpenBLAS** (NumPy's ``matmul`` into a preallocated output; W_hh handed column-major forward, as
  ``time_loop.sequence_forward``'s Python loop does): it packs W_hh again at every call.
- **BLIS** (``blis.py.gemm``, the ``blis`` package, single-threaded), if installed.
- **MKL** (``torch.mm`` into a preallocated output: PyTorch's CPU build calls MKL's SGEMM), if torch is installed.
- **unrolled packed** (``unrolled.nn._fused.recurrent_product``: W_hh packed once, then the register-tiled
  product of the C loops, repeated in C): what the C time loops do.

Each is timed over ``--repeats`` products in a row, float32, after a warm-up; the Python backends pay one call
per product (as the Python loop does), the packed one none (as the C loops do). The backends alternate in
blocks, three rounds, the median kept, with a pause before each block (0.3 s on 2 threads, for the idle
workers of the block before to stop spinning). Threads: 1 for all, plus OpenBLAS and MKL on 2 threads.
MKL's packed GEMM (``cblas_sgemm_pack``) is not reachable from Python here (torch does not expose it).

    python benchmarks/recurrent_product.py            # prints the table, writes docs/recurrent_product.md
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from unrolled.nn import fused

SHAPES = [  # (cell, gates, N, H): the speed benchmark's training shapes and a B = 1 step
    ("rnn", 1, 64, 128), ("gru", 3, 64, 128), ("lstm", 4, 64, 128),
    ("rnn", 1, 32, 128), ("gru", 3, 32, 128), ("lstm", 4, 32, 128),
    ("rnn", 1, 64, 256), ("gru", 3, 64, 256), ("lstm", 4, 64, 256),
    ("lstm", 4, 1, 128),
]


def backends(threads: int) -> dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray, bool, int], None]]:
    """name -> run(a, w_hh, out, backward, repeats): ``repeats`` products out = a·W_hhᵀ (forward) or a·W_hh."""
    found = {}

    def openblas(a, w, out, backward, repeats):
        b = w if backward else np.asfortranarray(w).T  # a C-contiguous (H, G·H) view forward, as the Python loop
        for _ in range(repeats):
            np.matmul(a, b, out=out)

    found["OpenBLAS"] = openblas
    if threads == 1:
        with contextlib.suppress(ImportError):
            import blis.py

            def blis_gemm(a, w, out, backward, repeats):
                for _ in range(repeats):
                    blis.py.gemm(a, w, out=out, trans2=not backward, beta=0.0)

            found["BLIS"] = blis_gemm
    with contextlib.suppress(ImportError):
        import torch

        def mkl(a, w, out, backward, repeats):
            ta, tw, tout = torch.from_numpy(a), torch.from_numpy(w), torch.from_numpy(out)
            tb = tw if backward else tw.t()
            for _ in range(repeats):
                torch.mm(ta, tb, out=tout)

        found["MKL (torch.mm)"] = mkl
    if fused.ACTIVE and threads == 1:
        def packed(a, w, out, backward, repeats):
            fused._fused.recurrent_product(a, w, out, backward, repeats, False)

        found["unrolled packed"] = packed
    return found


def measure(threads: int, repeats: int, rounds: int = 3) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    torch = None
    with contextlib.suppress(ImportError):
        import torch
    with threadpool_limits(threads):
        if torch is not None:
            torch.set_num_threads(threads)
        impls = backends(threads)
        for cell, g, n, h in SHAPES:
            w = rng.uniform(-0.1, 0.1, (g * h, h)).astype(np.float32)
            for backward in (False, True):
                a = rng.standard_normal((n, g * h if backward else h)).astype(np.float32)
                want = a @ (w if backward else w.T)
                times: dict[str, list[float]] = {name: [] for name in impls}
                for _ in range(rounds):
                    for name, run in impls.items():
                        out = np.empty_like(want)
                        run(a, w, out, backward, 3)  # warm-up, and the check
                        scale = float(np.abs(want).max())
                        if np.abs(out - want).max() > 1e-5 * scale:
                            raise SystemExit(f"{name} computed a wrong product for {cell} N={n} H={h}")
                        # let the previous backend's idle workers stop spinning (OpenBLAS ~0.1 s, OpenMP ~0.2 s)
                        time.sleep(0.05 if threads == 1 else 0.3)
                        t0 = time.perf_counter()
                        run(a, w, out, backward, repeats)
                        times[name].append((time.perf_counter() - t0) / repeats)
                flops = 2.0 * n * g * h * h
                row = {"threads": threads, "cell": cell, "n": n, "h": h, "pass": "backward" if backward else "forward",
                       "us": {k: statistics.median(v) * 1e6 for k, v in times.items()}, "flops": flops}
                rows.append(row)
                print(f"  threads={threads} {cell:4s} N={n:3d} H={h:3d} {row['pass']:8s} "
                      + "  ".join(f"{k} {t:7.1f} µs" for k, t in row["us"].items()))
    return rows


def table(rows: list[dict]) -> str:
    names = []
    for r in rows:
        names += [k for k in r["us"] if k not in names]
    head = ("| threads | cell | N | H | product | " + " | ".join(f"{k} µs (GFLOP/s)" for k in names)
            + " | fastest |\n|---:|---|---:|---:|---|" + "---:|" * len(names) + "---|\n")
    lines = []
    for r in rows:
        cells = []
        for k in names:
            t = r["us"].get(k)
            cells.append("—" if t is None else f"{t:.1f} ({r['flops'] / t / 1e3:.0f})")
        best = min(r["us"], key=r["us"].get)
        shape = "h·W_hhᵀ" if r["pass"] == "forward" else "da·W_hh"
        lines.append(f"| {r['threads']} | {r['cell']} | {r['n']} | {r['h']} | {shape} | " + " | ".join(cells)
                     + f" | {best} |")
    return head + "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=200, help="products per timing (default: 200)")
    p.add_argument("--out", default="docs/recurrent_product.md", help="Markdown report; '-' for stdout only")
    args = p.parse_args()
    started = time.perf_counter()
    rows = measure(1, args.repeats) + measure(2, args.repeats)
    text = f"""# The recurrent product, backend by backend

What each backend takes for one step's recurrent product, repeated with the same W_hh as a time loop does
(float32; `benchmarks/recurrent_product.py`, whose docstring says how each is called). GFLOP/s = 2·N·G·H² /
time. The C time loops use *unrolled packed* up to 1 MiB of W_hh (`PACKED_WEIGHT_MAX_BYTES`, nn/fused.py:
every shape here) and NumPy's OpenBLAS beyond, and split a batch's rows between threads (not measured here:
one product, one thread); BLIS and MKL are measured, not used (neither is a dependency).

- Machine: {platform.processor() or platform.machine()}, NumPy {np.__version__}, unrolled build
  {fused.INSTRUCTION_SET if fused.ACTIVE else "none"}
- Date: {_dt.date.today().isoformat()}; {args.repeats} products per timing, median of 3 rounds;
  run took {(time.perf_counter() - started) / 60:.1f} min

Rerun: `python benchmarks/recurrent_product.py`

{table(rows)}"""
    print(table(rows))
    if args.out != "-":
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
