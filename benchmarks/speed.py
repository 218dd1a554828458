"""Training-step speed of unrolled vs PyTorch CPU.

One training step of the many-to-one classifier (tokens -> embedding -> RNN/GRU/LSTM -> last hidden state ->
linear -> cross-entropy), backward, and an Adam step, timed for unrolled and for PyTorch on the same shapes,
in one process, with the same BLAS / intra-op thread count, alternating in short blocks so that machine
drift hits both (see ``measure_interleaved``). Reports tokens/s = B·T / (median step time) and the ratio
unrolled / torch (> 1: unrolled faster).

    PYTHONPATH=src python benchmarks/speed.py                      # full run, 2 threads, docs/performance.md
    PYTHONPATH=src python benchmarks/speed.py --quick --out -      # smoke run, stdout only
    PYTHONPATH=src python benchmarks/speed.py --threads 1 2 --repeats 20
    PYTHONPATH=src python benchmarks/speed.py --wait-idle 300      # on a shared machine: wait for idle CPUs

Structure (meant to grow): one ``make_*_step`` function per measured implementation, returning a callable
``step(i)`` that runs one training step on batch ``i``; ``measure_interleaved`` times any set of such
callables; ``run_*_benchmark`` functions produce the rows of one table (so far only the training step), and
``*_table`` / ``render_doc`` turn rows into Markdown. Needs numpy, torch and threadpoolctl.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

VOCAB_SIZE = 20_000
NUM_CLASSES = 2
CELLS = ("rnn", "gru", "lstm")
BUSY_THRESHOLD = 0.10  # other processes using more than this share of the CPUs: the row is flagged


# ----------------------------------------------------------------------------------------------------------
# shapes


@dataclass(frozen=True)
class Shape:
    """One benchmark shape: batch B, sequence length T, embedding width D (= E), hidden size H."""

    batch: int
    seq_len: int
    embed_dim: int
    hidden: int
    vocab: int = VOCAB_SIZE

    @property
    def tokens(self) -> int:
        return self.batch * self.seq_len

    @property
    def label(self) -> str:
        return f"{self.batch}·{self.seq_len}·{self.embed_dim}·{self.hidden}"


# B·T·D·H, vocabulary 20,000 (the three shapes).
DEFAULT_SHAPES = (
    Shape(64, 32, 128, 128),
    Shape(64, 64, 300, 256),
    Shape(32, 256, 128, 128),
)
QUICK_SHAPES = (Shape(8, 6, 16, 16, vocab=200),)


# ----------------------------------------------------------------------------------------------------------
# threads


@contextlib.contextmanager
def thread_limit(threads: int):
    """Limit NumPy's BLAS (threadpoolctl) and torch's intra-op pool to ``threads`` for the block."""
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)


# ----------------------------------------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class Batch:
    ids: np.ndarray  # (B, T) int64 in [1, V): no padding
    labels: np.ndarray  # (B,) int64 in {0, 1}


def make_batches(shape: Shape, count: int, seed: int) -> list[Batch]:
    """``count`` random batches (token ids in [1, V), binary labels), shared by every implementation."""
    rng = np.random.default_rng(seed)
    return [
        Batch(
            ids=rng.integers(1, shape.vocab, size=(shape.batch, shape.seq_len), dtype=np.int64),
            labels=rng.integers(0, NUM_CLASSES, size=shape.batch, dtype=np.int64),
        )
        for _ in range(count)
    ]


# ----------------------------------------------------------------------------------------------------------
# the implementations: each make_*_step returns step(i), one full training step on batch i (cycled)


def make_unrolled_step(shape: Shape, cell: str, batches: Sequence[Batch], seed: int = 0) -> Callable[[int], float]:
    """unrolled, float32: forward, backward (sparse embedding gradient), Adam (lazy rows for the embedding)."""
    from unrolled.models.classifier_net import (
        ClassifierNetConfig,
        classifier_backward,
        classifier_forward,
        init_classifier_params,
    )
    from unrolled.optim import Adam

    config = ClassifierNetConfig(
        vocab_size=shape.vocab, embedding_dim=shape.embed_dim, hidden_size=shape.hidden,
        num_classes=NUM_CLASSES, cell=cell,
    )
    rng = np.random.default_rng(seed)
    params = init_classifier_params(config, rng)  # float32
    opt = Adam(params, lr=1e-3)

    def step(i: int) -> float:
        b = batches[i % len(batches)]
        _, loss, cache = classifier_forward(params, config, b.ids, mask=None, targets=b.labels, training=True, rng=rng)
        opt.step(classifier_backward(cache))
        return float(loss)

    return step


def make_torch_default_step(
    shape: Shape, cell: str, batches: Sequence[Batch], seed: int = 0
) -> Callable[[int], object]:
    """PyTorch as users write it: nn.Embedding -> nn.RNN/GRU/LSTM(batch_first) -> nn.Linear on h_n[-1],
    F.cross_entropy, torch.optim.Adam defaults (dense embedding gradient), zero_grad / backward / step."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(seed)
    rnn_cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(shape.vocab, shape.embed_dim)
            self.rnn = rnn_cls(shape.embed_dim, shape.hidden, batch_first=True)
            self.head = nn.Linear(shape.hidden, NUM_CLASSES)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            _, state = self.rnn(self.embedding(ids))
            h_n = state[0] if isinstance(state, tuple) else state
            return self.head(h_n[-1])

    model = Net()
    model.train()
    opt = torch.optim.Adam(model.parameters())
    data = [(torch.from_numpy(b.ids), torch.from_numpy(b.labels)) for b in batches]  # converted once, untimed

    def step(i: int) -> torch.Tensor:
        ids, labels = data[i % len(data)]
        opt.zero_grad()
        loss = F.cross_entropy(model(ids), labels)
        loss.backward()
        opt.step()
        return loss.detach()  # a tensor: .item() is left out of the timed step

    return step


