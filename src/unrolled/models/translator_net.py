"""The translation network: a bidirectional recurrent encoder, a bridge, and the attention decoder.

    x      = dropout(E_src[source ids])                                   (N, S, E)
    e, s_S = recurrent_bi(x, mask = source mask)                          e (N, S, 2H); s_S (2L, N, H)
    s_0    = tanh([s_S fwd ; s_S bwd] W_bridgeᵀ + b_bridge)  per layer    (L, N, H)
             (LSTM: the cell state bridged by its own linear map, no tanh)
    logits = decoder(<s> y_1 … y_{T−1}, e, s_0)                           (N, T, V)   (unrolled.nn.decoder)
    loss   = masked, label-smoothed cross-entropy against y_1 … y_T </s>

Parameter names follow a torch module with submodules ``encoder`` (``embedding``, ``rnn``), ``bridge``
(nn.Linear(2H, H)), ``bridge_cell`` (LSTM only) and ``decoder`` (see :mod:`unrolled.nn.decoder`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unrolled.nn._validation import check_index_array, check_mask, check_positive_int
from unrolled.nn.decoder import DecoderCache, DecoderConfig, decoder_backward, decoder_forward
from unrolled.nn.dropout import DropoutCache, dropout_backward, dropout_forward
from unrolled.nn.embedding import EmbeddingCache, SparseRows, embedding_backward, embedding_forward
from unrolled.nn.losses import (
    SequenceCrossEntropyCache,
    sequence_cross_entropy_backward,
    sequence_cross_entropy_forward,
)
from unrolled.nn.recurrent_layer import (
    RecurrentCache,
    RecurrentConfig,
    init_recurrent_params,
    recurrent_backward,
    recurrent_forward,
    sub_params,
)

__all__ = [
    "TranslatorNetConfig",
    "init_translator_params",
    "encode",
    "translator_forward",
    "translator_backward",
]

Params = dict[str, np.ndarray]
Grads = dict[str, np.ndarray | SparseRows]


@dataclass(frozen=True)
class TranslatorNetConfig:
    source_vocab_size: int
    target_vocab_size: int
    embedding_dim: int = 256  # E, both sides
    hidden_size: int = 256  # H: each encoder direction and the decoder
    cell: str = "gru"
    num_layers: int = 1  # L, encoder and decoder
    dropout: float = 0.0
    score: str = "general"
    attention_size: int | None = None
    input_feeding: bool = False

    def __post_init__(self) -> None:
        check_positive_int("source_vocab_size", self.source_vocab_size)
        self.encoder  # validates the shared sizes
        self.decoder

    @property
    def encoder(self) -> RecurrentConfig:
        return RecurrentConfig(self.cell, self.embedding_dim, self.hidden_size, self.num_layers, True, self.dropout)

    @property
    def decoder(self) -> DecoderConfig:
        return DecoderConfig(self.target_vocab_size, self.embedding_dim, self.hidden_size, 2 * self.hidden_size,
                             self.cell, self.num_layers, self.dropout, self.score, self.attention_size,
                             self.input_feeding)

    @property
    def bridges(self) -> tuple[str, ...]:
        """One bridge per state component: ("bridge",) or, for an LSTM, ("bridge", "bridge_cell")."""
        return ("bridge", "bridge_cell")[: len(self.encoder.state_names)]

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {"encoder.embedding.weight": (self.source_vocab_size, self.embedding_dim)}
        shapes.update({"encoder.rnn." + k: v for k, v in self.encoder.param_shapes().items()})
        for bridge in self.bridges:
            shapes[bridge + ".weight"] = (self.hidden_size, 2 * self.hidden_size)
            shapes[bridge + ".bias"] = (self.hidden_size,)
        shapes.update({"decoder." + k: v for k, v in self.decoder.param_shapes().items()})
        return shapes


def init_translator_params(config: TranslatorNetConfig, rng: np.random.Generator,
                           dtype: np.dtype | type = np.float32) -> Params:
    """Embeddings ~ U(−0.1, 0.1); recurrent layers, attention and linear maps as PyTorch
    initialises them (U(−1/√fan_in, 1/√fan_in)), the output bias zero."""
    shapes = config.param_shapes()
    params: Params = {}
    for name, shape in shapes.items():
        if name.endswith("embedding.weight"):
            params[name] = rng.uniform(-0.1, 0.1, shape).astype(dtype)
        elif ".rnn." in name:
            continue  # drawn below, a layer at a time
        elif name == "decoder.out.bias":
            params[name] = np.zeros(shape, dtype)
        else:
            fan_in = shape[1] if len(shape) == 2 else shapes[name[: -len("bias")] + "weight"][1]
            bound = 1.0 / np.sqrt(fan_in)
            params[name] = rng.uniform(-bound, bound, shape).astype(dtype)
    for side, rec in (("encoder", config.encoder), ("decoder", config.decoder.recurrent)):
        for name, value in init_recurrent_params(rec, rng, dtype=dtype).items():
            params[f"{side}.rnn.{name}"] = value
    return {name: params[name] for name in shapes}


@dataclass(frozen=True, eq=False)
class EncoderCache:
    embedding: EmbeddingCache
    embedding_dropout: DropoutCache
    recurrent: RecurrentCache | None
    bridged: tuple[np.ndarray, ...]  # per state component (L, N, H): h after tanh, c as is
    finals: tuple[np.ndarray, ...]  # per component (L, N, 2H) the concatenated final states
    bridge_weights: tuple[np.ndarray, ...]  # per component the bridge's weight (H, 2H)


def _bridge_forward(config: TranslatorNetConfig, params: Params, final) -> tuple[tuple, tuple, object]:
    """final: the encoder's final state (2L, N, H) (or (h, c)) -> the decoder's s_0 (L, N, H) (or a pair)."""
    components = final if isinstance(final, tuple) else (final,)
    n, h = components[0].shape[1], config.hidden_size
    finals, bridged = [], []
    for bridge, comp in zip(config.bridges, components):
        joined = comp.reshape(config.num_layers, 2, n, h).transpose(0, 2, 1, 3).reshape(config.num_layers, n, 2 * h)
        value = joined @ params[bridge + ".weight"].T + params[bridge + ".bias"]
        if bridge == "bridge":
            value = np.tanh(value)
        finals.append(joined)
        bridged.append(value)
    state0 = tuple(bridged) if len(bridged) > 1 else bridged[0]
    return tuple(finals), tuple(bridged), state0


def encode(
    params: Params,
    config: TranslatorNetConfig,
    src_ids: np.ndarray,
    src_mask: np.ndarray,
    *,
    training: bool = False,
    rng: np.random.Generator | None = None,
    keep_cache: bool = True,
) -> tuple[np.ndarray, object, EncoderCache | None]:
    """src_ids (N, S), src_mask (N, S) -> the keys e (N, S, 2H), the decoder's initial state and the cache."""
    x, emb_cache = embedding_forward(src_ids, params["encoder.embedding.weight"], check=keep_cache)
    x, emb_drop = dropout_forward(x, config.dropout, training=training, rng=rng)
    keys, final, rec_cache = recurrent_forward(x, params, config.encoder, mask=src_mask, training=training, rng=rng,
                                               prefix="encoder.rnn.", keep_cache=keep_cache)
    finals, bridged, state0 = _bridge_forward(config, params, final)
    cache = None
    if keep_cache:
        weights = tuple(params[bridge + ".weight"] for bridge in config.bridges)
        cache = EncoderCache(emb_cache, emb_drop, rec_cache, bridged, finals, weights)
    return keys, state0, cache


