"""The speech network: feature frames -> recurrent layer -> either one class per utterance (isolated words, the
seed's many-to-one network with frames instead of word vectors) or one distribution per frame, trained with CTC
(connected words).

    out = recurrent(x)                                 x (N, T, F) frames, out (N, T, dirs·H)
    objective "classify":  f = dropout(pool(out))      (N, dirs·H), pool = mean or max over the real frames
                           logits = f W_headᵀ + b      (N, C)     loss = mean cross-entropy
    objective "ctc":       logits = dropout(out) W_headᵀ + b   (N, T, C), symbol 0 the blank
                           loss = CTC (nn.ctc, torch's "mean": per label, averaged over the batch)

Dropout (inverted, training only) acts between recurrent layers and on the head's input. Parameter names
follow a PyTorch module with submodules ``rnn`` (nn.RNN/GRU/LSTM) and ``head`` (nn.Linear).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from unrolled.nn._validation import check_choice, check_float_array, check_mask, check_positive_int
from unrolled.nn.ctc import CTCCache, ctc_backward, ctc_forward
from unrolled.nn.dropout import DropoutCache, dropout_backward, dropout_forward
from unrolled.nn.linear import LinearCache, init_linear_params, linear_backward, linear_forward
from unrolled.nn.losses import CrossEntropyCache, softmax_cross_entropy_backward, softmax_cross_entropy_forward
from unrolled.nn.pooling import PoolCache, pool_backward, pool_forward
from unrolled.nn.recurrent_layer import (
    RecurrentCache,
    RecurrentConfig,
    init_recurrent_params,
    recurrent_backward,
    recurrent_forward,
)

Params = dict[str, np.ndarray]
OBJECTIVES = ("classify", "ctc")
SPEECH_POOLINGS = ("mean", "max")
BLANK = 0  # the CTC blank's symbol index


@dataclass(frozen=True)
class SpeechNetConfig:
    input_size: int  # F, features per frame
    hidden_size: int  # H
    num_outputs: int  # C: classes ("classify") or symbols with the blank at 0 ("ctc")
    objective: str = "classify"
    cell: str = "gru"
    num_layers: int = 2
    bidirectional: bool = True
    dropout: float = 0.0
    pooling: str = "mean"  # classify only

    def __post_init__(self) -> None:
        check_positive_int("input_size", self.input_size)
        check_positive_int("num_outputs", self.num_outputs)
        check_choice("objective", self.objective, OBJECTIVES)
        check_choice("pooling", self.pooling, SPEECH_POOLINGS)
        if self.num_outputs < 2:
            raise ValueError(f"num_outputs: expected at least 2, got {self.num_outputs}")
        self.recurrent  # validates the recurrent part

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "recurrent"}

    @cached_property
    def recurrent(self) -> RecurrentConfig:
        return RecurrentConfig(self.cell, self.input_size, self.hidden_size, self.num_layers, self.bidirectional,
                               self.dropout)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {"rnn." + name: shape for name, shape in self.recurrent.param_shapes().items()}
        shapes["head.weight"] = (self.num_outputs, self.recurrent.output_size)
        shapes["head.bias"] = (self.num_outputs,)
        return shapes


def init_speech_params(config: SpeechNetConfig, rng: np.random.Generator, *, dtype=np.float32) -> Params:
    """PyTorch's default initialisation, U(−1/√fan_in, 1/√fan_in), for the recurrent layer and the head."""
    params = {"rnn." + name: value for name, value in init_recurrent_params(config.recurrent, rng, dtype=dtype).items()}
    params["head.weight"], params["head.bias"] = init_linear_params(
        rng, config.num_outputs, config.recurrent.output_size, dtype=dtype)
    return params


@dataclass(frozen=True, eq=False)
class SpeechCache:
    config: SpeechNetConfig
    recurrent: RecurrentCache
    pool: PoolCache | None
    dropout: DropoutCache
    head: LinearCache
    loss: CrossEntropyCache | CTCCache


def speech_forward(
    params: Params,
    config: SpeechNetConfig,
    x: np.ndarray,
    mask: np.ndarray,
    *,
    targets: np.ndarray | None = None,
    target_lengths: np.ndarray | None = None,
    training: bool = False,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, float | None, SpeechCache | None]:
    """x (N, T, F), mask (N, T) -> logits ((N, C) or (N, T, C)), loss or None, cache (None without targets).

    Targets: classify, (N,) class indices; ctc, (N, S) padded symbol indices (never 0, the blank) with
    ``target_lengths`` (N,).
    """
    n, t_len, _ = check_float_array("x", x, (None, None, config.input_size)).shape
    check_mask("mask", mask, (n, t_len))
    lengths = mask.sum(axis=1)
    if (lengths == 0).any():
        raise ValueError(f"mask: utterance {int(np.argmin(lengths))} has no real frame")
    out, _, rec_cache = recurrent_forward(x, params, config.recurrent, mask=mask, training=training, rng=rng,
                                          prefix="rnn.")
    pool_cache = None
    if config.objective == "classify":
        features, pool_cache = pool_forward(out, mask, config.pooling, num_directions=config.recurrent.num_directions)
    else:
        features = out
    dropped, drop_cache = dropout_forward(features, config.dropout, training=training, rng=rng)
    logits, head_cache = linear_forward(dropped, params["head.weight"], params["head.bias"])
    if targets is None:
        return logits, None, None
    if config.objective == "classify":
        loss, loss_cache = softmax_cross_entropy_forward(logits, targets)
    else:
        if target_lengths is None:
            raise ValueError("target_lengths: CTC targets need their lengths")
        loss, loss_cache = ctc_forward(logits, lengths, targets, target_lengths, blank=BLANK, zero_infinity=False)
    return logits, float(loss), SpeechCache(config, rec_cache, pool_cache, drop_cache, head_cache, loss_cache)


def speech_backward(cache: SpeechCache) -> Params:
    """Gradients of the mean loss for every parameter."""
    if cache.config.objective == "classify":
        dlogits = softmax_cross_entropy_backward(cache.loss)
    else:
        dlogits = ctc_backward(cache.loss)
    ddropped, head_grads = linear_backward(dlogits, cache.head)
    dfeatures = dropout_backward(ddropped, cache.dropout)
    dout = pool_backward(dfeatures, cache.pool) if cache.pool is not None else dfeatures
    _, _, rec_grads = recurrent_backward(dout, None, cache.recurrent)
    grads = {"rnn." + name: value for name, value in rec_grads.items()}
    grads.update({"head." + name: value for name, value in head_grads.items()})
    return grads
