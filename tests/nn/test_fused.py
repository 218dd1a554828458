"""The fused C kernels (nn/_fused.c via nn/fused.py) against the NumPy reference kernels they replace.

tests/nn/test_cells.py runs the gradient checks, the PyTorch comparison and the padding tests on both
(gru/lstm are the fused kernels when built, gru_numpy/lstm_numpy the references); this file compares the
two directly on awkward shapes and values, checks the float32 exp/tanh accuracy, and the fallback.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from unrolled.nn import fused, gru, lstm, time_loop, rnn
from unrolled.nn.time_loop import cell_backward, cell_forward

needs_fused = pytest.mark.skipif(not fused.ACTIVE, reason="the C extension unrolled.nn._fused is not built")

# name -> (fused kernel, NumPy kernel, gates)
KERNELS = {
    "rnn_tanh": (rnn.RNN_TANH, rnn.RNN_TANH_NUMPY, 1),
    "rnn_relu": (rnn.RNN_RELU, rnn.RNN_RELU_NUMPY, 1),
    "gru": (gru.GRU, gru.GRU_NUMPY, 3),
    "lstm": (lstm.LSTM, lstm.LSTM_NUMPY, 4),
}


def test_the_extension_is_built_wherever_a_c_compiler_is():
    if os.environ.get("UNROLLED_FUSED", "1").strip() == "0":
        pytest.skip("UNROLLED_FUSED=0 turns the extension off")
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler on this machine: the NumPy kernels are the ones in use")
    assert fused.ACTIVE, "pip install builds unrolled.nn._fused when a compiler exists; it is missing"
    assert fused.INSTRUCTION_SET in ("baseline", "avx2+fma", "avx512f+fma")
    assert all(fast.sequence is not None and slow.sequence is None for fast, slow, _ in KERNELS.values())


def run_both(cell, dtype, *, n=7, t_len=9, d=5, h=33, scale=1.0, mask=None, reverse=False, seed=0, with_dout=True):
    """Forward and backward of one sequence with the fused and with the NumPy kernel, same inputs
    (``with_dout=False``: only the final state gets a gradient, as in a many-to-one classifier)."""
    fused_kernel, numpy_kernel, gates = KERNELS[cell]
    rng = np.random.default_rng(seed)
    params = {
        "weight_ih": (rng.uniform(-0.5, 0.5, (gates * h, d)) * scale).astype(dtype),
        "weight_hh": (rng.uniform(-0.5, 0.5, (gates * h, h)) * scale).astype(dtype),
        "bias_ih": rng.uniform(-0.3, 0.3, gates * h).astype(dtype),
        "bias_hh": rng.uniform(-0.3, 0.3, gates * h).astype(dtype),
    }
    x = (rng.standard_normal((n, t_len, d)) * scale).astype(dtype)
    # A strided initial state (every other column of a wider array): the C code must not read it raw.
    wide = [rng.standard_normal((n, 2 * h)).astype(dtype) for _ in fused_kernel.state_names]
    state0 = tuple(w[:, ::2] for w in wide)
    dout = rng.standard_normal((n, t_len, h)).astype(dtype)
    dfinal = tuple(rng.standard_normal((n, h)).astype(dtype) for _ in fused_kernel.state_names)
    results = []
    for kernel in (fused_kernel, numpy_kernel):
        out, final, cache = cell_forward(kernel, x, state0, params, mask=mask, reverse=reverse)
        dx, dstate0, grads = cell_backward(dout if with_dout else None, dfinal, cache)
        # (with a mask, the caches of the two time loops differ in layout: the Python loop sorts the rows
        # by length and leaves padded steps' activations zero; outputs and gradients must agree)
        saved = {} if mask is not None else {"saved": cache.saved}
        results.append({"out": out, **saved, "dx": dx, **grads}
                       | {f"final{k}": s for k, s in enumerate(final)}
                       | {f"dstate0_{k}": s for k, s in enumerate(dstate0)})
    return results


def max_rel_diff(a, b):
    assert a.shape == b.shape
    if a.size == 0:  # the Elman cells save no activations
        return 0.0
    scale = max(np.abs(b).max(), 1e-30)
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max() / scale)


@needs_fused
@pytest.mark.parametrize("cell", KERNELS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 2e-5)])
@pytest.mark.parametrize("masked,reverse", [(False, False), (True, False), (True, True)])
def test_fused_kernels_equal_the_numpy_kernels(cell, dtype, tol, masked, reverse):
    mask = (np.arange(9)[None, :] < np.array([9, 1, 4, 0, 9, 6, 2])[:, None]) if masked else None
    fast, reference = run_both(cell, dtype, mask=mask, reverse=reverse)
    assert fast.keys() == reference.keys()
    for key in reference:
        assert fast[key].dtype == dtype
        assert max_rel_diff(fast[key], reference[key]) <= tol, key


@needs_fused
@pytest.mark.parametrize("cell", KERNELS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 2e-5)])
@pytest.mark.parametrize("n,masked,reverse", [(1, False, False), (3, True, False), (3, True, True), (7, True, False)])
def test_small_batch_loop_in_c_equals_the_python_loop(cell, dtype, tol, n, masked, reverse, monkeypatch):
    """Up to SMALL_BATCH rows the whole forward loop runs in C (recurrent product included); here also
    for 7 rows, by raising the threshold."""
    monkeypatch.setattr(time_loop, "SMALL_BATCH", 8)
    lengths = np.array([9, 1, 4, 0, 9, 6, 2])[:n] if masked else np.full(n, 9)
    mask = np.arange(9)[None, :] < lengths[:, None]
    fast, reference = run_both(cell, dtype, n=n, mask=mask if masked else None, reverse=reverse, seed=n)
    for key in reference:
        assert fast[key].dtype == dtype
        assert max_rel_diff(fast[key], reference[key]) <= tol, key


@needs_fused
@pytest.mark.parametrize("cell", KERNELS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 2e-5)])
@pytest.mark.parametrize("h", [8, 24, 40, 33])
def test_the_few_row_product_at_every_vector_width(cell, dtype, tol, h):
    """One row takes the few-row product (matvec): on AVX-512, 16-float vectors while 16 columns are
    left, then 8-float ones, then scalars; these hidden sizes reach each of them (8: only 8-wide; 24 and
    40: 16 then 8; 33: 16 then a scalar)."""
    fast, reference = run_both(cell, dtype, n=1, h=h, seed=h)
    for key in reference:
        assert max_rel_diff(fast[key], reference[key]) <= tol, key


def every_float16_converts_exactly() -> None:
    """All 65,536 float16 bit patterns through fused.float32_of_float16: NumPy's values, bit for bit (NaNs
    stay NaN)."""
    halves = np.arange(65536, dtype=np.uint16).view(np.float16)
    expected, got = halves.astype(np.float32), fused.float32_of_float16(halves)
    nan = np.isnan(expected)
    assert got.dtype == np.float32 and np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan].view(np.uint32), expected[~nan].view(np.uint32))
    shaped = halves[:60].reshape(3, 4, 5)[:, ::2]  # any shape, a strided view too
    assert np.array_equal(fused.float32_of_float16(shaped), shaped.astype(np.float32))


def test_float16_to_float32_is_exact():
    every_float16_converts_exactly()


@needs_fused
def test_float16_to_float32_refuses_mismatched_buffers():
    with pytest.raises(ValueError, match="src of 2-byte items and out of as many float32"):
        fused._fused.float16_to_float32(np.zeros(4, np.float16), np.zeros(3, np.float32))


def test_the_c_loop_runs_unpadded_batches_and_small_padded_ones(monkeypatch):
    calls = []
    kernel = dataclasses.replace(gru.GRU_NUMPY, sequence=lambda *args: calls.append(args[0].shape),
                                 packed_hidden_max=2)
    shapes = {"weight_ih": (6, 3), "weight_hh": (6, 2), "bias_ih": (6,), "bias_hh": (6,)}
    params = {name: np.zeros(shape) for name, shape in shapes.items()}
    for n in (time_loop.SMALL_BATCH, time_loop.SMALL_BATCH + 1):
        padded = np.arange(5)[None, :] < np.arange(n)[:, None] % 5 + 1
        cell_forward(kernel, np.zeros((n, 5, 3)), None, params, mask=padded)
        cell_forward(kernel, np.zeros((n, 5, 3)), None, params)
    big = time_loop.SMALL_BATCH + 1
    assert calls == [(5, time_loop.SMALL_BATCH, 6), (5, time_loop.SMALL_BATCH, 6), (5, big, 6)]
    # a hidden size above packed_hidden_max: big batches take the Python loop (BLAS), small ones still C
    calls.clear()
    narrow = dataclasses.replace(kernel, packed_hidden_max=1)
    for n in (time_loop.SMALL_BATCH, big):
        cell_forward(narrow, np.zeros((n, 5, 3)), None, params)
    assert calls == [(5, time_loop.SMALL_BATCH, 6)]


@needs_fused
@pytest.mark.parametrize("cell", KERNELS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 2e-5)])
@pytest.mark.parametrize("n,h", [(5, 8), (13, 33), (32, 17), (9, 70)])
@pytest.mark.parametrize("reverse,with_dout", [(False, True), (True, False)])
def test_c_loops_on_packed_weights_equal_the_python_loop(cell, dtype, tol, n, h, reverse, with_dout):
    """An unpadded batch of more than MATVEC_ROWS rows runs both time loops in C with the packed recurrent
    product: batch sizes and hidden sizes that are not multiples of its tile (4, 6 or 8 rows by 8, 16 or 32
    columns) check the edges."""
    fast, reference = run_both(cell, dtype, n=n, h=h, reverse=reverse, seed=n + h, with_dout=with_dout)
    for key in reference:
        assert fast[key].dtype == dtype
        assert max_rel_diff(fast[key], reference[key]) <= tol, key


@needs_fused
def test_the_c_backward_loop_runs_unless_padded_or_recorded():
    """backward_sequence takes an unpadded batch; padding, or a per-step record (dstates_out), takes the
    Python loop, which knows both."""
    calls = []
    real = lstm.LSTM.backward_sequence
    kernel = dataclasses.replace(lstm.LSTM, backward_sequence=lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(0)
    params = {"weight_ih": rng.standard_normal((16, 3)), "weight_hh": rng.standard_normal((16, 4)),
              "bias_ih": np.zeros(16), "bias_hh": np.zeros(16)}
    x = rng.standard_normal((6, 5, 3))
    _, _, cache = cell_forward(kernel, x, None, params)
    reference = time_loop.sequence_backward(np.ones((5, 6, 4)), None, cache)
    assert calls == [1]
    recorded = time_loop.sequence_backward(np.ones((5, 6, 4)), None, cache, dstates_out=np.empty((5, 6, 4)))
    assert calls == [1]
    for a, b in zip(reference[2].values(), recorded[2].values()):
        assert max_rel_diff(a, b) <= 1e-13
    padded = np.arange(5)[None, :] < np.array([5, 2, 3, 5, 1, 4])[:, None]
    _, _, cache = cell_forward(kernel, x, None, params, mask=padded)
    time_loop.sequence_backward(np.ones((5, 6, 4)), None, cache)
    assert calls == [1]
    _, _, cache = cell_forward(dataclasses.replace(kernel, packed_hidden_max=3), x, None, params)  # H = 4
    time_loop.sequence_backward(np.ones((5, 6, 4)), None, cache)
    assert calls == [1]
    assert lstm.LSTM.packed_hidden_max == 256 and gru.GRU.packed_hidden_max == 295  # 1 MiB of W_hh


@needs_fused
@pytest.mark.parametrize("cell", KERNELS)
def test_saturated_gates_stay_finite_and_as_accurate_as_numpy(cell):
    """Pre-activations in the hundreds: gates at 0 or 1, tanh at ±1, no overflow or NaN, and float32 results
    as close to the float64 computation as the NumPy kernels' float32 results are. (Some gradients are
    ill-conditioned here, off by 10 % in both; the two kernels round the gate tails differently.)"""
    fast, reference = run_both(cell, np.float32, scale=60.0, seed=1)
    exact = run_both(cell, np.float64, scale=60.0, seed=1)[1]
    for key in reference:
        assert np.all(np.isfinite(fast[key])), key
        assert max_rel_diff(fast[key], exact[key]) <= 1.5 * max_rel_diff(reference[key], exact[key]) + 1e-6, key


@needs_fused
def test_float32_tanh_is_within_two_ulp_and_sigmoid_within_three():
    from unrolled.nn import _fused

    x = np.concatenate(
        [np.linspace(-100, 100, 400_001), np.geomspace(1e-30, 100, 20_001), -np.geomspace(1e-30, 100, 20_001), [0.0]]
    ).astype(np.float32)
    exact64 = x.astype(np.float64)
    for name, compute, exact, region in [
        ("tanh", _fused.tanh_f32, np.tanh(exact64), np.ones(x.shape, bool)),
        ("sigmoid", _fused.sigmoid_f32, 1.0 / (1.0 + np.exp(-exact64)), x >= -80),
        ]:
        y = np.empty_like(x)
        compute(x, y)
        ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
        ulps = np.abs(y - exact) / ulp
        assert ulps[region].max() <= (2.0 if name == "tanh" else 3.0), name
        assert np.abs(y - exact).max() <= 1e-7, name  # everywhere, the clamped tail included
    y = np.empty_like(x)
    _fused.sigmoid_f32(x, y)
    assert np.all(y[x < -87] == y[x < -87].min()) and np.finfo(np.float32).tiny <= y.min() < 2e-38  # stays normal
    assert y[x == 0][0] == 0.5 and np.all(np.diff(y[:400_001]) >= 0)  # exact at 0, monotone
    special = np.array([np.nan, np.inf, -np.inf], np.float32)  # NaN propagates (a diverged run must show)
    out = np.empty_like(special)
    _fused.sigmoid_f32(special, out)
    assert np.isnan(out[0]) and out[1] == 1.0 and 0.0 < out[2] < 2e-38
    _fused.tanh_f32(special, out)
    assert np.isnan(out[0]) and out[1] == 1.0 and out[2] == -1.0


@needs_fused
def test_wrong_buffer_sizes_raise_instead_of_writing_past_the_end():
    from unrolled.nn import _fused

    n, h = 2, 3
    a = np.zeros((n, 4 * h), np.float32)
    small = np.zeros((n, h - 1), np.float32)
    with pytest.raises(ValueError, match="argument 3 has 16 bytes, expected 24"):
        _fused.lstm_forward(a, a, np.zeros(4 * h, np.float32), small, np.zeros((5, n, h), np.float32),
                            np.zeros((n, h), np.float32), np.zeros((n, h), np.float32), n, h, False)
    with pytest.raises(ValueError, match="not C-contiguous"):  # a strided view is refused, not misread
        _fused.gru_backward(np.zeros((n, 2 * h))[:, ::2], np.zeros((4, n, h)), np.zeros((n, h)),
                            np.zeros((n, 3 * h)), np.zeros((n, 3 * h)), np.zeros((n, h)), n, h, True)
    with pytest.raises(TypeError, match="expected 9 arguments"):
        _fused.lstm_backward(a, n, h)
    xw = np.zeros((4, n, h), np.float32)
    w, b = np.zeros((h, h), np.float32), np.zeros(h, np.float32)
    h0, hs = np.zeros((n, h), np.float32), np.zeros((4, n, h), np.float32)
    with pytest.raises(ValueError, match="argument 6 has 7 bytes, expected 8"):  # the (T, N) mask
        _fused.sequence(0, xw, w, b, h0, None, np.ones(7, bool), hs, None, None, 4, n, h, False, True, 1)
    with pytest.raises(ValueError, match="argument 8 must be None for this cell"):
        _fused.sequence(0, xw, w, b, h0, None, None, hs, hs, None, 4, n, h, False, False, 1)
    with pytest.raises(ValueError, match="argument 5 is required for this cell"):
        lstm_xw, lstm_w, lstm_b = (np.zeros(s, np.float32) for s in [(4, n, 4 * h), (4 * h, h), (4 * h,)])
        _fused.sequence(3, lstm_xw, lstm_w, lstm_b, h0, None, None, hs, hs, np.zeros((4, 5, n, h), np.float32),
                        4, n, h, False, True, 1)
    # BPTT's loop: (cell, dout, hs, cs, h0, c0, saved, w_hh, dxw, dhw, dh, dc, T, N, H, flush_every, is_double)
    dh, dxw = np.zeros((n, h), np.float32), np.zeros((4, n, h), np.float32)
    with pytest.raises(ValueError, match="argument 1 has 144 bytes, expected 96"):  # dout with a row too many
        _fused.sequence_backward(0, np.zeros((4, n + 1, h), np.float32), hs, None, h0, None, None, w, dxw, None,
                                 dh, None, 4, n, h, 8, False, 1)
    with pytest.raises(ValueError, match="argument 9 must be None for this cell"):  # dhw: GRU only
        _fused.sequence_backward(0, None, hs, None, h0, None, None, w, dxw, dxw, dh, None, 4, n, h, 8, False, 1)
    with pytest.raises(ValueError, match="flush_every and threads must be >= 1"):
        _fused.sequence_backward(0, None, hs, None, h0, None, None, w, dxw, None, dh, None, 4, n, h, 0, False, 1)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        _fused.sequence(0, xw, w, b, h0, None, None, hs, None, None, 4, n, h, False, True, 0)
    with pytest.raises(TypeError, match="expected 18 arguments"):
        _fused.sequence_backward(0, None, hs)


def test_unrolled_fused_0_selects_the_numpy_kernels():
    code = (
        "from unrolled.nn import fused, gru, lstm, rnn;"
        "assert not fused.ACTIVE and fused.INSTRUCTION_SET is None;"
        "assert gru.GRU is gru.GRU_NUMPY and lstm.LSTM is lstm.LSTM_NUMPY and rnn.RNN_TANH is rnn.RNN_TANH_NUMPY;"
        "print('numpy kernels')"
    )
    env = dict(os.environ, UNROLLED_FUSED="0")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "numpy kernels"


@needs_fused
@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
def test_every_float32_build_equals_the_numpy_kernels(isa):
    """The float32 kernels are compiled three times (baseline, AVX2 + FMA, AVX-512); UNROLLED_FUSED_ISA caps
    the one picked at import, so each build this CPU can run is checked, in its own process (sparse Adam's
    rows too, bit for bit against the NumPy code, and the packed product's rows, bit for bit alone and in a
    batch)."""
    code = (
        "import numpy as np\n"
        "from unrolled.nn import fused\n"
        "from tests.nn.test_fused import KERNELS, max_rel_diff, run_both\n"
        "mask = np.arange(9)[None, :] < np.array([9, 1, 4, 0, 9, 6, 2])[:, None]\n"
        "runs = [run_both(cell, np.float32, mask=mask) for cell in KERNELS]\n"
        "runs += [run_both(cell, np.float32, n=13, h=37) for cell in KERNELS]  # the packed product's loops\n"
        "runs += [run_both(cell, np.float32, n=1, h=h) for cell in KERNELS for h in (8, 24, 40)]  # matvec's\n"
        "from tests.test_optim import SPARSE_ADAM_CASES, sparse_adam_both_ways\n"
        "adam = [sparse_adam_both_ways(cls, kw, np.float32)[0] for cls, kw in SPARSE_ADAM_CASES]\n"
        "assert all(np.array_equal(a, b) for fast, slow in adam for a, b in zip(fast, slow)), 'adam bits'\n"
        "from tests.nn.test_fused import test_each_rows_product_does_not_depend_on_the_batch as rows_alone\n"
        "for backward in (False, True): rows_alone(np.float32, backward)  # tiles and one-row kernel agree\n"
        "from tests.nn.test_fused import test_each_input_projection_row_does_not_depend_on_the_rows_beside_it\n"
        "test_each_input_projection_row_does_not_depend_on_the_rows_beside_it(np.float32)  # project_rows\n"
        "from tests.nn.test_fused import every_float16_converts_exactly\n"
        "every_float16_converts_exactly()  # F16C in the AVX builds, the portable loop in the baseline one\n"
        "print(fused.INSTRUCTION_SET, max(max_rel_diff(fast[k], ref[k]) for fast, ref in runs for k in ref))\n"
    )
    env = dict(os.environ, UNROLLED_FUSED_ISA=isa)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=root
    )
    assert result.returncode == 0, result.stderr
    picked, worst = result.stdout.split()
    builds = ["baseline", "avx2+fma", "avx512f+fma"]
    widest = {"baseline": builds[:1], "avx2": builds[:2], "avx512": builds}
    assert picked in widest[isa]  # never wider than the cap (narrower where the CPU lacks it)
    assert float(worst) <= 2e-5


def test_a_kernel_the_extension_does_not_know_runs_on_numpy():
    """A new cell gets the fused treatment only where C code exists; until then its NumPy kernel runs."""
    import dataclasses

    new = dataclasses.replace(gru.GRU_NUMPY, name="not_in_the_extension")
    assert fused.fused_kernel(new) is new


SUBNORMAL = np.float32(1e-39)  # below float32's smallest normal number, 1.18e-38


def _flushes() -> bool:
    """Whether the calling thread flushes float32 subnormals to zero right now."""
    return float(SUBNORMAL * np.float32(1.0)) == 0.0


@pytest.mark.skipif(not fused.ACTIVE or not fused._fused.flush_supported, reason="needs the extension on x86-64")
def test_the_engine_computes_with_subnormals_flushed_and_gives_the_mode_back():
    import unrolled.optim as optim

    seen = []
    real_forward = lstm.LSTM.forward

    def spying_forward(*args):
        seen.append(_flushes())
        return real_forward(*args)

    kernel = dataclasses.replace(lstm.LSTM, forward=spying_forward, sequence=None)
    rng = np.random.default_rng(0)
    params = {"weight_ih": rng.standard_normal((16, 3)).astype(np.float32),
              "weight_hh": rng.standard_normal((16, 4)).astype(np.float32),
              "bias_ih": np.zeros(16, np.float32), "bias_hh": np.zeros(16, np.float32)}
    x = rng.standard_normal((5, 6, 3)).astype(np.float32)
    state0 = (np.zeros((6, 4), np.float32),) * 2
    assert not _flushes()
    out, _, cache = time_loop.sequence_forward(kernel, x, state0, params)
    assert seen == [True] * 5 and not _flushes()
    # a subnormal carried gradient is read as zero inside the backward pass: no gradient at all
    _, _, grads = time_loop.sequence_backward(np.full_like(out, SUBNORMAL), None, cache)
    assert not _flushes() and all(not g.any() for g in grads.values())
    # the optimizer's step too: a subnormal gradient reads as zero, so Adam's moment stays zero and the
    # parameter does not move (with IEEE subnormals it moves by lr·g/eps ≈ 1e-34); the mode comes back after
    # an exception
    adam = optim.Adam({"w": np.zeros(3, np.float32)}, lr=1e-3)
    adam.step({"w": np.full(3, SUBNORMAL)})
    assert not adam.params["w"].any() and not _flushes()
    with pytest.raises(ValueError):
        adam.step({"nope": np.ones(3, np.float32)})
    assert not _flushes()


@pytest.mark.skipif(not fused.ACTIVE or not fused._fused.flush_supported, reason="needs the extension on x86-64")
def test_without_the_flush_a_subnormal_gradient_moves_the_parameter(monkeypatch):
    import unrolled.optim as optim

    monkeypatch.setattr(fused, "FLUSH", False)
    adam = optim.Adam({"w": np.zeros(3, np.float32)}, lr=1e-3)
    adam.step({"w": np.full(3, SUBNORMAL)})
    assert (adam.params["w"] < 0).all()


@pytest.mark.skipif(not fused.ACTIVE or not fused._fused.flush_supported, reason="needs the extension on x86-64")
def test_a_caller_that_flushes_already_keeps_flushing():
    previous = fused._fused.flush_subnormals(fused._fused.flush_bits)
    try:
        fused.subnormals_flushed(lambda: None)()
        assert _flushes()
    finally:
        fused._fused.flush_subnormals(previous)
    assert not _flushes()


@pytest.mark.skipif(not fused.ACTIVE or not fused._fused.flush_supported, reason="needs the extension on x86-64")
def test_flush_false_keeps_ieee_subnormals(monkeypatch):
    monkeypatch.setattr(fused, "FLUSH", False)
    assert fused.subnormals_flushed(_flushes)() is False
    monkeypatch.setattr(fused, "FLUSH", True)
    assert fused.subnormals_flushed(_flushes)() is True


def test_unrolled_flush_subnormals_0_switches_the_flush_off():
    code = "from unrolled.nn import fused; print(fused.FLUSH, fused.GRADIENT_FLOOR)"
    env = {**os.environ, "UNROLLED_FLUSH_SUBNORMALS": "0"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.strip() == "False 0.0", done.stderr


@needs_fused
@pytest.mark.parametrize("cell", sorted(KERNELS))
def test_float32_gate_gradients_below_the_floor_are_zero_and_float64_has_none(cell):
    """The float32 backward kernels write gate gradients below GRADIENT_FLOOR (2^-100) as zero, so a
    vanished gradient reaches the weight-gradient GEMMs as zero, not as a subnormal-making ~1e-38; a gradient
    a little above the floor passes as before, and float64 has no floor."""
    if not fused.FLUSH:
        pytest.skip("UNROLLED_FLUSH_SUBNORMALS=0: no floor")
    assert fused.GRADIENT_FLOOR == 2.0**-100
    for scale, floored in ((2.0**-110, True), (2.0**-80, False)):
        for dtype in (np.float32, np.float64):
            fast, slow = run_both_backward(cell, dtype, scale)
            zero_in_c = all(not g.any() for g in fast.values())
            assert zero_in_c == (floored and dtype == np.float32), (scale, dtype)
            assert all(g.any() for g in slow.values())  # the NumPy kernels have no floor
            if not zero_in_c:
                for name in fast:
                    assert max_rel_diff(fast[name], slow[name]) < 1e-4, (scale, dtype, name)
    # the floor is the module's setting: at 0 the float32 kernels pass the tiny gradient on as well
    previous = fused._fused.set_gradient_floor(0.0)
    try:
        fast, slow = run_both_backward(cell, np.float32, 2.0**-110)
        assert all(max_rel_diff(fast[k], slow[k]) < 1e-4 for k in fast)
    finally:
        fused._fused.set_gradient_floor(previous)
    with pytest.raises(ValueError, match=">= 0"):
        fused._fused.set_gradient_floor(-1.0)


def run_both_backward(cell, dtype, scale):
    """The weight and input gradients of one sequence (fused, NumPy) when the output gradient is ``scale``
    times a normal-sized one (and nothing reaches the final state)."""
    fused_kernel, numpy_kernel, gates = KERNELS[cell]
    rng = np.random.default_rng(3)
    n, t_len, d, h = 5, 4, 3, 8
    params = {
        "weight_ih": rng.uniform(-0.5, 0.5, (gates * h, d)).astype(dtype),
        "weight_hh": rng.uniform(-0.5, 0.5, (gates * h, h)).astype(dtype),
        "bias_ih": rng.uniform(-0.3, 0.3, gates * h).astype(dtype),
        "bias_hh": rng.uniform(-0.3, 0.3, gates * h).astype(dtype),
    }
    x = rng.standard_normal((n, t_len, d)).astype(dtype)
    dout = (rng.standard_normal((n, t_len, h)) * scale).astype(dtype)
    results = []
    for kernel in (fused_kernel, numpy_kernel):
        _, _, cache = cell_forward(kernel, x, None, params)
        dx, _, grads = cell_backward(dout, None, cache)
        results.append({"dx": dx, **grads})
    return results


@needs_fused
@pytest.mark.parametrize("cell", sorted(KERNELS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_c_loops_give_the_same_bits_on_any_number_of_threads(cell, dtype, monkeypatch):
    """The C loops split a batch's rows between threads (8 rows or more each); a row's arithmetic does not
    depend on its part, so 1, 2 and 3 threads (parts of 24 and 17, or 16, 16 and 9 rows) give identical bits.
    (SPLIT_MIN_MACS at 0: this loop is far too small to be split otherwise.)"""
    monkeypatch.setattr(fused, "SPLIT_MIN_MACS", 0)
    started = []
    monkeypatch.setattr(fused, "_quiet_blas_workers", lambda: started.append(1))
    previous = fused.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            fused.set_num_threads(threads)
            results.append(run_both(cell, dtype, n=41, h=19, seed=5)[0])
    finally:
        fused.set_num_threads(previous)
    for other in results[1:]:
        for key in results[0]:
            np.testing.assert_array_equal(other[key], results[0][key], err_msg=key)
    assert len(started) == 4  # forward and backward, at 2 and 3 threads: BLAS's workers quieted each time


def test_small_loops_stay_on_one_thread_and_leave_blas_alone(monkeypatch):
    started = []
    monkeypatch.setattr(fused, "_quiet_blas_workers", lambda: started.append(1))
    previous = fused.set_num_threads(4)
    try:
        w_rnn, w_lstm, w_lstm256 = (np.zeros((g * h, h), np.float32) for g, h in ((1, 128), (4, 128), (4, 256)))
        assert fused._loop_threads(32, 64, w_rnn) == 1  # 33.5 M multiply-adds < SPLIT_MIN_MACS
        assert fused._loop_threads(256, 15, w_lstm) == 1  # fewer than 2 x ROWS_PER_THREAD rows
        assert started == []
        assert fused._loop_threads(32, 64, w_lstm) == 4 and started == [1]  # 134 M
        fused.set_num_threads(1)
        assert fused._loop_threads(256, 64, w_lstm256) == 1 and started == [1]
    finally:
        fused.set_num_threads(previous)


@pytest.mark.skipif(fused._openblas_shutdown() is None, reason="NumPy's BLAS is not a loaded OpenBLAS here")
def test_stopping_openblas_workers_leaves_numpy_products_right():
    """_quiet_blas_workers stops OpenBLAS's idle threads; its next multi-threaded product starts them again
    and computes what it computed before."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 300))
    before = a @ a
    fused._quiet_blas_workers()
    np.testing.assert_array_equal(a @ a, before)
    fused._quiet_blas_workers()
    fused._quiet_blas_workers()  # twice in a row: nothing to stop the second time
    np.testing.assert_array_equal(a @ a, before)


