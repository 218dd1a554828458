"""Losses: softmax cross-entropy for classification and language modelling, mean squared error.

Softmax cross-entropy, over the items i with mask_i = 1 (all items when there is no mask), with class
weights w (all ones when none are given), as ``torch.nn.functional.cross_entropy(weight=w)``:

    log p_i = z_i - max(z_i) - log Σ_c exp(z_ic - max(z_i))        (z = logits, stable log-sum-exp)
    a_i     = mask_i w[y_i] / Σ_j mask_j w[y_j]
    L       = -Σ_i a_i log p_i[y_i]
    dL/dz_i = a_i (p_i - onehot(y_i))

Mean squared error over the K unmasked elements:

    L = (1/K) Σ mask ⊙ (pred - target)²        dL/dpred = (2/K) mask ⊙ (pred - target)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unrolled.nn._validation import check_float_array, check_index_array, check_mask, check_probability

__all__ = [
    "softmax",
    "log_softmax",
    "CrossEntropyCache",
    "softmax_cross_entropy_forward",
    "softmax_cross_entropy_backward",
    "MSECache",
    "mse_forward",
    "mse_backward",
    "SequenceCrossEntropyCache",
    "sequence_cross_entropy_forward",
    "sequence_cross_entropy_backward",
]


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax along ``axis``, with the maximum subtracted first (finite for any finite logits)."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """softmax along ``axis``, with the maximum subtracted first (no overflow for any finite logits)."""
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


@dataclass(frozen=True, eq=False)
class CrossEntropyCache:
    probs: np.ndarray  # (N, C) softmax of the logits
    targets: np.ndarray  # (N,) integer class of each item
    item_weight: np.ndarray  # (N,) a_i = mask_i w[y_i] / Σ_j mask_j w[y_j], logits' dtype; sums to 1


def softmax_cross_entropy_forward(
    logits: np.ndarray,
    targets: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    class_weight: np.ndarray | None = None,
) -> tuple[float, CrossEntropyCache]:
    """Weighted mean of -log softmax(logits)[target] over the unmasked items.

    Parameters
    ----------
    logits : (N, C) float array
    targets : (N,) integer array with values in [0, C) (masked items too, e.g. the padding id)
    mask : (N,) bool, True for the items that count; None counts all
    class_weight : (C,) non-negative, logits' dtype; None weighs all classes 1 (PyTorch's ``weight=``)

    Returns
    -------
    loss : float
    cache : CrossEntropyCache
    """
    check_float_array("logits", logits, (None, None))
    n, c = logits.shape
    check_index_array("targets", targets, c, (n,))
    item_weight = np.ones(n, dtype=logits.dtype)  # (N,)
    if mask is not None:
        check_mask("mask", mask, (n,))
        if not mask.any():
            raise ValueError("mask: no item is unmasked")
        item_weight *= mask
    if class_weight is not None:
        check_float_array("class_weight", class_weight, (c,), dtype=logits.dtype)
        if (class_weight < 0).any():
            raise ValueError("class_weight: expected non-negative values")
        item_weight *= class_weight[targets]
    total = item_weight.sum()
    if total == 0:
        raise ValueError("class_weight: the weights of the unmasked items' classes sum to zero")
    item_weight /= total

    logp = log_softmax(logits)  # (N, C)
    nll = -logp[np.arange(n), targets]  # (N,)
    loss = float(item_weight @ nll)
    return loss, CrossEntropyCache(probs=np.exp(logp), targets=targets, item_weight=item_weight)


def softmax_cross_entropy_backward(cache: CrossEntropyCache, dloss: float = 1.0) -> np.ndarray:
    """dL/dlogits = dloss · a_i (p_i - onehot(y_i)).

    Parameters
    ----------
    cache : CrossEntropyCache from ``softmax_cross_entropy_forward``
    dloss : upstream gradient of the scalar loss

    Returns
    -------
    dlogits : (N, C), zero on masked items
    """
    dlogits = cache.probs.copy()
    dlogits[np.arange(dlogits.shape[0]), cache.targets] -= 1
    dlogits *= (float(dloss) * cache.item_weight)[:, None]
    return dlogits


@dataclass(frozen=True, eq=False)
class MSECache:
    diff: np.ndarray  # (N, ...) pred - target, zero on masked elements
    count: int  # K, the number of unmasked elements


def mse_forward(
    pred: np.ndarray, target: np.ndarray, *, mask: np.ndarray | None = None
) -> tuple[float, MSECache]:
    """Mean of (pred - target)² over the unmasked elements.

    Parameters
    ----------
    pred : (N, ...) float array
    target : (N, ...) pred's shape and dtype
    mask : (N,) bool (per item) or (N, ...) bool (per element), True for what counts; None counts all

    Returns
    -------
    loss : float
    cache : MSECache
    """
    if not isinstance(pred, np.ndarray) or pred.ndim == 0:
        raise ValueError(f"pred: expected an array of shape (N, ...), got {np.shape(pred)}")
    check_float_array("pred", pred)
    check_float_array("target", target, pred.shape, dtype=pred.dtype)
    diff = pred - target
    count = diff.size
    if mask is not None:
        if not isinstance(mask, np.ndarray) or mask.shape != pred.shape:
            check_mask("mask", mask, pred.shape[:1])  # the per-item form
        else:
            check_mask("mask", mask, pred.shape)
        if not mask.any():
            raise ValueError("mask: no item is unmasked")
        mask = mask.reshape(mask.shape + (1,) * (pred.ndim - mask.ndim))  # broadcast over the trailing axes
        diff *= mask
        count = int(mask.sum()) * (diff.size // mask.size)
    loss = float(np.vdot(diff, diff)) / count
    return loss, MSECache(diff=diff, count=count)


def mse_backward(cache: MSECache, dloss: float = 1.0) -> np.ndarray:
    """dL/dpred = dloss · (2/K) mask ⊙ (pred - target).

    Parameters
    ----------
    cache : MSECache from ``mse_forward``
    dloss : upstream gradient of the scalar loss

    Returns
    -------
    dpred : (N, ...), zero on masked elements
    """
    return cache.diff * (2.0 * float(dloss) / cache.count)


# --------------------------------------------------------------------------------------- sequence cross-entropy
# Cross-entropy at every target step of a batch of sequences (a decoder's or language model's output), over the
# real tokens (mask (N, T) True), against the label-smoothed target q = (1 − ε) onehot(y) + ε / V, as
# torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=<padding>,
# label_smoothing=ε) computes it (aten's cross_entropy_loss_label_smoothing, reduction "mean"):
#
#     L       = (1 − ε) · mean_real(−log p[y]) + (ε / V) · mean_real(−Σ_v log p_v)
#             = (1 / R) Σ_{real (n, t)} −Σ_v q_ntv log p_ntv            (R the number of real tokens)
#     dL/dz   = (mask / R) (p − q)                                      (Σ_v q_v = 1)


@dataclass(frozen=True, eq=False)
class SequenceCrossEntropyCache:
    probs: np.ndarray  # (N, T, V) softmax of the logits
    targets: np.ndarray  # (N, T) integer target of each step
    token_weight: np.ndarray  # (N, T) mask / R, logits' dtype; sums to 1
    label_smoothing: float  # ε


def sequence_cross_entropy_forward(
    logits: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    label_smoothing: float = 0.0,
) -> tuple[float, SequenceCrossEntropyCache]:
    """Mean over the real target tokens of the cross-entropy against the label-smoothed target.

    Parameters
    ----------
    logits : (N, T, V) float array
    targets : (N, T) integer array with values in [0, V) (padded steps too, e.g. the padding id)
    mask : (N, T) bool, True at real target tokens; None counts all. The batch needs a real token.
    label_smoothing : ε in [0, 1]; the target distribution is (1 − ε) onehot + ε / V

    Returns
    -------
    loss : float
    cache : SequenceCrossEntropyCache
    """
    check_float_array("logits", logits, (None, None, None))
    n, t_len, v = logits.shape
    check_index_array("targets", targets, v, (n, t_len))
    check_probability("label_smoothing", label_smoothing, upper_open=False)
    if mask is None:
        token_weight = np.ones((n, t_len), dtype=logits.dtype)  # (N, T)
    else:
        check_mask("mask", mask, (n, t_len))
        token_weight = mask.astype(logits.dtype)
    count = token_weight.sum()
    if count == 0:
        raise ValueError("mask: no target token is real" if mask is not None else "logits: no target token (N·T = 0)")
    token_weight /= count

    logp = log_softmax(logits)  # (N, T, V)
    per_token = -np.take_along_axis(logp, targets[:, :, None], axis=2)[:, :, 0]  # (N, T) −log p[y]
    epsilon = float(label_smoothing)
    if epsilon:
        per_token = (1.0 - epsilon) * per_token - (epsilon / v) * logp.sum(axis=2)
    loss = float(np.vdot(token_weight, per_token))
    return loss, SequenceCrossEntropyCache(np.exp(logp), targets, token_weight, epsilon)


def sequence_cross_entropy_backward(cache: SequenceCrossEntropyCache, dloss: float = 1.0) -> np.ndarray:
    """dL/dlogits = dloss · (mask / R) (p − (1 − ε) onehot(y) − ε / V).

    Parameters
    ----------
    cache : SequenceCrossEntropyCache from ``sequence_cross_entropy_forward``
    dloss : upstream gradient of the scalar loss

    Returns
    -------
    dlogits : (N, T, V), zero at padded steps
    """
    epsilon = cache.label_smoothing
    n, t_len, v = cache.probs.shape
    dlogits = cache.probs.copy()
    if epsilon:
        dlogits -= epsilon / v
    rows, steps = np.arange(n)[:, None], np.arange(t_len)[None, :]
    dlogits[rows, steps, cache.targets] -= 1.0 - epsilon
    dlogits *= (float(dloss) * cache.token_weight)[:, :, None]
    return dlogits