@dataclass(frozen=True, eq=False)
class TranslatorCache:
    config: TranslatorNetConfig
    encoder: EncoderCache
    decoder: DecoderCache
    loss: SequenceCrossEntropyCache


def translator_forward(
    params: Params,
    config: TranslatorNetConfig,
    src_ids: np.ndarray,
    src_mask: np.ndarray,
    tgt_in: np.ndarray,
    tgt_out: np.ndarray,
    tgt_mask: np.ndarray,
    *,
    label_smoothing: float = 0.0,
    training: bool = False,
    rng: np.random.Generator | None = None,
) -> tuple[float, np.ndarray, TranslatorCache]:
    """The mean token loss of a batch: src (N, S) with its mask; tgt_in (N, T) = <s> y_1 …, tgt_out (N, T) =
    y_1 … </s>, tgt_mask (N, T). Returns the loss, the attention weights (N, T, S) and the cache."""
    check_index_array("src_ids", src_ids, config.source_vocab_size, (None, None))
    check_mask("src_mask", src_mask, src_ids.shape)
    keys, state0, enc_cache = encode(params, config, src_ids, src_mask, training=training, rng=rng)
    logits, weights, _, dec_cache = decoder_forward(
        sub_params(params, "decoder."), config.decoder, tgt_in, keys, src_mask=src_mask, state0=state0,
        training=training, rng=rng,
    )
    loss, loss_cache = sequence_cross_entropy_forward(logits, tgt_out, tgt_mask, label_smoothing=label_smoothing)
    return loss, weights, TranslatorCache(config, enc_cache, dec_cache, loss_cache)


def translator_backward(cache: TranslatorCache) -> Grads:
    """The gradient of the mean token loss for every parameter (embeddings as SparseRows)."""
    config = cache.config
    dlogits = sequence_cross_entropy_backward(cache.loss)
    dkeys, dstate0, dec_grads = decoder_backward(dlogits, cache.decoder)
    dcomponents = dstate0 if isinstance(dstate0, tuple) else (dstate0,)
    grads: Grads = {}
    dfinals = []
    enc = cache.encoder
    for bridge, dvalue, value, joined, weight in zip(config.bridges, dcomponents, enc.bridged, enc.finals,
                                                     enc.bridge_weights):
        dpre = dvalue * (1.0 - value * value) if bridge == "bridge" else dvalue  # (L, N, H)
        flat = dpre.reshape(-1, dpre.shape[2])
        grads[bridge + ".weight"] = flat.T @ joined.reshape(-1, joined.shape[2])
        grads[bridge + ".bias"] = flat.sum(axis=0)
        djoined = dpre @ weight  # (L, N, 2H)
        layers, n, h = djoined.shape[0], djoined.shape[1], config.hidden_size
        # (L, N, 2H) -> (2L, N, H): row 2l the forward direction's final state, row 2l + 1 the reverse one's
        dfinals.append(djoined.reshape(layers, n, 2, h).transpose(0, 2, 1, 3).reshape(2 * layers, n, h))
    dfinal = tuple(dfinals) if len(dfinals) > 1 else dfinals[0]
    dx, _, rec_grads = recurrent_backward(dkeys, dfinal, cache.encoder.recurrent)
    dx = dropout_backward(dx, cache.encoder.embedding_dropout)
    out: Grads = {"encoder.embedding.weight": embedding_backward(dx, cache.encoder.embedding)}
    out.update({"encoder.rnn." + k: v for k, v in rec_grads.items()})
    out.update(grads)
    out.update({"decoder." + k: v for k, v in dec_grads.items()})
    return {name: out[name] for name in config.param_shapes()}