def test_set_num_threads_checks_and_returns_the_previous_value():
    previous = fused.get_num_threads()
    try:
        assert fused.set_num_threads(3) == previous and fused.get_num_threads() == 3
        for bad in (0, -1, 2.0, True, "2"):
            with pytest.raises(ValueError, match="integer >= 1"):
                fused.set_num_threads(bad)
    finally:
        fused.set_num_threads(previous)


def test_the_default_thread_count_is_one_per_cpu_unless_unrolled_num_threads_says():
    code = "import os; from unrolled.nn import fused; print(fused.get_num_threads(), len(os.sched_getaffinity(0)))"
    clean = {k: v for k, v in os.environ.items() if k != "UNROLLED_NUM_THREADS"}
    for env in ({}, {"UNROLLED_NUM_THREADS": "3"}, {"UNROLLED_NUM_THREADS": "x"}):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean | env,
                              timeout=60)
        threads, cpus = done.stdout.split()
        assert threads == (env["UNROLLED_NUM_THREADS"] if env.get("UNROLLED_NUM_THREADS") == "3" else cpus)
        assert ("not a positive integer" in done.stderr) == (env.get("UNROLLED_NUM_THREADS") == "x")


@needs_fused
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 2e-6)])
@pytest.mark.parametrize("gates,n,h", [(4, 32, 128), (3, 7, 33), (1, 9, 70), (4, 1, 5)])
def test_the_packed_recurrent_product_equals_numpys(dtype, tol, gates, n, h):
    """recurrent_product: the loops' product on its own (W_hh packed once, repeated), forward a W_hhᵀ and
    backward a W_hh, against NumPy's, on tile-aligned and ragged shapes."""
    rng = np.random.default_rng(gates * n + h)
    w = rng.standard_normal((gates * h, h)).astype(dtype)
    for backward, a in ((False, rng.standard_normal((n, h))), (True, rng.standard_normal((n, gates * h)))):
        a = a.astype(dtype)
        out = np.empty((n, h if backward else gates * h), dtype)
        fused._fused.recurrent_product(a, w, out, backward, 3, dtype == np.float64)
        assert max_rel_diff(out, a @ (w if backward else w.T)) <= tol
    with pytest.raises(ValueError, match="shapes do not match"):
        fused._fused.recurrent_product(a, w, np.empty((n + 1, h), dtype), True, 1, dtype == np.float64)


