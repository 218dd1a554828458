"""Tests for unrolled.optim: golden comparisons against torch.optim (float64), lazy rows, clipping, schedules."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from unrolled import optim as optim_module
from unrolled.nn.embedding import SparseRows
from unrolled.optim import (
    SGD,
    Adam,
    AdamW,
    clip_grad_norm,
    constant,
    linear_warmup,
    step_decay,
    warmup_cosine_decay,
    warmup_linear_decay,
)

SHAPES = {
    "embedding.weight": (9, 3),
    "weight_ih_l0": (8, 3),
    "weight_hh_l0": (8, 2),
    "bias_ih_l0": (8,),
    "fc.weight": (2, 2),
}
NUM_STEPS = 10
# float64 results agree with torch to a few ulps; the tolerance leaves room only for rounding.
RTOL, ATOL = 1e-12, 1e-14


def make_params(seed: int = 0, dtype=np.float64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}


def make_grads(rng: np.random.Generator, skip: str | None = None) -> dict[str, np.ndarray]:
    return {k: rng.standard_normal(s) for k, s in SHAPES.items() if k != skip}


def lr_at(step: int) -> float:
    return warmup_cosine_decay(step, 0.05, 3, NUM_STEPS, final_lr=0.005)


def sparse(indices, values, num_rows: int) -> SparseRows:
    return SparseRows(np.asarray(indices, dtype=np.int64), np.asarray(values, dtype=np.float64), num_rows)


def random_rows(rng: np.random.Generator, indices, num_rows: int = 9, dim: int = 3) -> SparseRows:
    indices = np.asarray(sorted(indices), dtype=np.int64)
    return SparseRows(indices, rng.standard_normal((indices.size, dim)), num_rows)


# ----------------------------------------------------------------------------------------------------------
# dense: golden comparison with torch.optim

DENSE_CONFIGS = [
    ("SGD", dict(momentum=0.0)),
    ("SGD", dict(momentum=0.9)),
    ("SGD", dict(momentum=0.9, nesterov=True)),
    ("SGD", dict(weight_decay=0.1)),
    ("SGD", dict(momentum=0.8, nesterov=True, weight_decay=0.05)),
    ("Adam", dict()),
    ("Adam", dict(weight_decay=0.1)),
    ("Adam", dict(betas=(0.5, 0.9), eps=1e-6)),  # 1 - β₁ = 0.5: torch's other lerp branch
    ("AdamW", dict()),
    ("AdamW", dict(weight_decay=0.1, betas=(0.8, 0.99))),
]

OURS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}


def run_torch(name, kwargs, params, grad_seq, lrs):
    """Reference trajectory with torch.optim; a key missing from a step's grads gets grad None."""
    torch = pytest.importorskip("torch")
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    opt = getattr(torch.optim, name)(list(tparams.values()), lr=lrs[0], **kwargs)
    for grads, lr in zip(grad_seq, lrs):
        for g in opt.param_groups:
            g["lr"] = lr
        for k, p in tparams.items():
            p.grad = None if k not in grads else torch.tensor(grads[k])
        opt.step()
    return {k: p.detach().numpy() for k, p in tparams.items()}, opt, tparams


