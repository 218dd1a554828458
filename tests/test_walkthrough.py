"""The walkthrough of the canonical example: every number against an independent float64 computation
(plain NumPy formulas written here, and PyTorch autograd), the JSON layout, weights files, the text."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from unrolled import walkthrough as wk
from unrolled.nn.cells import CELLS as CELL_REGISTRY
from unrolled.walkthrough import (
    DEFAULT_SEED,
    Walkthrough,
    default_weights,
    load_weights,
    render_text,
    run_walkthrough,
    save_weights,
    weights_to_json,
)

CELLS = ("rnn", "gru", "lstm")

GATES = {"rnn": ("h",), "gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")}
WORDS = ["I", "love", "this"]
X = np.array([[0.1, 0.2, 0.3, 0.4], [0.9, 0.1, 0.4, 0.7], [0.3, 0.5, 0.2, 0.1]])  # DESIGN.md §1
Y = np.array([1.0, 0.0])  # positive, in the order (positive, negative)
H, C = 4, 2
ATOL = 1e-12


def documented_default_weights(cell: str, seed: int = 0) -> dict[str, np.ndarray]:
    """The recipe of the module docstring, written out independently."""
    g = len(GATES[cell])
    rng = np.random.default_rng(seed)
    shapes = [
        ("weight_ih", (g * H, 4)),
        ("weight_hh", (g * H, H)),
        ("bias_ih", (g * H,)),
        ("bias_hh", (g * H,)),
        ("head_weight", (C, H)),
        ("head_bias", (C,)),
    ]
    return {name: np.round(rng.uniform(-0.5, 0.5, size=shape), 2) for name, shape in shapes}


def custom_weights(cell: str) -> dict[str, np.ndarray]:
    """A teacher's weights: not rounded, larger scale, a different generator."""
    g = len(GATES[cell])
    rng = np.random.default_rng(12345)
    return {
        "weight_ih": rng.normal(0, 0.8, (g * H, 4)),
        "weight_hh": rng.normal(0, 0.8, (g * H, H)),
        "bias_ih": rng.normal(0, 0.3, (g * H,)),
        "bias_hh": rng.normal(0, 0.3, (g * H,)),
        "head_weight": rng.normal(0, 0.8, (C, H)),
        "head_bias": rng.normal(0, 0.3, (C,)),
    }


# ------------------------------------------------------------------------------------------------------------
# an independent reference: the equations with plain NumPy, one vector at a time


def sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def ref_step(cell, x, h, c, w):
    """Forward of one step; returns a dict of everything the walkthrough records for it."""
    Wih, Whh, bih, bhh = w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"]
    xw = Wih @ x + bih
    hw = Whh @ h + bhh
    out = {"input_projection": xw, "hidden_projection": hw}
    if cell == "rnn":
        a = xw + hw
        out |= {"preactivation": a, "activations": {}, "h": np.tanh(a)}
    elif cell == "gru":
        r = sig(xw[:H] + hw[:H])
        z = sig(xw[H : 2 * H] + hw[H : 2 * H])
        a_n = xw[2 * H :] + r * hw[2 * H :]
        n = np.tanh(a_n)
        out |= {
            "preactivation": np.concatenate([xw[:H] + hw[:H], xw[H : 2 * H] + hw[H : 2 * H], a_n]),
            "activations": {"r": r, "z": z, "n": n, "hn": hw[2 * H :]},
            "h": (1 - z) * n + z * h,
        }
    else:
        a = xw + hw
        i, f, g, o = sig(a[:H]), sig(a[H : 2 * H]), np.tanh(a[2 * H : 3 * H]), sig(a[3 * H :])
        c_new = f * c + i * g
        out |= {
            "preactivation": a,
            "activations": {"i": i, "f": f, "g": g, "o": o, "tanh_c": np.tanh(c_new)},
            "h": o * np.tanh(c_new),
            "c": c_new,
        }
    return out