TORCH_DEFAULT_CONFIG = (
    "`nn.Embedding(20000, D)` → `nn.RNN/GRU/LSTM(D, H, batch_first=True)`\n  (1 layer, tanh for RNN) → "
    "`nn.Linear(H, 2)` on `h_n[-1]`, `F.cross_entropy`, `torch.optim.Adam(model.parameters())`\n  with "
    "defaults (lr 1e-3; dense embedding gradient, so all 20,000 rows and their moments are updated every "
    "step;\n  neither `foreach` nor `fused`, which is what torch picks for CPU tensors), `zero_grad()` / "
    "`backward()` / `step()`;\n  float32, `model.train()`, no `torch.compile`, no `set_flush_denormal`, "
    "torch's default backends\n  (oneDNN on, which torch uses for the LSTM)"
)


# ----------------------------------------------------------------------------------------------------------
# sanity check


def sanity_check_unrolled(cells: Sequence[str] = CELLS, steps: int = 8) -> None:
    """The unrolled step must train: loss on a fixed batch decreases over a few Adam steps. Exit if not."""
    shape = Shape(16, 12, 16, 16, vocab=100)
    batches = make_batches(shape, 1, seed=123)
    for cell in cells:
        step = make_unrolled_step(shape, cell, batches, seed=1)
        losses = [step(0) for _ in range(steps)]
        if not all(np.isfinite(losses)) or not losses[-1] < losses[0] - 1e-3:
            raise SystemExit(
                f"sanity check failed: unrolled {cell} training step does not reduce the loss on a fixed batch "
                f"(losses {[round(x, 4) for x in losses]}); not benchmarking a broken step"
            )


# ----------------------------------------------------------------------------------------------------------
# measurement


@dataclass
class Timing:
    """Per-step wall times (seconds) of one implementation on one shape."""

    name: str
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def max(self) -> float:
        return max(self.times)


# After a NumPy GEMM, OpenBLAS's worker threads keep spinning for up to 2**28 cycles (~0.1 s) before they
# sleep, and torch's OpenMP workers spin briefly after each parallel region. On a 2-core machine, a torch
# step started right after an unrolled step therefore shares the cores with spinning OpenBLAS threads: in a
# naive step-by-step alternation torch's median at 64·32·128·128 rnn doubled (24 ms vs 12-13 ms alone), an
# artefact no user of either library sees. So implementations alternate in *blocks*: sleep COOLDOWN_S (the
# other library's threads go idle), one untimed step (wakes this library's threads), then ``block`` timed
# steps; block order rotates every round so neither always runs first and drift still hits both.
COOLDOWN_S = 0.15
DEFAULT_BLOCK = 5