@pytest.mark.parametrize(("name", "kwargs"), DENSE_CONFIGS)
def test_dense_matches_torch_optim(name, kwargs):
    pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    params = make_params()
    start = {k: v.copy() for k, v in params.items()}
    # On step 3 one parameter has no gradient: it must be skipped without advancing its state (as torch).
    grad_seq = [make_grads(rng, skip="bias_ih_l0" if t == 3 else None) for t in range(NUM_STEPS)]
    lrs = [lr_at(t) for t in range(NUM_STEPS)]

    arrays = dict(params)  # the same array objects: they must be updated in place
    opt = OURS[name](params, **({"lr": 0.05} | kwargs))
    for grads, lr in zip(grad_seq, lrs):
        opt.step(grads, lr=lr)

    want, topt, tparams = run_torch(name, kwargs, start, grad_seq, lrs)
    for k in SHAPES:
        assert params[k] is arrays[k]
        assert not np.array_equal(params[k], start[k])
        np.testing.assert_allclose(params[k], want[k], rtol=RTOL, atol=ATOL, err_msg=k)

    # The optimizer state agrees too (this is what a resumed run continues from).
    ours = opt.state_dict()["state"]
    for k, p in tparams.items():
        tstate = topt.state[p]
        if name == "SGD":
            if kwargs.get("momentum", 0.0):
                np.testing.assert_allclose(
                    ours[k]["momentum_buffer"], tstate["momentum_buffer"].numpy(), rtol=RTOL, atol=ATOL
                )
        else:
            assert ours[k]["step"] == int(tstate["step"]) == (NUM_STEPS - 1 if k == "bias_ih_l0" else NUM_STEPS)
            for field in ("exp_avg", "exp_avg_sq"):
                np.testing.assert_allclose(ours[k][field], tstate[field].numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
def test_step_does_not_modify_gradients(cls):
    rng = np.random.default_rng(2)
    params = make_params()
    grads = make_grads(rng)
    grads["embedding.weight"] = random_rows(rng, [1, 4])
    before = {k: (g.values if isinstance(g, SparseRows) else g).copy() for k, g in grads.items()}
    kwargs = {"momentum": 0.9, "weight_decay": 0.1} if cls is SGD else {"weight_decay": 0.1}
    opt = cls(params, lr=0.1, **kwargs)
    opt.step(grads)
    opt.step(grads)
    for k, g in grads.items():
        np.testing.assert_array_equal(g.values if isinstance(g, SparseRows) else g, before[k])


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
def test_float32_params_stay_float32_and_track_float64(cls):
    rng = np.random.default_rng(3)
    p64 = make_params()
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    o64, o32 = cls(p64, lr=0.01), cls(p32, lr=0.01)
    for _ in range(5):
        grads = make_grads(rng)
        o64.step(grads)
        o32.step({k: g.astype(np.float32) for k, g in grads.items()})
    for k in SHAPES:
        assert p32[k].dtype == np.float32
        np.testing.assert_allclose(p32[k], p64[k], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------------------
# sparse rows

ROW_SETS = [[0, 2, 5], [2, 3], [], [0, 1, 2, 3, 4, 5, 6, 7, 8], [5, 8], [2, 5, 7]]


def run_sparse_adam_reference(w0, grad_seq, lrs, *, betas=(0.9, 0.999), eps=1e-8, wd=0.0, decoupled=False):
    """torch.optim.SparseAdam, with weight decay emulated on the touched rows only (SparseAdam has none)."""
    torch = pytest.importorskip("torch")
    p = torch.tensor(w0, requires_grad=True)
    opt = torch.optim.SparseAdam([p], lr=lrs[0], betas=betas, eps=eps)
    for g, lr in zip(grad_seq, lrs):
        opt.param_groups[0]["lr"] = lr
        idx = torch.tensor(g.indices)
        values = torch.tensor(g.values)
        with torch.no_grad():
            if wd and decoupled:
                p[idx] *= 1 - lr * wd
            elif wd:
                values = values + wd * p[idx]
        p.grad = torch.sparse_coo_tensor(idx[None, :], values, tuple(w0.shape), check_invariants=True)
        opt.step()
    st = opt.state[p]
    return p.detach().numpy(), st["exp_avg"].numpy(), st["exp_avg_sq"].numpy()


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (Adam, {}),
        (Adam, {"betas": (0.8, 0.99), "eps": 1e-6}),
        (Adam, {"weight_decay": 0.1}),
        (AdamW, {"weight_decay": 0.1}),
    ],
)
@pytest.mark.parametrize("rows_per_block", [None, 2])  # the default, and blocks smaller than a gradient's rows
def test_lazy_sparse_adam_matches_torch_sparse_adam(cls, kwargs, rows_per_block, monkeypatch):
    if rows_per_block is not None:
        monkeypatch.setattr(optim_module, "ROWS_PER_BLOCK", rows_per_block)
    rng = np.random.default_rng(4)
    w0 = rng.standard_normal((9, 3))
    grad_seq = [random_rows(rng, rows) for rows in ROW_SETS]
    lrs = [lr_at(t) for t in range(len(ROW_SETS))]

    params = {"embedding.weight": w0.copy()}
    opt = cls(params, **kwargs)
    for g, lr in zip(grad_seq, lrs):
        opt.step({"embedding.weight": g}, lr=lr)

    ref_kwargs = {k: v for k, v in kwargs.items() if k in ("betas", "eps")}
    wd = kwargs.get("weight_decay", 0.0)
    want_p, want_m, want_v = run_sparse_adam_reference(
        w0, grad_seq, lrs, wd=wd, decoupled=cls is AdamW, **ref_kwargs
    )
    state = opt.state_dict()["state"]["embedding.weight"]
    assert state["step"] == len(ROW_SETS)  # one count per parameter, including the empty step
    np.testing.assert_allclose(params["embedding.weight"], want_p, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(state["exp_avg"], want_m, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(state["exp_avg_sq"], want_v, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (Adam, {}),
        (Adam, {"weight_decay": 0.1}),
        (AdamW, {"weight_decay": 0.1}),
        (SGD, {"momentum": 0.9, "nesterov": True, "weight_decay": 0.05}),
    ],
)
def test_exact_mode_matches_dense_torch(cls, kwargs):
    pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    params = make_params()
    start = {k: v.copy() for k, v in params.items()}
    grad_seq = []
    for rows in ROW_SETS:
        grads = make_grads(rng)
        grads["embedding.weight"] = random_rows(rng, rows)
        grad_seq.append(grads)
    lrs = [lr_at(t) for t in range(len(ROW_SETS))]

    opt = cls(params, lr=0.05, lazy=False, **kwargs)
    for grads, lr in zip(grad_seq, lrs):
        opt.step(grads, lr=lr)

    dense_seq = [{k: (g.to_dense() if isinstance(g, SparseRows) else g) for k, g in gs.items()} for gs in grad_seq]
    want, _, _ = run_torch(cls.__name__, kwargs, start, dense_seq, lrs)
    for k in SHAPES:
        np.testing.assert_allclose(params[k], want[k], rtol=RTOL, atol=ATOL, err_msg=k)


def test_lazy_adam_with_every_row_touched_is_dense_adam_up_to_eps_placement():
    # With ε → 0 the SparseAdam form √(1-β₂ᵗ)/(1-β₁ᵗ) · m/(√v + ε) and torch Adam's
    # 1/(1-β₁ᵗ) · m/(√v/√(1-β₂ᵗ) + ε) coincide, so the lazy path must then equal the dense one.
    rng = np.random.default_rng(6)
    w0 = rng.standard_normal((9, 3))
    lazy, dense = {"e": w0.copy()}, {"e": w0.copy()}
    o_lazy, o_dense = Adam(lazy, lr=0.01, eps=1e-300), Adam(dense, lr=0.01, eps=1e-300)
    for _ in range(6):
        g = random_rows(rng, range(9))
        o_lazy.step({"e": g})
        o_dense.step({"e": g.to_dense()})
    np.testing.assert_allclose(lazy["e"], dense["e"], rtol=1e-13, atol=1e-15)
    # With the default ε the forms differ: SparseAdam's ε acts as ε/√(1-β₂ᵗ) in Adam's form, so on step 1
    # with |g| = 1 (√v̂ = 1) the updates differ by a relative ε (1/√(1-β₂) − 1) ≈ 3.1e-7: measurable, tiny.
    lazy2, dense2 = {"e": w0.copy()}, {"e": w0.copy()}
    o_lazy, o_dense = Adam(lazy2), Adam(dense2)
    g = sparse(range(9), np.ones((9, 3)), 9)
    o_lazy.step({"e": g})
    o_dense.step({"e": g.to_dense()})
    d_lazy, d_dense = lazy2["e"] - w0, dense2["e"] - w0
    rel = np.abs(d_lazy - d_dense) / np.abs(d_dense)
    np.testing.assert_allclose(rel, 1e-8 * (1 / math.sqrt(1 - 0.999) - 1), rtol=1e-3)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (Adam, {"weight_decay": 0.1}),
        (AdamW, {"weight_decay": 0.1}),
        (SGD, {"momentum": 0.9, "weight_decay": 0.1}),
    ],
)
def test_lazy_mode_leaves_untouched_rows_and_their_state_alone(cls, kwargs):
    rng = np.random.default_rng(7)
    params = {"embedding.weight": rng.standard_normal((9, 3))}
    opt = cls(params, lr=0.1, **kwargs)
    opt.step({"embedding.weight": random_rows(rng, [0, 1, 2, 3, 4, 5, 6, 7, 8])})  # every row gets state
    w_before = params["embedding.weight"].copy()
    s_before = opt.state_dict()["state"]["embedding.weight"]
    touched = [1, 6]
    opt.step({"embedding.weight": random_rows(rng, touched)})
    s_after = opt.state_dict()["state"]["embedding.weight"]
    untouched = np.setdiff1d(np.arange(9), touched)
    np.testing.assert_array_equal(params["embedding.weight"][untouched], w_before[untouched])
    assert not np.any(params["embedding.weight"][touched] == w_before[touched])
    for field, arr in s_after.items():
        if isinstance(arr, np.ndarray):
            np.testing.assert_array_equal(arr[untouched], s_before[field][untouched], err_msg=field)
            assert not np.any(arr[touched] == s_before[field][touched]), field


