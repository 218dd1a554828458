"""The attention decoder of a sequence-to-sequence model: one step, and a whole target sequence under
teacher forcing. Luong et al. (2015)'s "global attention": the recurrent cell runs first, its output is the
attention's query, and the context and the cell output combine into the attentional state.

Per target step t, with y_{t−1} the previous target token (``<s>`` at t = 0), e (N, S, K) the encoder
states and s_{t−1} the decoder's recurrent state (L layers, PyTorch's layout):

    x_t       = dropout(E[y_{t−1}])                                  (N, E)
    x̃_t       = [x_t ; õ_{t−1}]  with input feeding, else x_t          (õ_{−1} = 0)
    h_t, s_t  = recurrent(x̃_t, s_{t−1})                              (N, H) the top layer's output
    c_t, α_t  = attention(h_t, e, source mask)                       (N, K), (N, S)
    õ_t       = tanh(W_c [c_t ; h_t])                                (N, H) the attentional state
    z_t       = dropout(õ_t) W_outᵀ + b_out                          (N, V) the next token's logits

Teacher forcing: every y_{t−1} is known (the reference shifted right), so without input feeding the
recurrent layer runs over all T steps in one call, attention takes the T queries at once and the two linear
maps are one GEMM each. Input feeding (õ_{t−1} is part of step t's input) makes each step wait for the last:
the sequence is then T one-step blocks, and backward carries dõ from step t back into step t − 1.

Backward of one block (any T), from dz and the gradient dõ' reaching õ from a later step (input feeding):

    dõ  = dropout'(dz W_out) + dõ'          dpre = dõ ⊙ (1 − õ²)          [dc ; dh] = dpre W_c
    dh += the query's gradient from attention(dc)                       (dkeys: the key gradient)
    dx̃, ds_{t−1} = recurrent_backward(dh, ds_t)                         dx = dx̃[:E], dõ_{t−1} = dx̃[E:]

Parameter names are those of a torch module with submodules ``embedding`` (nn.Embedding), ``rnn``
(nn.GRU/LSTM/RNN), ``attention`` (see :mod:`unrolled.nn.attention`), ``combine`` (nn.Linear(K + H, H,
bias=False)) and ``out`` (nn.Linear(H, V)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unrolled.nn._validation import check_choice, check_float_array, check_index_array, check_positive_int
from unrolled.nn.attention import SCORES, AttentionCache, attention_backward, attention_forward, attention_param_shapes
from unrolled.nn.dropout import DropoutCache, dropout_backward, dropout_forward
from unrolled.nn.embedding import EmbeddingCache, SparseRows, embedding_backward, embedding_forward
from unrolled.nn.linear import LinearCache, linear_backward, linear_forward
from unrolled.nn.recurrent_layer import (
    RecurrentCache,
    RecurrentConfig,
    RecurrentState,
    recurrent_backward,
    recurrent_forward,
    sub_params,
)

__all__ = [
    "DecoderConfig",
    "DecoderCache",
    "DecoderStepCache",
    "decoder_forward",
    "decoder_backward",
    "decoder_step_forward",
    "decoder_step_backward",
]

Params = dict[str, np.ndarray]
Grads = dict[str, np.ndarray | SparseRows]


@dataclass(frozen=True)
class DecoderConfig:
    vocab_size: int  # V, the target vocabulary
    embedding_dim: int  # E
    hidden_size: int  # H
    context_size: int  # K, the width of the encoder states (2·H_enc for a bidirectional encoder)
    cell: str = "gru"
    num_layers: int = 1  # L
    dropout: float = 0.0  # on the token vectors, between recurrent layers and on õ, in training
    score: str = "general"  # the attention score: "additive", "general" or "dot"
    attention_size: int | None = None  # A, the additive score's size (None: H); unused by the others
    input_feeding: bool = False  # õ_{t−1} is part of step t's input

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embedding_dim", "context_size"):
            check_positive_int(name, getattr(self, name))
        check_choice("score", self.score, SCORES)
        if not isinstance(self.input_feeding, bool):
            raise ValueError(f"input_feeding: expected a bool, got {self.input_feeding!r}")
        self.recurrent  # validates cell, hidden_size, num_layers and dropout
        self.attention_shapes()  # validates attention_size, and K == H for the dot score

    @property
    def recurrent(self) -> RecurrentConfig:
        feed = self.hidden_size if self.input_feeding else 0
        return RecurrentConfig(self.cell, self.embedding_dim + feed, self.hidden_size, self.num_layers, False,
                               self.dropout)

    def attention_shapes(self) -> dict[str, tuple[int, ...]]:
        size = self.attention_size if self.attention_size is not None else self.hidden_size
        return attention_param_shapes(self.score, self.hidden_size, self.context_size, size)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape, in the order of the torch module's state dict."""
        shapes = {"embedding.weight": (self.vocab_size, self.embedding_dim)}
        shapes.update({"rnn." + name: shape for name, shape in self.recurrent.param_shapes().items()})
        shapes.update({"attention." + name: shape for name, shape in self.attention_shapes().items()})
        shapes["combine.weight"] = (self.hidden_size, self.context_size + self.hidden_size)
        shapes["out.weight"] = (self.vocab_size, self.hidden_size)
        shapes["out.bias"] = (self.vocab_size,)
        return shapes


