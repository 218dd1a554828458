"""Speed and memory of unrolled vs PyTorch CPU: the whole suite of the performance issue, in one run.

Every table compares implementations in one process, with the same BLAS / intra-op thread count, alternating
in short blocks so that machine drift hits all of them (see ``measure_interleaved``). Sections
(``--sections``; all by default):

- ``train``: one training step of the many-to-one classifier (tokens -> embedding -> RNN/GRU/LSTM -> last
  hidden state -> linear -> cross-entropy, backward, Adam) on the issue's three shapes, for unrolled,
  PyTorch as users write it (*torch-default*) and PyTorch's best CPU settings (*torch-best*: fused Adam,
  flush-to-zero), at every ``--threads`` count: ms/step, tokens/s = B·T / median, and the ratios.
- ``floor``: the GEMM floor, i.e. the time of exactly the matrix products unrolled's forward + backward
  performs (same NumPy BLAS, same thread count; listed in ``make_gemm_floor``), against unrolled's forward
  + backward (no optimizer): how far the engine is from its own BLAS.
- ``latency``: B = 1, T = 16 inference (forward only) in µs, unrolled vs a torch module under
  ``torch.inference_mode()``, at every ``--threads`` count.
- ``process``: ``python -m unrolled predict "I love this"`` as a whole process (start-up, imports, loading
  the bundled model, one prediction), against ``python -c "import torch"`` and the bare interpreter.
- ``varlen``: training on variable-length batches (IMDB-like lengths, T up to 512), a BiGRU classifier:
  unrolled with masks vs torch's ``pack_padded_sequence`` path and its padded path; plus a check that the
  masked batch gives the unpadded computation's loss and gradients.
- ``memory``: peak RSS of a few such training steps, each case in a fresh subprocess, unrolled vs torch,
  and how unrolled's activation memory grows with T.
- ``subnormal``: the engine's flushes of subnormal numbers (FTZ/DAZ in hardware, carried gradients in software)
  in a long backward pass.

    PYTHONPATH=src python benchmarks/speed.py                      # full run, docs/performance.md
    PYTHONPATH=src python benchmarks/speed.py --quick --out -      # smoke run of every section, stdout only
    PYTHONPATH=src python benchmarks/speed.py --sections train floor --threads 2 --repeats 20
    PYTHONPATH=src python benchmarks/speed.py --wait-idle 300      # on a shared machine: wait for idle CPUs

Structure: one ``make_*`` function per measured implementation, returning a callable ``step(i)`` that runs
one step on batch ``i``; ``measure_interleaved`` times any set of such callables; ``run_*_benchmark``
functions produce the rows of one table, and ``*_table`` / ``render_doc`` turn rows into Markdown.
Needs numpy, torch and threadpoolctl.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

VOCAB_SIZE = 20_000
NUM_CLASSES = 2
CELLS = ("rnn", "gru", "lstm")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
SECTIONS = ("train", "floor", "latency", "process", "varlen", "memory", "subnormal")
BUSY_THRESHOLD = 0.10  # other processes using more than this share of the CPUs: the row is flagged
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The targets.
TARGET_VS_DEFAULT = 2.5  # training step, unrolled / torch-default, every cell and shape, 2 threads
TARGET_VS_BEST = {"rnn": 1.5, "gru": 1.5, "lstm": 1.3}  # training step, unrolled / torch-best, every shape
TARGET_FLOOR = 1.5  # unrolled forward + backward / GEMM floor, at most
TARGET_PEAK_FRACTION = 0.60  # forward + backward GFLOP/s / a large SGEMM's, at least, on PEAK_SHAPE, every cell
PEAK_GEMM_SIZE = 1024  # the large SGEMM: (n, n) × (n, n), float32, NumPy's BLAS at the row's thread count
TARGET_LATENCY_US = {"rnn": 30.0, "gru": 50.0, "lstm": 50.0}  # B=1, T=16 forward, at most, at LATENCY_THREADS
LATENCY_THREADS = 1
TARGET_PROCESS_S = 0.25  # `unrolled predict "I love this"`, whole process, at most
TARGET_PROCESS_OVER_NUMPY_S = 0.08  # ... and at most this much more than `python -c "import numpy"`
TARGET_VS_PACKED = 3.0  # variable-length training, unrolled / torch packed, at least
TARGET_PEAK_RSS_MIB = 2048.0  # peak RSS of training on IMDB-length batches, at most
# masked batch vs unpadded sequences, max |difference| / max |value| per parameter: float64 shows the computation
# is the same one; float32 only adds rounding (up to ~2e-5 measured, on head.bias, a 2-element sum with cancellation)
EXACT_RTOL = {"float64": 1e-10, "float32": 1e-4}


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
LATENCY_SHAPE = Shape(1, 16, 128, 128)  # B = 1, T = 16, E = H = 128, vocabulary 20,000
QUICK_LATENCY_SHAPE = Shape(1, 16, 16, 16, vocab=200)
SUBNORMAL_SHAPE = Shape(32, 256, 128, 128)
PEAK_SHAPE = Shape(32, 256, 128, 128)  # where forward + backward is held to TARGET_PEAK_FRACTION of the peak
QUICK_SUBNORMAL_SHAPE = Shape(4, 64, 16, 16)


@dataclass(frozen=True)
class VarlenSpec:
    """Variable-length batches: B sequences whose lengths are drawn once (fixed seed) from a lognormal
    with median ``median`` and shape ``sigma``, rounded and clipped to [min_len, max_len] (IMDB reviews
    run to a median of ~200 tokens with a long tail; 512 is the usual cut). Each batch is right-padded to
    its own longest sequence."""

    batch: int = 32
    max_len: int = 512
    min_len: int = 10
    median: float = 200.0
    sigma: float = 0.75
    embed_dim: int = 128
    hidden: int = 128
    vocab: int = VOCAB_SIZE
    num_batches: int = 4
    seed: int = 7

    @property
    def shape(self) -> Shape:
        return Shape(self.batch, self.max_len, self.embed_dim, self.hidden, self.vocab)

    @property
    def label(self) -> str:
        return (f"B = {self.batch}, E = {self.embed_dim}, H = {self.hidden}, vocabulary {self.vocab:,}, "
                f"lengths ~ lognormal(median {self.median:g}, σ {self.sigma:g}) clipped to "
                f"[{self.min_len}, {self.max_len}]")


VARLEN_SPEC = VarlenSpec()
QUICK_VARLEN_SPEC = VarlenSpec(batch=4, max_len=24, min_len=3, median=10.0, embed_dim=16, hidden=16, vocab=200,
                               num_batches=2)
MEMORY_FIXED_LENS = (128, 256, 512)  # unrolled's growth with T at fixed B (all rows full length)
QUICK_MEMORY_FIXED_LENS = (8, 24)


# ----------------------------------------------------------------------------------------------------------
# threads


@contextlib.contextmanager
def thread_limit(threads: int):
    """Limit NumPy's BLAS (threadpoolctl), unrolled's C time loops (``fused.set_num_threads``) and torch's
    intra-op pool to ``threads`` for the block."""
    import torch
    from threadpoolctl import threadpool_limits

    from unrolled.nn import fused

    previous, previous_loops = torch.get_num_threads(), fused.get_num_threads()
    torch.set_num_threads(threads)
    fused.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)
        fused.set_num_threads(previous_loops)


# ----------------------------------------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class Batch:
    ids: np.ndarray  # (B, T) int64 in [1, V), 0 at padded steps
    labels: np.ndarray  # (B,) int64 in {0, 1}
    mask: np.ndarray | None = None  # (B, T) bool, True at real steps; None: no padding
    lengths: np.ndarray | None = None  # (B,) int64 real lengths; None: all T

    @property
    def real_tokens(self) -> int:
        return int(self.ids.size if self.lengths is None else self.lengths.sum())


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


def draw_lengths(spec: VarlenSpec, rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` IMDB-like lengths (see ``VarlenSpec``)."""
    raw = rng.lognormal(np.log(spec.median), spec.sigma, size=count)
    return np.clip(np.rint(raw), spec.min_len, spec.max_len).astype(np.int64)


def make_varlen_batches(spec: VarlenSpec, fixed_len: int | None = None) -> list[Batch]:
    """``spec.num_batches`` right-padded batches (pad id 0) with masks and lengths; every sequence
    ``fixed_len`` long when given. The same draws for every implementation."""
    rng = np.random.default_rng(spec.seed)
    batches = []
    for _ in range(spec.num_batches):
        lengths = (np.full(spec.batch, fixed_len, np.int64) if fixed_len is not None
                   else draw_lengths(spec, rng, spec.batch))
        t_max = int(lengths.max())
        mask = np.arange(t_max) < lengths[:, None]
        ids = np.where(mask, rng.integers(1, spec.vocab, size=(spec.batch, t_max), dtype=np.int64), 0)
        labels = rng.integers(0, NUM_CLASSES, size=spec.batch, dtype=np.int64)
        batches.append(Batch(ids, labels, mask, lengths))
    return batches


# ----------------------------------------------------------------------------------------------------------
# the implementations: each make_* returns step(i), one step on batch i (cycled)


def _unrolled_model(shape: Shape, cell: str, *, bidirectional: bool = False, seed: int = 0):
    """(config, params, rng) of unrolled's classifier network, float32, pooling = last state(s)."""
    from unrolled.models.classifier_net import ClassifierNetConfig, init_classifier_params

    config = ClassifierNetConfig(
        vocab_size=shape.vocab, embedding_dim=shape.embed_dim, hidden_size=shape.hidden,
        num_classes=NUM_CLASSES, cell=cell, bidirectional=bidirectional, pooling="last",
    )
    rng = np.random.default_rng(seed)
    return config, init_classifier_params(config, rng), rng


def make_unrolled_step(
    shape: Shape, cell: str, batches: Sequence[Batch], seed: int = 0, *, bidirectional: bool = False,
    optimizer: bool = True,
) -> Callable[[int], float]:
    """unrolled, float32: forward (masked when the batch has a mask), backward (sparse embedding gradient),
    Adam (lazy rows for the embedding); ``optimizer=False`` stops after the backward pass."""
    from unrolled.models.classifier_net import classifier_backward, classifier_forward
    from unrolled.optim import Adam

    config, params, rng = _unrolled_model(shape, cell, bidirectional=bidirectional, seed=seed)
    opt = Adam(params, lr=1e-3)

    def step(i: int) -> float:
        b = batches[i % len(batches)]
        _, loss, cache = classifier_forward(
            params, config, b.ids, mask=b.mask, targets=b.labels, training=True, rng=rng
        )
        grads = classifier_backward(cache)
        if optimizer:
            opt.step(grads)
        return float(loss)

    return step