def test_exact_mode_moves_untouched_rows():
    rng = np.random.default_rng(8)
    params = {"e": rng.standard_normal((9, 3))}
    opt = Adam(params, lr=0.1, lazy=False)
    opt.step({"e": random_rows(rng, range(9))})
    before = params["e"].copy()
    opt.step({"e": random_rows(rng, [1, 6])})
    assert not np.any(params["e"] == before)  # the moments of every row carry the update on


@pytest.mark.parametrize(("nesterov", "wd"), [(False, 0.0), (True, 0.05)])
def test_lazy_sgd_momentum_matches_row_wise_reference(nesterov, wd):
    rng = np.random.default_rng(9)
    w = rng.standard_normal((9, 3))
    params = {"e": w.copy()}
    mu = 0.9
    opt = SGD(params, lr=0.1, momentum=mu, nesterov=nesterov, weight_decay=wd)
    buf = np.zeros_like(w)
    for t, rows in enumerate(ROW_SETS):
        g = random_rows(rng, rows)
        lr = lr_at(t)
        opt.step({"e": g}, lr=lr)
        for r, gr in zip(g.indices, g.values):  # textbook, one row at a time
            d = gr + wd * w[r]
            buf[r] = mu * buf[r] + d
            w[r] = w[r] - lr * ((d + mu * buf[r]) if nesterov else buf[r])
    np.testing.assert_allclose(params["e"], w, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(opt.state_dict()["state"]["e"]["momentum_buffer"], buf, rtol=1e-13, atol=1e-15)


def test_plain_sgd_on_sparse_rows_matches_torch_sparse_sgd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    w0 = rng.standard_normal((9, 3))
    params = {"e": w0.copy()}
    opt = SGD(params, lr=0.1)
    tp = torch.tensor(w0, requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.1)
    for rows in ROW_SETS:
        g = random_rows(rng, rows)
        opt.step({"e": g})
        tp.grad = torch.sparse_coo_tensor(
            torch.tensor(g.indices)[None, :], torch.tensor(g.values), (9, 3), check_invariants=True
        )
        topt.step()
    np.testing.assert_allclose(params["e"], tp.detach().numpy(), rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------------------------------------
# gradient clipping


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e6])
def test_clip_grad_norm_matches_torch_on_dense_and_sparse_mix(max_norm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    grads = make_grads(rng)
    grads["embedding.weight"] = random_rows(rng, [0, 4, 7])
    dense = {k: (g.to_dense() if isinstance(g, SparseRows) else g.copy()) for k, g in grads.items()}

    norm = clip_grad_norm(grads, max_norm)

    tps = []
    for g in dense.values():
        p = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        p.grad = torch.tensor(g)
        tps.append(p)
    tnorm = torch.nn.utils.clip_grad_norm_(tps, max_norm)
    assert isinstance(norm, float)
    assert norm == pytest.approx(float(tnorm), rel=1e-14)
    for (k, g), p in zip(grads.items(), tps):
        got = g.to_dense() if isinstance(g, SparseRows) else g
        np.testing.assert_allclose(got, p.grad.numpy(), rtol=1e-14, atol=0, err_msg=k)
    if max_norm < norm:
        arrays = [g.values if isinstance(g, SparseRows) else g for g in grads.values()]
        total = math.sqrt(sum(float(np.sum(a**2)) for a in arrays))
        assert total == pytest.approx(max_norm, rel=1e-6)
    else:
        for k, g in grads.items():
            np.testing.assert_array_equal(g.to_dense() if isinstance(g, SparseRows) else g, dense[k])


def test_clip_grad_norm_known_value_and_non_finite():
    grads = {"a": np.array([3.0, 0.0]), "b": sparse([2], [[4.0]], 5)}
    assert clip_grad_norm(grads, 10.0) == 5.0
    np.testing.assert_array_equal(grads["a"], [3.0, 0.0])
    assert clip_grad_norm(grads, 1.0) == 5.0
    np.testing.assert_allclose(grads["a"], [3.0 / (5.0 + 1e-6), 0.0], rtol=1e-15)
    np.testing.assert_allclose(grads["b"].values, [[4.0 / (5.0 + 1e-6)]], rtol=1e-15)
    bad = {"a": np.array([np.nan, 1.0]), "b": np.array([2.0])}
    assert math.isnan(clip_grad_norm(bad, 1.0))
    np.testing.assert_array_equal(bad["b"], [2.0])  # left alone: the training loop decides
    assert clip_grad_norm({"a": np.array([np.inf])}, 1.0) == math.inf
    assert clip_grad_norm({}, 1.0) == 0.0
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(grads, -1.0)


# ----------------------------------------------------------------------------------------------------------
# schedules


def test_constant_and_step_decay():
    assert constant(0, 0.1) == 0.1
    assert constant(10_000, 0.1) == 0.1
    assert [step_decay(s, 1.0, 3, 0.5) for s in (0, 2, 3, 5, 6, 9)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]


def test_linear_warmup():
    assert linear_warmup(0, 1.0, 4) == 0.25  # the first step already moves
    assert linear_warmup(2, 1.0, 4) == 0.75
    assert linear_warmup(3, 1.0, 4) == 1.0  # warmup ends
    assert linear_warmup(4, 1.0, 4) == 1.0
    assert linear_warmup(100, 1.0, 4) == 1.0
    assert linear_warmup(0, 1.0, 0) == 1.0  # no warmup


@pytest.mark.parametrize("schedule", [warmup_linear_decay, warmup_cosine_decay])
def test_warmup_decay_key_steps(schedule):
    base, final, warmup, total = 1.0, 0.1, 4, 14
    assert schedule(0, base, warmup, total, final) == 0.25
    assert schedule(3, base, warmup, total, final) == 1.0  # end of warmup
    assert schedule(4, base, warmup, total, final) == 1.0  # decay starts from base
    assert schedule(9, base, warmup, total, final) == pytest.approx(0.55)  # half way: both shapes give the mean
    assert schedule(total, base, warmup, total, final) == final
    assert schedule(total + 100, base, warmup, total, final) == final
    lrs = [schedule(s, base, warmup, total, final) for s in range(warmup, total + 1)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))  # strictly decreasing to final
    assert schedule(total - 1, base, warmup, total) > 0.0  # final_lr defaults to 0 ...
    assert schedule(total, base, warmup, total) == 0.0  # ... reached at total_steps
    assert schedule(0, base, 0, 0) == 0.0  # degenerate but valid