@dataclass(frozen=True, eq=False)
class _BlockCache:
    """One run of the cell-attention-output chain over T ≥ 1 steps."""

    fed: bool  # the input had õ of the previous step appended
    recurrent: RecurrentCache
    attention: AttentionCache
    combine: LinearCache
    output: np.ndarray  # (N, T, H) õ
    output_dropout: DropoutCache
    out: LinearCache


def _block_forward(params, config, x, keys, src_mask, state0, feed, *, training, rng, keep_cache):
    """x (N, T, E) the dropped-out token vectors; feed (N, T, H) õ of the previous steps, or None.
    Returns logits (N, T, V), α (N, T, S), the final state, õ (N, T, H) and the block's cache (or None)."""
    inputs = x if feed is None else np.concatenate([x, feed], axis=2)
    h, state, rec_cache = recurrent_forward(inputs, params, config.recurrent, state0=state0, training=training,
                                            rng=rng, prefix="rnn.", keep_cache=keep_cache)  # (N, T, H)
    context, weights, att_cache = attention_forward(h, keys, sub_params(params, "attention."), mask=src_mask,
                                                    score=config.score)  # (N, T, K), (N, T, S)
    pre, combine_cache = linear_forward(np.concatenate([context, h], axis=2), params["combine.weight"], None,
                                        check=keep_cache)
    output = np.tanh(pre)  # (N, T, H) õ
    dropped, drop_cache = dropout_forward(output, config.dropout, training=training, rng=rng)
    logits, out_cache = linear_forward(dropped, params["out.weight"], params["out.bias"], check=keep_cache)
    cache = None
    if keep_cache:
        cache = _BlockCache(feed is not None, rec_cache, att_cache, combine_cache, output, drop_cache, out_cache)
    return logits, weights, state, output, cache


def _block_backward(dlogits, cache: _BlockCache, dstate_final, doutput_later):
    """Returns dx (N, T, E), dfeed (N, T, H) or None, dkeys (N, S, K), dstate0 and the dense grads."""
    dropped_grad, out_grads = linear_backward(dlogits, cache.out)
    doutput = dropout_backward(dropped_grad, cache.output_dropout)
    if doutput_later is not None:
        doutput = doutput + doutput_later
    dpre = doutput * (1.0 - cache.output * cache.output)
    dcombined, combine_grads = linear_backward(dpre, cache.combine)
    k = cache.attention.keys.shape[2]
    dquery, dkeys, att_grads = attention_backward(np.ascontiguousarray(dcombined[:, :, :k]), cache.attention)
    dh = dcombined[:, :, k:] + dquery
    dinputs, dstate0, rec_grads = recurrent_backward(dh, dstate_final, cache.recurrent)
    e = dinputs.shape[2] - (cache.output.shape[2] if cache.fed else 0)
    dx = dinputs[:, :, :e]
    dfeed = dinputs[:, :, e:] if cache.fed else None
    grads = {"rnn." + name: g for name, g in rec_grads.items()}
    grads.update({"attention." + name: g for name, g in att_grads.items()})
    grads["combine.weight"] = combine_grads["weight"]
    grads["out.weight"], grads["out.bias"] = out_grads["weight"], out_grads["bias"]
    return dx, dfeed, dkeys, dstate0, grads