def make_unrolled_fwd_bwd(shape: Shape, cell: str, batches: Sequence[Batch], seed: int = 0) -> Callable[[int], float]:
    """unrolled's forward + backward only (``classifier_forward`` + ``classifier_backward``, no optimizer)."""
    return make_unrolled_step(shape, cell, batches, seed, optimizer=False)


def _torch_net(shape: Shape, cell: str, *, bidirectional: bool = False, padding_idx: int | None = None,
               varlen: str | None = None):
    """nn.Embedding -> nn.RNN/GRU/LSTM(batch_first) -> nn.Linear on the final state(s) h_n (one row per
    direction, concatenated). ``varlen``: None (no padding), "packed" (``pack_padded_sequence(...,
    enforce_sorted=False)``: h_n is each sequence's own last real step) or "padded" (the RNN runs over the
    padding: h_n of both directions includes the padded steps)."""
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence

    rnn_cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(shape.vocab, shape.embed_dim, padding_idx=padding_idx)
            self.rnn = rnn_cls(shape.embed_dim, shape.hidden, batch_first=True, bidirectional=bidirectional)
            self.head = nn.Linear(shape.hidden * (2 if bidirectional else 1), NUM_CLASSES)

        def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
            x = self.embedding(ids)
            if varlen == "packed":
                x = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            _, state = self.rnn(x)
            h_n = state[0] if isinstance(state, tuple) else state  # (dirs, B, H)
            return self.head(torch.cat(list(h_n), dim=1) if bidirectional else h_n[-1])

    return Net()


def make_torch_step(
    shape: Shape, cell: str, batches: Sequence[Batch], seed: int = 0, *, best: bool = False,
    bidirectional: bool = False, padding_idx: int | None = None, varlen: str | None = None,
) -> Callable[[int], object]:
    """One torch training step: zero_grad, forward, F.cross_entropy, backward, Adam step.

    ``best=False``: ``torch.optim.Adam(model.parameters())`` with defaults (torch-default). ``best=True``:
    ``Adam(..., fused=True)`` and ``torch.set_flush_denormal(True)`` for the duration of the step
    (torch-best; switched off after each step so that NumPy on the same thread never runs with it)."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    model = _torch_net(shape, cell, bidirectional=bidirectional, padding_idx=padding_idx, varlen=varlen)
    model.train()
    opt = torch.optim.Adam(model.parameters(), fused=True) if best else torch.optim.Adam(model.parameters())
    data = [  # converted once, untimed
        (torch.from_numpy(b.ids), torch.from_numpy(b.labels),
         None if b.lengths is None else torch.from_numpy(b.lengths))
        for b in batches
    ]

    def step(i: int) -> torch.Tensor:
        ids, labels, lengths = data[i % len(data)]
        opt.zero_grad()
        loss = F.cross_entropy(model(ids, lengths), labels)
        loss.backward()
        opt.step()
        return loss.detach()  # a tensor: .item() is left out of the timed step

    if not best:
        return step

    def best_step(i: int) -> torch.Tensor:
        torch.set_flush_denormal(True)
        try:
            return step(i)
        finally:
            torch.set_flush_denormal(False)

    return best_step


def make_torch_default_step(
    shape: Shape, cell: str, batches: Sequence[Batch], seed: int = 0
) -> Callable[[int], object]:
    """PyTorch as users write it (see TORCH_DEFAULT_CONFIG)."""
    return make_torch_step(shape, cell, batches, seed)


def make_torch_best_step(
    shape: Shape, cell: str, batches: Sequence[Batch], seed: int = 0
) -> Callable[[int], object]:
    """PyTorch's best CPU settings for this step (see TORCH_BEST_CONFIG)."""
    return make_torch_step(shape, cell, batches, seed, best=True)


TORCH_DEFAULT_CONFIG = (
    "`nn.Embedding(20000, D)` → `nn.RNN/GRU/LSTM(D, H, batch_first=True)`\n  (1 layer, tanh for RNN) → "
    "`nn.Linear(H, 2)` on `h_n[-1]`, `F.cross_entropy`, `torch.optim.Adam(model.parameters())`\n  with "
    "defaults (lr 1e-3; dense embedding gradient, so all 20,000 rows and their moments are updated every "
    "step;\n  neither `foreach` nor `fused`, which is what torch picks for CPU tensors), `zero_grad()` / "
    "`backward()` / `step()`;\n  float32, `model.train()`, no `torch.compile`, no `set_flush_denormal`, "
    "torch's default backends\n  (oneDNN on, which torch uses for the LSTM)"
)
TORCH_BEST_CONFIG = (
    "the same module, loss and step, with `torch.optim.Adam(model.parameters(), fused=True)`\n  (one fused "
    "CPU kernel per parameter instead of the for-loop implementation) and `torch.set_flush_denormal(True)`\n"
    "  (FTZ/DAZ: subnormal floats flushed to zero). torch sets FTZ/DAZ in the MXCSR register of the calling\n"
    "  thread only (torch's OpenMP workers, already running, keep theirs); the benchmark switches it on at the\n"
    "  start of every torch-best step and off at its end, so NumPy and the other implementations, on the same\n"
    "  thread, never run with it. Still no `torch.compile` (no C++ compiler is assumed) and no sparse\n"
    "  embedding gradient (not the module users write)"
)


def make_gemm_floor(shape: Shape, cell: str, seed: int = 0) -> tuple[Callable[[int], None], float]:
    """The GEMM floor of unrolled's forward + backward: exactly the matrix products that
    ``classifier_forward`` + ``classifier_backward`` run (unrolled.nn.time_loop, unrolled.nn.linear), with
    the same shapes and transposes, into preallocated outputs; nothing else. G = gates (1, 3, 4), N = B:

    forward     X W_ihᵀ                    (T·N, E) × (E, G·H)     input projection of all steps, once
                T × h_{t-1} W_hhᵀ          (N, H) × (H, G·H)       recurrent products, one per step
                f W_headᵀ                  (N, H) × (H, C)         head
    backward    dlogitsᵀ f, dlogits W_head (C, N) × (N, H), (N, C) × (C, H)   head gradients
                T × dhw_t W_hh             (N, G·H) × (G·H, H)     dh_{t-1}, one per step
                dxwᵀ X                     (G·H, T·N) × (T·N, E)   dW_ih
                dhw_0ᵀ h_0, dhw_{1:}ᵀ h_{:-1}   (G·H, N) × (N, H), (G·H, (T−1)·N) × ((T−1)·N, H)   dW_hh
                dxw W_ih                   (T·N, G·H) × (G·H, E)   dX

    Left out: the embedding gather and its scatter-add gradient, the gate nonlinearities and every other
    elementwise operation, bias sums, the loss, allocation, and the optimizer. Returns (run, FLOPs per run).
    """
    g, n, t, e, h, c = GATES[cell], shape.batch, shape.seq_len, shape.embed_dim, shape.hidden, NUM_CLASSES
    gh = g * h
    rng = np.random.default_rng(seed)

    def rand(*dims: int) -> np.ndarray:
        return rng.uniform(-0.1, 0.1, size=dims).astype(np.float32)

    x, w_ih, w_hh, w_head = rand(t * n, e), rand(gh, e), rand(gh, h), rand(c, h)
    h0, hs, feat, dlogits = rand(n, h), rand(t, n, h), rand(n, h), rand(n, c)
    dxw = rand(t, n, gh)
    dhw = dxw if cell != "gru" else rand(t, n, gh)  # GRU keeps a separate gradient for h W_hhᵀ
    xw, a, logits = np.empty((t * n, gh), np.float32), np.empty((n, gh), np.float32), np.empty((n, c), np.float32)
    dw_head, dfeat, dh = np.empty((c, h), np.float32), np.empty((n, h), np.float32), np.empty((n, h), np.float32)
    dw_ih, dw_hh, dw_hh_rest = np.empty((gh, e), np.float32), np.empty((gh, h), np.float32), np.empty_like(w_hh)
    dx = np.empty((t * n, e), np.float32)
    dxw2, dhw2 = dxw.reshape(t * n, gh), dhw.reshape(t * n, gh)

    def run(i: int) -> None:
        np.matmul(x, w_ih.T, out=xw)
        for k in range(t):
            np.matmul(hs[k - 1] if k else h0, w_hh.T, out=a)
        np.matmul(feat, w_head.T, out=logits)
        np.matmul(dlogits.T, feat, out=dw_head)
        np.matmul(dlogits, w_head, out=dfeat)
        for k in range(t - 1, -1, -1):
            np.matmul(dhw[k], w_hh, out=dh)
        np.matmul(dxw2.T, x, out=dw_ih)
        np.matmul(dhw[0].T, h0, out=dw_hh)
        if t > 1:
            np.matmul(dhw2[n:].T, hs[:-1].reshape((t - 1) * n, h), out=dw_hh_rest)
        np.matmul(dxw2, w_ih, out=dx)

    flops = 2.0 * (t * n * e * gh + t * n * h * gh + 3 * n * h * c + t * n * gh * h + gh * t * n * e
                   + gh * t * n * h + t * n * gh * e)
    return run, flops


def make_peak_gemm(size: int = PEAK_GEMM_SIZE, seed: int = 0) -> tuple[Callable[[int], None], float]:
    """A large square SGEMM into a preallocated output, NumPy's BLAS: the machine's practical float32 peak at
    the thread count it runs under. Returns (run, FLOPs per run)."""
    rng = np.random.default_rng(seed)
    a, b = (rng.uniform(-1, 1, size=(size, size)).astype(np.float32) for _ in range(2))
    out = np.empty((size, size), np.float32)

    def run(i: int) -> None:
        np.matmul(a, b, out=out)

    return run, 2.0 * size**3


def make_unrolled_infer(shape: Shape, cell: str, batches: Sequence[Batch], seed: int = 0, *,
                        tables: bool = True) -> Callable[[int], object]:
    """unrolled inference as ``RNNClassifier.predict`` runs it: ``classifier_forward(params, config, ids,
    keep_cache=False, projections=tables)`` -> logits, the projection tables built once and kept across calls
    (None on a build without the few-row projection in C); ``tables=False``: without them."""
    from unrolled.models.classifier_net import classifier_forward, projection_tables

    config, params, _ = _unrolled_model(shape, cell, seed=seed)
    kept = projection_tables(params, config) if tables else None

    def infer(i: int) -> np.ndarray:
        return classifier_forward(params, config, batches[i % len(batches)].ids, keep_cache=False,
                                  projections=kept)[0]

    return infer


