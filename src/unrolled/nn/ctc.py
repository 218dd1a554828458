"""Connectionist temporal classification (Graves et al. 2006): the loss of a labelling summed over every
frame alignment, as a forward/backward pair on the logits.

For one sequence with per-frame log-probabilities ŷ_t = log_softmax(z_t) (T frames, C symbols, ``blank``
among them) and labels l of length S, the extended labelling l' = (blank, l_1, blank, l_2, …, l_S, blank)
has 2S + 1 positions. In log space (⊕ = log-add-exp):

    α_0(0) = ŷ_0(blank),  α_0(1) = ŷ_0(l_1)
    α_t(s) = ŷ_t(l'_s) + [α_{t-1}(s) ⊕ α_{t-1}(s-1) ⊕ α_{t-1}(s-2) if l'_s ≠ blank and l'_s ≠ l'_{s-2}]
    β_{T-1}(s) = 0 for the last two positions, −∞ elsewhere   (β excludes frame t's own emission)
    β_t(s) = ⊕ over s' ∈ {s, s+1, s+2 (same skip rule)} of ŷ_{t+1}(l'_{s'}) + β_{t+1}(s')
    log p(l | x) = α_{T-1}(2S) ⊕ α_{T-1}(2S-1),   loss = −log p

and the gradient of the loss with respect to the logits is, with γ_t(s) = α_t(s) + β_t(s) − log p,

    ∂loss/∂z_t(k) = softmax(z_t)(k) − Σ_{s: l'_s = k} exp γ_t(s)

Batches: logits (N, T, C) with ``input_lengths`` (N,) real frames (frames beyond get no gradient) and
``targets`` (N, S_max) padded labels with ``target_lengths`` (N,). A labelling that needs more frames than
there are (S plus the number of repeated neighbours) has p = 0: its loss is +∞, or 0 with zero gradient
under ``zero_infinity``, as in ``torch.nn.functional.ctc_loss``. Reduction "mean" divides each loss by its
label length (at least 1) and averages over the batch (torch's), "sum" adds, "none" returns (N,).
The recursions run in float64 whatever the logits' dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unrolled.nn._validation import check_choice, check_float_array
from unrolled.nn.losses import log_softmax

__all__ = ["CTCCache", "REDUCTIONS", "ctc_backward", "ctc_forward", "ctc_min_frames"]

REDUCTIONS = ("mean", "sum", "none")
_NEG_INF = -np.inf


def ctc_min_frames(labels: np.ndarray) -> int:
    """The fewest frames that can emit ``labels`` (S,): S plus one blank between each repeated pair."""
    labels = np.asarray(labels)
    return int(len(labels) + np.count_nonzero(labels[1:] == labels[:-1]))


@dataclass(frozen=True, eq=False)
class CTCCache:
    probs: np.ndarray  # (N, T, C) float64 softmax of the logits
    occupation: np.ndarray  # (N, T, C) float64 Σ_{s: l'_s = k} exp γ_t(s) (zero past each input length)
    frame_mask: np.ndarray  # (N, T) bool, the real frames
    scale: np.ndarray  # (N,) d(reduced loss)/d(loss_n): 1/(N·max(S_n, 1)) for mean, 1 for sum and none
    finite: np.ndarray  # (N,) bool: the labelling is possible (finite loss)
    zero_infinity: bool
    dtype: np.dtype


def _check(logits, input_lengths, targets, target_lengths, blank):
    logits = check_float_array("logits", logits, (None, None, None))
    n, t_len, c = logits.shape
    if not 0 <= blank < c:
        raise ValueError(f"blank: expected a symbol in [0, {c}), got {blank}")
    input_lengths = np.asarray(input_lengths)
    target_lengths = np.asarray(target_lengths)
    targets = np.asarray(targets)
    for name, array in (("input_lengths", input_lengths), ("target_lengths", target_lengths)):
        if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{name}: expected ({n},) integers, got shape {array.shape} of {array.dtype}")
    if targets.ndim != 2 or targets.shape[0] != n or (targets.size and not np.issubdtype(targets.dtype, np.integer)):
        raise ValueError(f"targets: expected ({n}, S) integers, got shape {targets.shape} of {targets.dtype}")
    if (input_lengths < 1).any() or (input_lengths > t_len).any():
        i = int(np.argmax((input_lengths < 1) | (input_lengths > t_len)))
        raise ValueError(f"input_lengths: sequence {i} has {input_lengths[i]} frames, expected 1 to {t_len}")
    if (target_lengths < 0).any() or (target_lengths > targets.shape[1]).any():
        i = int(np.argmax((target_lengths < 0) | (target_lengths > targets.shape[1])))
        raise ValueError(f"target_lengths: sequence {i} has {target_lengths[i]} labels, expected 0 to "
                         f"{targets.shape[1]}")
    real = np.arange(targets.shape[1])[None, :] < target_lengths[:, None]
    bad = real & ((targets < 0) | (targets >= c) | (targets == blank))
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise ValueError(f"targets: sequence {i}, label {j} is {targets[i, j]}, expected a symbol in [0, {c}) "
                         f"other than the blank ({blank})")
    return logits, input_lengths.astype(np.int64), targets.astype(np.int64), target_lengths.astype(np.int64)


def ctc_forward(
    logits: np.ndarray,
    input_lengths: np.ndarray,
    targets: np.ndarray,
    target_lengths: np.ndarray,
    *,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> tuple[float | np.ndarray, CTCCache]:
    """logits (N, T, C), input_lengths (N,), targets (N, S) padded, target_lengths (N,) -> loss, cache.

    The loss is a float for "mean" and "sum", (N,) float64 for "none" (see the module docstring).
    """
    check_choice("reduction", reduction, REDUCTIONS)
    logits, input_lengths, targets, target_lengths = _check(logits, input_lengths, targets, target_lengths, blank)
    n, t_len, c = logits.shape
    logp = log_softmax(logits.astype(np.float64))  # (N, T, C)
    # Extended labels l' (N, L'): blank, l_1, blank, …, l_S, blank; positions past 2 S_n + 1 are unused.
    ext_len = 2 * target_lengths + 1
    width = int(ext_len.max())
    ext = np.full((n, width), blank, dtype=np.int64)
    longest = int(target_lengths.max())
    if longest:
        ext[:, 1 : 2 * longest : 2] = np.where(
            np.arange(longest)[None, :] < target_lengths[:, None], targets[:, :longest], blank)
    used = np.arange(width)[None, :] < ext_len[:, None]  # (N, L')
    skip = np.zeros((n, width), dtype=bool)  # may α_t(s) come from α_{t-1}(s-2)?
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    emit = np.take_along_axis(logp, np.broadcast_to(ext[:, None, :], (n, t_len, width)), axis=2)  # (N, T, L')
    emit = np.where(used[:, None, :], emit, _NEG_INF)
    rows = np.arange(n)

    alpha = np.full((t_len, n, width), _NEG_INF)
    alpha[0, :, 0] = emit[:, 0, 0]
    if width > 1:
        alpha[0, :, 1] = np.where(ext_len > 1, emit[:, 0, 1], _NEG_INF)
    for t in range(1, t_len):
        prev = alpha[t - 1]
        total = prev.copy()
        total[:, 1:] = np.logaddexp(total[:, 1:], prev[:, :-1])
        total[:, 2:] = np.where(skip[:, 2:], np.logaddexp(total[:, 2:], prev[:, :-2]), total[:, 2:])
        alpha[t] = np.where((t < input_lengths)[:, None], total + emit[:, t], prev)  # past the end: frozen
    last = alpha[input_lengths - 1, rows]  # (N, L') at each sequence's last frame
    end = last[rows, ext_len - 1]
    before = np.where(ext_len > 1, last[rows, np.maximum(ext_len - 2, 0)], _NEG_INF)
    log_p = np.logaddexp(end, before)  # (N,)

    beta = np.full((t_len, n, width), _NEG_INF)
    final = np.zeros((n, width), dtype=bool)
    final[rows, ext_len - 1] = True
    final[rows, np.maximum(ext_len - 2, 0)] = True
    skip_next = np.zeros((n, width), dtype=bool)  # may β_t(s) go on to s+2?
    skip_next[:, :-2] = skip[:, 2:]
    for t in range(t_len - 1, -1, -1):
        start = np.where(final, 0.0, _NEG_INF)
        if t == t_len - 1:
            beta[t] = np.where((t == input_lengths - 1)[:, None], start, _NEG_INF)
            continue
        following = beta[t + 1] + emit[:, t + 1]  # (N, L')
        total = following.copy()
        total[:, :-1] = np.logaddexp(total[:, :-1], following[:, 1:])
        total[:, :-2] = np.where(skip_next[:, :-2], np.logaddexp(total[:, :-2], following[:, 2:]), total[:, :-2])
        inside = (t < input_lengths - 1)[:, None]
        beta[t] = np.where(inside, total, np.where((t == input_lengths - 1)[:, None], start, _NEG_INF))

    finite = np.isfinite(log_p)
    losses = np.where(finite, -log_p, np.inf)
    if zero_infinity:
        losses = np.where(finite, losses, 0.0)
    frame_mask = np.arange(t_len)[None, :] < input_lengths[:, None]
    with np.errstate(invalid="ignore"):
        gamma = np.exp(np.transpose(alpha + beta, (1, 0, 2)) - np.where(finite, log_p, 0.0)[:, None, None])
    gamma = np.where(finite[:, None, None] & frame_mask[:, :, None], np.nan_to_num(gamma), 0.0)  # (N, T, L')
    occupation = np.zeros((n, t_len, c))
    for s in range(width):  # scatter each position's occupation onto its symbol (L' is small)
        occupation[rows, :, ext[:, s]] += gamma[:, :, s]

    if reduction == "mean":
        scale = 1.0 / (n * np.maximum(target_lengths, 1))
        loss = float(np.sum(losses * scale))
    elif reduction == "sum":
        scale, loss = np.ones(n), float(np.sum(losses))
    else:
        scale, loss = np.ones(n), losses
    cache = CTCCache(np.exp(logp), occupation, frame_mask, scale, finite, zero_infinity, logits.dtype)
    return loss, cache


def ctc_backward(cache: CTCCache, dloss: float | np.ndarray = 1.0) -> np.ndarray:
    """The gradient of the (reduced) loss with respect to the logits, (N, T, C) in the logits' dtype.

    ``dloss``: the upstream gradient, a float (or (N,) for reduction "none"). An impossible labelling's
    gradient is NaN-free zero under ``zero_infinity`` and NaN otherwise (its loss is infinite).
    """
    weight = cache.scale * np.broadcast_to(np.asarray(dloss, dtype=np.float64), cache.scale.shape)  # (N,)
    grad = (cache.probs - cache.occupation) * cache.frame_mask[:, :, None]
    grad = grad * weight[:, None, None]
    if not cache.finite.all():
        grad[~cache.finite] = 0.0 if cache.zero_infinity else np.nan
    return grad.astype(cache.dtype, copy=False)
