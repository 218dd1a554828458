"""The three cells (nn/rnn.py, nn/gru.py, nn/lstm.py) and the time loop they share (nn/time_loop.py):
finite-difference gradients, step level == sequence level, PyTorch equivalence, argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from tests.gradcheck import numerical_gradient, rel_error
from unrolled.nn import gru, lstm, rnn
from unrolled.nn.time_loop import _flush_subnormals, cell_backward, cell_forward, cell_step_forward, step_backward

N, T, D, H = 3, 5, 4, 3

# name -> (sequence forward, sequence backward, step forward, step backward, gates, state components)
CELLS = {
    "rnn_tanh": (rnn.rnn_forward, rnn.rnn_backward, rnn.rnn_step_forward, rnn.rnn_step_backward, 1, 1),
    "rnn_relu": (
        lambda x, s, p, **kw: rnn.rnn_forward(x, s, p, nonlinearity="relu", **kw),
        rnn.rnn_backward,
        lambda x, s, p: rnn.rnn_step_forward(x, s, p, nonlinearity="relu"),
        rnn.rnn_step_backward,
        1,
        1,
    ),
    "gru": (gru.gru_forward, gru.gru_backward, gru.gru_step_forward, gru.gru_step_backward, 3, 1),
    "lstm": (lstm.lstm_forward, lstm.lstm_backward, lstm.lstm_step_forward, lstm.lstm_step_backward, 4, 2),
}


def numpy_kernel_cell(kernel, gates, comps):
    """The cell API on a kernel chosen by hand. The cells run the fused C code when it is built (nn/fused.py:
    GRU/LSTM steps, and the whole loop for batches up to SMALL_BATCH rows, as here), so every test below
    also runs on the NumPy reference kernels and the Python time loop through these."""

    def fwd(x, s0, p, **kw):
        out, s_t, cache = cell_forward(kernel, x, None if s0 is None else unpack_state(comps, s0), p, **kw)
        return out, pack_state(comps, s_t), cache

    def bwd(dout, ds, cache):
        dx, ds0, grads = cell_backward(dout, None if ds is None else unpack_state(comps, ds), cache)
        return dx, pack_state(comps, ds0), grads

    def step_fwd(x, prev, p):
        state, cache = cell_step_forward(kernel, x, unpack_state(comps, prev), p)
        return pack_state(comps, state), cache

    def step_bwd(ds, cache):
        dx, dprev, grads = step_backward(unpack_state(comps, ds), cache)
        return dx, pack_state(comps, dprev), grads

    return fwd, bwd, step_fwd, step_bwd, gates, comps


CELLS["rnn_tanh_numpy"] = numpy_kernel_cell(rnn.RNN_TANH_NUMPY, 1, 1)
CELLS["rnn_relu_numpy"] = numpy_kernel_cell(rnn.RNN_RELU_NUMPY, 1, 1)
CELLS["gru_numpy"] = numpy_kernel_cell(gru.GRU_NUMPY, 3, 1)
CELLS["lstm_numpy"] = numpy_kernel_cell(lstm.LSTM_NUMPY, 4, 2)


def make_params(rng, gates, d=D, h=H, dtype=np.float64):
    return {
        "weight_ih": rng.uniform(-0.6, 0.6, (gates * h, d)).astype(dtype),
        "weight_hh": rng.uniform(-0.6, 0.6, (gates * h, h)).astype(dtype),
        "bias_ih": rng.uniform(-0.3, 0.3, gates * h).astype(dtype),
        "bias_hh": rng.uniform(-0.3, 0.3, gates * h).astype(dtype),
    }


def pack_state(components, arrays):
    """The cell API's state: a bare h for RNN/GRU, a pair (h, c) for LSTM."""
    return arrays[0] if components == 1 else tuple(arrays)


def unpack_state(components, state):
    return (state,) if components == 1 else tuple(state)


