"""Fused element-wise step kernels for the three cells: the same math as the NumPy kernels, one pass per step.

The NumPy kernels in ``rnn.py``, ``gru.py`` and ``lstm.py`` are the reference: each term of the gate equations
is one array operation, readable next to the equations. At the sizes RNNs train at (N·H of a few thousand),
each of those ~20 operations costs a call and a pass over memory, and together they cost as much as the step's
matrix product. ``_fused.c`` does the same element-wise math in one C loop per step (float32 vectorised for
AVX2/AVX-512 when the CPU has it, float64 with the C library's exp and tanh); the matrix products stay in
NumPy. tests/nn/test_fused.py checks every fused kernel against its NumPy twin.

The extension is built by ``pip install`` when a C compiler is present; without it, or with the environment
variable ``UNROLLED_FUSED=0`` set before import, every cell runs its NumPy kernels. ``ACTIVE`` says which,
``INSTRUCTION_SET`` which float32 build runs (the widest the CPU has; ``UNROLLED_FUSED_ISA=baseline`` or
``avx2`` caps it).

Subnormal floats: while the engine computes (the time loops forward and backward, the optimizers' steps),
the calling thread runs with flush-to-zero and denormals-are-zero set (``subnormals_flushed``; the FTZ/DAZ
bits of x86-64's MXCSR, what ``torch.set_flush_denormal(True)`` sets), and puts the previous mode back after.
Gradients that vanish over many steps decay into subnormals, and on Intel CPUs every operation on one takes a
microcode assist: on an Intel Xeon a 32·256·128·128 LSTM training step took 4.2× longer without it
(647 vs 153 ms, benchmarks/speed.py; README).
Only values below the dtype's smallest normal number (1.2e-38 in float32) change, to zero. BLAS worker
threads other than the caller keep their own mode, so the float32 backward kernels also write gate
gradients below ``GRADIENT_FLOOR`` (2^-100 ≈ 7.9e-31) as zero: the weight-gradient GEMMs after the time loop
run partly on those threads, and a vanished gradient times an activation is a subnormal product there (a
32·256·128·128 LSTM backward pass: 120 ms without the floor, 70 ms with it; see _fused.c). No float32 weight
update can see a gradient that small. With the extension off, or with the environment variable
``UNROLLED_FLUSH_SUBNORMALS=0`` set before import (``FLUSH`` false), nothing is flushed and there is no floor.

Float32 results differ from the NumPy kernels' in the last bits: exp and tanh are Cephes' polynomials
(within a few ulp) and FMA fuses a·b + c. Float64 forward results agree to ~1e-15, backward to the last bit
without FMA.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import threading
import warnings

import numpy as np

try:
    if os.environ.get("UNROLLED_FUSED", "1").strip() == "0":
        raise ImportError("disabled by UNROLLED_FUSED=0")
    from unrolled.nn import _fused
except ImportError:
    _fused = None

ACTIVE = _fused is not None
INSTRUCTION_SET = _fused.instruction_set if ACTIVE else None  # "avx512f+fma", "avx2+fma" or "baseline"
# Whether the engine computes with subnormals flushed (see above); UNROLLED_FLUSH_SUBNORMALS=0 before import
# keeps IEEE subnormals (gradual underflow) at their cost.
FLUSH = ACTIVE and bool(_fused.flush_supported) and os.environ.get("UNROLLED_FLUSH_SUBNORMALS", "1").strip() != "0"
# The float32 backward kernels' gradient floor (see above): on with the flush, off (IEEE) without it.
GRADIENT_FLOOR = _fused.default_gradient_floor if FLUSH else 0.0  # 2^-100
if ACTIVE:
    _fused.set_gradient_floor(GRADIENT_FLOOR)


def subnormals_flushed(function):
    """``function`` run with subnormal floats flushed to zero in the calling thread while ``FLUSH`` is true
    (see the module docstring), the thread's previous mode restored after; ``function`` itself when the
    extension is off or the CPU is not x86-64."""
    if not ACTIVE or not _fused.flush_supported:
        return function

    @functools.wraps(function)
    def flushed(*args, **kwargs):
        if not FLUSH:
            return function(*args, **kwargs)
        previous = _fused.flush_subnormals(_fused.flush_bits)
        try:
            return function(*args, **kwargs)
        finally:
            _fused.flush_subnormals(previous)

    return flushed


def _c(a: np.ndarray) -> np.ndarray:
    """The C loops read plain C-contiguous memory (a caller's state may be a strided view)."""
    return np.ascontiguousarray(a)


CACHE_LINE = 64  # bytes: the C kernels' widest vector load (AVX-512)


def on_cache_line(a: np.ndarray) -> np.ndarray:
    """``a`` itself when it is C-contiguous and starts on a 64-byte boundary, else a copy that does (same
    values and shape). NumPy aligns large arrays to 16 bytes; the few-row product loads W_hh a whole vector
    at a time, and a load that straddles two cache lines costs about two (a B = 1 LSTM forward pass, H 128:
    86 µs with W_hh 16 bytes past a line, 54 µs on one). Networks keep their weights so from initialisation
    and loading on; the C loop copies one that is not (the same bits either way, ~8 µs for that LSTM)."""
    if a.flags.c_contiguous and a.ctypes.data % CACHE_LINE == 0:
        return a
    return cache_line_copy(a)


def cache_line_copy(a: np.ndarray, dtype=None) -> np.ndarray:
    """A new C-contiguous array holding ``a``'s values (cast to ``dtype`` when given), starting on a cache line:
    one copy, where ``on_cache_line(a.copy())`` may take two."""
    out = _on_cache_line_empty(a.shape, a.dtype if dtype is None else dtype)
    out[...] = a
    return out


def _on_cache_line_empty(shape, dtype) -> np.ndarray:
    """An uninitialised array of ``shape`` and ``dtype`` starting on a cache line (a view of a slightly larger
    buffer)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buffer = np.empty(nbytes + CACHE_LINE, dtype=np.uint8)
    start = -buffer.ctypes.data % CACHE_LINE
    return buffer[start : start + nbytes].view(dtype).reshape(shape)


def float32_of_float16(a: np.ndarray) -> np.ndarray:
    """A float16 array as float32: every value exactly what ``a.astype(np.float32)`` gives (a NaN stays a NaN,
    its payload aside); in C when the extension is built, ~2x faster (F16C converts eight at a time): loading
    a model stored as float16."""
    if not ACTIVE:
        return a.astype(np.float32)
    out = _on_cache_line_empty(a.shape, np.float32)  # a loaded model's weights, kept so (see on_cache_line)
    _fused.float16_to_float32(np.ascontiguousarray(a), out)
    return out


def fused_kernel(numpy_kernel):
    """The fused twin of a NumPy ``CellKernel``, or the NumPy kernel itself when the extension is not built
    or does not know the kernel's name (a new cell runs on NumPy until it gets C code).

    A known kernel gets fused step kernels, ``sequence`` (the whole forward loop in C) and
    ``backward_sequence`` (BPTT's loop in C). (The cells accept float32 and float64 only; the C code has both.)
    """
    if not ACTIVE or numpy_kernel.name not in _C_STEPS:
        return numpy_kernel
    forward, backward = _C_STEPS[numpy_kernel.name]()
    code = _fused.cell_codes.get(numpy_kernel.name)  # the C module's own table of its sequence loop's cells
    if code is None:
        return dataclasses.replace(numpy_kernel, forward=forward, backward=backward)
    with_c = len(numpy_kernel.state_names) == 2
    return dataclasses.replace(
        numpy_kernel, forward=forward, backward=backward, sequence=_sequence_of(code, with_c=with_c),
        backward_sequence=_backward_sequence_of(code, with_c=with_c, with_dhw=not numpy_kernel.shared_preactivation),
        packed_hidden_max=int((PACKED_WEIGHT_MAX_BYTES / 4 / numpy_kernel.num_gates) ** 0.5),
    )


# The C loops' packed product keeps W_hh (G·H × H floats) in each core's L2 cache; up to this size it
# measured faster than NumPy's BLAS (a 64·64·300·256 LSTM training step, 1 MiB of W_hh: 148 ms with the C
# loops on 2 threads, 171 ms with BLAS on 2; on one loop thread 174 ms); larger ones were not measured.
PACKED_WEIGHT_MAX_BYTES = 1024 * 1024


# Up to this many rows the forward loop's recurrent product is dot products row by row, above it the packed
# product (the matrix-vector form is the faster one for B = 1 inference; see _fused.c).
MATVEC_ROWS = 4


# Up to this many rows (T·N), a few-row time loop's input projection x W_ihᵀ + b runs in C (project_rows), in
# the AVX-512 build: a BLAS call for 16 rows of 128 by 512 ran at ~40 GFLOP/s where its tile reaches ~57 (1
# thread; 43 vs 34 µs at 5 rows; a B = 1 LSTM forward pass of 16 steps 10 % faster); at 64 rows BLAS was the
# faster (128 vs 145 µs). The AVX2 build's tile reached ~43 GFLOP/s, no clear gain: there (and in the baseline
# build) BLAS keeps the product.
PROJECT_ROWS_MAX = 32 if INSTRUCTION_SET == "avx512f+fma" else 0


def project_rows(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x (M, D) times weight (G, D) transposed, plus bias (G,) -> (M, G), in C (extension built only): each
    output one running sum over D in order, then + bias (the values do not depend on M). For few rows."""
    m, d = x.shape
    g = weight.shape[0]
    out = np.empty((m, g), dtype=x.dtype)
    _fused.project_rows(_c(x), _c(weight), _c(bias), out, m, d, g, x.dtype == np.float64)
    return out


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _default_threads() -> int:
    """UNROLLED_NUM_THREADS when set, else the CPUs this process may run on (see get_num_threads)."""
    value = os.environ.get("UNROLLED_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    if value:
        warnings.warn(f"UNROLLED_NUM_THREADS={value!r} is not a positive integer; the C time loops use "
                      f"{_cpus()} thread(s), one per CPU", stacklevel=2)
    return _cpus()


_threads = _default_threads()


def get_num_threads() -> int:
    """How many threads the C time loops may use (UNROLLED_NUM_THREADS before import, or set_num_threads;
    default: one per CPU). A loop with at least SPLIT_MIN_MACS multiply-adds in its recurrent products splits
    the batch's rows between them, at least ROWS_PER_THREAD each; each row is its own recurrence, so the
    result is the same for any count. Smaller loops run on one thread: starting threads and quieting BLAS's
    workers (_quiet_blas_workers) cost more than they save there (a 64·32·128·128 Elman RNN training step:
    9.6 ms on one loop thread, 12.3 ms on two)."""
    return _threads


@functools.cache
def _openblas_shutdown():
    """NumPy's OpenBLAS's ``blas_thread_shutdown_`` (ctypes), or None where NumPy's BLAS is something else,
    the library is not loaded, the extension is off, or this is not Linux; looked up on first use (not at
    import: prediction never needs it). OpenBLAS's worker threads spin for ~0.1 s after each
    multi-threaded call; shut down, they stop, and OpenBLAS starts them again at its next such call (what
    it does itself around a fork)."""
    if not ACTIVE or not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes
        import glob

        libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*.so*"))
        if len(libs) != 1:
            return None
        lib = ctypes.CDLL(libs[0], mode=os.RTLD_NOLOAD | os.RTLD_LAZY)  # only if NumPy loaded it
        shutdown = lib.blas_thread_shutdown_
    except (OSError, AttributeError, ImportError):
        return None
    shutdown.restype = ctypes.c_int
    shutdown.argtypes = []
    return shutdown


def _quiet_blas_workers() -> None:
    """Before a C loop that splits its rows between threads: stop OpenBLAS's idle workers, which would
    otherwise spin on the cores the loop's threads run on (a 32·256·128·128 LSTM forward loop on 2 threads
    took 20.9 ms right after a 2-thread OpenBLAS call, 11.6 ms with the workers stopped, 15.5 ms on one
    thread; stopping them costs ~0.1 ms). Only in a process with no other Python thread, which could be
    inside OpenBLAS at that moment."""
    shutdown = _openblas_shutdown()
    if shutdown is not None and threading.active_count() == 1:
        shutdown()


# the C loops give each thread at least this many rows (run_parts in _fused.c)
ROWS_PER_THREAD = _fused.rows_per_thread if ACTIVE else 8
SPLIT_MIN_MACS = 1 << 26  # T·N·G·H² at least this (~67 M, ~1 ms of products) for a loop to use threads


def _loop_threads(t_len: int, rows: int, weight_hh: np.ndarray) -> int:
    """The threads one C loop over ``rows`` rows and ``t_len`` steps with ``weight_hh`` (G·H, H) runs on (see
    get_num_threads); OpenBLAS's workers are quieted first when more than one."""
    macs = t_len * rows * weight_hh.size  # T·N·G·H² in the recurrent products
    if _threads == 1 or rows < 2 * ROWS_PER_THREAD or macs < SPLIT_MIN_MACS:
        return 1
    _quiet_blas_workers()
    return _threads


def set_num_threads(threads: int) -> int:
    """Let the C time loops use up to ``threads`` threads (as ``torch.set_num_threads``; NumPy's BLAS keeps
    its own setting, which threadpoolctl changes). Returns the previous value."""
    global _threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads: expected an integer >= 1, got {threads!r}")
    previous, _threads = _threads, threads
    return previous


def _sequence_of(cell_code: int, *, with_c: bool):
    """The C forward loop for one cell code; ``with_c``: the state has a second component (LSTM's c)."""

    def sequence(xw, weight_hh, bias_hh, state0, mask, states_out, saved_out) -> None:
        t_len, n, _ = xw.shape
        hidden = weight_hh.shape[1]
        threads = _loop_threads(t_len, n, weight_hh)
        _fused.sequence(
            cell_code,
            xw,
            _c(weight_hh),
            _c(bias_hh),
            _c(state0[0]),
            _c(state0[1]) if with_c else None,
            None if mask is None else _c(mask),
            states_out[0],
            states_out[1] if with_c else None,
            saved_out if saved_out.size else None,
            t_len,
            n,
            hidden,
            xw.dtype == np.float64,
            n > MATVEC_ROWS,
            threads,
        )

    return sequence


def _backward_sequence_of(cell_code: int, *, with_c: bool, with_dhw: bool):
    """BPTT's loop in C for one cell code (a batch without padding); ``with_dhw``: the cell writes a separate
    gradient of h W_hhᵀ (GRU)."""

    def backward_sequence(dout, dcarry, states, state0, saved, weight_hh, dxw, dhw, flush_every) -> None:
        t_len, n, hidden = states[0].shape
        threads = _loop_threads(t_len, n, weight_hh)
        _fused.sequence_backward(
            cell_code,
            None if dout is None else _c(dout),
            states[0],
            states[1] if with_c else None,
            _c(state0[0]),
            _c(state0[1]) if with_c else None,
            saved if saved.size else None,
            _c(weight_hh),
            dxw,
            dhw if with_dhw else None,
            dcarry[0],
            dcarry[1] if with_c else None,
            t_len,
            n,
            hidden,
            flush_every,
            states[0].dtype == np.float64,
            threads,
        )

    return backward_sequence


# Each kernel keeps the CellKernel contract (see time_loop.CellKernel); the buffers the recurrence hands
# them (xw_t, saved_t, state_t, dxw_t) are C-contiguous rows of its stacked (T, ...) arrays.


def _rnn_forward(step):
    def forward(xw, state_prev, weight_hh, bias_hh, state_out, saved_out) -> None:
        (h_prev,), (h,) = state_prev, state_out
        n, hidden = h.shape
        hw = h_prev @ weight_hh.T  # (N, H); + xw + b_hh and the nonlinearity in C
        step(hw, _c(xw), _c(bias_hh), h, n, hidden, h.dtype == np.float64)

    return forward


def _rnn_backward(step):
    def backward(dstate, saved, state, state_prev, weight_hh, dxw_out, dhw_out):
        (dh,), (h,) = dstate, state
        n, hidden = dh.shape
        step(_c(dh), _c(h), dxw_out, n, hidden, dh.dtype == np.float64)  # da = dh ⊙ act'(a)
        return (dxw_out @ weight_hh,)

    return backward


def _gru_forward(xw, state_prev, weight_hh, bias_hh, state_out, saved_out) -> None:
    (h_prev,), (h,) = state_prev, state_out
    n, hidden = h.shape
    hw = h_prev @ weight_hh.T  # (N, 3H); + b_hh and the gates in C
    _fused.gru_forward(_c(xw), hw, _c(bias_hh), _c(h_prev), saved_out, h, n, hidden, h.dtype == np.float64)


def _gru_backward(dstate, saved, state, state_prev, weight_hh, dxw_out, dhw_out):
    (dh,), (h_prev,) = dstate, state_prev
    n, hidden = dh.shape
    dh_through_z = np.empty_like(dh)  # dh ⊙ z: the part of dh_prev that skips the gates
    _fused.gru_backward(_c(dh), saved, _c(h_prev), dxw_out, dhw_out, dh_through_z, n, hidden, dh.dtype == np.float64)
    dh_prev = dhw_out @ weight_hh
    dh_prev += dh_through_z
    return (dh_prev,)


def _lstm_forward(xw, state_prev, weight_hh, bias_hh, state_out, saved_out) -> None:
    (h_prev, c_prev), (h, c) = state_prev, state_out
    n, hidden = h.shape
    hw = h_prev @ weight_hh.T  # (N, 4H); + xw + b_hh and the gates in C
    _fused.lstm_forward(hw, _c(xw), _c(bias_hh), _c(c_prev), saved_out, c, h, n, hidden, h.dtype == np.float64)


def _lstm_backward(dstate, saved, state, state_prev, weight_hh, dxw_out, dhw_out):
    (dh, dc), (_, c_prev) = dstate, state_prev
    n, hidden = dh.shape
    dc_prev = np.empty_like(dc)
    _fused.lstm_backward(_c(dh), _c(dc), saved, _c(c_prev), dxw_out, dc_prev, n, hidden, dh.dtype == np.float64)
    dh_prev = dxw_out @ weight_hh
    return (dh_prev, dc_prev)


# Kernel name -> the Python glue of its C step functions (forward, backward), built on first use; a kernel
# whose name is not here runs on NumPy.
_C_STEPS = {
    "rnn_tanh": lambda: (_rnn_forward(_fused.rnn_tanh_forward), _rnn_backward(_fused.rnn_tanh_backward)),
    "rnn_relu": lambda: (_rnn_forward(_fused.rnn_relu_forward), _rnn_backward(_fused.rnn_relu_backward)),
    "gru": lambda: (_gru_forward, _gru_backward),
    "lstm": lambda: (_lstm_forward, _lstm_backward),
}

__all__ = ["ACTIVE", "CACHE_LINE", "FLUSH", "GRADIENT_FLOOR", "INSTRUCTION_SET", "MATVEC_ROWS",
           "PACKED_WEIGHT_MAX_BYTES", "PROJECT_ROWS_MAX", "cache_line_copy", "float32_of_float16", "fused_kernel", "get_num_threads",
           "on_cache_line", "project_rows", "set_num_threads", "subnormals_flushed"]