def measure_interleaved(
    steps: dict[str, Callable[[int], object]], repeats: int, warmup: int, block: int = DEFAULT_BLOCK,
    cooldown_s: float = COOLDOWN_S,
) -> dict[str, Timing]:
    """Warm every step up, then time ``repeats`` steps of each implementation, alternating in blocks of
    ``block`` timed steps (each after a cooldown and one untimed step; see above); every step is timed on
    its own with perf_counter. The step functions get a running index (which batch to use)."""
    names = list(steps)
    for i in range(warmup):
        for name in names:
            steps[name](i)
    timings = {name: Timing(name) for name in names}
    done, index, rnd = 0, warmup, 0
    while done < repeats:
        count = min(block, repeats - done)
        k = rnd % len(names)
        for name in names[k:] + names[:k]:
            fn = steps[name]
            time.sleep(cooldown_s)
            fn(index)  # untimed: wakes this implementation's thread pool after the cooldown
            for j in range(count):
                t0 = time.perf_counter()
                fn(index + 1 + j)
                timings[name].times.append(time.perf_counter() - t0)
        done, index, rnd = done + count, index + count + 1, rnd + 1
    return timings


@dataclass
class Row:
    threads: int
    shape: Shape
    cell: str
    timings: dict[str, Timing]
    other_load: float | None = None  # other processes' share of the CPUs while this row was measured

    def tokens_per_s(self, name: str) -> float:
        return self.shape.tokens / self.timings[name].median

    def ratio(self, name: str, baseline: str) -> float:
        """Speed of ``name`` relative to ``baseline`` (> 1: ``name`` is faster)."""
        return self.timings[baseline].median / self.timings[name].median


def run_training_step_benchmark(
    shapes: Sequence[Shape], cells: Sequence[str], threads: int, repeats: int, warmup: int,
    block: int = DEFAULT_BLOCK, log=print,
) -> list[Row]:
    """unrolled vs PyTorch-default training step, every shape × cell, at one thread count."""
    rows = []
    with thread_limit(threads):
        for shape in shapes:
            batches = make_batches(shape, 4, seed=0)
            for cell in cells:
                steps = {
                    "unrolled": make_unrolled_step(shape, cell, batches),
                    "torch": make_torch_default_step(shape, cell, batches),
                }
                t0, monitor = time.perf_counter(), OtherLoad()
                timings = measure_interleaved(steps, repeats, warmup, block)
                row = Row(threads, shape, cell, timings, monitor.fraction())
                rows.append(row)
                log(
                    f"  threads={threads} {shape.label} {cell:4s}: unrolled {timings['unrolled'].median * 1e3:8.1f} ms"
                    f"  torch {timings['torch'].median * 1e3:8.1f} ms  ratio {row.ratio('unrolled', 'torch'):.2f}"
                    f"  ({repeats} steps, {time.perf_counter() - t0:.0f} s"
                    + ("" if row.other_load is None else f", other load {row.other_load:.0%}") + ")",
                )
    return rows


def run_subnormal_benchmark(repeats: int, threads: int, shape: Shape = Shape(32, 256, 128, 128)) -> dict[str, float]:
    """BPTT through a long sequence whose carried gradient sits in the float32 subnormal range: the engine's
    backward with its flush of subnormal carried gradients (the default) and with the flush switched off.

    The gradient arriving at the last step is 1e-33 (just above the smallest normal float32, 1.2e-38), so
    as it shrinks going back in time it spends a long stretch of the T steps subnormal — the state that
    vanishing gradients reach on long inputs, without the hundreds of steps it takes them to get there.
    """
    from unrolled.nn import recurrence
    from unrolled.nn.rnn import rnn_backward, rnn_forward

    rng = np.random.default_rng(0)
    h, d = shape.hidden, shape.embed_dim
    params = {
        "weight_ih": (rng.standard_normal((h, d)) / np.sqrt(d)).astype(np.float32),
        "weight_hh": (rng.standard_normal((h, h)) / np.sqrt(h)).astype(np.float32),
        "bias_ih": np.zeros(h, np.float32),
        "bias_hh": np.zeros(h, np.float32),
    }
    x = rng.standard_normal((shape.batch, shape.seq_len, d)).astype(np.float32)
    dh_t = np.full((shape.batch, h), 1e-33, np.float32)
    _, _, cache = rnn_forward(x, None, params)
    flush = recurrence._flush_subnormals

    def backward_time(flushing: bool) -> float:
        recurrence._flush_subnormals = flush if flushing else (lambda a, tiny: None)
        try:
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                rnn_backward(None, dh_t, cache)
                times.append(time.perf_counter() - t0)
            return statistics.median(times)
        finally:
            recurrence._flush_subnormals = flush

    with thread_limit(threads):
        recurrence._flush_subnormals = lambda a, tiny: None
        try:
            dx, _, _ = rnn_backward(None, dh_t, cache)
        finally:
            recurrence._flush_subnormals = flush
        tiny = np.finfo(np.float32).tiny
        subnormal_steps = float(np.mean(np.any((dx != 0) & (np.abs(dx) < tiny), axis=(0, 2))))
        backward_time(True)  # warm-up
        with_flush, without_flush = backward_time(True), backward_time(False)
    return {"with_flush": with_flush, "without_flush": without_flush, "subnormal_steps": subnormal_steps,
            "threads": threads, "shape": shape.label}