@needs_fused
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 2e-6)])
@pytest.mark.parametrize("m,d,g", [(16, 128, 512), (1, 5, 3), (5, 33, 50), (17, 40, 16), (40, 7, 129)])
def test_the_few_row_input_projection_equals_numpys(dtype, tol, m, d, g):
    """project_rows (x Wᵀ + b in C, for the few-row loops) against NumPy on whole and ragged panels of rows
    (m), lengths of k (d) and tiles of outputs (g)."""
    rng = np.random.default_rng(m * d + g)
    x, w, b = (rng.standard_normal(shape).astype(dtype) for shape in ((m, d), (g, d), (g,)))
    out = fused.project_rows(x, w, b)
    assert out.shape == (m, g) and out.dtype == dtype
    assert max_rel_diff(out, x @ w.T + b) <= tol
    with pytest.raises(ValueError, match="argument 2 has"):  # a bias of the wrong length is refused
        fused._fused.project_rows(x, w, b[:-1], out, m, d, g, dtype == np.float64)


@needs_fused
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_input_projection_row_does_not_depend_on_the_rows_beside_it(dtype):
    """Every row of project_rows is one running sum over k from zero, then + b, in whichever panel and lane
    it lands: a row alone gives the same bits as in a block of 1 to 35 rows."""
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((35, 45)).astype(dtype), rng.standard_normal((70, 45)).astype(dtype), \
        rng.standard_normal(70).astype(dtype)
    alone = np.concatenate([fused.project_rows(x[i : i + 1], w, b) for i in range(35)])
    for m in range(1, 36):
        assert np.array_equal(fused.project_rows(x[:m], w, b), alone[:m]), m