def lengths_mask(lengths, t_len=T):
    return np.arange(t_len)[None, :] < np.asarray(lengths)[:, None]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize("use_state0", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("n", [N, 6])  # up to SMALL_BATCH rows the fused cells loop in C; above, in Python
def test_sequence_gradients_match_finite_differences(cell, use_mask, use_state0, reverse, n):
    fwd, bwd, _, _, gates, comps = CELLS[cell]
    rng = np.random.default_rng(0)
    params = make_params(rng, gates)
    x = rng.standard_normal((n, T, D))
    state0 = [rng.standard_normal((n, H)) for _ in range(comps)] if use_state0 else None
    mask = lengths_mask([5, 2, 4, 0, 1, 5][:n]) if use_mask else None
    r_out = rng.standard_normal((n, T, H))
    r_state = [rng.standard_normal((n, H)) for _ in range(comps)]

    def loss():
        s0 = None if state0 is None else pack_state(comps, state0)
        out, s_t, _ = fwd(x, s0, params, mask=mask, reverse=reverse)
        return float(np.sum(out * r_out) + sum(np.sum(s * r) for s, r in zip(unpack_state(comps, s_t), r_state)))

    s0 = None if state0 is None else pack_state(comps, state0)
    _, _, cache = fwd(x, s0, params, mask=mask, reverse=reverse)
    dx, dstate0, grads = bwd(r_out, pack_state(comps, r_state), cache)

    assert rel_error(dx, numerical_gradient(loss, x)) <= 1e-6
    for name, value in params.items():
        assert rel_error(grads[name], numerical_gradient(loss, value)) <= 1e-6, name
    if state0 is not None:
        for ds, s in zip(unpack_state(comps, dstate0), state0):
            assert rel_error(ds, numerical_gradient(loss, s)) <= 1e-6
    if mask is not None:
        assert np.all(dx[~mask] == 0.0), "padded steps must receive no gradient"


@pytest.mark.parametrize("cell", CELLS)
def test_step_gradients_match_finite_differences(cell):
    _, _, step_fwd, step_bwd, gates, comps = CELLS[cell]
    rng = np.random.default_rng(1)
    params = make_params(rng, gates)
    x = rng.standard_normal((N, D))
    prev = [rng.standard_normal((N, H)) for _ in range(comps)]
    r = [rng.standard_normal((N, H)) for _ in range(comps)]

    def loss():
        state, _ = step_fwd(x, pack_state(comps, prev), params)
        return float(sum(np.sum(s * w) for s, w in zip(unpack_state(comps, state), r)))

    _, cache = step_fwd(x, pack_state(comps, prev), params)
    dx, dprev, grads = step_bwd(pack_state(comps, r), cache)
    assert rel_error(dx, numerical_gradient(loss, x)) <= 1e-6
    for dp, p in zip(unpack_state(comps, dprev), prev):
        assert rel_error(dp, numerical_gradient(loss, p)) <= 1e-6
    for name, value in params.items():
        assert rel_error(grads[name], numerical_gradient(loss, value)) <= 1e-6, name


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("use_mask", [False, "right-padded", "holes"])
@pytest.mark.parametrize("n", [N, 6])
def test_step_level_and_sequence_level_agree(cell, use_mask, n):
    """Composing the readable step level by hand gives the sequence level's outputs and gradients, for
    right-padded masks (the rows sorted by length, each step on its real rows) and masks with holes."""
    fwd, bwd, step_fwd, step_bwd, gates, comps = CELLS[cell]
    rng = np.random.default_rng(2)
    params = make_params(rng, gates)
    x = rng.standard_normal((n, T, D))
    state0 = [rng.standard_normal((n, H)) for _ in range(comps)]
    if use_mask == "right-padded":
        mask = lengths_mask([5, 3, 1, 0, 4, 5][:n])
    elif use_mask == "holes":
        mask = rng.random((n, T)) < 0.6
    else:
        mask = np.ones((n, T), dtype=bool)
    dout = rng.standard_normal((n, T, H))

    out, s_t, cache = fwd(x, pack_state(comps, state0), params, mask=mask if use_mask else None)
    dx, dstate0, grads = bwd(dout, None, cache)

    # By hand: run the step level, keep the old state where a step is padded.
    state, caches, outs = list(state0), [], []
    for t in range(T):
        new, step_cache = step_fwd(x[:, t], pack_state(comps, state), params)
        m = mask[:, t : t + 1]
        state = [np.where(m, s_new, s_old) for s_new, s_old in zip(unpack_state(comps, new), state)]
        caches.append(step_cache)
        outs.append(np.where(m, state[0], 0.0))
    np.testing.assert_allclose(out, np.stack(outs, axis=1), rtol=0, atol=1e-14)
    for a, b in zip(unpack_state(comps, s_t), state):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)

    dstate = [np.zeros((n, H)) for _ in range(comps)]
    dx_steps = np.zeros_like(x)
    grads_steps = {k: np.zeros_like(v) for k, v in params.items()}
    for t in range(T - 1, -1, -1):
        m = mask[:, t : t + 1]
        dstate[0] = dstate[0] + dout[:, t] * m
        dnew = [d * m for d in dstate]
        dx_t, dprev, g = step_bwd(pack_state(comps, dnew), caches[t])
        dx_steps[:, t] = dx_t
        dstate = [dp + d * ~m for dp, d in zip(unpack_state(comps, dprev), dstate)]
        for k in grads_steps:
            grads_steps[k] += g[k]
    np.testing.assert_allclose(dx, dx_steps, rtol=0, atol=1e-13)
    for a, b in zip(unpack_state(comps, dstate0), dstate):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)
    for k in params:
        np.testing.assert_allclose(grads[k], grads_steps[k], rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_masked_sequence_equals_the_unpadded_sequence(cell):
    """A padded sequence gives exactly what the same sequence gives alone, without padding, both directions."""
    fwd, bwd, _, _, gates, comps = CELLS[cell]
    rng = np.random.default_rng(3)
    params = make_params(rng, gates)
    x = rng.standard_normal((2, T, D))
    mask = lengths_mask([T, 2])
    dout = rng.standard_normal((2, T, H))
    for reverse in (False, True):
        out, s_t, cache = fwd(x, None, params, mask=mask, reverse=reverse)
        dx, _, _ = bwd(dout, None, cache)
        out1, s1, cache1 = fwd(x[1:, :2], None, params, reverse=reverse)
        dx1, _, _ = bwd(dout[1:, :2], None, cache1)
        np.testing.assert_allclose(out[1, :2], out1[0], rtol=0, atol=1e-15)
        assert np.all(out[1, 2:] == 0.0)
        for a, b in zip(unpack_state(comps, s_t), unpack_state(comps, s1)):
            np.testing.assert_allclose(a[1], b[0], rtol=0, atol=1e-15)
        np.testing.assert_allclose(dx[1, :2], dx1[0], rtol=0, atol=1e-15)


TORCH_MODULES = {
    "rnn_tanh": ("RNN", {}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "gru": ("GRU", {}),
    "lstm": ("LSTM", {}),
    "rnn_tanh_numpy": ("RNN", {}),
    "rnn_relu_numpy": ("RNN", {"nonlinearity": "relu"}),
    "gru_numpy": ("GRU", {}),
    "lstm_numpy": ("LSTM", {}),
}


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_cells_match_torch(cell, dtype, tol):
    torch = pytest.importorskip("torch")
    fwd, bwd, _, _, gates, comps = CELLS[cell]
    name, kwargs = TORCH_MODULES[cell]
    torch.manual_seed(0)
    module = getattr(torch.nn, name)(D, H, batch_first=True, **kwargs).to(getattr(torch, np.dtype(dtype).name))
    params = {k.removesuffix("_l0"): v.detach().numpy().copy() for k, v in module.state_dict().items()}
    rng = np.random.default_rng(4)
    x = rng.standard_normal((N, T, D)).astype(dtype)
    state0 = [rng.standard_normal((N, H)).astype(dtype) for _ in range(comps)]
    dout = rng.standard_normal((N, T, H)).astype(dtype)

    x_t = torch.tensor(x, requires_grad=True)
    s_t = [torch.tensor(s[None], requires_grad=True) for s in state0]
    out_t, _ = module(x_t, s_t[0] if comps == 1 else tuple(s_t))
    (out_t * torch.tensor(dout)).sum().backward()

    out, _, cache = fwd(x, pack_state(comps, state0), params)
    dx, dstate0, grads = bwd(dout, None, cache)
    assert out.dtype == dtype and dx.dtype == dtype
    assert rel_error(out, out_t.detach().numpy()) <= tol
    assert rel_error(dx, x_t.grad.numpy()) <= tol
    for ds, s in zip(unpack_state(comps, dstate0), s_t):
        assert rel_error(ds, s.grad.numpy()[0]) <= tol
    for k, p in module.named_parameters():
        assert rel_error(grads[k.removesuffix("_l0")], p.grad.numpy()) <= tol, k


def test_gru_follows_torch_formulation_of_the_candidate():
    """n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)): the reset gate applies after the recurrent product."""
    rng = np.random.default_rng(5)
    p = make_params(rng, 3)
    x, h = rng.standard_normal((1, D)), rng.standard_normal((1, H))
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    wi, wh, bi, bh = (np.split(p[k], 3) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    r = sig(x @ wi[0].T + bi[0] + h @ wh[0].T + bh[0])
    z = sig(x @ wi[1].T + bi[1] + h @ wh[1].T + bh[1])
    n = np.tanh(x @ wi[2].T + bi[2] + r * (h @ wh[2].T + bh[2]))
    h_new, _ = gru.gru_step_forward(x, h, p)
    np.testing.assert_allclose(h_new, (1 - z) * n + z * h, rtol=1e-14)


def longest_subnormal_run(carried: np.ndarray, tiny: float) -> int:
    """carried (T, N, H): the most consecutive steps any one entry spends subnormal."""
    run = best = np.zeros(carried.shape[1:], dtype=int)
    for row in carried:
        run = np.where((row != 0) & (np.abs(row) < tiny), run + 1, 0)
        best = np.maximum(best, run)
    return int(best.max())


@pytest.mark.parametrize("flush", [True, False])
def test_long_backward_keeps_subnormal_gradients_short_lived(flush, monkeypatch):
    """A carried gradient entry that decays into the subnormal range is flushed to zero within
    FLUSH_EVERY steps, so the time loop never computes on it for long; without the flush it lingers. (The
    CPU's own flush-to-zero mode is off here: it would leave no subnormal at all, and it is not on everywhere;
    so is the C kernels' gradient floor, which would zero the 1e-33 start at once.)"""
    from unrolled.nn import fused, time_loop

    monkeypatch.setattr(fused, "FLUSH", False)
    previous_floor = fused._fused.set_gradient_floor(0.0) if fused.ACTIVE else None
    try:
        _check_subnormal_lifetimes(flush, monkeypatch, time_loop)
    finally:
        if previous_floor is not None:
            fused._fused.set_gradient_floor(previous_floor)


def _check_subnormal_lifetimes(flush, monkeypatch, time_loop):
    if not flush:
        monkeypatch.setattr(time_loop, "_flush_subnormals", lambda a, tiny: None)
    rng = np.random.default_rng(6)
    n, t_len, d, h = 8, 200, 4, 16
    for dtype, start in ((np.float32, 1e-33), (np.float64, 1e-303)):
        params = make_params(rng, 1, d=d, h=h, dtype=dtype)
        params["weight_hh"] = (rng.standard_normal((h, h)) / np.sqrt(h)).astype(dtype)
        x = rng.standard_normal((n, t_len, d)).astype(dtype)
        _, _, cache = rnn.rnn_forward(x, None, params)
        carried = np.empty((t_len, n, h), dtype=dtype)
        _, (dh0,), _ = time_loop.sequence_backward(
            None, (np.full((n, h), start, dtype=dtype),), cache, dstates_out=carried
        )
        tiny = np.finfo(dtype).tiny
        longest = longest_subnormal_run(carried[::-1], tiny)  # in the order BPTT visits the steps
        if flush:
            assert longest <= time_loop.FLUSH_EVERY
            assert not np.any((dh0 != 0) & (np.abs(dh0) < tiny))  # flushed at the end
        else:
            assert longest > 2 * time_loop.FLUSH_EVERY  # the situation the flush exists for


def test_flush_subnormals_zeroes_only_subnormals():
    tiny = np.finfo(np.float32).tiny
    a = np.array([tiny / 4, -tiny / 2, tiny, -1.0, 0.0, 3e-30], dtype=np.float32)
    _flush_subnormals(a, tiny)
    np.testing.assert_array_equal(a, np.array([0, 0, tiny, -1.0, 0.0, 3e-30], dtype=np.float32))


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda a: a.update(x=a["x"][:, :, :2]), r"x: expected shape \(\*, \*, 4\)"),
        (lambda a: a.update(x=a["x"].astype(np.float32)), "x: expected dtype float64"),
        (lambda a: a.update(x=a["x"].astype(np.int64)), "x: expected dtype float32 or float64"),
        (lambda a: a.update(x=np.where(np.eye(T, D)[None] > 0, np.nan, a["x"])), "x: contains NaN"),
        (lambda a: a.update(x=a["x"] + np.inf), "x: contains NaN or infinity"),
        (lambda a: a.update(h0=np.zeros((N + 1, H))), r"state0.h: expected shape \(3, 3\)"),
        (lambda a: a.update(mask=np.ones((N, T + 1), dtype=bool)), r"mask: expected shape \(3, 5\)"),
        (lambda a: a.update(mask=np.ones((N, T))), "mask: expected dtype bool"),
        (lambda a: a["params"].pop("bias_hh"), "params: missing bias_hh"),
        (lambda a: a["params"].update(weight_hh=np.zeros((H, H + 1))), "weight_hh: expected shape"),
        (lambda a: a["params"].update(bias_ih=a["params"]["bias_ih"].astype(np.float32)), "bias_ih: expected dtype float64"),
        (lambda a: a.update(x=[[1.0]]), "x: expected a NumPy array"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(change, message):
    rng = np.random.default_rng(7)
    args = {"x": rng.standard_normal((N, T, D)), "h0": None, "params": make_params(rng, 1), "mask": None}
    change(args)
    with pytest.raises(ValueError, match=message):
        rnn.rnn_forward(args["x"], args["h0"], args["params"], mask=args["mask"])


def test_unknown_nonlinearity_and_bad_lstm_state():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((N, T, D))
    with pytest.raises(ValueError, match="nonlinearity"):
        rnn.rnn_forward(x, None, make_params(rng, 1), nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="state0: expected a tuple of 2 arrays"):
        lstm.lstm_forward(x, np.zeros((N, H)), make_params(rng, 4))
    with pytest.raises(ValueError, match="dout: expected shape"):
        _, _, cache = gru.gru_forward(x, None, make_params(rng, 3))
        gru.gru_backward(np.zeros((N, T, H + 1)), None, cache)


# --- sequences of zero time steps (T = 0) ------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("use_state0", [False, True])
@pytest.mark.parametrize("use_dstate", [False, True])
@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("n", [2, 6])  # up to SMALL_BATCH rows the fused cells' loop is C's ``sequence``
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_zero_time_steps(cell, use_state0, use_dstate, use_mask, reverse, n, dtype):
    """x (N, 0, D), as the plain reference treats it: an empty output, the initial state (a copy) as the
    final state; backward: an empty dx, dstate0 = dstate_final (zeros without one), zero parameter grads."""
    fwd, bwd, _, _, gates, comps = CELLS[cell]
    rng = np.random.default_rng(9)
    params = make_params(rng, gates, dtype=dtype)
    x = np.zeros((n, 0, D), dtype=dtype)
    state0 = [rng.standard_normal((n, H)).astype(dtype) for _ in range(comps)] if use_state0 else None
    mask = np.zeros((n, 0), dtype=bool) if use_mask else None

    out, s_t, cache = fwd(x, None if state0 is None else pack_state(comps, state0), params, mask=mask,
                          reverse=reverse)
    assert out.shape == (n, 0, H) and out.dtype == dtype
    for k, s in enumerate(unpack_state(comps, s_t)):
        assert s.shape == (n, H) and s.dtype == dtype
        np.testing.assert_array_equal(s, np.zeros((n, H)) if state0 is None else state0[k])
        if state0 is not None:
            assert not np.shares_memory(s, state0[k]), "the final state is a copy of the initial state"

    dstate = [rng.standard_normal((n, H)).astype(dtype) for _ in range(comps)] if use_dstate else None
    for dout in (None, np.zeros((n, 0, H), dtype=dtype)):
        dx, dstate0, grads = bwd(dout, None if dstate is None else pack_state(comps, dstate), cache)
        assert dx.shape == (n, 0, D) and dx.dtype == dtype
        for k, ds in enumerate(unpack_state(comps, dstate0)):
            assert ds.shape == (n, H) and ds.dtype == dtype
            np.testing.assert_array_equal(ds, np.zeros((n, H)) if dstate is None else dstate[k])
        assert set(grads) == set(params)
        for name, value in params.items():
            assert grads[name].shape == value.shape and grads[name].dtype == dtype, name
            assert np.all(grads[name] == 0.0), name


def test_zero_time_steps_match_the_reference():
    """The same, against the readable reference of each cell (nn/reference.py), which handles T = 0."""
    from unrolled.nn import reference

    refs = {
        "rnn_tanh": (reference.rnn_reference_forward, reference.rnn_reference_backward),
        "rnn_relu": (lambda x, s, p, mask=None: reference.rnn_reference_forward(x, s, p, "relu", mask),
                     reference.rnn_reference_backward),
        "gru": (reference.gru_reference_forward, reference.gru_reference_backward),
        "lstm": (reference.lstm_reference_forward, reference.lstm_reference_backward),
    }
    rng = np.random.default_rng(10)
    for cell in CELLS:
        r_fwd, r_bwd = refs[cell.removesuffix("_numpy")]
        fwd, bwd, _, _, gates, comps = CELLS[cell]
        for n in (2, 6):
            params = make_params(rng, gates)
            x = np.zeros((n, 0, D))
            s0 = pack_state(comps, [rng.standard_normal((n, H)) for _ in range(comps)])
            ds = pack_state(comps, [rng.standard_normal((n, H)) for _ in range(comps)])
            out, s_t, cache = fwd(x, s0, params)
            r_out, r_s_t, r_cache = r_fwd(x, s0, params)
            dx, ds0, grads = bwd(None, ds, cache)
            r_dx, r_ds0, r_grads = r_bwd(None, ds, r_cache)
            pairs = [(out, r_out), (dx, r_dx)]
            pairs += zip(unpack_state(comps, s_t), unpack_state(comps, r_s_t))
            pairs += zip(unpack_state(comps, ds0), unpack_state(comps, r_ds0))
            for a, b in pairs:
                assert a.shape == b.shape
                np.testing.assert_array_equal(a, b)
            for name in params:
                np.testing.assert_array_equal(grads[name], r_grads[name])


@pytest.mark.parametrize("layer_cell, nonlinearity", [("rnn", "tanh"), ("rnn", "relu"), ("gru", "tanh"), ("lstm", "tanh")])
@pytest.mark.parametrize("kernels", ["active", "numpy"])
@pytest.mark.parametrize("use_state", [False, True])
@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize("n", [2, 6])
def test_zero_time_steps_through_the_recurrent_layer(layer_cell, nonlinearity, kernels, use_state, use_mask, n,
                                                     monkeypatch):
    """recurrent_forward / recurrent_backward, 2 layers, bidirectional, on x (N, 0, D)."""
    from unrolled.nn.cells import get_cell
    from unrolled.nn.recurrent_layer import RecurrentConfig, init_recurrent_params, recurrent_backward, recurrent_forward

    if kernels == "numpy":
        monkeypatch.setattr(RecurrentConfig, "kernel",
                            property(lambda cfg: get_cell(cfg.cell).kernel(cfg.nonlinearity, fused=False)))
    config = RecurrentConfig(layer_cell, D, H, num_layers=2, bidirectional=True, nonlinearity=nonlinearity)
    comps = 2 if layer_cell == "lstm" else 1
    pack = (lambda s: s[0]) if comps == 1 else tuple
    rng = np.random.default_rng(11)
    params = init_recurrent_params(config, rng, dtype=np.float64)
    shape = (4, n, H)
    state0 = [rng.standard_normal(shape) for _ in range(comps)] if use_state else None
    dstate = [rng.standard_normal(shape) for _ in range(comps)] if use_state else None
    mask = np.zeros((n, 0), dtype=bool) if use_mask else None
    x = np.zeros((n, 0, D))

    out, final, cache = recurrent_forward(x, params, config, mask=mask,
                                          state0=None if state0 is None else pack(state0))
    assert cache.directions[0][0].kernel is config.kernel
    assert out.shape == (n, 0, 2 * H)
    for k, s in enumerate(final if comps == 2 else (final,)):
        np.testing.assert_array_equal(s, np.zeros(shape) if state0 is None else state0[k])
    # inference without a cache takes the same path
    out2, final2, _ = recurrent_forward(x, params, config, mask=mask, keep_cache=False,
                                        state0=None if state0 is None else pack(state0))
    assert out2.shape == (n, 0, 2 * H)
    for a, b in zip(final2 if comps == 2 else (final2,), final if comps == 2 else (final,)):
        np.testing.assert_array_equal(a, b)

    dstates = {}
    for dout in (None, np.zeros((n, 0, 2 * H))):
        dx, dstate0, grads = recurrent_backward(dout, None if dstate is None else pack(dstate), cache,
                                                dstates_out=dstates)
        assert dx.shape == (n, 0, D)
        for k, ds in enumerate(dstate0 if comps == 2 else (dstate0,)):
            np.testing.assert_array_equal(ds, np.zeros(shape) if dstate is None else dstate[k])
        assert list(grads) == list(config.param_shapes())
        for name, value in params.items():
            assert grads[name].shape == value.shape and np.all(grads[name] == 0.0), name
        assert all(v.shape == (0, n, H) for v in dstates.values()) and len(dstates) == 4