def ref_softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def ref_forward(cell, w):
    h, c = np.zeros(H), np.zeros(H)
    steps = []
    for t in range(3):
        s = ref_step(cell, X[t], h, c, w)
        rec = {"t": t + 1, "word": WORDS[t], "x": X[t], "h_prev": h}
        if cell == "lstm":
            rec["c_prev"] = c
        rec |= s
        logits = w["head_weight"] @ s["h"] + w["head_bias"]
        rec |= {"head_logits": logits, "head_probs": ref_softmax(logits)}
        steps.append(rec)
        h = s["h"]
        c = s.get("c", c)
    logits = w["head_weight"] @ h + w["head_bias"]
    p = ref_softmax(logits)
    return steps, logits, p, -np.log(p[0])


def ref_step_backward(cell, dh, dc, step, w):
    """BPTT through one step; returns (record, dh_prev, dc_prev)."""
    Wih, Whh = w["weight_ih"], w["weight_hh"]
    x, h_prev = step["x"], step["h_prev"]
    act = step["activations"]
    if cell == "rnn":
        da = dh * (1 - step["h"] ** 2)
        dxw = dhw = da
        dh_prev = Whh.T @ da
        dc_prev = None
    elif cell == "gru":
        r, z, n, hn = act["r"], act["z"], act["n"], act["hn"]
        dn = dh * (1 - z)
        dz = dh * (h_prev - n)
        da_n = dn * (1 - n**2)
        da_r = da_n * hn * r * (1 - r)
        da_z = dz * z * (1 - z)
        dxw = np.concatenate([da_r, da_z, da_n])
        dhw = np.concatenate([da_r, da_z, da_n * r])
        dh_prev = Whh.T @ dhw + dh * z
        dc_prev = None
    else:
        i, f, g, o, tc = act["i"], act["f"], act["g"], act["o"], act["tanh_c"]
        dct = dc + dh * o * (1 - tc**2)
        dxw = dhw = np.concatenate(
            [dct * g * i * (1 - i), dct * step["c_prev"] * f * (1 - f), dct * i * (1 - g**2), dh * tc * o * (1 - o)]
        )
        dh_prev = Whh.T @ dxw
        dc_prev = dct * f
    rec = {"t": step["t"], "word": step["word"], "dh": dh}
    if cell == "lstm":
        rec["dc"] = dc
    rec |= {"dpreactivation": dxw, "dx": Wih.T @ dxw, "dh_prev": dh_prev}
    if cell == "lstm":
        rec["dc_prev"] = dc_prev
    rec["grads"] = {
        "weight_ih": np.outer(dxw, x),
        "weight_hh": np.outer(dhw, h_prev),
        "bias_ih": dxw,
        "bias_hh": dhw,
    }
    return rec, dh_prev, dc_prev