def make_torch_infer(shape: Shape, cell: str, batches: Sequence[Batch], seed: int = 0) -> Callable[[int], object]:
    """torch inference: the torch-default module in ``eval()`` mode, each call inside its own
    ``with torch.inference_mode():`` (as a user's predict function would be) -> logits."""
    import torch

    torch.manual_seed(seed)
    model = _torch_net(shape, cell).eval()
    data = [torch.from_numpy(b.ids) for b in batches]

    def infer(i: int) -> torch.Tensor:
        with torch.inference_mode():
            return model(data[i % len(data)])

    return infer


# ----------------------------------------------------------------------------------------------------------
# sanity checks


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


def _rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| / max |b| (0 when both are zero)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    return diff / scale if scale > 0 else diff


def check_varlen_exact(spec: VarlenSpec, count: int = 4, cell: str = "gru") -> dict[str, object]:
    """The masked batch must compute what the unpadded sequences compute: ``count`` sequences of the first
    variable-length batch, run (a) together, right-padded with a mask, and (b) each alone, unpadded and
    unmasked. Compares the mean loss and every parameter's gradient (mean over the sequences), in float32 and
    float64; also runs the torch packed and padded modules with the same (float32) parameters on the padded
    batch and compares their loss with the same reference."""
    import torch
    import torch.nn.functional as F

    from unrolled.models.classifier_net import classifier_backward, classifier_forward

    b = make_varlen_batches(spec)[0]
    ids, lengths, labels = b.ids[:count], b.lengths[:count], b.labels[:count]
    t_max = int(lengths.max())
    ids, mask = ids[:, :t_max], b.mask[:count, :t_max]
    config, params32, rng = _unrolled_model(spec.shape, cell, bidirectional=True, seed=3)

    def dense(grads):
        return {k: (v.to_dense() if hasattr(v, "to_dense") else v) for k, v in grads.items()}

    result: dict[str, object] = {"lengths": [int(x) for x in lengths]}
    for dtype in (np.float32, np.float64):
        params = {name: value.astype(dtype) for name, value in params32.items()}
        _, loss_batch, cache = classifier_forward(params, config, ids, mask=mask, targets=labels, training=True,
                                                  rng=rng)
        grads_batch = dense(classifier_backward(cache))
        losses, grads_sum = [], None
        for k in range(count):
            _, loss_k, cache_k = classifier_forward(params, config, ids[k : k + 1, : lengths[k]],
                                                    targets=labels[k : k + 1], training=True, rng=rng)
            g = dense(classifier_backward(cache_k))
            losses.append(loss_k)
            grads_sum = g if grads_sum is None else {name: grads_sum[name] + g[name] for name in g}
        loss_alone = float(np.mean(losses))
        name = np.dtype(dtype).name
        result[f"loss_rel_{name}"] = abs(float(loss_batch) - loss_alone) / abs(loss_alone)
        result[f"grad_rel_{name}"] = max(_rel_diff(grads_batch[k], grads_sum[k] / count) for k in grads_batch)
        if dtype is np.float32:
            reference = loss_alone

    for varlen in ("packed", "padded"):
        net = _torch_net(spec.shape, cell, bidirectional=True, padding_idx=0, varlen=varlen)
        net.load_state_dict({name: torch.from_numpy(np.array(value)) for name, value in params32.items()})
        with torch.no_grad():
            logits = net(torch.from_numpy(ids), torch.from_numpy(lengths))
            loss = float(F.cross_entropy(logits, torch.from_numpy(labels)))
        result[f"torch_{varlen}_rel"] = abs(loss - reference) / abs(reference)
    return result


def _exact_ok(exact: dict[str, object]) -> bool:
    """Masked batch = unpadded sequences: float64 to ~machine precision, float32 to rounding."""
    return all(exact[f"{what}_rel_{dtype}"] <= tol for dtype, tol in EXACT_RTOL.items() for what in ("loss", "grad"))


def _fmt_exact(exact: dict[str, object]) -> str:
    return (f"float32: loss rel. diff {exact['loss_rel_float32']:.1e}, gradients {exact['grad_rel_float32']:.1e}; "
            f"float64: loss {exact['loss_rel_float64']:.1e}, gradients {exact['grad_rel_float64']:.1e}")


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
    """One table row: the timings of every implementation on one shape and cell at one thread count."""

    threads: int
    shape: Shape
    cell: str
    timings: dict[str, Timing]
    other_load: float | None = None  # other processes' share of the CPUs while this row was measured
    extra: dict[str, object] = field(default_factory=dict)  # per-table values (FLOPs, real tokens, ...)

    def tokens_per_s(self, name: str) -> float:
        return self.shape.tokens / self.timings[name].median

    def ratio(self, name: str, baseline: str) -> float:
        """Speed of ``name`` relative to ``baseline`` (> 1: ``name`` is faster)."""
        return self.timings[baseline].median / self.timings[name].median


def _log_row(row: Row, label: str, unit: float = 1e3, suffix: str = "ms", log=print, t0: float | None = None) -> None:
    parts = [f"{name} {t.median * unit:8.1f} {suffix}" for name, t in row.timings.items()]
    tail = [] if t0 is None else [f"{time.perf_counter() - t0:.0f} s"]
    if row.other_load is not None:
        tail.append(f"other load {row.other_load:.0%}")
    log(f"  {label}: " + "  ".join(parts) + (f"  ({', '.join(tail)})" if tail else ""))


def _run_grid(
    shapes: Sequence[Shape], cells: Sequence[str], threads: int, repeats: int, warmup: int, block: int, log,
    make_steps: Callable[[Shape, str, Sequence[Batch]], tuple[dict[str, Callable[[int], float]], dict]],
) -> list[Row]:
    """One interleaved measurement per shape × cell at one thread count; ``make_steps(shape, cell, batches)``
    gives the implementations to compare and the row's extra fields."""
    rows = []
    with thread_limit(threads):
        for shape in shapes:
            batches = make_batches(shape, 4, seed=0)
            for cell in cells:
                steps, extra = make_steps(shape, cell, batches)
                t0, monitor = time.perf_counter(), OtherLoad()
                timings = measure_interleaved(steps, repeats, warmup, block)
                row = Row(threads, shape, cell, timings, monitor.fraction(), extra)
                rows.append(row)
                _log_row(row, f"threads={threads} {shape.label} {cell:4s}", log=log, t0=t0)
    return rows


def run_training_step_benchmark(
    shapes: Sequence[Shape], cells: Sequence[str], threads: int, repeats: int, warmup: int,
    block: int = DEFAULT_BLOCK, log=print,
) -> list[Row]:
    """unrolled vs torch-default vs torch-best training step, every shape × cell, at one thread count."""

    def make_steps(shape: Shape, cell: str, batches: Sequence[Batch]):
        return {
            "unrolled": make_unrolled_step(shape, cell, batches),
            "torch-default": make_torch_default_step(shape, cell, batches),
            "torch-best": make_torch_best_step(shape, cell, batches),
        }, {}

    return _run_grid(shapes, cells, threads, repeats, warmup, block, log, make_steps)


def run_floor_benchmark(
    shapes: Sequence[Shape], cells: Sequence[str], threads: int, repeats: int, warmup: int,
    block: int = DEFAULT_BLOCK, log=print,
) -> list[Row]:
    """unrolled's forward + backward vs the GEMM floor of the same step and vs a large SGEMM (the peak),
    interleaved, every shape × cell."""

    def make_steps(shape: Shape, cell: str, batches: Sequence[Batch]):
        floor, flops = make_gemm_floor(shape, cell)
        peak, peak_flops = make_peak_gemm()
        return ({"unrolled fwd+bwd": make_unrolled_fwd_bwd(shape, cell, batches), "GEMM floor": floor,
                 "large SGEMM": peak}, {"flops": flops, "peak_flops": peak_flops})

    return _run_grid(shapes, cells, threads, repeats, warmup, block, log, make_steps)


def run_latency_benchmark(
    shape: Shape, cells: Sequence[str], threads: int, repeats: int, warmup: int, block: int = 50, log=print,
) -> list[Row]:
    """B = 1 inference latency, unrolled vs torch, every cell, at one thread count."""
    rows = []
    batches = make_batches(shape, 4, seed=1)
    with thread_limit(threads):
        for cell in cells:
            steps = {"unrolled": make_unrolled_infer(shape, cell, batches),
                     "unrolled, no tables": make_unrolled_infer(shape, cell, batches, tables=False),
                     "torch": make_torch_infer(shape, cell, batches)}
            monitor = OtherLoad()
            timings = measure_interleaved(steps, repeats, warmup, block)
            peak, peak_flops = make_peak_gemm()
            peak_times = [_timed(peak, i) for i in range(6)][1:]  # after one warm-up, at this thread count
            extra = {"flops": latency_flops(shape, cell), "peak_flops_per_s": peak_flops / statistics.median(peak_times)}
            row = Row(threads, shape, cell, timings, monitor.fraction(), extra)
            rows.append(row)
            _log_row(row, f"threads={threads} {shape.label} {cell:4s}", unit=1e6, suffix="µs", log=log)
    return rows


def latency_flops(shape: Shape, cell: str) -> float:
    """FLOPs of the B = 1 forward pass's matrix products: the input projection and the recurrent product of
    every step, and the head (2 per multiply-add; the gate nonlinearities not counted)."""
    gh = GATES[cell] * shape.hidden
    return 2.0 * shape.seq_len * (shape.embed_dim * gh + shape.hidden * gh) + 2.0 * shape.hidden * NUM_CLASSES


def _timed(run: Callable[[int], object], i: int) -> float:
    t0 = time.perf_counter()
    run(i)
    return time.perf_counter() - t0


PROCESS_COMMANDS = (
    ("unrolled predict", ["-m", "unrolled", "predict", "I love this"]),
    ("import numpy", ["-c", "import numpy"]),
    ("import torch", ["-c", "import torch"]),
    ("bare interpreter", ["-c", "pass"]),
)


