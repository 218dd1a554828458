"""Drawing the next token from a language model's logits: temperature, top-k and top-p (nucleus) sampling.

    excluded ids      never drawn (their logits are -inf before anything else)
    temperature = 0   argmax (greedy, deterministic; rng is not used)
    otherwise         p = softmax(logits / temperature)
                      top-k: keep the k most probable tokens
                      top-p: keep the smallest set of most probable tokens whose mass is >= top_p
                             (the most probable token is always kept)
                      renormalize what is kept and draw one token with rng

With both top-k and top-p the top-p mass is measured after the top-k cut and its renormalization (as
Hugging Face's sampling applies them in turn). Ties in probability keep the lower id first, so the kept set
is a function of the logits alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from unrolled.nn.losses import softmax

__all__ = ["check_sampling_options", "sample_next"]


def check_sampling_options(*, temperature: float, top_k: int | None, top_p: float | None) -> None:
    """ValueError naming the argument unless temperature >= 0 (finite), top_k >= 1 and 0 < top_p <= 1
    (None disables top-k / top-p); lets a caller refuse bad options before it starts generating."""
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
            or not (math.isfinite(temperature) and temperature >= 0)):
        raise ValueError(f"temperature: expected a finite number >= 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k: expected an integer >= 1 or None, got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float))
                              or not 0 < top_p <= 1):
        raise ValueError(f"top_p: expected a number in (0, 1] or None, got {top_p!r}")


def sample_next(
    logits: np.ndarray,
    *,
    rng: np.random.Generator,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    exclude: Sequence[int] = (),
) -> int:
    """The id of the next token, drawn from ``logits`` (V,) as the module docstring describes; the ids in
    ``exclude`` (special tokens such as ``<pad>`` and ``<unk>``) are never drawn: they are taken out of the
    distribution before temperature, top-k and top-p, as if their probability were 0."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 1 or logits.size == 0:
        raise ValueError(f"logits: expected a non-empty 1-D array (V,), got shape {logits.shape}")
    if not np.isfinite(logits).all():
        raise ValueError("logits: expected finite numbers")
    check_sampling_options(temperature=temperature, top_k=top_k, top_p=top_p)
    if len(exclude):
        excluded = np.asarray(exclude, dtype=np.int64)
        if excluded.min() < 0 or excluded.max() >= logits.size:
            raise ValueError(f"exclude: expected ids in [0, {logits.size}), got {excluded.tolist()}")
        logits = logits.copy()
        logits[excluded] = -np.inf
        if np.isneginf(logits).all():
            raise ValueError(f"exclude: every one of the {logits.size} tokens is excluded; nothing to draw")
    if temperature == 0:
        return int(np.argmax(logits))  # the first maximum on ties

    probs = softmax((logits - logits.max()) / temperature)  # (V,); shifted first, so a tiny T cannot overflow
    order = np.argsort(-probs, kind="stable")  # most probable first; ties by id
    keep = len(order)
    if top_k is not None:
        keep = min(keep, int(top_k))
    if top_p is not None:
        kept = probs[order[:keep]]
        cumulative = np.cumsum(kept / kept.sum())
        keep = min(keep, int(np.searchsorted(cumulative, top_p)) + 1)  # first index where mass >= top_p
    filtered = np.zeros_like(probs)
    filtered[order[:keep]] = probs[order[:keep]]
    return int(rng.choice(len(probs), p=filtered / filtered.sum()))  # never draws a zero-probability id