def reference(cell, w, lr, seed):
    """The whole walkthrough, in the documented JSON layout, computed from the equations."""
    steps, logits, p, loss = ref_forward(cell, w)
    dlogits = p - Y
    head_grads = {"head_weight": np.outer(dlogits, steps[-1]["h"]), "head_bias": dlogits}
    dh = w["head_weight"].T @ dlogits
    dh_last, dc = dh, np.zeros(H)
    bsteps = []
    for step in reversed(steps):
        rec, dh, dc = ref_step_backward(cell, dh, dc, step, w)
        bsteps.append(rec)
    totals = {k: sum(b["grads"][k] for b in bsteps) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    totals |= head_grads
    new_w = {k: w[k] - lr * totals[k] for k in w}
    _, logits_after, p_after, loss_after = ref_forward(cell, new_w)
    return {
        "schema_version": 1,
        "cell": cell,
        "gate_names": list(GATES[cell]),
        "words": WORDS,
        "classes": ["positive", "negative"],
        "target": Y,
        "seed": seed,
        "sizes": {"steps": 3, "input": 4, "hidden": H, "gates": len(GATES[cell]), "classes": C},
        "weights": w,
        "forward": steps,
        "loss": {"logits": logits, "probs": p, "target": Y, "target_index": 0, "value": loss},
        "backward": {
            "dlogits": dlogits,
            "dh_last": dh_last,
            "head_grads": head_grads,
            "steps": bsteps,
            "totals": totals,
        },
        "update": {
            "lr": lr,
            "weights": new_w,
            "loss_before": loss,
            "loss_after": loss_after,
            "logits_after": logits_after,
            "probs_after": p_after,
        },
    }


def assert_tree_close(got, want, path="$"):
    """Same keys everywhere (so every number the walkthrough records is compared), numbers to 1e-12."""
    if isinstance(want, dict):
        assert isinstance(got, dict), path
        assert set(got) == set(want), f"{path}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            assert_tree_close(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, np.ndarray):
        np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=ATOL, err_msg=path)
    elif isinstance(want, list) and want and isinstance(want[0], dict):
        assert len(got) == len(want), path
        for k, (g, w) in enumerate(zip(got, want)):
            assert_tree_close(g, w, f"{path}[{k}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert isinstance(got, float), path
        assert abs(got - want) <= ATOL, f"{path}: {got} != {want}"
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


# ------------------------------------------------------------------------------------------------------------
# every number


@pytest.mark.parametrize("cell", CELLS)
def test_default_weights_follow_the_documented_recipe(cell):
    got = default_weights(cell)
    want = documented_default_weights(cell, DEFAULT_SEED)
    assert list(got) == list(want)
    for k in want:
        assert got[k].dtype == np.float64
        np.testing.assert_array_equal(got[k], want[k])
        assert (np.abs(got[k]) <= 0.5).all()
    assert not np.array_equal(default_weights(cell, 1)["weight_ih"], got["weight_ih"])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("kind", ["default", "custom"])
def test_every_number_matches_the_equations(cell, kind):
    if kind == "default":
        wt = run_walkthrough(cell=cell)
        ref = reference(cell, documented_default_weights(cell), 0.5, DEFAULT_SEED)
    else:
        w = custom_weights(cell)
        wt = run_walkthrough(cell=cell, weights=w, lr=0.3)
        ref = reference(cell, w, 0.3, None)
    assert_tree_close(wt.to_json(), ref)


def test_the_rnn_walk_reads_as_the_textbook_equations():
    """The seed's formulas on the dataclass tree itself, spelled out once more for the vanilla cell."""
    wt = run_walkthrough()
    w = wt.weights
    h = np.zeros(H)
    for s, x in zip(wt.forward, X):
        pre = x @ w["weight_ih"].T + w["bias_ih"] + h @ w["weight_hh"].T + w["bias_hh"]
        np.testing.assert_allclose(s.preactivation, pre, rtol=0, atol=ATOL)
        np.testing.assert_allclose(s.h, np.tanh(pre), rtol=0, atol=ATOL)
        h = np.tanh(pre)
    b = wt.backward
    np.testing.assert_allclose(b.dlogits, wt.loss.probs - Y, rtol=0, atol=ATOL)
    np.testing.assert_allclose(b.dh_last, b.dlogits @ w["head_weight"], rtol=0, atol=ATOL)
    for s, f in zip(b.steps, reversed(wt.forward)):
        np.testing.assert_allclose(s.dpreactivation, s.dh * (1 - f.h**2), rtol=0, atol=ATOL)
        np.testing.assert_allclose(s.dh_prev, s.dpreactivation @ w["weight_hh"], rtol=0, atol=ATOL)
    assert [s.t for s in b.steps] == [3, 2, 1]
    np.testing.assert_array_equal(b.steps[-1].grads["weight_hh"], 0.0)  # h_0 = 0


@pytest.mark.parametrize("cell", CELLS)
def test_step_contributions_sum_to_the_totals(cell):
    wt = run_walkthrough(cell=cell)
    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        parts = [s.grads[k] for s in wt.backward.steps]
        np.testing.assert_allclose(sum(parts), wt.backward.totals[k], rtol=0, atol=1e-15)
        assert not np.allclose(parts[0], wt.backward.totals[k])  # more than one step contributes
    assert set(wt.backward.totals) == set(wk.WEIGHT_NAMES)


@pytest.mark.parametrize("cell", CELLS)
def test_one_sgd_step_lowers_the_loss(cell):
    wt = run_walkthrough(cell=cell)
    u = wt.update
    assert u.loss_before == wt.loss.value
    assert u.loss_after < u.loss_before
    assert u.probs_after[0] > wt.loss.probs[0]
    for k in wk.WEIGHT_NAMES:
        np.testing.assert_allclose(u.weights[k], wt.weights[k] - 0.5 * wt.backward.totals[k], rtol=0, atol=ATOL)


def test_the_numbers_come_from_the_engine(monkeypatch):
    calls = {}

    def spy(name):
        real = getattr(wk, name)

        def wrapper(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return real(*args, **kwargs)

        monkeypatch.setattr(wk, name, wrapper)

    kernels = []
    real_step = wk.cell_step_forward
    monkeypatch.setattr(wk, "cell_step_forward", lambda kernel, *a: kernels.append(kernel) or real_step(kernel, *a))
    for name in (
        "cell_step_forward",
        "step_backward",
        "linear_forward",
        "linear_backward",
        "softmax_cross_entropy_forward",
        "softmax_cross_entropy_backward",
    ):
        spy(name)
    for cell in CELLS:
        run_walkthrough(cell=cell)
        assert calls.pop("cell_step_forward") == 6  # 3 steps, before and after the update
        assert calls.pop("step_backward") == 3
        assert kernels == [CELL_REGISTRY[cell].kernel("tanh")] * 6  # the registry's kernel for the cell
        kernels.clear()
    assert calls["softmax_cross_entropy_forward"] == 6 and calls["softmax_cross_entropy_backward"] == 3
    assert calls["linear_backward"] == 3 and calls["linear_forward"] > 0


# ------------------------------------------------------------------------------------------------------------
# PyTorch autograd, float64


def torch_reference(cell, w, lr):
    torch = pytest.importorskip("torch")
    f64 = torch.float64
    t = lambda a: torch.tensor(np.asarray(a), dtype=f64)  # noqa: E731
    Module = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
    Cell = {"rnn": torch.nn.RNNCell, "gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}[cell]
    rnn = Module(4, H, batch_first=True, dtype=f64)
    head = torch.nn.Linear(H, C, dtype=f64)
    with torch.no_grad():
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(rnn, f"{k}_l0").copy_(t(w[k]))
        head.weight.copy_(t(w["head_weight"]))
        head.bias.copy_(t(w["head_bias"]))
    x = t(X)[None]  # (1, T, D)
    out, _ = rnn(x)
    logits = head(out[:, -1])
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0]))
    loss.backward()
    grads = {k: getattr(rnn, f"{k}_l0").grad.numpy() for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    grads |= {"head_weight": head.weight.grad.numpy(), "head_bias": head.bias.grad.numpy()}

    # Per-step contributions: one cell with its own copy of the weights per step; its .grad is that step's part.
    cells = [Cell(4, H, dtype=f64) for _ in range(3)]
    with torch.no_grad():
        for c in cells:
            for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(c, k).copy_(t(w[k]))
    h = torch.zeros(1, H, dtype=f64)
    state = (h, torch.zeros(1, H, dtype=f64)) if cell == "lstm" else h
    hs = []
    for k, c in enumerate(cells):
        state = c(t(X[k])[None], state)
        h_t = state[0] if cell == "lstm" else state
        h_t.retain_grad()
        hs.append(h_t)
    logits2 = torch.nn.functional.linear(hs[-1], t(w["head_weight"]), t(w["head_bias"]))  # not the head's leaves
    loss2 = torch.nn.functional.cross_entropy(logits2, torch.tensor([0]))
    loss2.backward()
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    step_grads = [{k: getattr(c, k).grad.numpy() for k in names} for c in cells]
    dhs = [h_t.grad.numpy()[0] for h_t in hs]

    opt = torch.optim.SGD(list(rnn.parameters()) + list(head.parameters()), lr=lr)
    opt.step()
    with torch.no_grad():
        out, _ = rnn(x)
        loss_after = torch.nn.functional.cross_entropy(head(out[:, -1]), torch.tensor([0])).item()
    return {
        "loss": loss.item(),
        "probs": torch.softmax(logits, -1).detach().numpy()[0],
        "grads": grads,
        "step_grads": step_grads,
        "dhs": dhs,
        "loss_after": loss_after,
        "new_weights": {
            **{k: getattr(rnn, f"{k}_l0").detach().numpy() for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
            "head_weight": head.weight.detach().numpy(),
            "head_bias": head.bias.detach().numpy(),
        },
    }


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("kind", ["default", "custom"])
def test_matches_pytorch_autograd(cell, kind):
    w = default_weights(cell) if kind == "default" else custom_weights(cell)
    ref = torch_reference(cell, w, 0.5)
    wt = run_walkthrough(cell=cell, weights=w)
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=ATOL)  # noqa: E731
    assert abs(wt.loss.value - ref["loss"]) <= ATOL
    close(wt.loss.probs, ref["probs"])
    for k in wk.WEIGHT_NAMES:
        close(wt.backward.totals[k], ref["grads"][k])
        close(wt.update.weights[k], ref["new_weights"][k])
    for s in wt.backward.steps:
        close(s.dh, ref["dhs"][s.t - 1])
        for k, g in ref["step_grads"][s.t - 1].items():
            close(s.grads[k], g)
    assert abs(wt.update.loss_after - ref["loss_after"]) <= ATOL


# ------------------------------------------------------------------------------------------------------------
# the record and its JSON


def test_the_tree_is_frozen_and_read_only():
    wt = run_walkthrough()
    with pytest.raises(dataclasses.FrozenInstanceError):
        wt.cell = "gru"  # type: ignore[misc]
    with pytest.raises(ValueError):
        wt.forward[0].h[0] = 1.0
    with pytest.raises(ValueError):
        wt.backward.totals["weight_ih"][0, 0] = 1.0
    with pytest.raises(TypeError):
        wt.weights["weight_ih"] = np.zeros((4, 4))  # type: ignore[index]


def _leaves(tree, path="$"):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(tree, list):
        for k, v in enumerate(tree):
            yield from _leaves(v, f"{path}[{k}]")
    else:
        yield path, tree


@pytest.mark.parametrize("cell", CELLS)
def test_json_round_trips_with_the_documented_keys(cell):
    wt = run_walkthrough(cell=cell)
    data = wt.to_json()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data
    assert data["schema_version"] == wk.SCHEMA_VERSION == 1
    assert list(data) == [
        "schema_version", "cell", "gate_names", "words", "classes", "target", "seed", "sizes",
        "weights", "forward", "loss", "backward", "update",
    ]  # fmt: skip
    lstm = ["c_prev", "c"] if cell == "lstm" else []
    assert set(data["forward"][0]) == {
        "t", "word", "x", "h_prev", "input_projection", "hidden_projection", "preactivation", "activations",
        "h", "head_logits", "head_probs", *lstm,
    }  # fmt: skip
    assert set(data["backward"]) == {"dlogits", "dh_last", "head_grads", "steps", "totals"}
    lstm = ["dc", "dc_prev"] if cell == "lstm" else []
    assert set(data["backward"]["steps"][0]) == {"t", "word", "dh", "dpreactivation", "dx", "dh_prev", "grads", *lstm}
    assert set(data["update"]) == {"lr", "weights", "loss_before", "loss_after", "logits_after", "probs_after"}
    assert [s["t"] for s in data["forward"]] == [1, 2, 3]
    assert [s["t"] for s in data["backward"]["steps"]] == [3, 2, 1]
    ints = re.compile(r"\$\.(schema_version|seed|sizes\.\w+|loss\.target_index|(forward|backward\.steps)\[\d\]\.t)$")
    for path, v in _leaves(data):
        if isinstance(v, str):
            continue
        if ints.match(path):
            assert type(v) is int, path
        else:
            assert type(v) is float, path


# ------------------------------------------------------------------------------------------------------------
# weights files


@pytest.mark.parametrize("cell", CELLS)
def test_weights_template_round_trips(tmp_path, cell):
    path = tmp_path / "w.json"
    save_weights(path, default_weights(cell), cell=cell)
    data = json.loads(path.read_text())
    assert data["cell"] == cell and "comment" in data
    loaded = load_weights(path, cell=cell)
    for k, v in default_weights(cell).items():
        np.testing.assert_array_equal(loaded[k], v)
        assert loaded[k].dtype == np.float64
    assert json.loads(json.dumps(weights_to_json(default_weights(cell), cell))) == data
    wt = run_walkthrough(cell=cell, weights=loaded)
    assert wt.seed is None
    assert wt.loss.value == run_walkthrough(cell=cell).loss.value


def _write(tmp_path, data, text=None):
    path = tmp_path / "teacher.json"
    path.write_text(text if text is not None else json.dumps(data))
    return path


def _template():
    return weights_to_json(default_weights("rnn"), "rnn")


@pytest.mark.parametrize(
    "edit, key, words",
    [
        (lambda d: d.pop("weight_hh"), "weight_hh", "missing"),
        (lambda d: d.__setitem__("weight_ih", d["weight_ih"][:3]), "weight_ih", "shape (4, 4)"),
        (lambda d: d.__setitem__("bias_ih", [0.1, 0.2]), "bias_ih", "shape (4,)"),
        (lambda d: d.__setitem__("head_weight", [[1, 2, 3, 4], [1, 2, 3]]), "head_weight", "shape (2, 4)"),
        (lambda d: d["head_bias"].__setitem__(1, "x"), "head_bias[1]", "number"),
        (lambda d: d["weight_hh"][2].__setitem__(3, True), "weight_hh[2][3]", "number"),
        (lambda d: d["bias_hh"].__setitem__(0, None), "bias_hh", "shape (4,)"),
        (lambda d: d.__setitem__("bias_hh", "zeros"), "bias_hh", "shape (4,)"),
        (lambda d: d["bias_ih"].__setitem__(0, float("nan")), "bias_ih[0]", "finite"),
        (lambda d: d.__setitem__("weight_xh", []), "weight_xh", "unexpected"),
        (lambda d: d.__setitem__("cell", "gru"), "cell", "'gru'"),
    ],
)
def test_weights_file_errors_name_the_file_and_key(tmp_path, edit, key, words):
    data = _template()
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(ValueError) as e:
        load_weights(path, cell="rnn")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: {key}: "), msg
    assert words in msg, msg


def test_a_gru_file_needs_gru_shapes(tmp_path):
    data = weights_to_json(default_weights("rnn"), "rnn")
    del data["cell"]
    path = _write(tmp_path, data)
    want = r"teacher\.json: weight_ih: expected shape \(12, 4\) for the gru cell, got \(4, 4\)"
    with pytest.raises(ValueError, match=want):
        load_weights(path, cell="gru")


@pytest.mark.parametrize(
    "text, words",
    [("{not json", "not valid JSON"), ("[1, 2]", "expected a JSON object"), (None, "cannot read")],
)
def test_unreadable_weights_files_are_one_line_errors(tmp_path, text, words):
    path = _write(tmp_path, None, text) if text is not None else tmp_path / "missing.json"
    with pytest.raises(ValueError) as e:
        load_weights(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path)) and words in msg, msg