def test_on_cache_line_keeps_an_aligned_array_and_copies_any_other():
    a = np.arange(600, dtype=np.float32).reshape(20, 30)
    for offset in (0, 4, 16, 48):
        given = at_offset(a, offset)
        out = fused.on_cache_line(given)
        assert out.ctypes.data % 64 == 0 and out.flags.c_contiguous and out.dtype == a.dtype
        assert np.array_equal(out, a) and (out is given) == (offset == 0)
    strided = fused.on_cache_line(a[:, ::2])  # not contiguous: copied, contiguous
    assert strided.flags.c_contiguous and np.array_equal(strided, a[:, ::2])
    assert fused.float32_of_float16(a.astype(np.float16)).ctypes.data % 64 == 0 or not fused.ACTIVE


def at_offset(a: np.ndarray, offset: int) -> np.ndarray:
    """A copy of ``a`` whose data starts ``offset`` bytes past a 64-byte boundary."""
    buf = np.empty(a.nbytes + 128, dtype=np.uint8)
    start = (-buf.ctypes.data) % 64 + offset
    out = buf[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


@needs_fused
@pytest.mark.parametrize("cell", ["rnn_tanh", "gru", "lstm"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_few_row_loop_gives_the_same_bits_wherever_w_hh_lies(cell, dtype):
    """The few-row product reads W_hh as given, and a W_hh that does not start on a cache line is first
    copied to one that does (the loads run ~1.5x faster): the same values in the same order, so the outputs
    are the same bits at any offset."""
    fused_kernel, _, gates = KERNELS[cell]
    rng = np.random.default_rng(5)
    t_len, h = 6, 40
    xw = rng.standard_normal((t_len, 1, gates * h)).astype(dtype)
    w, b = rng.standard_normal((gates * h, h)).astype(dtype) * 0.3, rng.standard_normal(gates * h).astype(dtype)
    state0 = tuple(np.zeros((1, h), dtype) for _ in fused_kernel.state_names)
    results = []
    for offset in (0, 8, 16, 48):
        states = tuple(np.empty((t_len, 1, h), dtype) for _ in fused_kernel.state_names)
        saved = np.empty((t_len, len(fused_kernel.saved_names), 1, h), dtype)
        fused_kernel.sequence(xw, at_offset(w, offset), b, state0, None, states, saved)
        results.append(np.concatenate([s.ravel() for s in states] + [saved.ravel()]))
    assert all(np.array_equal(results[0], r) for r in results[1:])
    assert np.isfinite(results[0]).all() and np.abs(results[0]).max() > 0


@needs_fused
def test_few_rows_project_in_c_and_more_through_blas(monkeypatch):
    """The time loop hands T·N ≤ PROJECT_ROWS_MAX rows to project_rows (32 in the AVX-512 build, 0 in the
    others: set here), more to NumPy's product."""
    monkeypatch.setattr(fused, "PROJECT_ROWS_MAX", 32)
    calls = []
    real = fused.project_rows
    monkeypatch.setattr(fused, "project_rows", lambda *a: calls.append(a[0].shape) or real(*a))
    for t_len in (fused.PROJECT_ROWS_MAX, fused.PROJECT_ROWS_MAX + 1):
        run_both("lstm", np.float32, n=1, t_len=t_len)
    assert calls == [(32, 5)]


@needs_fused
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backward", [False, True])
def test_each_rows_product_does_not_depend_on_the_batch(dtype, backward):
    """The packed product's rows come from whole tiles (GEMM_ROWS rows at once) or, past the last whole tile,
    from the one-row kernel (gemv_packed); both sum over k in order from zero, so every row of a batch of 1 to
    19 rows is bit for bit the row computed alone."""
    rng = np.random.default_rng(7)
    gates, h = 4, 40  # 160 columns: whole panels and a ragged last one in every build
    w = rng.standard_normal((gates * h, h)).astype(dtype)
    a = rng.standard_normal((19, gates * h if backward else h)).astype(dtype)
    alone = np.empty((19, h if backward else gates * h), dtype)
    for i in range(19):
        fused._fused.recurrent_product(a[i : i + 1], w, alone[i : i + 1], backward, 1, dtype == np.float64)
    for n in range(1, 20):
        out = np.empty((n, alone.shape[1]), dtype)
        fused._fused.recurrent_product(a[:n], w, out, backward, 1, dtype == np.float64)
        assert np.array_equal(out, alone[:n]), n