# ----------------------------------------------------------------------------------------------------------
# report


def _fmt_tps(x: float) -> str:
    return f"{x:,.0f}"


def _fmt_ms(t: Timing) -> str:
    return f"{t.median * 1e3:.1f} ({t.min * 1e3:.1f}–{t.max * 1e3:.1f})"


def _fmt_load(load: float | None) -> str:
    if load is None:
        return "?"
    return f"**{load:.0%}**" if load > BUSY_THRESHOLD else f"{load:.0%}"


def subnormal_table(result: dict[str, float]) -> str:
    ratio = result["without_flush"] / result["with_flush"]
    return (
        f"Elman RNN backward, B·T·D·H = {result['shape']}, float32, {result['threads']} thread(s), the carried "
        f"gradient starting at 1e-33 (without the flush, {result['subnormal_steps']:.0%} of the steps' input "
        "gradients hold subnormal values):\n\n"
        "| backward pass | ms (median) |\n|---|---:|\n"
        f"| flush subnormal carried gradients to zero (the engine's default) | {result['with_flush'] * 1e3:.1f} |\n"
        f"| no flush | {result['without_flush'] * 1e3:.1f} |\n\n"
        f"Time without the flush / time with it: {ratio:.2f} (above 1: the flush pays for itself on this CPU).\n"
    )


