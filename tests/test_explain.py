"""explain.py: per-step traces of a classifier, against predict_proba, finite differences and torch autograd;
the recorded carried gradients of nn/recurrent_layer.py and nn/time_loop.py (dstates_out)."""

from __future__ import annotations

import copy
import json
import time

import numpy as np
import pytest

import unrolled.explain as explain_module
from tests.gradcheck import numerical_gradient, rel_error
from unrolled.explain import TRACE_SCHEMA, NotAClassifierError, Trace, explain, render_text
from unrolled.models.classifier import NotFittedError, RNNClassifier
from unrolled.nn.recurrent_layer import RecurrentConfig, init_recurrent_params, recurrent_backward, recurrent_forward

POSITIVE = ["i love this", "great movie", "what a joy", "so good", "a wonderful film", "truly great"]
NEGATIVE = ["i hate this", "awful movie", "what a bore", "so bad", "a dreadful film", "truly awful"]
TEXTS = POSITIVE + NEGATIVE
LABELS = ["pos"] * len(POSITIVE) + ["neg"] * len(NEGATIVE)
WORDS = sorted(set(" ".join(TEXTS).split()))
TINY = dict(embedding_dim=4, hidden_size=5, batch_size=4, lr=0.02, epochs=15, patience=None)

ARCHITECTURES = {
    "rnn": dict(cell="rnn"),
    "gru-max": dict(cell="gru", pooling="max"),
    "lstm": dict(cell="lstm"),
    "gru-bi": dict(cell="gru", bidirectional=True),
    "lstm-bi-2layer-mean": dict(cell="lstm", bidirectional=True, num_layers=2, pooling="mean"),
    "rnn-bi-max": dict(cell="rnn", bidirectional=True, pooling="max"),
}

_fitted: dict[str, RNNClassifier] = {}


def fitted(name: str) -> RNNClassifier:
    """A tiny classifier trained on the toy set (cached: fitting takes a moment)."""
    if name not in _fitted:
        _fitted[name] = RNNClassifier(**TINY, **ARCHITECTURES[name]).fit(TEXTS, LABELS)
    return _fitted[name]


def as_float64(model: RNNClassifier) -> RNNClassifier:
    double = copy.copy(model)
    double.params_ = {name: value.astype(np.float64) for name, value in model.params_.items()}
    return double


def sentence(n: int, seed: int = 0) -> str:
    return " ".join(np.random.default_rng(seed).choice(WORDS, n))


# --- prefix probabilities ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_last_prefix_is_predict_proba_and_every_prefix_is_its_own_sentence(name):
    model = fitted(name)
    text = "what a wonderful film , i love this"
    trace = explain(model, text)
    assert trace.prefix_method == "batch"
    proba = model.predict_proba([text])[0]
    assert np.max(np.abs(trace.prefix_probabilities[-1] - proba)) <= 1e-6
    assert np.max(np.abs(trace.probabilities - proba)) <= 1e-12  # the very computation predict_proba does
    assert trace.predicted == int(np.argmax(proba)) and trace.predicted_label == str(model.classes_[trace.predicted])
    # Row t is P(class | the first t tokens) exactly as predict_proba sees that shorter sentence.
    prefixes = [" ".join(trace.tokens[: t + 1]) for t in range(len(trace.tokens))]
    np.testing.assert_allclose(trace.prefix_probabilities, model.predict_proba(prefixes), atol=1e-6)


def test_prefixes_run_as_one_padded_batch(monkeypatch):
    calls = []
    original = explain_module.classifier_forward

    def counting(params, config, ids, **kwargs):
        calls.append((ids.shape, kwargs.get("mask")))
        return original(params, config, ids, **kwargs)

    monkeypatch.setattr(explain_module, "classifier_forward", counting)
    explain(fitted("gru-bi"), "i love this movie")
    prefix_calls = [(shape, mask) for shape, mask in calls if shape[0] > 1]
    assert len(prefix_calls) == 1
    shape, mask = prefix_calls[0]
    assert shape == (4, 4)
    np.testing.assert_array_equal(mask, np.tri(4, dtype=bool))  # prefix t has length t


