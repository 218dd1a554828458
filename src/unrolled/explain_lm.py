"""A per-step trace of a text through a language model: after each token, the hidden state and the model's
top guesses for the next token, with the probability it gave to the token that did come.

Numbers come from one ``lm_forward`` pass over the text (the same function training uses): the logits of
every step and the recurrent layer's cached states (the top layer's h_t).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from unrolled.models.language_model import RNNLanguageModel
from unrolled.models.lm_net import lm_forward
from unrolled.nn.losses import softmax
from unrolled.text.vocab import Vocab

FORMAT = "unrolled-lm-trace"
VERSION = 1
TOP = 5  # next-token guesses shown per step
FIRST_VALUES = 3  # leading entries of h_t in the table
MAX_TOKENS = 20_000  # one forward pass over the text; longer texts are refused with this limit named


@dataclass(frozen=True)
class LMTrace:
    text: str
    tokens: tuple[str, ...]  # T tokens as read
    unknown: tuple[bool, ...]  # (T,) read as <unk>
    h: np.ndarray  # (T, H) the top layer's hidden state after each token
    top_tokens: tuple[tuple[str, ...], ...]  # (T, k) the most probable next tokens after step t
    top_probs: np.ndarray  # (T, k) their probabilities
    next_prob: np.ndarray  # (T - 1,) the probability given to the token that came next
    loss: float  # mean −log next_prob, nats per token (nan for a single token)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "text": self.text,
            "tokens": list(self.tokens),
            "unknown": list(self.unknown),
            "steps": [
                {
                    "t": t + 1,
                    "token": token,
                    "h": self.h[t].tolist(),
                    "h_norm": float(np.linalg.norm(self.h[t])),
                    "top_next": [{"token": tok, "p": float(p)} for tok, p in zip(self.top_tokens[t], self.top_probs[t])],
                    "p_actual_next": float(self.next_prob[t]) if t < len(self.next_prob) else None,
                }
                for t, token in enumerate(self.tokens)
            ],
            "loss": None if np.isnan(self.loss) else self.loss,
        }


def explain_lm(model: RNNLanguageModel, text: str, *, top: int = TOP) -> LMTrace:
    """Trace ``text`` through ``model``: tokens outside the vocabulary are read as ``<unk>``."""
    if not isinstance(model, RNNLanguageModel):
        raise ValueError(f"model: expected an RNNLanguageModel, got {type(model).__name__}")
    model._check_fitted()
    model._check_forward("explain")
    if not text.strip():
        raise ValueError("text: empty")
    tokens = model._tokens(text)
    if len(tokens) > MAX_TOKENS:
        raise ValueError(f"text: {len(tokens)} tokens; explain reads at most {MAX_TOKENS:,} in one pass")
    ids = model._ids(tokens)
    unk = model.vocab_.id_of(Vocab.UNK)
    logits, _, _, cache = lm_forward(model.params_, model.net_config_, ids[None])
    probs = softmax(logits[0].astype(np.float64))  # (T, V)
    top = min(top, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top]  # (T, k)
    names = model.vocab_.tokens
    top_sequence = cache.recurrent.directions[-1][0]  # the top layer's (only) direction
    h = top_sequence.state("h")[:, 0, :].astype(np.float64)  # (T, H), batch row 0
    next_prob = probs[np.arange(len(ids) - 1), ids[1:]]
    loss = float(-np.log(next_prob).mean()) if len(next_prob) else float("nan")
    return LMTrace(
        text=text,
        tokens=tuple(tokens),
        unknown=tuple(bool(i == unk) for i in ids),
        h=h,
        top_tokens=tuple(tuple(names[j] for j in row) for row in order),
        top_probs=np.take_along_axis(probs, order, axis=1),
        next_prob=next_prob,
        loss=loss,
    )


def _shown(token: str) -> str:
    return repr(token)[1:-1] if token.strip() else repr(token)


def render_lm_text(trace: LMTrace, precision: int = 3) -> str:
    """The trace as an aligned table: t, token, |h_t| and its first values, P(actual next), the top guesses."""
    p = precision
    rows = []
    for t, token in enumerate(trace.tokens):
        head = " ".join(f"{v:+.{p}f}" for v in trace.h[t, :FIRST_VALUES])
        actual = f"{trace.next_prob[t]:.{p}f}" if t < len(trace.next_prob) else "-"
        guesses = "  ".join(f"{_shown(tok)} {q:.{p}f}" for tok, q in zip(trace.top_tokens[t], trace.top_probs[t]))
        shown = _shown(token) + (" (<unk>)" if trace.unknown[t] else "")
        rows.append((str(t + 1), shown, f"{np.linalg.norm(trace.h[t]):.{p}f}", f"[{head} ...]", actual, guesses))
    header = ("t", "token", "|h_t|", "h_t", "P(next)", "top next-token guesses")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    lines = [f"text: {trace.text!r}"]
    if not np.isnan(trace.loss):
        lines.append(f"loss over the text: {trace.loss:.{p}f} nats per token ({trace.loss / np.log(2):.{p}f} bits)")
    lines.append("")
    for row in [header, *rows]:
        lines.append("  ".join(cell.rjust(w) if i in (0, 2, 4) else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(row[:5], widths))) + "  " + row[5])
    lines.append("")
    lines.append("P(next): the probability the model gave, after reading up to t, to the token at t + 1")
    return "\n".join(lines) + "\n"