def test_cosine_and_linear_shapes_differ():
    assert warmup_cosine_decay(6, 1.0, 0, 20) == pytest.approx(0.5 * (1 + math.cos(math.pi * 6 / 20)))
    assert warmup_linear_decay(6, 1.0, 0, 20) == pytest.approx(1 - 6 / 20)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: constant(-1, 0.1), "step"),
        (lambda: constant(0, -0.1), "base_lr"),
        (lambda: constant(1.5, 0.1), "step"),
        (lambda: linear_warmup(0, 0.1, -1), "warmup_steps"),
        (lambda: warmup_linear_decay(0, 0.1, 10, 5), "total_steps"),
        (lambda: warmup_cosine_decay(0, 0.1, 10, 5), "total_steps"),
        (lambda: warmup_cosine_decay(-3, 0.1, 1, 5), "step"),
        (lambda: warmup_cosine_decay(0, 0.1, 1, 5, final_lr=-1.0), "final_lr"),
        (lambda: step_decay(0, 0.1, 0, 0.5), "step_size"),
        (lambda: step_decay(0, 0.1, 2, -0.5), "gamma"),
        (lambda: step_decay(0, float("nan"), 2, 0.5), "base_lr"),
    ],
)
def test_schedule_validation_names_the_argument(call, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        call()


# ----------------------------------------------------------------------------------------------------------
# state_dict


def _walk_plain(obj) -> None:
    """Only dicts with str keys, tuples, numbers, bools, strings and NumPy arrays: nothing that needs pickle."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, str)
            _walk_plain(v)
    elif isinstance(obj, tuple):
        for v in obj:
            _walk_plain(v)
    else:
        assert isinstance(obj, (np.ndarray, bool, int, float, str)), type(obj)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
        (Adam, {"lr": 0.01, "weight_decay": 0.01}),
        (AdamW, {"lr": 0.01}),
    ],
)
def test_state_dict_round_trip_continues_the_same_trajectory(cls, kwargs):
    rng = np.random.default_rng(12)

    def grads_at(t):
        gs = make_grads(np.random.default_rng(100 + t))
        gs["embedding.weight"] = random_rows(np.random.default_rng(200 + t), ROW_SETS[t % len(ROW_SETS)])
        return gs

    params = make_params(seed=int(rng.integers(1000)))
    opt = cls(params, **kwargs)
    for t in range(4):
        opt.step(grads_at(t), lr=lr_at(t))
    saved = opt.state_dict()
    _walk_plain(saved)
    json.dumps({k: v for k, v in saved.items() if k != "state"})  # metadata is JSON; arrays go elsewhere
    resumed_params = {k: v.copy() for k, v in params.items()}
    for t in range(4, 8):
        opt.step(grads_at(t), lr=lr_at(t))

    fresh = cls(resumed_params, lr=123.0)  # hyperparameters come back from the state dict
    fresh.load_state_dict(saved)
    assert fresh.lr == kwargs["lr"]
    for t in range(4, 8):
        fresh.step(grads_at(t), lr=lr_at(t))
    for k in SHAPES:
        np.testing.assert_array_equal(resumed_params[k], params[k], err_msg=k)
    # The saved arrays are copies: the steps after saving did not change them.
    assert not all(
        np.array_equal(a, opt.state_dict()["state"]["weight_ih_l0"][f])
        for f, a in saved["state"]["weight_ih_l0"].items()
        if isinstance(a, np.ndarray)
    )


def test_load_state_dict_rejects_mismatches_without_changing_anything():
    params = make_params()
    opt = Adam(params)
    opt.step(make_grads(np.random.default_rng(0)))
    good = opt.state_dict()
    with pytest.raises(ValueError, match="AdamW"):
        AdamW(make_params()).load_state_dict(good)
    bad = opt.state_dict()
    bad["state"]["fc.weight"]["exp_avg"] = np.zeros((3, 3))
    other = Adam(make_params(), lr=0.5)
    with pytest.raises(ValueError, match="'fc.weight'"):
        other.load_state_dict(bad)
    bad = opt.state_dict()
    bad["state"]["nope"] = bad["state"].pop("fc.weight")
    with pytest.raises(ValueError, match="'nope'"):
        other.load_state_dict(bad)
    bad = opt.state_dict()
    bad["hyperparams"]["eps"] = 0.0
    with pytest.raises(ValueError, match="eps"):
        other.load_state_dict(bad)
    assert other.lr == 0.5 and other.state_dict()["state"] == {}


# ----------------------------------------------------------------------------------------------------------
# validation


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda p: SGD(p, lr=-0.1), "lr"),
        (lambda p: SGD(p, lr=0.1, nesterov=True), "nesterov"),
        (lambda p: SGD(p, lr=0.1, momentum=-0.5), "momentum"),
        (lambda p: SGD(p, lr=0.1, weight_decay=-1.0), "weight_decay"),
        (lambda p: Adam(p, lr=-1e-3), "lr"),
        (lambda p: Adam(p, betas=(1.0, 0.999)), r"betas\[0\]"),
        (lambda p: Adam(p, betas=(0.9, -0.1)), r"betas\[1\]"),
        (lambda p: Adam(p, betas=(0.9,)), "betas"),
        (lambda p: Adam(p, eps=0.0), "eps"),
        (lambda p: AdamW(p, eps=-1e-8), "eps"),
        (lambda p: AdamW(p, lazy="yes"), "lazy"),
        (lambda p: Adam({"w": np.zeros(3, dtype=np.int64)}), r"params\['w'\]"),
        (lambda p: Adam([np.zeros(3)]), "params"),
    ],
)
def test_constructor_validation_names_the_argument(make, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        make(make_params())


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
@pytest.mark.parametrize(
    ("grad", "key", "match"),
    [
        (np.zeros((8, 3)), "missing.weight", "unknown parameter key 'missing.weight'"),
        (np.zeros((3, 8)), "weight_ih_l0", r"grads\['weight_ih_l0'\]: expected shape \(8, 3\)"),
        (np.zeros(8, dtype=np.int32), "bias_ih_l0", r"grads\['bias_ih_l0'\]"),
        ([0.0] * 8, "bias_ih_l0", r"grads\['bias_ih_l0'\]"),
        (sparse([1], [[1.0, 2.0, 3.0]], 10), "embedding.weight", r"grads\['embedding.weight'\].*num_rows"),
        (sparse([1], [[1.0, 2.0]], 9), "embedding.weight", r"grads\['embedding.weight'\].*values"),
        (sparse([9], [[1.0, 2.0, 3.0]], 9), "embedding.weight", r"grads\['embedding.weight'\].*indices"),
        (sparse([3, 3], np.ones((2, 3)), 9), "embedding.weight", r"grads\['embedding.weight'\].*unique"),
        (sparse([0], [[1.0, 2.0]], 2), "bias_ih_l0", r"grads\['bias_ih_l0'\].*2-D"),
    ],
)
def test_bad_gradients_name_the_key_and_change_nothing(cls, grad, key, match):
    params = make_params()
    before = {k: v.copy() for k, v in params.items()}
    opt = cls(params, lr=0.1)
    good = make_grads(np.random.default_rng(0))  # valid gradients first: still nothing may change
    with pytest.raises(ValueError, match=match):
        opt.step(good | {key: grad})
    for k in SHAPES:
        np.testing.assert_array_equal(params[k], before[k])
    assert opt.state_dict()["state"] == {}


def test_negative_lr_override_is_rejected():
    opt = Adam(make_params())
    with pytest.raises(ValueError, match="^lr"):
        opt.step(make_grads(np.random.default_rng(0)), lr=-0.1)


SPARSE_ADAM_CASES = [(Adam, {}), (Adam, {"betas": (0.8, 0.99), "eps": 1e-6}), (Adam, {"weight_decay": 0.1}),
                     (AdamW, {"weight_decay": 0.1})]


def sparse_adam_both_ways(cls, kwargs, dtype):
    """Parameters and moments after four sparse steps, with the C row update (checked to have run) and with
    the NumPy code: [(p, m, v) in C, (p, m, v) in NumPy], and the starting parameters."""
    rng = np.random.default_rng(7)
    w0 = rng.standard_normal((40, 17)).astype(dtype)
    grads = []
    for rows in ([3, 5, 39], [0, 1, 2, 3, 5, 8, 13, 21, 34], [], [5]):
        idx = np.array(rows, dtype=np.int64)
        grads.append(SparseRows(idx, rng.standard_normal((idx.size, 17)).astype(dtype), 40))
    results, took = [], []
    in_c = optim_module._fused_adam_rows

    def counted(*args):
        took.append(in_c(*args))
        return took[-1]

    try:
        for use_c in (True, False):
            optim_module._fused_adam_rows = counted if use_c else (lambda *args: False)
            params = {"embedding.weight": w0.copy()}
            opt = cls(params, **kwargs)
            for k, g in enumerate(grads):
                opt.step({"embedding.weight": g}, lr=1e-2 / (k + 1))
            state = opt.state_dict()["state"]["embedding.weight"]
            results.append((params["embedding.weight"], state["exp_avg"], state["exp_avg_sq"]))
    finally:
        optim_module._fused_adam_rows = in_c
    assert took and all(took), "the C row update did not run"
    return results, w0


@pytest.mark.parametrize(("cls", "kwargs"), SPARSE_ADAM_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_adam_in_c_gives_the_numpy_codes_bits(cls, kwargs, dtype):
    """With the extension built, the sparse rows' update is one C pass per row (optim._fused_adam_rows); it
    performs NumPy's operations in NumPy's order with the same constants, so parameters and moments agree
    bit for bit with the NumPy code's, over several steps and learning rates. (Every float32 build:
    tests/nn/test_fused.py runs this in each.)"""
    from unrolled.nn import fused

    if not fused.ACTIVE:
        pytest.skip("the C extension is not built")
    (fast_all, slow_all), w0 = sparse_adam_both_ways(cls, kwargs, dtype)
    for fast, slow in zip(fast_all, slow_all):
        assert fast.dtype == dtype
        np.testing.assert_array_equal(fast, slow)
    assert not np.array_equal(fast_all[0], w0)  # the rows moved
