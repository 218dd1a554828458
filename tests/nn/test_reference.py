"""nn/reference.py, the readable plain-NumPy cells, and its use as the oracle for the fast engine.

1. The reference is right: finite differences of every backward, mask semantics against unmasked runs of
   each row's real steps, and equality with torch.nn.RNN/GRU/LSTM (autograd, packed sequences).
2. The fast paths agree with it: the public cell functions and time_loop.cell_forward/cell_backward on
   both kernel sets (C when built, NumPy), every mask kind (none, right-padded above and at/below
   SMALL_BATCH, holes), both directions, initial states and final-state gradients; and
   recurrent_layer.recurrent_forward/backward against the reference layers.
Run the file once more with UNROLLED_FUSED=0 to make the "active" kernels the NumPy ones too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.gradcheck import numerical_gradient, rel_error
from unrolled.nn import gru, lstm, reference, rnn, time_loop
from unrolled.nn.recurrent_layer import RecurrentConfig, init_recurrent_params, recurrent_backward, recurrent_forward

NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
TOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}  # fast path vs the float64 reference
GRADCHECK_TOL = 1e-7


def _adapt(forward, backward, comps, **kwargs):
    """A cell's functions with every state as a tuple of (N, H) arrays ((h,) or (h, c)), None allowed."""
    pack = (lambda s: s[0]) if comps == 1 else tuple
    unpack = (lambda s: (s,)) if comps == 1 else tuple

    def fwd(x, s0, p, mask=None, reverse=False):
        out, s_t, cache = forward(x, None if s0 is None else pack(s0), p, mask=mask, reverse=reverse, **kwargs)
        return out, unpack(s_t), cache

    def bwd(dout, ds, cache):
        dx, ds0, grads = backward(dout, None if ds is None else pack(ds), cache)
        return dx, unpack(ds0), grads

    return fwd, bwd


@dataclass(frozen=True)
class Cell:
    gates: int
    comps: int  # state components: 1 (h) or 2 (h, c)
    layer_cell: str  # RecurrentConfig.cell
    nonlinearity: str
    ref: tuple  # (forward, backward) of the reference, tuple states
    public: tuple  # (forward, backward) of unrolled.nn.rnn/gru/lstm, tuple states
    kernels: dict  # "active" / "numpy" -> CellKernel
    torch_name: str


CELLS = {
    "rnn_tanh": Cell(1, 1, "rnn", "tanh",
                     _adapt(reference.rnn_reference_forward, reference.rnn_reference_backward, 1, nonlinearity="tanh"),
                     _adapt(rnn.rnn_forward, rnn.rnn_backward, 1, nonlinearity="tanh"),
                     {"active": rnn.RNN_TANH, "numpy": rnn.RNN_TANH_NUMPY}, "RNN"),
    "rnn_relu": Cell(1, 1, "rnn", "relu",
                     _adapt(reference.rnn_reference_forward, reference.rnn_reference_backward, 1, nonlinearity="relu"),
                     _adapt(rnn.rnn_forward, rnn.rnn_backward, 1, nonlinearity="relu"),
                     {"active": rnn.RNN_RELU, "numpy": rnn.RNN_RELU_NUMPY}, "RNN"),
    "gru": Cell(3, 1, "gru", "tanh", _adapt(reference.gru_reference_forward, reference.gru_reference_backward, 1),
                _adapt(gru.gru_forward, gru.gru_backward, 1), {"active": gru.GRU, "numpy": gru.GRU_NUMPY}, "GRU"),
    "lstm": Cell(4, 2, "lstm", "tanh", _adapt(reference.lstm_reference_forward, reference.lstm_reference_backward, 2),
                 _adapt(lstm.lstm_forward, lstm.lstm_backward, 2), {"active": lstm.LSTM, "numpy": lstm.LSTM_NUMPY},
                 "LSTM"),
}


def fast_functions(cell: Cell, impl: str):
    """(forward, backward) of the fast engine: the public wrappers, or cell_forward/cell_backward on a kernel."""
    if impl == "public":
        return cell.public
    return partial(time_loop.cell_forward, cell.kernels[impl]), time_loop.cell_backward


