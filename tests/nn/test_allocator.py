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
allocator.keep_freed_memory()  # what the training loop does first (honours UNROLLED_KEEP_FREED_MEMORY)
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
    # measured: ~1,100 faults (4 MiB of 4 KiB pages) every step without (~5,000 while the C loops took their
    # packed weights and scratch from plain malloc: glibc adjusts its mmap threshold to what is freed); none
    # once the heap has grown
    assert faults_without > 500
    assert faults < 100


FORWARD_BACKWARD = """
import numpy as np
from unrolled.nn import allocator, gru
from unrolled.models.classifier import RNNClassifier
x = np.ones((2, 3, 4))
params = {"weight_ih": np.ones((12, 4)) * 0.1, "weight_hh": np.ones((12, 4)) * 0.1,
          "bias_ih": np.zeros(12), "bias_hh": np.zeros(12)}
out, _, cache = gru.gru_forward(x, None, params)
gru.gru_backward(np.ones_like(out), None, cache)
engine_left_it = allocator._applied is None
RNNClassifier(hidden_size=3, embedding_dim=3, epochs=1).fit(["a b", "b c"], ["x", "y"])
print(engine_left_it, allocator._applied)
"""


def test_the_engine_leaves_malloc_alone_and_training_sets_it():
    """No process-wide side effect from a backward pass; the training loop makes the choice, explicitly."""
    result = subprocess.run([sys.executable, "-c", FORWARD_BACKWARD], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, UNROLLED_KEEP_FREED_MEMORY="1"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