def _child_env(threads: int | None = None) -> dict[str, str]:
    """The environment of a child process: PYTHONPATH starts with the repository's src/; thread counts of
    OpenBLAS, OpenMP (torch) and MKL set when ``threads`` is given."""
    env = dict(os.environ)
    src = os.path.join(REPO_ROOT, "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if threads is not None:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    return env


def run_process_benchmark(runs: int, warmup: int = 1, log=print) -> list[tuple[str, str, Timing]]:
    """Wall time of whole processes (``sys.executable`` + arguments, cwd the repository root), in rounds
    whose order rotates; ``warmup`` untimed rounds first (the OS file cache, and the bytecode). Exits if
    predict fails."""
    env = _child_env()
    # As an installed package runs: pip compiles a package's modules to bytecode when it installs them (NumPy's
    # and torch's are), so the children may write and reuse unrolled's too, into a directory of their own
    # (PYTHONPYCACHEPREFIX), whatever PYTHONDONTWRITEBYTECODE this shell has.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="unrolled-speed-pycache-") as cache:
        env["PYTHONPYCACHEPREFIX"] = cache
        timings = _time_processes(env, runs, warmup)
    rows = []
    for name, args in PROCESS_COMMANDS:
        shown = "python " + " ".join(f'"{a}"' if " " in a else a for a in args)
        rows.append((name, shown, timings[name]))
        log(f"  {name:18s} {timings[name].median:.3f} s ({timings[name].min:.3f}–{timings[name].max:.3f})")
    return rows


def _time_processes(env: dict[str, str], runs: int, warmup: int) -> dict[str, Timing]:
    """Each of PROCESS_COMMANDS ``warmup + runs`` times, in rounds whose order rotates; the timed runs' walls."""
    timings = {name: Timing(name) for name, _ in PROCESS_COMMANDS}
    commands = list(PROCESS_COMMANDS)
    for rnd in range(warmup + runs):
        k = rnd % len(commands)
        for name, args in commands[k:] + commands[:k]:
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - t0
            if done.returncode != 0:
                raise SystemExit(f"process benchmark: `{' '.join(args)}` failed:\n{done.stderr}")
            if name == "unrolled predict" and "positive" not in done.stdout and "negative" not in done.stdout:
                raise SystemExit(f"process benchmark: unexpected predict output {done.stdout!r}")
            if rnd >= warmup:
                timings[name].times.append(elapsed)
    return timings


def run_varlen_benchmark(
    spec: VarlenSpec, threads: int, repeats: int, warmup: int, block: int = 3, log=print,
) -> tuple[Row, dict[str, object]]:
    """BiGRU training on variable-length batches: unrolled (masks) vs torch packed vs torch padded."""
    batches = make_varlen_batches(spec)
    shape, cell = spec.shape, "gru"
    exact = check_varlen_exact(spec)
    log(f"  masked batch vs unpadded sequences {exact['lengths']}: {_fmt_exact(exact)}; "
        f"torch packed loss {exact['torch_packed_rel']:.1e}, torch padded loss {exact['torch_padded_rel']:.1e}")
    with thread_limit(threads):
        steps = {
            "unrolled": make_unrolled_step(shape, cell, batches, bidirectional=True),
            "torch packed": make_torch_step(shape, cell, batches, bidirectional=True, padding_idx=0, varlen="packed"),
            "torch padded": make_torch_step(shape, cell, batches, bidirectional=True, padding_idx=0, varlen="padded"),
        }
        t0, monitor = time.perf_counter(), OtherLoad()
        timings = measure_interleaved(steps, repeats, warmup, block)
        row = Row(threads, shape, cell, timings, monitor.fraction(), {
            "real_tokens": float(np.mean([b.real_tokens for b in batches])),
            "padded_tokens": float(np.mean([b.ids.size for b in batches])),
            "t_max": [int(b.ids.shape[1]) for b in batches],
        })
    _log_row(row, f"threads={threads} BiGRU varlen", log=log, t0=t0)
    return row, exact


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB: VmHWM from /proc/self/status (Linux).

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries that value over fork and exec, so a child
    started from this ~300 MiB benchmark process reports at least the parent's RSS at the fork. VmHWM
    belongs to the process's own address space, which exec replaces. Falls back to ru_maxrss (KiB on Linux)
    where /proc is missing."""
    with contextlib.suppress(OSError):
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def memory_child(spec_json: str) -> int:
    """Run in a fresh process (``--memory-child``): set up one variable-length training case, run a few
    steps, print one JSON line with the peak RSS after setup and at the end (MiB). The unrolled case never
    imports torch."""
    args = json.loads(spec_json)
    spec = VarlenSpec(**args["spec"])
    batches = make_varlen_batches(spec, args["fixed_len"])
    if args["impl"] == "unrolled":
        step = make_unrolled_step(spec.shape, "gru", batches, bidirectional=True)
    else:
        step = make_torch_step(spec.shape, "gru", batches, bidirectional=True, padding_idx=0, varlen="packed")

    setup = peak_rss_mib()
    t0 = time.perf_counter()
    for i in range(args["steps"]):
        step(i)
    used = [batches[i % len(batches)] for i in range(args["steps"])]
    print(json.dumps({
        "setup_mib": setup, "peak_mib": peak_rss_mib(), "step_s": (time.perf_counter() - t0) / args["steps"],
        "t_max": max(int(b.ids.shape[1]) for b in used), "real_tokens": float(np.mean([b.real_tokens for b in used])),
        "torch_imported": "torch" in sys.modules,
    }))
    return 0


def run_memory_benchmark(
    spec: VarlenSpec, threads: int, steps: int, fixed_lens: Sequence[int], log=print,
) -> list[dict[str, object]]:
    """Peak RSS of ``steps`` BiGRU training steps, one fresh subprocess per case: unrolled and torch packed
    on the variable-length batches and on all-``max_len`` batches, and unrolled at every ``fixed_lens``."""
    cases = [("unrolled", None), ("torch packed", None)]
    cases += [("unrolled", t) for t in fixed_lens]
    if spec.max_len in fixed_lens:
        cases.append(("torch packed", spec.max_len))
    spec_dict = {k: getattr(spec, k) for k in VarlenSpec.__dataclass_fields__}
    rows = []
    for impl, fixed_len in cases:
        payload = json.dumps({"impl": "unrolled" if impl == "unrolled" else "torch", "spec": spec_dict,
                              "fixed_len": fixed_len, "steps": steps})
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child", payload], cwd=REPO_ROOT,
                              env=_child_env(threads), capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"memory benchmark: child {impl} fixed_len={fixed_len} failed:\n{done.stderr}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if impl == "unrolled" and result["torch_imported"]:
            log("  WARNING: the unrolled memory child imported torch; its RSS includes torch's libraries")
        result.update(impl=impl, lengths="variable" if fixed_len is None else f"all {fixed_len}", batch=spec.batch,
                      elements=spec.batch * result["t_max"] * 2 * spec.hidden)
        rows.append(result)
        log(f"  {impl:12s} {result['lengths']:9s} T_max {result['t_max']:4d}: setup {result['setup_mib']:7.1f} MiB, "
            f"peak {result['peak_mib']:7.1f} MiB, +{result['peak_mib'] - result['setup_mib']:.1f} MiB "
            f"({result['step_s']:.2f} s/step)")
    return rows


def run_subnormal_benchmark(repeats: int, threads: int, shape: Shape = SUBNORMAL_SHAPE) -> dict[str, float]:
    """BPTT through a long sequence whose carried gradient sits in the float32 subnormal range: the engine's
    backward as it runs (subnormals flushed in hardware, FTZ/DAZ, and carried gradients flushed in software
    every few steps), with the software flush only (``fused.FLUSH`` off), and with neither.

    The gradient arriving at the last step is 1e-33 (just above the smallest normal float32, 1.2e-38), so
    as it shrinks going back in time it spends a long stretch of the T steps subnormal — the state that
    vanishing gradients reach on long inputs, without the hundreds of steps it takes them to get there.
    What is measured is the Python loop (time_loop.sequence_backward's, with the C step kernels), whose
    software flush can be switched off, with the C kernels' gradient floor at 0: the floor (2^-100) would
    zero the 1e-33 gradient at once, and the C loop flushes on its own.
    """
    from unrolled.nn import fused, time_loop
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
    cache = dataclasses.replace(cache, kernel=dataclasses.replace(cache.kernel, backward_sequence=None))
    flush, hardware = time_loop._flush_subnormals, fused.FLUSH

    @contextlib.contextmanager
    def flushing(software: bool, in_hardware: bool):
        time_loop._flush_subnormals = flush if software else (lambda a, tiny: None)
        fused.FLUSH = hardware and in_hardware
        floor = fused._fused.set_gradient_floor(0.0) if fused.ACTIVE else None
        try:
            yield
        finally:
            time_loop._flush_subnormals, fused.FLUSH = flush, hardware
            if floor is not None:
                fused._fused.set_gradient_floor(floor)

    def backward_time(software: bool, in_hardware: bool) -> float:
        with flushing(software, in_hardware):
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                rnn_backward(None, dh_t, cache)
                times.append(time.perf_counter() - t0)
            return statistics.median(times)

    with thread_limit(threads):
        with flushing(False, False):
            dx, _, _ = rnn_backward(None, dh_t, cache)
        tiny = np.finfo(np.float32).tiny
        subnormal_steps = float(np.mean(np.any((dx != 0) & (np.abs(dx) < tiny), axis=(0, 2))))
        backward_time(True, True)  # warm-up
        both, software_only, neither = backward_time(True, True), backward_time(True, False), backward_time(False, False)
    return {"both": both, "software": software_only, "neither": neither, "hardware_flush": hardware,
            "subnormal_steps": subnormal_steps, "threads": threads, "shape": shape.label}


# ----------------------------------------------------------------------------------------------------------
# report


def _fmt_tps(x: float) -> str:
    return f"{x:,.0f}"


def _fmt_ms(t: Timing, digits: int = 1) -> str:
    return f"{t.median * 1e3:.{digits}f} ({t.min * 1e3:.{digits}f}–{t.max * 1e3:.{digits}f})"


def _fmt_us(t: Timing) -> str:
    return f"{t.median * 1e6:.0f} ({t.min * 1e6:.0f}–{t.max * 1e6:.0f})"


def _fmt_s(t: Timing) -> str:
    return f"{t.median:.3f} ({t.min:.3f}–{t.max:.3f})"


def _fmt_load(load: float | None) -> str:
    if load is None:
        return "?"
    return f"**{load:.0%}**" if load > BUSY_THRESHOLD else f"{load:.0%}"


def _verdict(met: bool, why: str = "") -> str:
    return "met" if met else "**missed**" + (f" ({why})" if why else "")


def _train_target(r: Row) -> tuple[bool, str]:
    """Both training-step targets on one row: ≥ TARGET_VS_DEFAULT× torch-default and ≥ TARGET_VS_BEST[cell]×
    torch-best."""
    d, b, need_b = r.ratio("unrolled", "torch-default"), r.ratio("unrolled", "torch-best"), TARGET_VS_BEST[r.cell]
    why = [f"{d:.2f} < {TARGET_VS_DEFAULT}× default"] if d < TARGET_VS_DEFAULT else []
    why += [f"{b:.2f} < {need_b}× best"] if b < need_b else []
    return not why, "; ".join(why)


def training_step_table(rows: Sequence[Row]) -> str:
    head = (
        "| threads | B·T·D·H | cell | steps | unrolled ms/step | torch-default ms/step | torch-best ms/step "
        "| unrolled tok/s | torch-default tok/s | torch-best tok/s | unrolled / default | unrolled / best "
        "| target | other load |\n"
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n"
    )
    lines = []
    for r in rows:
        u, d, b = r.timings["unrolled"], r.timings["torch-default"], r.timings["torch-best"]
        lines.append(
            f"| {r.threads} | {r.shape.label} | {r.cell} | {len(u.times)} | {_fmt_ms(u)} | {_fmt_ms(d)} | {_fmt_ms(b)} "
            f"| {_fmt_tps(r.tokens_per_s('unrolled'))} | {_fmt_tps(r.tokens_per_s('torch-default'))} "
            f"| {_fmt_tps(r.tokens_per_s('torch-best'))} | {r.ratio('unrolled', 'torch-default'):.2f} "
            f"| {r.ratio('unrolled', 'torch-best'):.2f} | {_verdict(*_train_target(r))} | {_fmt_load(r.other_load)} |"
        )
    return head + "\n".join(lines) + "\n"


def gflops(r: Row) -> dict[str, float]:
    """GFLOP/s of a floor row: unrolled's forward + backward and the GEMM floor (both counted as the floor's
    matrix-product FLOPs) and the large SGEMM (the peak)."""
    return {"fwd+bwd": r.extra["flops"] / r.timings["unrolled fwd+bwd"].median / 1e9,
            "floor": r.extra["flops"] / r.timings["GEMM floor"].median / 1e9,
            "peak": r.extra["peak_flops"] / r.timings["large SGEMM"].median / 1e9}


def peak_fraction(r: Row) -> float:
    """unrolled's forward + backward GFLOP/s as a fraction of the same row's large-SGEMM GFLOP/s."""
    g = gflops(r)
    return g["fwd+bwd"] / g["peak"]


def floor_table(rows: Sequence[Row]) -> str:
    head = (
        "| threads | B·T·D·H | cell | unrolled fwd+bwd ms | GEMM floor ms | fwd+bwd / floor "
        f"| target (≤ {TARGET_FLOOR}) | fwd+bwd GFLOP/s | floor GFLOP/s | peak GFLOP/s (large SGEMM) "
        f"| fwd+bwd / peak | target (≥ {TARGET_PEAK_FRACTION:.0%} on {PEAK_SHAPE.label}) | other load |\n"
        "|---:|---|---|---:|---:|---:|---|---:|---:|---:|---:|---|---:|\n"
    )
    lines = []
    for r in rows:
        u, f, g = r.timings["unrolled fwd+bwd"], r.timings["GEMM floor"], gflops(r)
        ratio, fraction = u.median / f.median, peak_fraction(r)
        peak_target = _verdict(fraction >= TARGET_PEAK_FRACTION) if r.shape == PEAK_SHAPE else "—"
        lines.append(
            f"| {r.threads} | {r.shape.label} | {r.cell} | {_fmt_ms(u, 2)} | {_fmt_ms(f, 2)} | {ratio:.2f} "
            f"| {_verdict(ratio <= TARGET_FLOOR)} | {g['fwd+bwd']:.1f} | {g['floor']:.1f} | {g['peak']:.1f} "
            f"| {fraction:.0%} | {peak_target} | {_fmt_load(r.other_load)} |"
        )
    return head + "\n".join(lines) + "\n"


def ceiling_table(train: Sequence[Row], floor: Sequence[Row]) -> str:
    """How fast unrolled could be at best against torch-default: its step at the GEMM floor alone (no
    element-wise work, embedding, loss or optimizer), from the same run's rows at the floor's thread count."""
    floors = {(r.threads, r.shape.label, r.cell): r.timings["GEMM floor"].median for r in floor}
    head = (
        "| threads | B·T·D·H | cell | torch-default ms | GEMM floor ms | ceiling (torch-default / floor) "
        f"| {TARGET_VS_DEFAULT}× reachable at the floor |\n|---:|---|---|---:|---:|---:|---|\n"
    )
    lines = []
    for r in train:
        key = (r.threads, r.shape.label, r.cell)
        if key not in floors:
            continue
        default = r.timings["torch-default"].median
        ceiling = default / floors[key]
        lines.append(f"| {r.threads} | {r.shape.label} | {r.cell} | {default * 1e3:.1f} | {floors[key] * 1e3:.1f} "
                     f"| {ceiling:.2f} | {'yes' if ceiling >= TARGET_VS_DEFAULT else '**no**'} |")
    return head + "\n".join(lines) + "\n" if lines else ""


def peak_need_table(train: Sequence[Row], floor: Sequence[Row]) -> str:
    """What the torch-best target asks of the machine: the share of the same run's large-SGEMM GFLOP/s at
    which the step's matrix products alone (nothing else) would have to run to be the target's times as fast
    as torch-best's whole step, at the floor's thread count; over 100 %, no code on this machine meets it."""
    by_key = {(r.threads, r.shape.label, r.cell): r for r in floor}
    head = (
        "| threads | B·T·D·H | cell | products GFLOP | peak GFLOP/s | torch-best ms | torch-best GFLOP/s "
        "| torch-best / peak | target | products at peak would need | OpenBLAS floor / peak |\n"
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in train:
        f = by_key.get((r.threads, r.shape.label, r.cell))
        if f is None:
            continue
        flops, best = f.extra["flops"], r.timings["torch-best"].median
        peak = f.extra["peak_flops"] / f.timings["large SGEMM"].median
        floor_rate = flops / f.timings["GEMM floor"].median
        need = TARGET_VS_BEST[r.cell] * flops / best / peak  # the target's time is best / ratio
        shown = f"**{need:.0%}**" if need > 1 else f"{need:.0%}"
        lines.append(f"| {r.threads} | {r.shape.label} | {r.cell} | {flops / 1e9:.2f} | {peak / 1e9:.0f} "
                     f"| {best * 1e3:.1f} | {flops / best / 1e9:.0f} | {flops / best / peak:.0%} "
                     f"| {TARGET_VS_BEST[r.cell]}× | {shown} | {floor_rate / peak:.0%} |")
    return head + "\n".join(lines) + "\n" if lines else ""


def _latency_target(r: Row) -> tuple[bool, str]:
    need = TARGET_LATENCY_US[r.cell]
    return r.timings["unrolled"].median * 1e6 <= need, f"≤ {need:.0f} µs"


def latency_table(rows: Sequence[Row]) -> str:
    head = (
        "| threads | cell | calls | unrolled µs median (min–max) | without tables µs | torch µs median (min–max) "
        "| torch / unrolled | target | other load | products MFLOP | unrolled GFLOP/s | target's GFLOP/s "
        "| peak GFLOP/s (large SGEMM) | target / peak |\n"
        "|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in rows:
        met, what = _latency_target(r)
        verdict = _verdict(met) if r.threads == LATENCY_THREADS else f"(held at {LATENCY_THREADS} thread)"
        flops, peak = r.extra["flops"], r.extra["peak_flops_per_s"]
        needed = flops / (TARGET_LATENCY_US[r.cell] * 1e-6)
        lines.append(
            f"| {r.threads} | {r.cell} | {len(r.timings['unrolled'].times)} | {_fmt_us(r.timings['unrolled'])} "
            f"| {_fmt_us(r.timings['unrolled, no tables'])} | {_fmt_us(r.timings['torch'])} | {r.ratio('unrolled', 'torch'):.2f} | {what}: {verdict} "
            f"| {_fmt_load(r.other_load)} | {flops / 1e6:.2f} | {flops / r.timings['unrolled'].median / 1e9:.1f} "
            f"| {needed / 1e9:.0f} | {peak / 1e9:.0f} | {needed / peak:.0%} |"
        )
    return head + "\n".join(lines) + "\n"


def predict_over_numpy(rows: Sequence[tuple[str, str, Timing]]) -> float | None:
    """Seconds the whole `unrolled predict` process takes beyond `python -c "import numpy"` in the same run
    (medians), or None when either was not measured."""
    medians = {name: t.median for name, _, t in rows}
    if "unrolled predict" not in medians or "import numpy" not in medians:
        return None
    return medians["unrolled predict"] - medians["import numpy"]


def process_table(rows: Sequence[tuple[str, str, Timing]]) -> str:
    bare = next((t for name, _, t in rows if name == "bare interpreter"), None)
    over = predict_over_numpy(rows)
    head = ("| process | command | runs | wall s median (min–max) | minus bare interpreter s | target |\n"
            "|---|---|---:|---:|---:|---|\n")
    lines = []
    for name, command, t in rows:
        above = "—" if bare is None or name == "bare interpreter" else f"{t.median - bare.median:.3f}"
        target = ""
        if name == "unrolled predict":
            target = f"≤ {TARGET_PROCESS_S} s: {_verdict(t.median <= TARGET_PROCESS_S)}"
            if over is not None:
                target += (f"; ≤ import numpy + {TARGET_PROCESS_OVER_NUMPY_S} s (+{over:.3f} s): "
                           f"{_verdict(over <= TARGET_PROCESS_OVER_NUMPY_S)}")
        lines.append(f"| {name} | `{command}` | {len(t.times)} | {_fmt_s(t)} | {above} | {target} |")
    return head + "\n".join(lines) + "\n"


def varlen_table(row: Row, exact: dict[str, object]) -> str:
    real = row.extra["real_tokens"]
    results = {
        "unrolled": ("= unpadded" if _exact_ok(exact) else "**differs**") + f" ({_fmt_exact(exact)})",
        "torch packed": f"= unpadded (loss rel. diff {exact['torch_packed_rel']:.1e})",
        "torch padded": f"wrong: runs over the padding (loss rel. diff {exact['torch_padded_rel']:.1e})",
    }
    head = ("| implementation | steps | ms/step median (min–max) | real tokens/s | unrolled speed-up over it "
            "| results vs unpadded sequences |\n|---|---:|---:|---:|---:|---|\n")
    lines = []
    for name, t in row.timings.items():
        speedup = "—" if name == "unrolled" else f"{row.ratio('unrolled', name):.2f}"
        lines.append(f"| {name} | {len(t.times)} | {_fmt_ms(t)} | {_fmt_tps(real / t.median)} | {speedup} "
                     f"| {results[name]} |")
    return head + "\n".join(lines) + "\n"


def memory_table(rows: Sequence[dict[str, object]]) -> str:
    head = ("| implementation | lengths | B | T_max | real tokens/batch | RSS after setup MiB | peak RSS MiB "
            "| peak − setup MiB | bytes per B·T_max·2·H | target (peak ≤ 2 GiB) |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
    lines = []
    for r in rows:
        delta = r["peak_mib"] - r["setup_mib"]
        target = _verdict(r["peak_mib"] <= TARGET_PEAK_RSS_MIB) if r["impl"] == "unrolled" else "—"
        lines.append(
            f"| {r['impl']} | {r['lengths']} | {r['batch']} | {r['t_max']} | {r['real_tokens']:,.0f} "
            f"| {r['setup_mib']:.1f} | {r['peak_mib']:.1f} | {delta:.1f} | {delta * 2**20 / r['elements']:.1f} "
            f"| {target} |"
        )
    return head + "\n".join(lines) + "\n"


def subnormal_table(result: dict[str, float]) -> str:
    hardware = ("(the engine's default)" if result["hardware_flush"]
                else "(not available here: the extension is off or the CPU is not x86-64)")
    return (
        f"Elman RNN backward, B·T·D·H = {result['shape']}, float32, {result['threads']} thread(s), the carried "
        f"gradient starting at 1e-33 (without any flush, {result['subnormal_steps']:.0%} of the steps' input "
        "gradients hold subnormal values). The Python time loop with the C step kernels, the gradient floor at 0 "
        "(at 2^-100 it would zero this gradient at once; the C loop flushes the same way on its own):\n\n"
        "| backward pass | ms (median) | time / the default's |\n|---|---:|---:|\n"
        f"| subnormals flushed in hardware (FTZ/DAZ) and carried gradients in software {hardware} "
        f"| {result['both'] * 1e3:.1f} | 1.00 |\n"
        f"| carried gradients flushed in software only (`UNROLLED_FLUSH_SUBNORMALS=0`) | {result['software'] * 1e3:.1f} "
        f"| {result['software'] / result['both']:.2f} |\n"
        f"| no flush at all | {result['neither'] * 1e3:.1f} | {result['neither'] / result['both']:.2f} |\n"
    )


@dataclass
class Target:
    """One of the issue's targets, checked against this run."""

    name: str
    required: str
    measured: str
    met: bool


def _worst(rows: Sequence[Row], value: Callable[[Row], float]) -> tuple[float, Row]:
    row = min(rows, key=value)
    return value(row), row


def targets(results: dict[str, object]) -> list[Target]:
    """Every target the sections that ran can check, with the worst case found."""
    out = []
    train = results.get("train") or []
    for threads in dict.fromkeys(r.threads for r in train):
        sub = [r for r in train if r.threads == threads]
        d, row = _worst(sub, lambda r: r.ratio("unrolled", "torch-default"))
        out.append(Target(f"training step vs torch-default, {threads} thread(s)",
                          f"≥ {TARGET_VS_DEFAULT}× every cell and shape",
                          f"worst {d:.2f}× ({row.cell} {row.shape.label})", d >= TARGET_VS_DEFAULT))
        per_cell, met = [], True
        for cell in dict.fromkeys(r.cell for r in sub):
            b, row = _worst([r for r in sub if r.cell == cell], lambda r: r.ratio("unrolled", "torch-best"))
            per_cell.append(f"{cell} {b:.2f}× ({row.shape.label})")
            met &= b >= TARGET_VS_BEST[cell]
        required = "; ".join(f"{cell} ≥ {need}×" for cell, need in TARGET_VS_BEST.items())
        out.append(Target(f"training step vs torch-best, {threads} thread(s)", required,
                          "worst " + ", ".join(per_cell), met))
    floor = results.get("floor") or []
    if floor:
        worst = max(floor, key=lambda r: r.timings["unrolled fwd+bwd"].median / r.timings["GEMM floor"].median)
        ratio = worst.timings["unrolled fwd+bwd"].median / worst.timings["GEMM floor"].median
        out.append(Target(f"forward + backward / GEMM floor, {worst.threads} thread(s)", f"≤ {TARGET_FLOOR}",
                          f"worst {ratio:.2f} ({worst.cell} {worst.shape.label})", ratio <= TARGET_FLOOR))
    at_peak = [r for r in floor if r.shape == PEAK_SHAPE]
    if at_peak:
        worst = min(at_peak, key=peak_fraction)
        parts = [f"{r.cell} {peak_fraction(r):.0%} ({gflops(r)['fwd+bwd']:.0f} of {gflops(r)['peak']:.0f} GFLOP/s)"
                 for r in at_peak]
        out.append(Target(f"forward + backward / large-SGEMM GFLOP/s, {PEAK_SHAPE.label}, {worst.threads} thread(s)",
                          f"≥ {TARGET_PEAK_FRACTION:.0%} every cell", ", ".join(parts),
                          peak_fraction(worst) >= TARGET_PEAK_FRACTION))
    latency = [r for r in results.get("latency") or [] if r.threads == LATENCY_THREADS]
    if latency:
        parts = [f"{r.cell} {r.timings['unrolled'].median * 1e6:.0f} µs (torch {r.timings['torch'].median * 1e6:.0f})"
                 for r in latency]
        required = "; ".join(f"{cell} ≤ {us:.0f} µs" for cell, us in TARGET_LATENCY_US.items())
        out.append(Target(f"B=1, T=16 forward, {LATENCY_THREADS} thread", required, ", ".join(parts),
                          all(_latency_target(r)[0] for r in latency)))
    process = {name: t for name, _, t in results.get("process") or []}
    if "unrolled predict" in process:
        t = process["unrolled predict"]
        out.append(Target('`unrolled predict "I love this"`, whole process', f"≤ {TARGET_PROCESS_S} s",
                          f"{t.median:.3f} s", t.median <= TARGET_PROCESS_S))
        over = predict_over_numpy(results["process"])
        if over is not None:
            out.append(Target('`unrolled predict "I love this"` over `python -c "import numpy"`, same run',
                              f"≤ {TARGET_PROCESS_OVER_NUMPY_S} s", f"{over:.3f} s", over <= TARGET_PROCESS_OVER_NUMPY_S))
    if results.get("varlen"):
        row, exact = results["varlen"]
        ratio = row.ratio("unrolled", "torch packed")
        out.append(Target(f"variable-length training vs torch packed, {row.threads} thread(s)",
                          f"≥ {TARGET_VS_PACKED}×, identical to unpadded",
                          f"{ratio:.2f}×; {_fmt_exact(exact)}",
                          ratio >= TARGET_VS_PACKED and _exact_ok(exact)))
    memory = [r for r in results.get("memory") or [] if r["impl"] == "unrolled"]
    if memory:
        imdb = [r for r in memory if r["lengths"] == "variable"] or memory
        peak = max(r["peak_mib"] for r in imdb)
        out.append(Target("peak RSS, training on IMDB-length batches", "≤ 2 GiB", f"{peak:.0f} MiB",
                          peak <= TARGET_PEAK_RSS_MIB))
    return out


def targets_table(items: Sequence[Target]) -> str:
    head = "| target | required | measured | verdict |\n|---|---|---|---|\n"
    return head + "\n".join(f"| {t.name} | {t.required} | {t.measured} | {_verdict(t.met)} |" for t in items) + "\n"


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
    from unrolled.nn import fused

    kernels = (f"fused C step kernels for the three cells, the forward and BPTT time loops in C with the recurrent "
               f"product on packed W_hh up to {fused.PACKED_WEIGHT_MAX_BYTES // 1024} KiB ({fused.INSTRUCTION_SET} "
               f"build), sparse Adam's rows and the embedding's gradient in C"
               if fused.ACTIVE else "NumPy kernels (the C extension is not built or UNROLLED_FUSED=0)")
    return {
        "unrolled_kernels": kernels,
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


def _threads_of(rows: Sequence[Row]) -> str:
    return ", ".join(str(t) for t in dict.fromkeys(r.threads for r in rows))


KEPT_BEGIN, KEPT_END = "<!-- kept: ", "<!-- /kept -->"


def kept_sections(path: str) -> str:
    """The blocks other benchmarks write into the page (between ``<!-- kept: NAME -->`` and
    ``<!-- /kept -->``, e.g. benchmarks/translation_speed.py's): a rerun of this script keeps them."""
    if not os.path.exists(path):
        return ""
    text = open(path, encoding="utf-8").read()
    blocks, start = [], text.find(KEPT_BEGIN)
    while start >= 0:
        end = text.find(KEPT_END, start)
        if end < 0:
            break
        blocks.append(text[start : end + len(KEPT_END)])
        start = text.find(KEPT_BEGIN, end)
    return "".join("\n" + block + "\n" for block in blocks)


def render_doc(
    info: dict[str, str], command: str, results: dict[str, object], args, elapsed_s: float,
    section_times: dict[str, float], notes: str,
) -> str:
    """docs/performance.md: what is measured, the machine, the rerun command, the targets, every table."""
    from unrolled.nn import fused

    ran = ", ".join(f"{name} {seconds / 60:.1f} min" for name, seconds in section_times.items())
    parts = [f"""# Performance

Speed and memory of unrolled against PyTorch on CPU, measured by `benchmarks/speed.py` in one process run
(sections: {', '.join(section_times)}). Every table's implementations run in the same process with the same
thread count, interleaved (below); medians with min–max; ratios are speed ratios (> 1: unrolled is faster)
unless a column says otherwise.

## Targets

{targets_table(targets(results))}
## Machine

- CPU: {info['cpu']}, {info['cores']} cores (`os.cpu_count()`)
- Python {info['python']}, NumPy {info['numpy']} (BLAS: {info['numpy_blas']}), PyTorch {info['torch']}
  ({info['torch_build']})
- Thread pools seen by threadpoolctl: {info['threadpools']}
- Load from other processes just before the run: {info['other_load']}
- Date: {info['date']}; whole run took {elapsed_s / 60:.1f} min ({ran})

## Rerun

```
{command}
```

## Implementations

- **unrolled**: float32; `classifier_forward(..., training=True)`, `classifier_backward` (the embedding
  gradient is `SparseRows`, the batch's distinct rows only), `unrolled.optim.Adam(params, lr=1e-3).step(grads)`
  (lazy, SparseAdam-style rows for the embedding, dense Adam for the rest). Pooling: the last state(s).
  Kernels: {info['unrolled_kernels']}. The other matrix products are NumPy's (OpenBLAS). The time loops
  run on the row's thread count (`unrolled.nn.fused.set_num_threads`), splitting the batch's rows, when a
  loop has enough work (`SPLIT_MIN_MACS`); before such a loop OpenBLAS's idle workers are stopped (they
  would spin on the second core for ~0.1 s after each OpenBLAS call). Float32 gate gradients below 2^-100
  are written as zero (`GRADIENT_FLOOR`): the weight-gradient GEMMs run partly on OpenBLAS's worker, which
  has no FTZ, and vanished gradients made subnormal products there. While the engine
  computes (time loops, optimizer step), the calling thread flushes subnormal floats to zero (FTZ/DAZ, as
  torch-best's `set_flush_denormal`; `unrolled/nn/fused.py`), and puts its previous mode back after. As `unrolled.train.fit`
  does before training, the benchmark sets glibc's `M_MMAP_MAX = 0` and `M_TRIM_THRESHOLD = 1 GiB`
  (`unrolled/nn/allocator.py`) before its first step: freed memory is kept for the next step instead of being returned and page-faulted in again. The setting is
  process-wide, so the torch steps of this run, in the same process, run with it too.
- **torch-default** (PyTorch as users write it): {TORCH_DEFAULT_CONFIG}.
- **torch-best** (PyTorch's best CPU settings for this step): {TORCH_BEST_CONFIG}.

Thread counts: NumPy's BLAS limited with `threadpoolctl.threadpool_limits`, torch with
`torch.set_num_threads`, both to the row's count. Interleaving: after the warm-up steps, the implementations
of a row alternate in blocks: sleep {COOLDOWN_S} s, one untimed step, then a block of timed steps of one
implementation, then the next, the order rotating every round; every step is timed on its own with
`time.perf_counter`. Blocks rather than single alternating steps because OpenBLAS's worker threads keep
spinning for ~0.1 s after NumPy's last GEMM: on 2 cores a torch step started right after an unrolled step
shares the cores with them, and a step-by-step alternation measured torch up to 2× slower than torch alone.
*other load* is the share of all CPUs that other processes used while the row was measured (/proc/stat busy
time minus this process's own CPU time), bold above {BUSY_THRESHOLD:.0%}: on 2 cores any such load slows the
2-thread runs, torch's OpenMP more than OpenBLAS. On a shared virtual machine whose speed drifts by tens of
percent and stalls at times (see the max columns), treat ratio differences of ~15 % as noise.
"""]
    if results.get("train"):
        rows = results["train"]
        parts.append(f"""
## Training step

One training step of the many-to-one classifier, vocabulary {VOCAB_SIZE:,}, 2 classes, float32, one layer,
unidirectional: token ids → embedding (D) → recurrent layer (H) → last hidden state → linear →
cross-entropy, then backward and an Adam step (lr 1e-3). Random token ids in [1, V), no padding (no mask),
random binary labels; four pre-generated batches cycled, the same for every implementation. Threads:
{_threads_of(rows)}; {args.warmup} warm-up steps, blocks of {args.block}, {args.repeats} timed steps per
implementation. tokens/s = B·T / median step time; *unrolled / default* = torch-default median / unrolled
median, likewise for best. Target: ≥ {TARGET_VS_DEFAULT}× torch-default (the issue asks it at 2 threads) and
{"; ".join(f"≥ {need}× torch-best for {cell}" for cell, need in TARGET_VS_BEST.items())}.

{training_step_table(rows)}""")
    if results.get("floor"):
        rows = results["floor"]
        parts.append(f"""
## Forward + backward against the GEMM floor

*GEMM floor*: the time of exactly the matrix products that unrolled's forward + backward performs for the
row's shape, with NumPy's BLAS at the same thread count, into preallocated outputs, nothing else (G gates:
1, 3, 4; N = B): forward, the input projection of all steps (T·N, E)×(E, G·H), T recurrent products
(N, H)×(H, G·H) and the head's (N, H)×(H, 2); backward, the head's two gradients, T products
(N, G·H)×(G·H, H) for dh, dW_ih (G·H, T·N)×(T·N, E), dW_hh as (G·H, N)×(N, H) plus
(G·H, (T−1)·N)×((T−1)·N, H), and dX (T·N, G·H)×(G·H, E). Not in it: the embedding gather and scatter-add,
gate nonlinearities and other elementwise work, bias sums, the loss, allocation and the optimizer.
*unrolled fwd+bwd* is `classifier_forward` + `classifier_backward` without the optimizer step. The two
alternate as above ({args.repeats} timed runs each, {_threads_of(rows)} thread(s)). Floor GFLOP/s =
the products' FLOPs / floor time, and fwd+bwd GFLOP/s the same FLOPs / unrolled's time (its element-wise work
counts as time, not FLOPs). *Peak*: a large SGEMM, ({PEAK_GEMM_SIZE}, {PEAK_GEMM_SIZE}) × ({PEAK_GEMM_SIZE}, {PEAK_GEMM_SIZE}) float32
on the same BLAS and threads, timed interleaved with the other two in every row. Targets: fwd+bwd / floor
≤ {TARGET_FLOOR}; fwd+bwd ≥ {TARGET_PEAK_FRACTION:.0%} of the peak on {PEAK_SHAPE.label}, every cell.

{floor_table(rows)}""")
        ceilings = ceiling_table(results.get("train") or [], rows)
        if ceilings:
            parts.append(f"""
### What the GEMM floor leaves for the torch-default target

The same matrix products in PyTorch's step run on MKL/oneDNN; unrolled's run on NumPy's OpenBLAS. Were
unrolled's training step nothing but its GEMM floor (no element-wise work, embedding, loss or optimizer),
it would be *ceiling* times as fast as torch-default's whole step (the training table's torch-default
median over this table's floor, both from this run). Where the ceiling is below {TARGET_VS_DEFAULT}, the
target cannot be met with these matrix products on this BLAS, whatever the code around them does.

{ceilings}""")
        needs = peak_need_table(results.get("train") or [], rows)
        if needs:
            parts.append(f"""
### What the machine's peak leaves for the torch-best target

torch-best's step is PyTorch's LSTM/GRU/RNN on oneDNN and MKL. *products at peak would need*: the share of
this run's large-SGEMM GFLOP/s at which unrolled's matrix products (the floor's FLOPs: forward and backward,
nothing else) would have to run for its whole step to be the target's times as fast as torch-best's, if
the embedding, the element-wise work, the loss and Adam cost nothing; a lower bound. Over 100 %, no code on
this machine meets the target; *OpenBLAS floor / peak* is the share the same products reach on NumPy's
BLAS, the floor's own rate, and *torch-best / peak* the rate of torch's whole step counted in the same FLOPs.

{needs}""")
    if results.get("latency"):
        rows = results["latency"]
        shape = rows[0].shape
        parts.append(f"""
## Inference latency, B = 1

Forward pass only, one sequence of T = {shape.seq_len} tokens, E = {shape.embed_dim}, H = {shape.hidden},
vocabulary {shape.vocab:,}, one layer, last state → linear → logits. unrolled:
`classifier_forward(params, config, ids, keep_cache=False, projections=tables)`, as `RNNClassifier.predict` calls it (the
same logits as `classifier_forward(..., training=False)`, bit for bit, without the caches that backward and
`explain` need; batches of up to 4 rows run the whole time loop in C when the extension is built{
f", and up to {fused.PROJECT_ROWS_MAX} rows of T·N their input projection too" if fused.PROJECT_ROWS_MAX else ""
}, a W_hh off a 64-byte line copied to one first). `tables`: `projection_tables(params, config)`, built once and
kept, as a model keeps them from one prediction to the next: each word's first-layer input projection
E[w] W_ihᵀ + b_ih, computed the first time the word is read (here in the warm-up) by the same C product, so a
sentence's projection is a gather of rows (nn/projection_table.py; {"used on this build" if fused.PROJECT_ROWS_MAX
else "None on this build, which projects with BLAS: both unrolled columns run the same code"}). *without tables*: the
same call with `projections=None` (embedding lookup and the product on every call); torch:
the torch-default module in `eval()` mode, each call inside `with torch.inference_mode():` (no autograd
record either). Four random id sequences cycled; blocks of {args.latency_block} calls,
{len(rows[0].timings['unrolled'].times)} timed calls each, {_threads_of(rows)} thread(s). Target, at {LATENCY_THREADS} thread:
{"; ".join(f"{cell} ≤ {us:.0f} µs" for cell, us in TARGET_LATENCY_US.items())}.
*products MFLOP*: the forward pass's matrix products (input projection and recurrent product of every step,
the head), 2 FLOPs per multiply-add; *target's GFLOP/s*: the rate those products alone would need to fit in
the target, against *peak*, a large SGEMM at the row's thread count in the same run (5 runs after the row).
At B = 1 the recurrent product is a matrix-vector product: every step reads all of W_hh (G·H·H floats) once
for 2 FLOPs a float, so it runs at the rate the cache delivers W_hh, not at the SGEMM's.

{latency_table(rows)}""")
    if results.get("process"):
        rows = results["process"]
        parts.append(f"""
## `unrolled predict` as a whole process

Wall time of a whole process, from `subprocess.run` to its exit, cwd the repository root, `PYTHONPATH=src`,
no thread limits (as a user runs it): `unrolled predict "I love this"` starts the interpreter, imports the
CLI, loads the bundled `sst2-best` model (an LSTM, H 256, 18,000 words stored as float16) and classifies
one sentence; `import numpy` is the floor of any NumPy program; `import torch` is what any torch-based predict pays before its first line of work; the bare
interpreter is the floor of all. They run in rounds whose order rotates, after one untimed warm-up round (file
cache); {len(rows[0][2].times)} timed runs each. As installed packages run, with their modules compiled to
bytecode: pip did that for NumPy and torch at install; for unrolled's `src/` the warm-up round writes it (into a
temporary `PYTHONPYCACHEPREFIX`, with `PYTHONDONTWRITEBYTECODE` unset for the children). Targets: ≤ {TARGET_PROCESS_S} s, and ≤ `import numpy` +
{TARGET_PROCESS_OVER_NUMPY_S} s in the same run.

{process_table(rows)}""")
    if results.get("varlen"):
        row, exact = results["varlen"]
        spec = args.varlen_spec
        parts.append(f"""
## Variable-length batches

Training step (forward, loss, backward, Adam) of a bidirectional GRU classifier, one layer, on
variable-length batches: {spec.label}, drawn once with seed {spec.seed}: {spec.num_batches} batches cycled, each
right-padded (id 0) to its own longest sequence (T_max {', '.join(map(str, row.extra['t_max']))}); on average
{row.extra['real_tokens']:,.0f} real of {row.extra['padded_tokens']:,.0f} padded tokens per batch. Features: the
final state of each direction, concatenated (the forward direction's at each sequence's last real token, the
reverse direction's after reading from that token back to the first) → linear → 2 classes.

- **unrolled**: masks (`classifier_forward(..., mask=mask)`), batches as they come (unsorted, no
  bucketing): the engine sorts the rows by length, steps only each step's real rows and runs the big
  products on the real steps packed (unrolled/nn/time_loop.py), so padding costs no arithmetic.
- **torch packed**: `nn.Embedding(V, E, padding_idx=0)` → `pack_padded_sequence(x, lengths,
  batch_first=True, enforce_sorted=False)` → `nn.GRU(E, H, batch_first=True, bidirectional=True)` →
  `torch.cat(list(h_n), 1)` → `nn.Linear(2H, 2)`; torch-default Adam. Exact.
- **torch padded**: the same without packing: the GRU runs over the padding, so h_n of both directions
  includes padded steps and the results are wrong (the reverse direction starts in the padding); timed as
  the cost of stepping the full padded batch.

Results check, once, on {len(exact['lengths'])} sequences of the first batch (lengths
{', '.join(map(str, exact['lengths']))}): unrolled's mean loss and every parameter's gradient on the masked,
padded batch against each sequence run alone, unpadded and unmasked (the largest over the parameters of
max |difference| / max |value|), in float32 and in float64 (same parameters); the torch modules loaded with
the same float32 parameters, their loss against the same float32 reference. The three alternate
in blocks of 3 steps, {len(row.timings['unrolled'].times)} timed steps each, {row.threads} thread(s).
real tokens/s = mean real tokens per batch / median step time. Target: unrolled ≥ {TARGET_VS_PACKED}× torch packed,
results identical to the unpadded computation (relative difference ≤ {EXACT_RTOL['float64']:g} in float64,
the same computation; ≤ {EXACT_RTOL['float32']:g} in float32, rounding).

{varlen_table(row, exact)}""")
    if results.get("memory"):
        rows = results["memory"]
        parts.append(f"""
## Peak memory

Each case runs in a fresh subprocess (`speed.py --memory-child`; the unrolled cases never import torch):
set up the BiGRU classifier of the previous section and its batches, read the peak RSS (*RSS after setup*:
interpreter, imports, parameters, batches), run {args.memory_steps} training steps, read the peak RSS again
(*peak RSS*). The peak RSS is `VmHWM` from `/proc/self/status`, not `getrusage(RUSAGE_SELF).ru_maxrss`:
Linux carries ru_maxrss over fork and exec, so every child reported at least this benchmark process's own
RSS at the fork (~300 MiB with torch loaded), whatever it did itself. *peak − setup* is what training adds:
activations kept for BPTT, gradients, temporaries, and the Adam moments (allocated at the first step).
*bytes per B·T_max·2·H* divides it by the number of hidden values the two directions produce: constant
across T means memory linear in T·B·H. Lengths: the variable-length batches above, or every sequence the
fixed length. Thread count {args.varlen_threads} (OPENBLAS/OMP/MKL_NUM_THREADS). Target: peak RSS ≤ 2 GiB
for the IMDB-length batches.

{memory_table(rows)}""")
    if results.get("subnormal"):
        parts.append("\n## Subnormal numbers\n\n" + subnormal_table(results["subnormal"]))
    parts.append(f"\n## Where things stand\n\n{notes}\n")
    return "".join(parts)


def summarize(rows: Sequence[Row]) -> str:
    """A factual summary of the training-step ratios, generated from the table (commentary is added by hand)."""
    lines = []
    for threads in dict.fromkeys(r.threads for r in rows):
        sub = [r for r in rows if r.threads == threads]
        for baseline in ("torch-default", "torch-best"):
            per_cell = []
            for cell in dict.fromkeys(r.cell for r in sub):
                ratios = [r.ratio("unrolled", baseline) for r in sub if r.cell == cell]
                span = f"{min(ratios):.2f}" if len(ratios) == 1 else f"{min(ratios):.2f}–{max(ratios):.2f}"
                per_cell.append(f"{cell} {span}")
            geo = float(np.exp(np.mean(np.log([r.ratio("unrolled", baseline) for r in sub]))))
            lines.append(
                f"- {threads} thread(s): unrolled / {baseline} over the shapes, by cell: {', '.join(per_cell)}; "
                f"geometric mean over all {len(sub)} rows {geo:.2f}."
            )
    return "Generated from the training-step table:\n\n" + "\n".join(lines) if lines else "Generated: no training rows."


# ----------------------------------------------------------------------------------------------------------
# CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                   help="sections to run, in the order given (default: all)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="thread counts of the train and latency sections; the others use the largest (default: 1 2)")
    p.add_argument("--repeats", type=int, default=30,
                   help="timed steps per shape and cell, train and floor (default: 30)")
    p.add_argument("--block", type=int, default=DEFAULT_BLOCK,
                   help=f"timed steps per block when alternating implementations (default: {DEFAULT_BLOCK})")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps per implementation first (default: 5)")
    p.add_argument("--latency-repeats", type=int, default=500, help="timed calls per cell, latency (default: 500)")
    p.add_argument("--process-runs", type=int, default=10, help="timed runs per process (default: 10)")
    p.add_argument("--varlen-repeats", type=int, default=9, help="timed steps per implementation, varlen (default: 9)")
    p.add_argument("--memory-steps", type=int, default=3, help="training steps per memory case (default: 3)")
    p.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    p.add_argument("--quick", action="store_true", help="tiny shapes, few repeats: a smoke run of every section")
    p.add_argument("--out", default="docs/performance.md", help="Markdown report path; '-' for stdout only")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="before starting, wait up to this long for other processes to leave the CPUs (default: 0)")
    p.add_argument("--memory-child", metavar="JSON", help=argparse.SUPPRESS)  # internal: one memory case
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    from unrolled.nn import allocator

    allocator.keep_freed_memory()  # what the training loop (unrolled.train.fit) sets before the first step
    if args.memory_child is not None:
        return memory_child(args.memory_child)
    latency_shape, subnormal_shape, fixed_lens, process_warmup = LATENCY_SHAPE, SUBNORMAL_SHAPE, MEMORY_FIXED_LENS, 1
    args.varlen_spec = VARLEN_SPEC
    if args.quick:
        shapes, args.repeats, args.warmup, args.block = QUICK_SHAPES, 1, 1, 1
        args.latency_repeats, args.process_runs, args.varlen_repeats, args.memory_steps = 20, 1, 1, 1
        latency_shape, subnormal_shape, fixed_lens, process_warmup = (
            QUICK_LATENCY_SHAPE, QUICK_SUBNORMAL_SHAPE, QUICK_MEMORY_FIXED_LENS, 0)
        args.varlen_spec = QUICK_VARLEN_SPEC
    else:
        shapes = DEFAULT_SHAPES
    counts = (args.repeats, args.block, args.latency_repeats, args.process_runs, args.varlen_repeats, args.memory_steps)
    if min(counts) < 1 or args.warmup < 0 or any(t < 1 for t in args.threads):
        raise SystemExit("--repeats, --block, --*-repeats, --process-runs, --memory-steps and --threads must be >= 1, "
                         "--warmup >= 0")
    top = max(args.threads)
    args.varlen_threads, args.latency_block = top, min(50, args.latency_repeats)

    print("sanity check: unrolled loss decreases on a fixed batch ...", flush=True)
    sanity_check_unrolled(args.cells)
    print("  ok", flush=True)

    load = wait_for_idle(args.wait_idle) if args.wait_idle > 0 else other_cpu_load()
    if load is not None:
        print(f"CPU load from other processes before the run: {load:.0%} of {os.cpu_count()} CPUs", flush=True)
        if load > BUSY_THRESHOLD:
            print("  WARNING: the machine is busy; multi-threaded timings (torch's above all) will suffer", flush=True)

    start = time.perf_counter()
    results: dict[str, object] = {}
    section_times: dict[str, float] = {}
    for section in dict.fromkeys(args.sections):
        t0 = time.perf_counter()
        if section == "train":
            rows = []
            for threads in args.threads:
                print(f"training step, {threads} thread(s):", flush=True)
                rows += run_training_step_benchmark(shapes, args.cells, threads, args.repeats, args.warmup, args.block)
            results["train"] = rows
        elif section == "floor":
            print(f"forward + backward vs the GEMM floor, {top} thread(s):", flush=True)
            results["floor"] = run_floor_benchmark(shapes, args.cells, top, args.repeats, args.warmup, args.block)
        elif section == "latency":
            rows = []
            for threads in args.threads:
                print(f"B=1 inference latency, {threads} thread(s):", flush=True)
                rows += run_latency_benchmark(latency_shape, args.cells, threads, args.latency_repeats,
                                              warmup=20, block=args.latency_block)
            results["latency"] = rows
        elif section == "process":
            print("whole-process wall time:", flush=True)
            results["process"] = run_process_benchmark(args.process_runs, process_warmup)
        elif section == "varlen":
            print(f"variable-length BiGRU training, {top} thread(s):", flush=True)
            results["varlen"] = run_varlen_benchmark(args.varlen_spec, top, args.varlen_repeats,
                                                     warmup=1, block=min(3, args.varlen_repeats))
        elif section == "memory":
            print(f"peak RSS, BiGRU training, fresh subprocesses, {top} thread(s):", flush=True)
            results["memory"] = run_memory_benchmark(args.varlen_spec, top, args.memory_steps, fixed_lens)
        elif section == "subnormal":
            print("subnormal gradients in a long backward pass:", flush=True)
            results["subnormal"] = run_subnormal_benchmark(max(3, args.repeats // 3), top, subnormal_shape)
        section_times[section] = time.perf_counter() - t0
        print(f"  [{section}: {section_times[section]:.0f} s]", flush=True)
    elapsed = time.perf_counter() - start

    print()
    print(targets_table(targets(results)))
    if results.get("train"):
        print(training_step_table(results["train"]))
    if results.get("floor"):
        print(floor_table(results["floor"]))
    if results.get("latency"):
        print(latency_table(results["latency"]))
    if results.get("process"):
        print(process_table(results["process"]))
    if results.get("varlen"):
        print(varlen_table(*results["varlen"]))
    if results.get("memory"):
        print(memory_table(results["memory"]))
    if results.get("subnormal"):
        print(subnormal_table(results["subnormal"]))
    print(f"whole run: {elapsed / 60:.1f} min (" + ", ".join(f"{k} {v:.0f} s" for k, v in section_times.items()) + ")")
    if args.out != "-":
        notes = summarize(results.get("train") or [])
        command = "PYTHONPATH=src python benchmarks/speed.py" + ("" if not argv else " " + " ".join(argv))
        info = machine_info()
        info["other_load"] = "unknown" if load is None else f"{load:.0%} of the CPUs busy (1 s sample)"
        doc = render_doc(info, command, results, args, elapsed, section_times, notes)
        doc += kept_sections(args.out)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(doc)
        print(f"wrote {args.out} ({elapsed / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