def make_case(rng, cell: Cell, n, t, d, h):
    """float64 params, x, state0, dout and dstate_final for one cell."""
    params = {
        "weight_ih": rng.uniform(-0.6, 0.6, (cell.gates * h, d)),
        "weight_hh": rng.uniform(-0.6, 0.6, (cell.gates * h, h)),
        "bias_ih": rng.uniform(-0.3, 0.3, cell.gates * h),
        "bias_hh": rng.uniform(-0.3, 0.3, cell.gates * h),
    }
    x = rng.standard_normal((n, t, d))
    state0 = tuple(rng.standard_normal((n, h)) for _ in range(cell.comps))
    dout = rng.standard_normal((n, t, h))
    dstate = tuple(rng.standard_normal((n, h)) for _ in range(cell.comps))
    return params, x, state0, dout, dstate


def make_mask(kind, rng, n, t):
    """None, all real, right-padded (lengths varied and unsorted, one of them 0), or with holes."""
    if kind == "none":
        return None
    if kind == "all_true":
        return np.ones((n, t), dtype=bool)
    if kind == "right":
        lengths = rng.permutation([(t - k) % (t + 1) for k in range(n)])  # t, t−1, …, 0, t, … shuffled
        return np.arange(t)[None, :] < lengths[:, None]
    assert kind == "holes"
    mask = rng.random((n, t)) < 0.6
    mask[0] = np.arange(t) > 0  # left padding: not right-padded whatever the other rows are
    mask[-1, t // 2] = False  # a hole inside a row
    mask[-1, -1] = True
    return mask


def assert_close(actual, expected, tol, what):
    assert actual.shape == expected.shape, what
    err = rel_error(actual, expected)
    assert err <= tol, f"{what}: rel error {err:.3g} > {tol:g}"


def cast(tree, dtype):
    if isinstance(tree, dict):
        return {k: v.astype(dtype) for k, v in tree.items()}
    if isinstance(tree, tuple):
        return tuple(v.astype(dtype) for v in tree)
    return None if tree is None else tree.astype(dtype)


# --- 1. the reference is right ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("mask_kind", ["none", "right", "holes"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_reference_gradients_match_finite_differences(name, mask_kind, reverse):
    cell = CELLS[name]
    fwd, bwd = cell.ref
    rng = np.random.default_rng(10)
    params, x, state0, dout, dstate = make_case(rng, cell, 3, 4, 3, 2)
    mask = make_mask(mask_kind, rng, 3, 4)

    def loss():
        out, s_t, _ = fwd(x, state0, params, mask=mask, reverse=reverse)
        return float(np.sum(out * dout) + sum(np.sum(s * ds) for s, ds in zip(s_t, dstate)))

    out, _, cache = fwd(x, state0, params, mask=mask, reverse=reverse)
    dx, dstate0, grads = bwd(dout, dstate, cache)
    assert_close(dx, numerical_gradient(loss, x), GRADCHECK_TOL, "dx")
    for k, (ds0, s0) in enumerate(zip(dstate0, state0)):
        assert_close(ds0, numerical_gradient(loss, s0), GRADCHECK_TOL, f"dstate0[{k}]")
    for k in NAMES:
        assert_close(grads[k], numerical_gradient(loss, params[k]), GRADCHECK_TOL, k)
    if mask is not None:  # a padded step outputs zero and receives no gradient
        assert not out[~mask].any() and not dx[~mask].any()


def test_gradient_check_catches_a_wrong_gradient():
    """The check above can fail: the analytic gradient at weights 1e-3 away is rejected."""
    cell = CELLS["gru"]
    fwd, bwd = cell.ref
    params, x, state0, dout, _ = make_case(np.random.default_rng(11), cell, 2, 4, 3, 2)
    numeric = numerical_gradient(lambda: float(np.sum(fwd(x, state0, params)[0] * dout)), params["weight_hh"])
    moved = dict(params, weight_hh=params["weight_hh"] + 1e-3)
    _, _, grads = bwd(dout, None, fwd(x, state0, moved)[2])
    assert rel_error(grads["weight_hh"], numeric) > 100 * GRADCHECK_TOL


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(sorted(CELLS)), n=st.integers(1, 4), t=st.integers(1, 6),
       reverse=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_reference_mask_is_the_row_without_its_padded_steps(name, n, t, reverse, seed):
    """Under any mask, each row's outputs, final state and gradients at its real steps are those of the
    unmasked reference run on the real steps alone; its padded steps output and receive zero."""
    cell = CELLS[name]
    fwd, bwd = cell.ref
    rng = np.random.default_rng(seed)
    params, x, state0, dout, dstate = make_case(rng, cell, n, t, 2, 3)
    mask = rng.random((n, t)) < 0.6
    out, s_t, cache = fwd(x, state0, params, mask=mask, reverse=reverse)
    dx, ds0, grads = bwd(dout, dstate, cache)
    total = {k: np.zeros_like(v) for k, v in grads.items()}
    for row in range(n):
        real = mask[row]
        s_row = tuple(s[row : row + 1] for s in state0)
        o, st_row, c = fwd(x[row : row + 1, real], s_row, params, reverse=reverse)
        d, ds_row, g = bwd(dout[row : row + 1, real], tuple(s[row : row + 1] for s in dstate), c)
        np.testing.assert_allclose(out[row, real], o[0], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(dx[row, real], d[0], rtol=1e-12, atol=1e-13)
        for a, b in zip(s_t + ds0, st_row + ds_row):
            np.testing.assert_allclose(a[row], b[0], rtol=1e-12, atol=1e-13)
        for k in total:
            total[k] += g[k]
    assert not out[~mask].any() and not dx[~mask].any()
    for k in NAMES:  # the batch's gradient is the sum of its rows'
        np.testing.assert_allclose(grads[k], total[k], rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("packed", [False, True], ids=["unmasked", "packed"])
def test_reference_matches_torch(name, num_layers, packed):
    """Bidirectional torch modules, so both directions of every per-cell function are checked; packed:
    right-padded lengths through pack_padded_sequence, PyTorch's semantics of the engine's masks."""
    torch = pytest.importorskip("torch")
    cell = CELLS[name]
    n, t, d, h = 4, 5, 3, 3
    kwargs = {"nonlinearity": cell.nonlinearity} if cell.torch_name == "RNN" else {}
    torch.manual_seed(1)
    module = getattr(torch.nn, cell.torch_name)(d, h, num_layers=num_layers, bidirectional=True, batch_first=True,
                                                dtype=torch.float64, **kwargs)
    params = {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}
    rng = np.random.default_rng(12)
    x = rng.standard_normal((n, t, d))
    state0 = tuple(rng.standard_normal((2 * num_layers, n, h)) for _ in range(cell.comps))
    dout = rng.standard_normal((n, t, 2 * h))
    dstate = tuple(rng.standard_normal((2 * num_layers, n, h)) for _ in range(cell.comps))
    lengths = np.array([5, 2, 4, 1])
    mask = np.arange(t)[None, :] < lengths[:, None] if packed else None

    x_t = torch.tensor(x, requires_grad=True)
    s_t = [torch.tensor(s, requires_grad=True) for s in state0]
    inp = torch.nn.utils.rnn.pack_padded_sequence(x_t, torch.tensor(lengths), batch_first=True,
                                                  enforce_sorted=False) if packed else x_t
    out_t, fin_t = module(inp, s_t[0] if cell.comps == 1 else tuple(s_t))
    if packed:
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_t, batch_first=True, total_length=t)
    fin_t = (fin_t,) if cell.comps == 1 else fin_t
    loss = (out_t * torch.tensor(dout)).sum() + sum((f * torch.tensor(ds)).sum() for f, ds in zip(fin_t, dstate))
    loss.backward()

    pack = (lambda s: s[0]) if cell.comps == 1 else tuple
    out, fin, cache = reference.reference_layers_forward(x, params, cell.layer_cell, num_layers, True, mask,
                                                         pack(state0), cell.nonlinearity)
    dx, ds0, grads = reference.reference_layers_backward(dout, pack(dstate), cache)
    unpack = (lambda s: (s,)) if cell.comps == 1 else tuple
    assert_close(out, out_t.detach().numpy(), 1e-12, "out")
    assert_close(dx, x_t.grad.numpy(), 1e-12, "dx")
    for a, b, s in zip(unpack(fin), fin_t, s_t):
        assert_close(a, b.detach().numpy(), 1e-12, "final state")
    for a, s in zip(unpack(ds0), s_t):
        assert_close(a, s.grad.numpy(), 1e-12, "dstate0")
    assert set(grads) == set(params)
    for k, p in module.named_parameters():
        assert_close(grads[k], p.grad.numpy(), 1e-12, k)


# --- 2. the fast paths agree with the reference ----------------------------------------------------------


def run_both(cell, impl, params, x, state0, dout, dstate, mask, reverse, dtype):
    """Forward and backward of the reference (float64) and of the fast path (in ``dtype``)."""
    rfwd, rbwd = cell.ref
    ffwd, fbwd = fast_functions(cell, impl)
    r_out, r_fin, r_cache = rfwd(x, state0, params, mask=mask, reverse=reverse)
    r_back = rbwd(dout, dstate, r_cache)
    args = cast(x, dtype), cast(state0, dtype), cast(params, dtype)
    f_out, f_fin, f_cache = ffwd(*args, mask=mask, reverse=reverse)
    f_dout, f_dstate = cast(dout, dtype), cast(dstate, dtype)
    kept = f_dout.copy(), tuple(s.copy() for s in f_dstate)
    f_back = fbwd(f_dout, f_dstate, f_cache)
    assert np.array_equal(kept[0], f_dout) and all(map(np.array_equal, kept[1], f_dstate)), "backward mutated"
    return (r_out, r_fin, r_back), (f_out, f_fin, f_back), f_cache


def assert_agree(ref_result, fast_result, tol):
    (r_out, r_fin, (r_dx, r_ds0, r_g)), (f_out, f_fin, (f_dx, f_ds0, f_g)) = ref_result, fast_result
    assert f_out.dtype == f_dx.dtype == f_g["weight_hh"].dtype
    assert_close(f_out, r_out, tol, "out")
    assert_close(f_dx, r_dx, tol, "dx")
    for k, (a, b) in enumerate(zip(f_fin, r_fin)):
        assert_close(a, b, tol, f"final state[{k}]")
    for k, (a, b) in enumerate(zip(f_ds0, r_ds0)):
        assert_close(a, b, tol, f"dstate0[{k}]")
    for k in NAMES:
        assert_close(f_g[k], r_g[k], tol, k)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("impl", ["public", "active", "numpy"])
@pytest.mark.parametrize("mask_kind", ["none", "all_true", "right", "holes"])
@pytest.mark.parametrize("n", [3, 7])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fast_path_matches_reference(name, impl, mask_kind, n, reverse, dtype):
    cell = CELLS[name]
    rng = np.random.default_rng(20 + n)
    t = 5
    params, x, state0, dout, dstate = make_case(rng, cell, n, t, 4, 3)
    mask = make_mask(mask_kind, rng, n, t)
    ref_result, fast_result, cache = run_both(cell, impl, params, x, state0, dout, dstate, mask, reverse, dtype)
    assert_agree(ref_result, fast_result, TOL[np.dtype(dtype)])
    kernel = cache.kernel
    if mask_kind == "right" and not (kernel.sequence is not None and n <= time_loop.SMALL_BATCH):
        assert cache.rows is not None  # the test reached the sorted, packed right-padded path
    if mask_kind == "holes":
        assert cache.rows is None  # ... and the general masked path


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(sorted(CELLS)), impl=st.sampled_from(["active", "numpy"]), n=st.integers(1, 9),
       t=st.integers(1, 7), d=st.integers(1, 4), h=st.integers(1, 4), mask_p=st.sampled_from([0.0, 0.5, 0.8, 1.0]),
       right=st.booleans(), reverse=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_fast_path_matches_reference_property(name, impl, n, t, d, h, mask_p, right, reverse, seed):
    """Any small shape and mask (mask_p = 0: no mask; right: right-padded lengths), float64."""
    cell = CELLS[name]
    rng = np.random.default_rng(seed)
    params, x, state0, dout, dstate = make_case(rng, cell, n, t, d, h)
    if mask_p == 0.0:
        mask = None
    elif right:
        mask = np.arange(t)[None, :] < rng.integers(0, t + 1, n)[:, None]
    else:
        mask = rng.random((n, t)) < mask_p
    ref_result, fast_result, _ = run_both(cell, impl, params, x, state0, dout, dstate, mask, reverse, np.float64)
    assert_agree(ref_result, fast_result, 1e-12)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_comparison_catches_a_perturbed_weight(name, dtype):
    """The oracle can fail: a 1e-3 change in weight_hh makes the reference and the fast path disagree."""
    cell = CELLS[name]
    rng = np.random.default_rng(30)
    params, x, state0, dout, dstate = make_case(rng, cell, 7, 5, 4, 3)
    mask = make_mask("right", rng, 7, 5)
    ffwd, _ = fast_functions(cell, "active")
    f_out, _, _ = ffwd(cast(x, dtype), cast(state0, dtype), cast(params, dtype), mask=mask)
    r_out, _, _ = cell.ref[0](x, state0, params, mask=mask)
    assert rel_error(f_out, r_out) <= TOL[np.dtype(dtype)]  # the unperturbed pair agrees ...
    moved = dict(params, weight_hh=params["weight_hh"] + 1e-3 * rng.standard_normal(params["weight_hh"].shape))
    r_moved, _, _ = cell.ref[0](x, state0, moved, mask=mask)
    assert rel_error(f_out, r_moved) > 10 * TOL[np.dtype(dtype)]  # ... the perturbed one does not


@pytest.fixture(params=["active", "numpy"])
def layer_kernels(request, monkeypatch):
    """The layer runs ``config.kernel``; for "numpy", make that the NumPy kernel of the config's cell."""
    if request.param == "numpy":
        by_config = {(c.layer_cell, c.nonlinearity): c.kernels["numpy"] for c in CELLS.values()}
        monkeypatch.setattr(RecurrentConfig, "kernel", property(lambda cfg: by_config[cfg.cell, cfg.nonlinearity]))
    return request.param


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("mask_kind", ["none", "right", "holes"])
@pytest.mark.parametrize("n", [3, 7])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_recurrent_layer_matches_reference_layers(name, mask_kind, n, dtype, layer_kernels):
    cell = CELLS[name]
    t, d, h, layers = 5, 4, 3, 2
    config = RecurrentConfig(cell.layer_cell, d, h, num_layers=layers, bidirectional=True,
                             nonlinearity=cell.nonlinearity)
    rng = np.random.default_rng(40 + n)
    params = init_recurrent_params(config, rng, dtype=np.float64)
    x = rng.standard_normal((n, t, d))
    mask = make_mask(mask_kind, rng, n, t)
    shape = (2 * layers, n, h)
    state0 = tuple(rng.standard_normal(shape) for _ in range(cell.comps))
    dstate = tuple(rng.standard_normal(shape) for _ in range(cell.comps))
    dout = rng.standard_normal((n, t, 2 * h))
    pack = (lambda s: s[0]) if cell.comps == 1 else tuple
    unpack = (lambda s: (s,)) if cell.comps == 1 else tuple

    r_out, r_fin, r_cache = reference.reference_layers_forward(x, params, cell.layer_cell, layers, True, mask,
                                                               pack(state0), cell.nonlinearity)
    r_dx, r_ds0, r_g = reference.reference_layers_backward(dout, pack(dstate), r_cache)
    f_out, f_fin, f_cache = recurrent_forward(cast(x, dtype), cast(params, dtype), config, mask=mask,
                                              state0=pack(cast(state0, dtype)))
    expected_kernel = cell.kernels["numpy" if layer_kernels == "numpy" else "active"]
    assert f_cache.directions[0][0].kernel is expected_kernel
    f_dx, f_ds0, f_g = recurrent_backward(cast(dout, dtype), pack(cast(dstate, dtype)), f_cache)
    tol = TOL[np.dtype(dtype)]
    assert_close(f_out, r_out, tol, "out")
    assert_close(f_dx, r_dx, tol, "dx")
    for a, b in zip(unpack(f_fin) + unpack(f_ds0), unpack(r_fin) + unpack(r_ds0)):
        assert_close(a, b, tol, "state")
    assert list(f_g) == list(config.param_shapes()) and set(r_g) == set(f_g)
    for k in f_g:
        assert_close(f_g[k], r_g[k], tol, k)
