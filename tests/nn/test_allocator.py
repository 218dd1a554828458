"""Keeping freed memory between training steps (nn/allocator.py): counted in page faults, not time."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc malloc settings"
)

# Training steps of an LSTM whose per-sequence arrays (inputs projected for all steps: 32 MiB, saved
# activations: 40 MiB) reach the largest threshold glibc's malloc adjusts its mmap use to (32 MiB):
# unless freed memory is kept, steps map some of them afresh and fault their pages in again.
STEPS = """
import resource
import numpy as np
from unrolled.nn import allocator, lstm
rng = np.random.default_rng(0)
t_len, n, d, h = 256, 64, 16, 128
params = {"weight_ih": rng.standard_normal((4 * h, d), dtype=np.float32) * 0.1,
          "weight_hh": rng.standard_normal((4 * h, h), dtype=np.float32) * 0.1,
          "bias_ih": np.zeros(4 * h, np.float32), "bias_hh": np.zeros(4 * h, np.float32)}
x = rng.standard_normal((n, t_len, d), dtype=np.float32)
counts = []
for step in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    out, _, cache = lstm.lstm_forward(x, None, params)
    lstm.lstm_backward(np.ones_like(out), None, cache)
    del out, cache
    counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(allocator.keep_freed_memory(), max(counts[3:]))  # after the heap has grown to its size
"""


def page_faults(keep: str) -> tuple[bool, int]:
    env = dict(os.environ, UNROLLED_KEEP_FREED_MEMORY=keep)
    result = subprocess.run([sys.executable, "-c", STEPS], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    applied, faults = result.stdout.split()
    return applied == "True", int(faults)


def test_kept_memory_is_reused_without_page_faults():
    applied, faults = page_faults("1")
    left_alone, faults_without = page_faults("0")
    assert applied and not left_alone
    # measured: ~5,000 faults (20 MiB of 4 KiB pages) every step without; none once the heap has grown
    assert faults_without > 2_000
    assert faults < 100
