"""The language-model trace (explain_lm.py) against the model's own loss and a step-by-step rerun."""

from __future__ import annotations

import json

import numpy as np
import pytest

from unrolled.explain_lm import explain_lm, render_lm_text
from unrolled.models.language_model import RNNLanguageModel
from unrolled.models.lm_net import lm_forward
from unrolled.nn.losses import softmax


@pytest.fixture(scope="module")
def model():
    return RNNLanguageModel(cell="gru", embedding_dim=8, hidden_size=16, bptt=8, batch_size=4, epochs=2,
                            validation_fraction=0.1).fit("abcabd " * 200)


def test_trace_agrees_with_the_model_and_a_step_by_step_rerun(model):
    text = "abcabdab"
    trace = explain_lm(model, text)
    assert trace.tokens == tuple(text) and trace.h.shape == (8, 16)
    assert trace.loss == pytest.approx(model.evaluate_loss(text), rel=1e-5)
    ids = model._ids(list(text))
    state = None
    for t, token_id in enumerate(ids[:-1]):  # one step at a time, the state carried by hand
        logits, _, state, _ = lm_forward(model.params_, model.net_config_, ids[None, t : t + 1], state0=state)
        probs = softmax(logits[0, 0].astype(np.float64))
        assert trace.next_prob[t] == pytest.approx(probs[ids[t + 1]], rel=1e-5)
        assert trace.top_probs[t, 0] == pytest.approx(probs.max(), rel=1e-5)
    assert np.all(np.diff(trace.top_probs, axis=1) <= 0)  # guesses in order


def test_unknown_tokens_json_and_text(model):
    trace = explain_lm(model, "abz")
    assert trace.unknown == (False, False, True)
    data = json.loads(json.dumps(trace.to_json()))
    assert [s["token"] for s in data["steps"]] == ["a", "b", "z"] and data["steps"][-1]["p_actual_next"] is None
    assert len(data["steps"][0]["top_next"]) == 5
    text = render_lm_text(trace)
    assert "z (<unk>)" in text and "top next-token guesses" in text


def test_bad_input(model):
    with pytest.raises(ValueError, match="text: empty"):
        explain_lm(model, "  ")
    with pytest.raises(ValueError, match="RNNLanguageModel"):
        explain_lm(object(), "abc")