def test_weights_given_as_arrays_are_checked():
    w = default_weights("rnn")
    w["weight_hh"] = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"^weights: weight_hh: expected shape \(4, 4\)"):
        run_walkthrough(weights=w)
    w = default_weights("rnn")
    w["bias_ih"] = np.array([0.0, np.inf, 0.0, 0.0])
    with pytest.raises(ValueError, match="^weights: bias_ih: contains NaN or infinity"):
        run_walkthrough(weights=w)
    with pytest.raises(ValueError, match="^weights: weight_ih: missing"):
        run_walkthrough(weights={k: v for k, v in default_weights("rnn").items() if k != "weight_ih"})


@pytest.mark.parametrize(
    "kwargs, words",
    [({"cell": "elman"}, "cell"), ({"lr": 0}, "lr"), ({"lr": float("nan")}, "lr"), ({"seed": -1}, "seed")],
)
def test_bad_arguments(kwargs, words):
    with pytest.raises(ValueError, match=f"^{words}: "):
        run_walkthrough(**kwargs)


def test_lr_is_used():
    a, b = run_walkthrough(lr=0.5), run_walkthrough(lr=0.1)
    np.testing.assert_array_equal(a.backward.totals["weight_ih"], b.backward.totals["weight_ih"])
    np.testing.assert_allclose(
        b.update.weights["weight_ih"], b.weights["weight_ih"] - 0.1 * b.backward.totals["weight_ih"], atol=ATOL
    )
    assert a.update.loss_after != b.update.loss_after