def _check_inputs(params: Params, config: DecoderConfig, ids: np.ndarray, keys: np.ndarray, shape) -> None:
    expected = config.param_shapes()
    missing = [name for name in expected if name not in params]
    if missing:
        raise ValueError(f"params: missing {', '.join(missing)}")
    check_index_array("ids", ids, config.vocab_size, shape)
    dtype = params["out.weight"].dtype
    check_float_array("keys", keys, (ids.shape[0], None, config.context_size), dtype=dtype)


# --------------------------------------------------------------------------------------------- one step


@dataclass(frozen=True, eq=False)
class DecoderStepCache:
    config: DecoderConfig
    embedding: EmbeddingCache
    embedding_dropout: DropoutCache
    block: _BlockCache


def decoder_step_forward(
    params: Params,
    config: DecoderConfig,
    prev_ids: np.ndarray,
    keys: np.ndarray,
    *,
    src_mask: np.ndarray | None = None,
    state: RecurrentState | None = None,
    prev_output: np.ndarray | None = None,
    training: bool = False,
    rng: np.random.Generator | None = None,
    keep_cache: bool = True,
) -> tuple[np.ndarray, np.ndarray, RecurrentState, np.ndarray, DecoderStepCache | None]:
    """One decoder step.

    prev_ids (N,) the previous target tokens; keys (N, S, K) the encoder states; src_mask (N, S) or None;
    state the recurrent state s_{t−1} (None: zeros); prev_output (N, H) õ_{t−1} (input feeding only; None:
    zeros). Returns logits (N, V), α (N, S), s_t, õ_t (N, H) and the cache (None with ``keep_cache=False``:
    inference, which also skips the argument checks).
    """
    if keep_cache:
        _check_inputs(params, config, prev_ids, keys, (None,))
    x, emb_cache = embedding_forward(prev_ids[:, None], params["embedding.weight"], check=keep_cache)
    x, emb_drop = dropout_forward(x, config.dropout, training=training, rng=rng)
    feed = None
    if config.input_feeding:
        n = prev_ids.shape[0]
        feed = (np.zeros((n, 1, config.hidden_size), x.dtype) if prev_output is None else prev_output[:, None])
    logits, weights, state, output, block = _block_forward(
        params, config, x, keys, src_mask, state, feed, training=training, rng=rng, keep_cache=keep_cache
    )
    cache = DecoderStepCache(config, emb_cache, emb_drop, block) if keep_cache else None
    return logits[:, 0], weights[:, 0], state, output[:, 0], cache


def decoder_step_backward(
    dlogits: np.ndarray,
    cache: DecoderStepCache,
    *,
    dstate: RecurrentState | None = None,
    doutput: np.ndarray | None = None,
) -> tuple[np.ndarray, RecurrentState, np.ndarray | None, Grads]:
    """Backward of one step: dlogits (N, V); dstate the gradient reaching s_t from later steps; doutput
    (N, H) the gradient reaching õ_t from later steps (input feeding). Returns dkeys (N, S, K),
    ds_{t−1}, dõ_{t−1} (N, H) (None without input feeding) and the parameter gradients."""
    dx, dfeed, dkeys, dstate0, grads = _block_backward(
        dlogits[:, None], cache.block, dstate, None if doutput is None else doutput[:, None]
    )
    dx = dropout_backward(dx, cache.embedding_dropout)
    grads = {"embedding.weight": embedding_backward(dx, cache.embedding), **grads}
    return dkeys, dstate0, None if dfeed is None else dfeed[:, 0], grads