@pytest.mark.parametrize("name", ["rnn", "lstm-bi-2layer-mean"])
def test_gradients_come_from_the_networks_own_backward(monkeypatch, name):
    """explain differentiates through classifier_backward (the function training runs), for its label."""
    calls = []
    original = explain_module.classifier_backward

    def spy(cache, **kwargs):
        calls.append(kwargs)
        return original(cache, **kwargs)

    monkeypatch.setattr(explain_module, "classifier_backward", spy)
    model = fitted(name)
    trace = explain(model, "i love this movie", label=model.classes_[0])
    assert len(calls) == 1 and calls[0]["targets"].tolist() == [0]
    record = calls[0]["record"]
    np.testing.assert_array_equal(trace.grad_x, np.linalg.norm(record.dx[0].astype(np.float64), axis=1))
    assert trace.loss == record.loss


def test_delta_is_the_change_in_the_focus_class():
    model = fitted("gru-max")
    trace = explain(model, "so bad but a wonderful film")
    focus = trace.prefix_probabilities[:, trace.focus]
    assert trace.focus == trace.predicted
    np.testing.assert_allclose(trace.delta, np.diff(np.concatenate([[trace.prior[trace.focus]], focus])))
    np.testing.assert_allclose(trace.prior, explain_module.softmax(model.params_["head.bias"].astype(float)))
    other = 1 - trace.predicted
    chosen = explain(model, "so bad but a wonderful film", focus=model.classes_[other])
    assert chosen.focus == other and chosen.label == trace.label
    np.testing.assert_allclose(chosen.delta, -trace.delta, atol=1e-12)  # two classes: P(other) = 1 - P(focus)


@pytest.mark.parametrize("name", ["rnn", "gru-max", "lstm", "lstm-bi-2layer-mean"])
def test_long_texts_read_prefixes_from_the_states_or_sample_them(name):
    model = fitted(name)
    text = sentence(23, seed=1)
    exact = explain(model, text)
    capped = explain(model, text, max_prefixes=6)
    assert exact.prefix_method == "batch"
    if model.bidirectional:
        assert capped.prefix_method == "sampled"
        computed = ~np.isnan(capped.prefix_probabilities[:, 0])
        assert computed[-1] and computed.sum() == 6
        np.testing.assert_allclose(
            capped.prefix_probabilities[computed], exact.prefix_probabilities[computed], atol=1e-6
        )
        assert any("prefix probabilities at 6 evenly spaced steps of 23" in note for note in capped.notes)
        assert "-" in render_text(capped)
    else:
        assert capped.prefix_method == "states"  # exact for every unidirectional model
        np.testing.assert_allclose(capped.prefix_probabilities, exact.prefix_probabilities, atol=1e-6)
    np.testing.assert_allclose(capped.grad_h, exact.grad_h)


def test_ten_thousand_tokens_work_in_reasonable_time():
    for name in ("gru-max", "gru-bi"):
        model = fitted(name)
        text = sentence(10_000, seed=2)
        started = time.perf_counter()
        trace = explain(model, text)
        elapsed = time.perf_counter() - started
        assert len(trace.tokens) == 10_000 and trace.h.shape[0] == 10_000
        assert trace.prefix_method == ("sampled" if model.bidirectional else "states")
        assert abs(trace.prefix_probabilities[-1] - model.predict_proba([text])[0]).max() <= 1e-6
        assert elapsed < 60, f"{name}: {elapsed:.1f} s"
        assert len(render_text(trace).splitlines()) > 10_000


# --- gradients -----------------------------------------------------------------------------------------------


