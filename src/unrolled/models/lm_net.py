"""The language model: tokens -> embedding -> recurrent layer -> linear head at every step -> next-token logits.

    x_t = dropout(E[ids_t])                          (N, T, E)
    out, state_T = recurrent(x, state_0)             (N, T, H); state in PyTorch's layout (L, N, H), (h, c) for LSTM
    logits_t = dropout(out_t) W_headᵀ + b_head       (N, T, V)
    loss = mean over all N·T positions of cross-entropy(softmax(logits_t), targets_t)

Dropout (inverted, training only) acts on the word vectors, between recurrent layers and on the outputs,
with one probability (as PyTorch's word_language_model).

Weight tying (``tie_weights``, Press & Wolf 2017): the head's weight *is* the embedding matrix (V, E), which
needs E = H; ``head.weight`` is then absent and ``embedding.weight``'s gradient is the sum of both uses.

Carrying state across windows of one stream: feed ``state_final`` of window k as ``state0`` of window k+1.
Truncated BPTT calls ``lm_backward(cache)`` per window; full BPTT passes window k+1's ``dstate0`` as
window k's ``dstate_final``.

Sampled softmax (training a word-level model over a large vocabulary, ``candidates`` given with the targets):
the loss is :mod:`unrolled.nn.sampled_softmax`'s estimate from the targets and K candidate words instead of
the full (N·T, V) product; no logits are returned, and ``head.weight``'s gradient is SparseRows over the rows
it touched. Evaluation and generation call without candidates: the exact full softmax.

Parameter names follow a PyTorch module with submodules ``embedding`` (nn.Embedding), ``rnn``
(nn.RNN/GRU/LSTM) and ``head`` (nn.Linear): ``embedding.weight``, ``rnn.weight_ih_l0``, …, ``head.weight``,
``head.bias``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unrolled.nn._validation import check_index_array, check_positive_int
from unrolled.nn.dropout import DropoutCache, dropout_backward, dropout_forward
from unrolled.nn.embedding import EmbeddingCache, SparseRows, embedding_backward, embedding_forward
from unrolled.nn.linear import LinearCache, linear_backward, linear_forward
from unrolled.nn.losses import CrossEntropyCache, softmax_cross_entropy_backward, softmax_cross_entropy_forward
from unrolled.nn.recurrent_layer import (
    RecurrentCache,
    RecurrentConfig,
    RecurrentState,
    init_recurrent_params,
    recurrent_backward,
    recurrent_forward,
    recurrent_params_of,
)
from unrolled.nn.sampled_softmax import (
    Candidates,
    SampledSoftmaxCache,
    sampled_softmax_backward,
    sampled_softmax_forward,
)

__all__ = ["LMCache", "LMNetConfig", "init_lm_params", "lm_backward", "lm_forward"]

Params = dict[str, np.ndarray]
Grads = dict[str, np.ndarray | SparseRows]


@dataclass(frozen=True)
class LMNetConfig:
    vocab_size: int  # V
    embedding_dim: int  # E
    hidden_size: int  # H
    cell: str = "lstm"
    num_layers: int = 1  # L
    dropout: float = 0.0  # on word vectors, between recurrent layers and on the outputs, in training
    tie_weights: bool = False  # the head reuses embedding.weight (needs E == H)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embedding_dim"):
            check_positive_int(name, getattr(self, name))
        if not isinstance(self.tie_weights, bool):
            raise ValueError(f"tie_weights: expected a bool, got {self.tie_weights!r}")
        self.recurrent  # validates cell, hidden_size, num_layers and dropout
        if self.tie_weights and self.embedding_dim != self.hidden_size:
            raise ValueError(
                f"tie_weights: needs embedding_dim == hidden_size, got {self.embedding_dim} and {self.hidden_size}"
            )

    @property
    def recurrent(self) -> RecurrentConfig:
        return RecurrentConfig(self.cell, self.embedding_dim, self.hidden_size, self.num_layers, False, self.dropout)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape, in the order of a PyTorch module's state dict
        (no ``head.weight`` when the weights are tied)."""
        shapes = {"embedding.weight": (self.vocab_size, self.embedding_dim)}
        shapes.update({"rnn." + name: shape for name, shape in self.recurrent.param_shapes().items()})
        if not self.tie_weights:
            shapes["head.weight"] = (self.vocab_size, self.hidden_size)
        shapes["head.bias"] = (self.vocab_size,)
        return shapes


def init_lm_params(config: LMNetConfig, rng: np.random.Generator, dtype: np.dtype | type = np.float32) -> Params:
    """The usual language-model initialisation (PyTorch's word_language_model): embedding and head weight
    ~ U(−0.1, 0.1), head bias zero; the recurrent layer as PyTorch, ~ U(−1/√H, 1/√H).

    Small head weights make the first predictions nearly uniform, so the initial loss is close to ln V.
    """
    params: Params = {
        "embedding.weight": rng.uniform(-0.1, 0.1, (config.vocab_size, config.embedding_dim)).astype(dtype)
    }
    recurrent = init_recurrent_params(config.recurrent, rng, dtype=dtype)
    params.update({"rnn." + name: value for name, value in recurrent.items()})
    if not config.tie_weights:
        params["head.weight"] = rng.uniform(-0.1, 0.1, (config.vocab_size, config.hidden_size)).astype(dtype)
    params["head.bias"] = np.zeros(config.vocab_size, dtype=dtype)
    return params