# ------------------------------------------------------------------------------------------------------------
# the text


@pytest.mark.parametrize("cell", CELLS)
def test_render_text_has_every_section_and_word(cell, capsys):
    wt = run_walkthrough(cell=cell)
    text = render_text(wt)
    assert capsys.readouterr().out == ""  # the library never prints
    lines = text.splitlines()
    positions = [lines.index(h) for h in ("Forward", "Loss", "Backward (BPTT)", "Update", "Summary")]
    assert positions == sorted(positions)
    for word in WORDS:
        assert f'"{word}"' in text
    summary = lines[positions[-1] + 2 : positions[-1] + 5]
    assert [row.split()[:2] for row in summary] == [["1", "I"], ["2", "love"], ["3", "this"]]
    for g in GATES[cell] if cell != "rnn" else ():
        assert f"{g}_1 = " in text and f"∂L/∂a_{g}" in text
    if cell == "lstm":
        assert "c_1 = f_1 ⊙ c_0 + i_1 ⊙ g_1" in text and "∂L/∂c_2" in text
    if cell == "rnn":
        assert 'h_2 mixes the memory of "I" with "love"' in text
        assert "∂L/∂a_3 = ∂L/∂h_3 ⊙ (1 − h_3²)" in text


@pytest.mark.parametrize("precision", [2, 4, 6])
def test_render_text_uses_the_requested_precision(precision):
    wt = run_walkthrough()
    text = render_text(wt, precision=precision)
    for bracket in re.findall(r"\[([^\]]*)\]", text):
        for token in bracket.split():
            if re.fullmatch(r"-?\d+\.\d+", token):
                assert len(token.split(".")[1]) == precision, token
    assert f"{wt.loss.value:.{precision}f}" in text
    assert f"{wt.forward[1].h[1]:.{precision}f}" in text
    assert f"{wt.backward.totals['weight_hh'][2, 0]:.{precision}f}" in text
    if precision != 6:
        assert f"{wt.forward[1].h[1]:.6f}" not in text


def test_render_text_aligns_the_vectors():
    text = render_text(run_walkthrough(cell="gru"))
    starts = {line.index("[") for line in text.splitlines() if line.startswith("    ") and "[" in line}
    assert len(starts) == 1


def test_render_text_checks_its_arguments():
    with pytest.raises(ValueError, match="precision"):
        render_text(run_walkthrough(), precision=-1)
    with pytest.raises(ValueError, match="walkthrough"):
        render_text({"cell": "rnn"})  # type: ignore[arg-type]
    assert isinstance(run_walkthrough(), Walkthrough)