def torch_reference(model: RNNClassifier, text: str, label: int):
    """Loss, ‖∂L/∂h_t‖ per (layer, direction), ‖∂L/∂x_t‖ and the gate means, by a hand-unrolled torch
    loop with retain_grad on every hidden state (an independent oracle, in float64)."""
    torch = pytest.importorskip("torch")
    cfg = model.net_config_
    p = {name: torch.from_numpy(np.asarray(value, dtype=np.float64)) for name, value in model.params_.items()}
    ids = model._encode([text])[0]
    t_len, hidden = len(ids), cfg.hidden_size
    dirs = 2 if cfg.bidirectional else 1
    x = p["embedding.weight"][ids].clone().requires_grad_(True)  # (T, E)
    hs, gates = {}, {}
    layer_in = x
    for layer in range(cfg.num_layers):
        outs = []
        for d in range(dirs):
            s = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh, b_ih, b_hh = (p[f"rnn.{n}{s}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            h = torch.zeros(hidden, dtype=torch.float64)
            c = torch.zeros_like(h)
            seq, gate_seq = [None] * t_len, [None] * t_len
            for t in range(t_len) if d == 0 else range(t_len - 1, -1, -1):
                gi, gh = layer_in[t] @ w_ih.T + b_ih, h @ w_hh.T + b_hh
                if cfg.cell == "rnn":
                    h, g = (torch.tanh(gi + gh) if cfg.nonlinearity == "tanh" else torch.relu(gi + gh)), {}
                elif cfg.cell == "gru":
                    r = torch.sigmoid(gi[:hidden] + gh[:hidden])
                    z = torch.sigmoid(gi[hidden : 2 * hidden] + gh[hidden : 2 * hidden])
                    n = torch.tanh(gi[2 * hidden :] + r * gh[2 * hidden :])
                    h, g = (1 - z) * n + z * h, {"reset": r, "update": z}
                else:
                    a = gi + gh
                    i, f = torch.sigmoid(a[:hidden]), torch.sigmoid(a[hidden : 2 * hidden])
                    gg, o = torch.tanh(a[2 * hidden : 3 * hidden]), torch.sigmoid(a[3 * hidden :])
                    c = f * c + i * gg
                    h, g = o * torch.tanh(c), {"input": i, "forget": f, "output": o}
                h.retain_grad()
                seq[t], gate_seq[t] = h, g
            hs[(layer, d)], gates[(layer, d)] = seq, gate_seq
            outs.append(torch.stack(seq))
        layer_in = torch.cat(outs, dim=1)  # (T, dirs·H)
    out = layer_in
    if cfg.pooling == "last":
        features = out[-1] if dirs == 1 else torch.cat([out[-1, :hidden], out[0, hidden:]])
    elif cfg.pooling == "max":
        features = out.max(dim=0).values
    else:
        features = out.mean(dim=0)
    logits = features @ p["head.weight"].T + p["head.bias"]
    loss = torch.nn.functional.cross_entropy(logits[None], torch.tensor([label]))
    loss.backward()
    grad_h = {key: np.array([float(h.grad.norm()) for h in seq]) for key, seq in hs.items()}
    top = cfg.num_layers - 1
    gate_means = {
        name: np.array([[float(gates[(top, d)][t][name].detach().mean()) for d in range(dirs)] for t in range(t_len)])
        for name in gates[(0, 0)][0]
    }
    return float(loss.detach()), grad_h, x.grad.norm(dim=1).numpy(), gate_means


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_gradients_and_gates_match_a_hand_unrolled_torch_loop(name):
    model = as_float64(fitted(name))
    text = "what a joy , truly a wonderful film"
    for label in (None, "neg"):
        trace = explain(model, text, label=label)
        loss, grad_h, grad_x, gates = torch_reference(model, text, trace.label)
        top = model.net_config_.num_layers - 1
        assert trace.loss == pytest.approx(loss, rel=1e-10)
        expected_h = np.stack([grad_h[(top, d)] for d in range(trace.grad_h.shape[1])], axis=1)
        assert rel_error(trace.grad_h, expected_h) < 1e-10
        assert rel_error(trace.grad_x, grad_x) < 1e-10
        assert set(trace.gates) == set(gates)
        for gate, values in gates.items():
            np.testing.assert_allclose(trace.gates[gate], values, rtol=1e-10)


def test_recorded_state_gradients_of_every_layer_match_torch():
    model = as_float64(fitted("lstm-bi-2layer-mean"))
    text = "i hate this awful movie"
    cfg = model.net_config_
    ids = np.array(model._encode([text])[0])
    _, _, cache = explain_module.classifier_forward(
        model.params_, cfg, ids[None], targets=np.array([0])
    )
    record = explain_module.BackwardRecord()
    explain_module.classifier_backward(cache, record=record)
    dstates = record.dstates
    _, grad_h, _, _ = torch_reference(model, text, 0)
    assert set(dstates) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    for key, expected in grad_h.items():
        assert dstates[key].shape == (len(ids), 1, cfg.hidden_size)
        assert rel_error(np.linalg.norm(dstates[key][:, 0], axis=1), expected) < 1e-10


def test_elman_gradients_match_finite_differences():
    """‖∂L/∂h_t‖ against a central difference of L w.r.t. an additive perturbation of h_t, and ‖∂L/∂x_t‖
    against one w.r.t. the word vector, through a plain NumPy loop (no torch needed)."""
    model = as_float64(fitted("rnn"))
    text = "truly a dreadful film"
    trace = explain(model, text)
    p = model.params_
    x = p["embedding.weight"][model._encode([text])[0]].copy()  # (T, E)
    t_len, hidden = x.shape[0], model.hidden_size

    def loss(perturb_step: int, delta: np.ndarray) -> float:
        h = np.zeros(hidden)
        for t in range(t_len):
            pre = x[t] @ p["rnn.weight_ih_l0"].T + p["rnn.bias_ih_l0"] + h @ p["rnn.weight_hh_l0"].T
            h = np.tanh(pre + p["rnn.bias_hh_l0"])
            if t == perturb_step:
                h = h + delta
        logits = h @ p["head.weight"].T + p["head.bias"]
        return float(np.log(np.sum(np.exp(logits - logits.max()))) + logits.max() - logits[trace.label])

    assert loss(-1, 0.0) == pytest.approx(trace.loss, rel=1e-12)
    for t in range(t_len):
        delta = np.zeros(hidden)
        numeric = numerical_gradient(lambda: loss(t, delta), delta)
        assert np.linalg.norm(numeric) == pytest.approx(trace.grad_h[t, 0], rel=1e-6)
        dx = numerical_gradient(lambda: loss(-1, 0.0), x[t])
        assert np.linalg.norm(dx) == pytest.approx(trace.grad_x[t], rel=1e-6)


def test_a_long_sentence_through_an_elman_rnn_shows_vanishing_gradients():
    trace = explain(fitted("rnn"), sentence(60, seed=3))
    g = trace.grad_h[:, 0]
    assert g[0] / g[-1] < 1e-2
    assert g[:10].max() < g[-10:].min()  # decays towards the start
    assert trace.gradient_verdict == "vanishing"
    assert trace.gradient_summary.endswith(": vanishing") and "step 60" in trace.gradient_summary
    assert trace.gradient_summary in render_text(trace)


def test_recording_state_gradients_changes_nothing_else():
    rng = np.random.default_rng(5)
    config = RecurrentConfig("gru", 3, 4, num_layers=2, bidirectional=True)
    params = init_recurrent_params(config, rng, dtype=np.float64)
    x = rng.standard_normal((3, 6, 3))
    mask = np.arange(6)[None, :] < np.array([6, 2, 4])[:, None]
    out, _, cache = recurrent_forward(x, params, config, mask=mask)
    dout = rng.standard_normal(out.shape)
    plain = recurrent_backward(dout, None, cache)
    dstates: dict = {}
    recorded = recurrent_backward(dout, None, cache, dstates_out=dstates)
    np.testing.assert_array_equal(plain[0], recorded[0])
    np.testing.assert_array_equal(plain[1], recorded[1])
    for name in plain[2]:
        np.testing.assert_array_equal(plain[2][name], recorded[2][name])
    assert all(v.shape == (6, 3, 4) for v in dstates.values())
    # A padded step receives no output gradient: its recorded gradient is the one carried from later steps,
    # and no gradient is carried past the last real step of the forward direction.
    assert np.all(dstates[(1, 0)][2:, 1] == 0.0)


# --- JSON, text, bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rnn", "lstm-bi-2layer-mean"])
def test_json_validates_against_the_schema(name):
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(TRACE_SCHEMA)
    for trace in (explain(fitted(name), "i love this xyzzy"), explain(fitted(name), sentence(20), max_prefixes=5)):
        data = json.loads(json.dumps(trace.to_json(), allow_nan=False))
        jsonschema.validate(data, TRACE_SCHEMA)
        t_len, dirs = len(trace.tokens), 2 if trace.model["bidirectional"] else 1
        assert np.array(data["h"]).shape == (t_len, dirs, trace.model["hidden_size"])
        assert np.array(data["x"]).shape == (t_len, trace.model["embedding_dim"])
        assert np.array(data["grad_h"]).shape == (t_len, dirs)
        assert len(data["prefix_probabilities"]) == t_len and data["classes"] == ["neg", "pos"]
    broken = dict(data, prefix_method="guess")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, TRACE_SCHEMA)


def test_render_text_aligns_its_columns_and_shows_unknown_words():
    trace = explain(fitted("gru-bi"), "i love this xyzzy")
    text = render_text(trace, precision=2)
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("t "))
    table = lines[header : header + 1 + len(trace.tokens)]
    assert "P(neg)" in table[0] and "P(pos)" in table[0] and "|dL/dh_t|" in table[0] and "update" in table[0]
    assert "xyzzy (<unk>)" in table[-1]
    # Right-aligned numeric columns end at the same character in every row.
    end = table[0].index("P(neg)") + len("P(neg)")
    assert all(row[end - 4 : end].replace(".", "").strip().isdigit() for row in table[1:])
    assert "1 of 4 tokens are not in the vocabulary" in text
    assert "gradient flow" in lines[-1] or "gradient flow" in lines[-2]
    assert "0.00" in text and "0.000" not in table[1]  # precision applies