@dataclass(frozen=True, eq=False)
class LMCache:
    config: LMNetConfig
    embedding: EmbeddingCache
    embedding_dropout: DropoutCache
    recurrent: RecurrentCache
    output_dropout: DropoutCache
    head: LinearCache | None  # None with sampled softmax
    loss: CrossEntropyCache | SampledSoftmaxCache | None  # over the (N·T, V) reshape of the logits, or sampled
    shape: tuple[int, int]  # (N, T) of ids


def _check_params(config: LMNetConfig, params: Params) -> None:
    """Names only (the units check shapes and dtypes); catches a stray head.weight beside tied weights."""
    expected = config.param_shapes()
    missing = [k for k in expected if k not in params]
    unexpected = [k for k in params if k not in expected]
    if missing:
        raise ValueError(f"params: missing {', '.join(missing)}")
    if unexpected:
        tied = " (the weights are tied: the head uses embedding.weight)" if config.tie_weights else ""
        raise ValueError(f"params: unexpected {', '.join(unexpected)}{tied}")


def _head_weight(params: Params, config: LMNetConfig) -> np.ndarray:
    return params["embedding.weight"] if config.tie_weights else params["head.weight"]


def lm_forward(
    params: Params,
    config: LMNetConfig,
    ids: np.ndarray,
    *,
    targets: np.ndarray | None = None,
    state0: RecurrentState | None = None,
    training: bool = False,
    rng: np.random.Generator | None = None,
    candidates: Candidates | None = None,
) -> tuple[np.ndarray | None, float | None, RecurrentState, LMCache]:
    """ids (N, T) int, targets (N, T) int or None -> logits (N, T, V), loss or None, state_final, cache.

    ``candidates`` (with ``targets``): the loss is the sampled softmax's over them, and logits is None.
    ``state0``: h (L, N, H), (h, c) for LSTM, or None (zeros); ``state_final`` has the same layout and is
    the state to carry into the next window. ``loss`` is the mean cross-entropy over all N·T positions.
    ``rng`` draws the dropout masks in training (needed when ``config.dropout`` > 0).
    """
    _check_params(config, params)
    v = config.vocab_size
    check_index_array("ids", ids, v, (None, None))
    n, t_len = ids.shape
    if targets is not None:
        check_index_array("targets", targets, v, (n, t_len))

    p = config.dropout
    x, emb_cache = embedding_forward(ids, params["embedding.weight"])  # (N, T, E)
    x, emb_drop = dropout_forward(x, p, training=training, rng=rng)
    rec_params = recurrent_params_of(params)
    out, state_final, rec_cache = recurrent_forward(
        x, rec_params, config.recurrent, state0=state0, training=training, rng=rng
    )  # out (N, T, H)
    out, out_drop = dropout_forward(out, p, training=training, rng=rng)
    if candidates is not None:
        if targets is None:
            raise ValueError("candidates: sampled softmax is a training loss and needs targets")
        h = out.shape[-1]
        loss, loss_cache = sampled_softmax_forward(out.reshape(n * t_len, h), _head_weight(params, config),
                                                   params["head.bias"], targets.reshape(n * t_len), candidates)
        cache = LMCache(config, emb_cache, emb_drop, rec_cache, out_drop, None, loss_cache, (n, t_len))
        return None, loss, state_final, cache
    logits, head_cache = linear_forward(out, _head_weight(params, config), params["head.bias"])  # (N, T, V)
    loss, loss_cache = None, None
    if targets is not None:
        loss, loss_cache = softmax_cross_entropy_forward(logits.reshape(n * t_len, v), targets.reshape(n * t_len))
    cache = LMCache(config, emb_cache, emb_drop, rec_cache, out_drop, head_cache, loss_cache, (n, t_len))
    return logits, loss, state_final, cache


def lm_backward(cache: LMCache, dstate_final: RecurrentState | None = None) -> tuple[Grads, RecurrentState]:
    """Gradients of the mean loss for every parameter, and dstate0 (the layout of state0).

    ``dstate_final`` (the layout of state_final) is the gradient that later windows send back into this
    window's final state (full BPTT); None (truncated BPTT) means they send none.
    ``embedding.weight``'s gradient is SparseRows, or, with tied weights, one dense (V, E) array: the head's
    gradient plus the embedding's rows.
    """
    if cache.loss is None:
        raise ValueError("cache: the forward pass had no targets, so there is no loss to differentiate")
    config = cache.config
    n, t_len = cache.shape
    if isinstance(cache.loss, SampledSoftmaxCache):
        dout, dweight, dbias = sampled_softmax_backward(cache.loss)
        dout = dout.reshape(n, t_len, -1)
        head_grads = {"weight": dweight.to_dense() if config.tie_weights else dweight, "bias": dbias}
    else:
        dlogits = softmax_cross_entropy_backward(cache.loss).reshape(n, t_len, config.vocab_size)
        dout, head_grads = linear_backward(dlogits, cache.head)
    dout = dropout_backward(dout, cache.output_dropout)
    dx, dstate0, rec_grads = recurrent_backward(dout, dstate_final, cache.recurrent)
    dx = dropout_backward(dx, cache.embedding_dropout)
    dembedding = embedding_backward(dx, cache.embedding)

    grads: Grads = {}
    if config.tie_weights:
        dweight = head_grads["weight"]  # a fresh (V, E) array
        dweight[dembedding.indices] += dembedding.values  # indices are unique
        grads["embedding.weight"] = dweight
    else:
        grads["embedding.weight"] = dembedding
    grads.update({"rnn." + name: value for name, value in rec_grads.items()})
    if not config.tie_weights:
        grads["head.weight"] = head_grads["weight"]
    grads["head.bias"] = head_grads["bias"]
    return grads, dstate0