def training_step_table(rows: Sequence[Row]) -> str:
    head = (
        "| threads | B·T·D·H | cell | steps | unrolled ms/step median (min–max) | torch ms/step median (min–max) "
        "| unrolled tok/s | torch tok/s | unrolled / torch | other load |\n"
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in rows:
        u, t = r.timings["unrolled"], r.timings["torch"]
        lines.append(
            f"| {r.threads} | {r.shape.label} | {r.cell} | {len(u.times)} | {_fmt_ms(u)} | {_fmt_ms(t)} "
            f"| {_fmt_tps(r.tokens_per_s('unrolled'))} | {_fmt_tps(r.tokens_per_s('torch'))} "
            f"| {r.ratio('unrolled', 'torch'):.2f} | {_fmt_load(r.other_load)} |"
        )
    return head + "\n".join(lines) + "\n"


class OtherLoad:
    """CPU time used by *other* processes over an interval, as a fraction of all CPUs (Linux only).

    Busy time of the whole machine from /proc/stat minus this process's own CPU time (all its threads).
    On a shared machine this says which rows ran while something else competed for the cores.
    """

    def __init__(self) -> None:
        self._start = self._snapshot()

    @staticmethod
    def _snapshot() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                values = [int(v) for v in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
        except (OSError, ValueError):
            return None
        hz = os.sysconf("SC_CLK_TCK")
        busy = (sum(values) - values[3] - values[4]) / hz
        own = sum(os.times()[:2])  # user + system of this process, all threads
        return busy, own, time.perf_counter()

    def fraction(self) -> float | None:
        """Other processes' share of all CPUs since construction (0 = none, 1 = every CPU fully busy)."""
        end = self._snapshot()
        if self._start is None or end is None or end[2] <= self._start[2]:
            return None
        other = (end[0] - self._start[0]) - (end[1] - self._start[1])
        return max(0.0, other / ((end[2] - self._start[2]) * (os.cpu_count() or 1)))


def other_cpu_load(seconds: float = 1.0) -> float | None:
    """Other processes' share of all CPUs over ``seconds`` (this process sleeping)."""
    monitor = OtherLoad()
    time.sleep(seconds)
    return monitor.fraction()


def wait_for_idle(max_wait_s: float, threshold: float = BUSY_THRESHOLD, log=print) -> float | None:
    """Sample the other-process load every few seconds until it is below ``threshold`` or ``max_wait_s``
    has passed; return the last sample."""
    deadline = time.perf_counter() + max_wait_s
    while True:
        load = other_cpu_load(2.0)
        if load is None or load < threshold or time.perf_counter() >= deadline:
            return load
        log(f"  machine busy ({load:.0%} of the CPUs used by other processes); waiting ...")
        time.sleep(min(10.0, max(0.0, deadline - time.perf_counter())))


def _torch_build() -> str:
    """torch's BLAS, parallel backend and CPU capability, from torch.__config__."""
    import torch

    parts = []
    with contextlib.suppress(Exception):
        show = torch.__config__.show()
        blas = re.search(r"BLAS_INFO=(\w+)", show)
        cap = re.search(r"CPU capability usage: (\w+)", show)
        backend = re.search(r"ATen parallel backend: (\w+)", torch.__config__.parallel_info())
        parts += [f"BLAS {blas.group(1)}" if blas else "", f"{cap.group(1)} kernels" if cap else "",
                  f"{backend.group(1)} parallel backend" if backend else ""]
        parts.append(f"mkldnn {'on' if torch.backends.mkldnn.is_available() else 'off'}")
    return ", ".join(p for p in parts if p) or "unknown build"


def machine_info() -> dict[str, str]:
    import torch
    from threadpoolctl import threadpool_info

    model = platform.processor() or platform.machine()
    with contextlib.suppress(Exception):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    pools = []
    for p in threadpool_info():
        desc = f"{p.get('internal_api')} {p.get('version') or ''}".strip()
        if p.get("architecture"):
            desc += f" ({p['architecture']})"
        pools.append(f"{desc} [{os.path.basename(p.get('filepath', ''))}]")
    numpy_blas = "unknown"
    with contextlib.suppress(Exception):
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        numpy_blas = f"{blas.get('name')} {blas.get('version')}"
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": numpy_blas,
        "torch": torch.__version__,
        "torch_build": _torch_build(),
        "threadpools": "; ".join(pools),
        "date": _dt.date.today().isoformat(),
    }


def render_doc(info: dict[str, str], command: str, rows: Sequence[Row], args, elapsed_s: float, notes: str) -> str:
    return f"""# Performance

Training-step throughput of unrolled against PyTorch on CPU, measured by `benchmarks/speed.py`.

## What is measured

One training step of the many-to-one classifier, vocabulary {VOCAB_SIZE:,}, 2 classes, float32, one layer,
unidirectional: token ids → embedding (D) → recurrent layer (H) → last hidden state → linear → cross-entropy,
then backward and an Adam step (lr 1e-3). Inputs are random token ids in [1, V) with no padding (no mask) and
random binary labels; four pre-generated batches are cycled, the same for both implementations.

- **unrolled**: `classifier_forward(..., training=True)`, `classifier_backward` (the embedding gradient is
  `SparseRows`, the batch's distinct rows only), `unrolled.optim.Adam(params, lr=1e-3).step(grads)` (lazy,
  SparseAdam-style rows for the embedding, dense Adam for the rest).
- **torch (default)**: {TORCH_DEFAULT_CONFIG}.

Both run in one process with the same thread count: NumPy's BLAS limited with
`threadpoolctl.threadpool_limits`, torch with `torch.set_num_threads`. After {args.warmup} warm-up steps each,
the two implementations alternate in blocks: sleep {COOLDOWN_S} s, one untimed step, then {args.block} timed
steps of one implementation, then the same for the other, the order of the two rotating every round, until
each has {args.repeats} timed steps; every step is timed on its own with `time.perf_counter`. Blocks rather
than single alternating steps because OpenBLAS's worker threads keep spinning for ~0.1 s after NumPy's last
GEMM: on 2 cores a torch step started right after an unrolled step shares the cores with them, and a
step-by-step alternation measured torch up to 2× slower than torch running alone.

Reported: median step time with min–max over the timed steps, tokens/s = B·T / median step time, and
**unrolled / torch** = torch median time / unrolled median time (> 1 means unrolled is faster).
*other load* is the share of all CPUs that other processes used while the row was measured (/proc/stat busy
time minus this process's own CPU time), bold above {BUSY_THRESHOLD:.0%}: on 2 cores any such load slows the
2-thread runs, torch's OpenMP more than OpenBLAS. One run on a shared virtual machine whose speed drifts by
tens of percent and stalls at times (see the max columns): treat ratio differences of ~15 % as noise.

## Machine

- CPU: {info['cpu']}, {info['cores']} cores (`os.cpu_count()`)
- Python {info['python']}, NumPy {info['numpy']} (BLAS: {info['numpy_blas']}), PyTorch {info['torch']}
  ({info['torch_build']})
- Thread pools seen by threadpoolctl: {info['threadpools']}
- Load from other processes just before the run: {info['other_load']}
- Date: {info['date']}; whole run took {elapsed_s / 60:.1f} min

## Rerun

```
{command}
```

## Results

{training_step_table(rows)}
## Where things stand

{notes}
"""


def summarize(rows: Sequence[Row]) -> str:
    """A factual summary of the ratios, generated from the table (commentary is added by hand)."""
    lines = []
    for threads in dict.fromkeys(r.threads for r in rows):
        sub = [r for r in rows if r.threads == threads]
        per_cell = []
        for cell in dict.fromkeys(r.cell for r in sub):
            ratios = [r.ratio("unrolled", "torch") for r in sub if r.cell == cell]
            span = f"{min(ratios):.2f}" if len(ratios) == 1 else f"{min(ratios):.2f}–{max(ratios):.2f}"
            per_cell.append(f"{cell} {span}")
        geo = float(np.exp(np.mean(np.log([r.ratio("unrolled", "torch") for r in sub]))))
        lines.append(
            f"- {threads} thread(s): unrolled / torch-default over the shapes, by cell: {', '.join(per_cell)}; "
            f"geometric mean over all {len(sub)} rows {geo:.2f}."
        )
    return "Generated from the table above:\n\n" + "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--threads", type=int, nargs="+", default=[2], help="thread counts to measure (default: 2)")
    p.add_argument("--repeats", type=int, default=30, help="timed steps per shape and cell (default: 30)")
    p.add_argument("--block", type=int, default=DEFAULT_BLOCK,
                   help=f"timed steps per block when alternating implementations (default: {DEFAULT_BLOCK})")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps per implementation first (default: 5)")
    p.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    p.add_argument("--quick", action="store_true", help="tiny shape, one repeat, one warm-up: a smoke run")
    p.add_argument("--out", default="docs/performance.md", help="Markdown report path; '-' for stdout only")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="before starting, wait up to this long for other processes to leave the CPUs (default: 0)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.quick:
        shapes, args.repeats, args.warmup, args.block = QUICK_SHAPES, 1, 1, 1
    else:
        shapes = DEFAULT_SHAPES
    if args.repeats < 1 or args.block < 1 or args.warmup < 0 or any(t < 1 for t in args.threads):
        raise SystemExit("--repeats, --block and --threads must be >= 1, --warmup >= 0")

    print("sanity check: unrolled loss decreases on a fixed batch ...", flush=True)
    sanity_check_unrolled(args.cells)
    print("  ok", flush=True)

    load = wait_for_idle(args.wait_idle) if args.wait_idle > 0 else other_cpu_load()
    if load is not None:
        print(f"CPU load from other processes before the run: {load:.0%} of {os.cpu_count()} CPUs", flush=True)
        if load > BUSY_THRESHOLD:
            print("  WARNING: the machine is busy; multi-threaded timings (torch's above all) will suffer", flush=True)

    start = time.perf_counter()
    rows: list[Row] = []
    for threads in args.threads:
        print(f"training step, {threads} thread(s):", flush=True)
        rows += run_training_step_benchmark(shapes, args.cells, threads, args.repeats, args.warmup, args.block)
    print("subnormal gradients in a long backward pass:", flush=True)
    subnormal = run_subnormal_benchmark(max(3, args.repeats // 3), max(args.threads))
    elapsed = time.perf_counter() - start

    print()
    print(training_step_table(rows))
    print(subnormal_table(subnormal))
    if args.out != "-":
        notes = summarize(rows)
        command = "PYTHONPATH=src python benchmarks/speed.py" + ("" if not argv else " " + " ".join(argv))
        info = machine_info()
        info["other_load"] = "unknown" if load is None else f"{load:.0%} of the CPUs busy (1 s sample)"
        doc = render_doc(info, command, rows, args, elapsed, notes) + "\n## Subnormal numbers\n\n" + subnormal_table(subnormal)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(doc)
        print(f"wrote {args.out} ({elapsed / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
