"""Keep freed memory for the next batch (glibc malloc settings), so that big arrays do not page-fault.

Each training step allocates its per-sequence arrays afresh: the input projection of every step, the states,
the saved activations and their gradients, tens of MB per batch. glibc's malloc serves a block above its
mmap threshold (128 KiB at start, adjusting up to 32 MiB) with fresh pages from the kernel and hands them
back when the block is freed, so every 4 KiB page of every such array costs a page fault when first written,
on every step. In the LSTM time loop (B·T·E·H = 32·256·128·128) that was 2/3 of the element-wise kernel's
time and a fifth of the matrix products' (benchmarks/speed.py measures the whole step with and without).

:func:`keep_freed_memory` sets ``M_MMAP_MAX = 0`` (large blocks come from the heap too) and
``M_TRIM_THRESHOLD = 1 GiB`` (freed heap memory is kept for reuse rather than returned), so from the second
step on the same pages are reused. It acts on the whole process — other libraries' allocations (PyTorch's
CPU tensors too) — and the process keeps its peak heap until it exits: its RSS does not shrink after
training. So it is the training loop's explicit choice, not a side effect of the engine: :func:`unrolled.train.fit`
(what every estimator's ``fit`` and ``unrolled train`` run) calls it once before the first step, on Linux with
glibc, unless called with ``keep_freed_memory=False``; the environment variable ``UNROLLED_KEEP_FREED_MEMORY=0``
turns it off for a whole process. A loop of one's own over the ``*_forward``/``*_backward`` functions calls it
itself if it wants the same.
"""

from __future__ import annotations

import os

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
_M_MMAP_MAX = -4
_TRIM_THRESHOLD_BYTES = 1 << 30

_applied: bool | None = None  # None: not tried yet; then whether the settings are in force


def keep_freed_memory() -> bool:
    """Apply the malloc settings once per process; return whether they are in force."""
    global _applied
    if _applied is None:
        _applied = False
        import platform  # here, not at import: every CLI command imports the engine

        if os.environ.get("UNROLLED_KEEP_FREED_MEMORY", "1").strip() != "0" and platform.libc_ver()[0] == "glibc":
            import ctypes

            try:
                mallopt = ctypes.CDLL("libc.so.6").mallopt
            except (OSError, AttributeError):
                return False
            _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES))
    return _applied


__all__ = ["keep_freed_memory"]
