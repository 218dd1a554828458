"""Sampled softmax: the cross-entropy of a large output layer, estimated from the true class and K sampled ones.

A word-level language model over V = 50,000 words spends almost all its time in the (N·T, H) × (H, V)
output product and its backward. Sampled softmax scores each position only against its target and K
candidate classes drawn once per batch from a proposal distribution Q; the candidates' logits are corrected
by the log of their expected count K·Q(j), so that their exponentials are an importance-sampling estimate of
the partition function's other terms (Bengio & Senécal 2008; Jean et al. 2015):

    s_i0 = h_i · w_{y_i} + b_{y_i}                             (M,)    the true class
    s_ik = h_i · w_{c_k} + b_{c_k} − log(K Q(c_k))             (M, K)  the candidates c (K,)
    s_ik = −∞ where c_k == y_i                                         (the true class is not its own negative)
    L    = −(1/M) Σ_i log softmax(s_i)_0

E[Σ_k exp(s_ik)] = Σ_{j ≠ y_i} exp(h_i · w_j + b_j), so L estimates the full softmax cross-entropy (from
below, by Jensen: log is concave) and converges to it, with its gradient, as K grows; the training loss is
on the same scale as the exact validation loss. For fixed candidates L is an exact function of h, W and b,
so its gradients are checked by finite differences like every other pair; with every class a candidate once
and a constant correction of 0 it *is* the full cross-entropy (a test holds it to that). Training uses it;
evaluation and generation keep the exact full softmax.

The proposal is log-uniform (Zipfian) over the vocabulary's frequency order, what suits a vocabulary sorted
by count (:meth:`unrolled.text.vocab.Vocab.build`): id 0 (``<pad>``) is never drawn, and for the others

    Q(j) = (log(j + 1) − log(j)) / log(V)            j = 1 … V−1

Candidates are drawn with replacement (a class drawn twice is counted twice; the correction uses the expected
count K·Q(j)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unrolled.nn._validation import check_float_array, check_index_array, check_positive_int
from unrolled.nn.embedding import EmbeddingCache, SparseRows, embedding_backward
from unrolled.nn.losses import log_softmax

__all__ = [
    "Candidates",
    "SampledSoftmaxCache",
    "log_uniform_candidates",
    "sampled_softmax_forward",
    "sampled_softmax_backward",
]


@dataclass(frozen=True, eq=False)
class Candidates:
    """The classes a batch is scored against: ``ids`` (K,) and ``log_expected`` (V,), log(K·Q(j)) for every
    class j (−∞ for a class Q never draws)."""

    ids: np.ndarray
    log_expected: np.ndarray


def log_uniform_candidates(rng: np.random.Generator, vocab_size: int, num_sampled: int) -> Candidates:
    """K = ``num_sampled`` candidates drawn with replacement from the log-uniform Q over ids 1 … V−1."""
    check_positive_int("num_sampled", num_sampled)
    if vocab_size < 2:
        raise ValueError(f"vocab_size: expected at least 2 (id 0 is never drawn), got {vocab_size}")
    log_v = np.log(vocab_size)
    # Inverse CDF: P(id ≤ j) = log(j + 1) / log(V), so id = floor(exp(u log V)) for u ~ U[0, 1).
    ids = np.floor(np.exp(rng.random(num_sampled) * log_v)).astype(np.int64)
    np.clip(ids, 1, vocab_size - 1, out=ids)
    j = np.arange(vocab_size, dtype=np.float64)
    with np.errstate(divide="ignore"):
        q = (np.log1p(j) - np.log(j)) / log_v  # q[0] = inf - inf: set below
        log_expected = np.log(num_sampled * q)
    log_expected[0] = -np.inf
    return Candidates(ids, log_expected)


@dataclass(frozen=True, eq=False)
class SampledSoftmaxCache:
    inputs: np.ndarray  # (M, H)
    weight: np.ndarray  # (V, H)
    targets: np.ndarray  # (M,)
    candidates: np.ndarray  # (K,)
    probs: np.ndarray  # (M, 1 + K) softmax of the corrected logits: column 0 the true class


def sampled_softmax_forward(
    inputs: np.ndarray, weight: np.ndarray, bias: np.ndarray, targets: np.ndarray, candidates: Candidates
) -> tuple[float, SampledSoftmaxCache]:
    """inputs (M, H), weight (V, H), bias (V,), targets (M,) int -> the mean sampled-softmax loss, cache."""
    num_rows, hidden = weight.shape
    check_float_array("inputs", inputs, (None, hidden))
    check_float_array("bias", bias, (num_rows,))
    check_index_array("targets", targets, num_rows, (inputs.shape[0],))
    ids = check_index_array("candidates.ids", candidates.ids, num_rows, (None,))
    check_float_array("candidates.log_expected", candidates.log_expected, (num_rows,), finite=False)
    if inputs.shape[0] == 0:
        raise ValueError("inputs: no positions (shape (0, H)): the mean loss is undefined")
    log_expected = candidates.log_expected.astype(inputs.dtype, copy=False)
    true_logits = np.einsum("mh,mh->m", inputs, weight[targets]) + bias[targets]  # (M,), not corrected
    sampled_logits = inputs @ weight[ids].T  # (M, K)
    sampled_logits += bias[ids] - log_expected[ids]
    sampled_logits[targets[:, None] == ids[None, :]] = -np.inf  # accidental hits
    logits = np.concatenate([true_logits[:, None], sampled_logits], axis=1)  # (M, 1 + K)
    log_probs = log_softmax(logits, axis=1)
    loss = float(-log_probs[:, 0].mean())
    return loss, SampledSoftmaxCache(inputs, weight, targets, ids, np.exp(log_probs))


def sampled_softmax_backward(
    cache: SampledSoftmaxCache, dloss: float = 1.0
) -> tuple[np.ndarray, SparseRows, np.ndarray]:
    """-> dinputs (M, H), dweight (SparseRows over the rows of the targets and candidates), dbias (V,)."""
    m = cache.inputs.shape[0]
    dlogits = cache.probs * (dloss / m)  # (M, 1 + K); an accidental hit has probability 0, so no gradient
    dlogits[:, 0] -= dloss / m
    dtrue, dsampled = dlogits[:, 0], dlogits[:, 1:]  # (M,), (M, K)
    weight, targets, ids = cache.weight, cache.targets, cache.candidates
    dinputs = dtrue[:, None] * weight[targets] + dsampled @ weight[ids]
    # The rows' gradients summed per distinct id, as the embedding's are: targets first, then candidates.
    row_deltas = np.concatenate([dtrue[:, None] * cache.inputs, dsampled.T @ cache.inputs])  # (M + K, H)
    rows = EmbeddingCache(np.concatenate([targets, ids]), weight.shape, padding_idx=None)
    dweight = embedding_backward(row_deltas, rows)
    dbias = np.zeros(weight.shape[0], dtype=cache.inputs.dtype)
    np.add.at(dbias, targets, dtrue)
    np.add.at(dbias, ids, dsampled.sum(axis=0))
    return dinputs, dweight, dbias