def test_all_unknown_words_work_and_are_noted():
    model = fitted("lstm")
    trace = explain(model, "zzz qqq www")
    assert trace.all_unknown and trace.unknown.all()
    assert np.max(np.abs(trace.prefix_probabilities[-1] - model.predict_proba(["zzz qqq www"])[0])) <= 1e-6
    assert "every step reads <unk>" in render_text(trace)
    assert trace.to_json()["all_unknown"] is True


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_text_is_an_error(text):
    with pytest.raises(ValueError, match="^text: empty$"):
        explain(fitted("rnn"), text)


def test_a_model_that_is_not_a_classifier_is_a_clear_error():
    with pytest.raises(NotAClassifierError, match="RNNClassifier") as info:
        explain(object(), "i love this")
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)
    with pytest.raises(NotFittedError):
        explain(RNNClassifier(), "i love this")


def test_label_and_focus_must_be_classes_and_change_the_loss():
    model = fitted("gru-max")
    with pytest.raises(ValueError, match="label: 'maybe' is not one of the model's classes"):
        explain(model, "i love this", label="maybe")
    with pytest.raises(ValueError, match="focus"):
        explain(model, "i love this", focus=7)
    trace = explain(model, "i love this", label="neg")
    assert trace.label == 0 and trace.focus == 0
    assert trace.loss == pytest.approx(-np.log(trace.probabilities[0]), rel=1e-5)


def test_max_len_truncates_as_predict_does():
    model = copy.copy(fitted("rnn"))
    model.max_len = 3
    trace = explain(model, "i love this great movie")
    assert trace.tokens == ("i", "love", "this")
    assert any("max_len" in note for note in trace.notes)
    np.testing.assert_allclose(trace.probabilities, model.predict_proba(["i love this great movie"])[0])


def test_trace_is_frozen():
    trace = explain(fitted("rnn"), "so good")
    assert isinstance(trace, Trace)
    with pytest.raises(AttributeError):
        trace.loss = 0.0  # type: ignore[misc]