# ------------------------------------------------------------------------------- teacher-forced sequence


@dataclass(frozen=True, eq=False)
class DecoderCache:
    config: DecoderConfig
    embedding: EmbeddingCache
    embedding_dropout: DropoutCache
    blocks: tuple[_BlockCache, ...]  # one block of T steps, or T one-step blocks with input feeding


def decoder_forward(
    params: Params,
    config: DecoderConfig,
    ids: np.ndarray,
    keys: np.ndarray,
    *,
    src_mask: np.ndarray | None = None,
    state0: RecurrentState | None = None,
    training: bool = False,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, RecurrentState, DecoderCache]:
    """Teacher forcing: ids (N, T) the decoder's inputs (``<s>`` then the reference without its last token),
    keys (N, S, K), src_mask (N, S) or None, state0 (the bridged encoder state; None: zeros).

    Returns logits (N, T, V), α (N, T, S), the final state and the cache. Steps after a sequence's end are
    computed like any other (right padding: they come after every real step); the loss masks them.
    """
    _check_inputs(params, config, ids, keys, (None, None))
    x, emb_cache = embedding_forward(ids, params["embedding.weight"])
    x, emb_drop = dropout_forward(x, config.dropout, training=training, rng=rng)
    kwargs = dict(training=training, rng=rng, keep_cache=True)
    if not config.input_feeding:
        logits, weights, state, _, block = _block_forward(params, config, x, keys, src_mask, state0, None, **kwargs)
        return logits, weights, state, DecoderCache(config, emb_cache, emb_drop, (block,))
    n, t_len = ids.shape
    output = np.zeros((n, 1, config.hidden_size), x.dtype)
    state, all_logits, all_weights, blocks = state0, [], [], []
    for t in range(t_len):
        logits, weights, state, output, block = _block_forward(
            params, config, x[:, t : t + 1], keys, src_mask, state, output, **kwargs
        )
        all_logits.append(logits)
        all_weights.append(weights)
        blocks.append(block)
    logits = np.concatenate(all_logits, axis=1)
    weights = np.concatenate(all_weights, axis=1)
    return logits, weights, state, DecoderCache(config, emb_cache, emb_drop, tuple(blocks))


def _add_grads(total: dict, grads: dict) -> None:
    for name, g in grads.items():
        if name in total:
            total[name] += g
        else:
            total[name] = g.copy()


def decoder_backward(
    dlogits: np.ndarray, cache: DecoderCache, *, dstate_final: RecurrentState | None = None
) -> tuple[np.ndarray, RecurrentState, Grads]:
    """BPTT through :func:`decoder_forward`: dlogits (N, T, V) (e.g. the loss's). Returns dkeys (N, S, K),
    dstate0 (the gradient of the bridged initial state) and the gradient of every parameter."""
    config = cache.config
    check_float_array("dlogits", dlogits, cache.embedding.ids.shape + (config.vocab_size,),
                      dtype=cache.blocks[0].output.dtype, finite=False)
    if not config.input_feeding:
        dx, _, dkeys, dstate0, grads = _block_backward(dlogits, cache.blocks[0], dstate_final, None)
    else:
        t_len = len(cache.blocks)
        dxs: list[np.ndarray] = [None] * t_len  # type: ignore[list-item]
        dstate, dfeed, dkeys, grads = dstate_final, None, None, {}
        for t in range(t_len - 1, -1, -1):
            dxs[t], dfeed, dkeys_t, dstate, grads_t = _block_backward(
                dlogits[:, t : t + 1], cache.blocks[t], dstate, dfeed
            )
            dkeys = dkeys_t if dkeys is None else dkeys + dkeys_t
            _add_grads(grads, grads_t)
        dx, dstate0 = np.concatenate(dxs, axis=1), dstate
    dx = dropout_backward(dx, cache.embedding_dropout)
    ordered: Grads = {"embedding.weight": embedding_backward(dx, cache.embedding)}
    ordered.update({name: grads[name] for name in config.param_shapes() if name != "embedding.weight"})
    return dkeys, dstate0, ordered
