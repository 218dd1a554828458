"""The seed's many-to-one network: tokens -> embedding -> recurrent layer -> final state -> linear -> logits.

    x_t = E[ids_t]                                   (N, T, E)
    h_T = recurrent(x)  (each sequence's own last real step; both directions' final states concatenated)
    logits = h_T W_headᵀ + b_head                    (N, C)
    loss = mean cross-entropy(softmax(logits), y)

Parameter names follow a PyTorch module with submodules ``embedding`` (nn.Embedding), ``rnn``
(nn.RNN/GRU/LSTM) and ``head`` (nn.Linear): ``embedding.weight``, ``rnn.weight_ih_l0``, …, ``head.weight``,
``head.bias``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unrolled.nn.embedding import EmbeddingCache, SparseRows, embedding_backward, embedding_forward
from unrolled.nn.linear import LinearCache, linear_backward, linear_forward
from unrolled.nn.losses import CrossEntropyCache, softmax_cross_entropy_backward, softmax_cross_entropy_forward
from unrolled.nn.recurrent import (
    RecurrentCache,
    RecurrentConfig,
    init_recurrent_params,
    recurrent_backward,
    recurrent_forward,
)

Params = dict[str, np.ndarray]
Grads = dict[str, np.ndarray | SparseRows]


@dataclass(frozen=True)
class ClassifierNetConfig:
    vocab_size: int  # V
    embedding_dim: int  # E
    hidden_size: int  # H
    num_classes: int  # C
    cell: str = "rnn"
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0  # between recurrent layers, in training
    nonlinearity: str = "tanh"
    padding_idx: int | None = 0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embedding_dim", "num_classes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes: expected at least 2, got {self.num_classes}")
        if self.padding_idx is not None and not 0 <= self.padding_idx < self.vocab_size:
            raise ValueError(f"padding_idx: expected a row in [0, {self.vocab_size}), got {self.padding_idx}")
        self.recurrent  # validates the recurrent part

    @property
    def recurrent(self) -> RecurrentConfig:
        return RecurrentConfig(
            self.cell, self.embedding_dim, self.hidden_size, self.num_layers, self.bidirectional,
            self.dropout, self.nonlinearity,
        )

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape, in the order of a PyTorch module's state dict."""
        shapes = {"embedding.weight": (self.vocab_size, self.embedding_dim)}
        shapes.update({"rnn." + name: shape for name, shape in self.recurrent.param_shapes().items()})
        shapes["head.weight"] = (self.num_classes, self.recurrent.output_size)
        shapes["head.bias"] = (self.num_classes,)
        return shapes


def init_classifier_params(
    config: ClassifierNetConfig, rng: np.random.Generator, *, dtype: np.dtype | type = np.float32
) -> Params:
    """PyTorch's default initialisation: embedding ~ N(0, 1) (padding row zero), recurrent and head
    ~ U(−1/√fan_in, 1/√fan_in)."""
    embedding = rng.standard_normal((config.vocab_size, config.embedding_dim)).astype(dtype)
    if config.padding_idx is not None:
        embedding[config.padding_idx] = 0.0
    params: Params = {"embedding.weight": embedding}
    recurrent = init_recurrent_params(config.recurrent, rng, dtype=dtype)
    params.update({"rnn." + name: value for name, value in recurrent.items()})
    fan_in = config.recurrent.output_size
    bound = 1.0 / np.sqrt(fan_in)
    params["head.weight"] = rng.uniform(-bound, bound, (config.num_classes, fan_in)).astype(dtype)
    params["head.bias"] = rng.uniform(-bound, bound, config.num_classes).astype(dtype)
    return params


@dataclass(frozen=True)
class ClassifierCache:
    config: ClassifierNetConfig
    embedding: EmbeddingCache
    recurrent: RecurrentCache
    head: LinearCache
    loss: CrossEntropyCache | None
    features: np.ndarray  # (N, dirs·H) the final states fed to the head
    final_state: object  # the recurrent layer's final state, (L·dirs, N, H) or (h, c)


def _recurrent_params(params: Params) -> Params:
    return {name[4:]: value for name, value in params.items() if name.startswith("rnn.")}


def classifier_forward(
    params: Params,
    config: ClassifierNetConfig,
    ids: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    targets: np.ndarray | None = None,
    training: bool = False,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, float | None, ClassifierCache]:
    """ids (N, T) int, mask (N, T) bool, targets (N,) int or None -> logits (N, C), loss or None, cache."""
    x, emb_cache = embedding_forward(ids, params["embedding.weight"], config.padding_idx)
    rec = config.recurrent
    _, final_state, rec_cache = recurrent_forward(
        x, _recurrent_params(params), rec, mask=mask, training=training, rng=rng
    )
    h_n = final_state[0] if rec.cell == "lstm" else final_state  # (L·dirs, N, H)
    last = h_n[(rec.num_layers - 1) * rec.num_directions :]  # (dirs, N, H): the top layer's directions
    features = np.concatenate(list(last), axis=1)  # (N, dirs·H)
    logits, head_cache = linear_forward(features, params["head.weight"], params["head.bias"])
    loss, loss_cache = None, None
    if targets is not None:
        loss, loss_cache = softmax_cross_entropy_forward(logits, targets)
    return logits, loss, ClassifierCache(config, emb_cache, rec_cache, head_cache, loss_cache, features, final_state)


def classifier_backward(cache: ClassifierCache) -> Grads:
    """Gradients of the mean loss for every parameter; ``embedding.weight``'s is sparse (SparseRows)."""
    if cache.loss is None:
        raise ValueError("cache: the forward pass had no targets, so there is no loss to differentiate")
    rec = cache.config.recurrent
    dlogits = softmax_cross_entropy_backward(cache.loss)
    dfeatures, head_grads = linear_backward(dlogits, cache.head)
    n, hidden = dfeatures.shape[0], rec.hidden_size
    dh_n = np.zeros((rec.num_layers * rec.num_directions, n, hidden), dtype=dfeatures.dtype)
    top = (rec.num_layers - 1) * rec.num_directions
    for d in range(rec.num_directions):
        dh_n[top + d] = dfeatures[:, d * hidden : (d + 1) * hidden]
    dstate = (dh_n, None) if rec.cell == "lstm" else dh_n
    dx, _, rec_grads = recurrent_backward(None, dstate, cache.recurrent)
    grads: Grads = {"embedding.weight": embedding_backward(dx, cache.embedding)}
    grads.update({"rnn." + name: value for name, value in rec_grads.items()})
    grads.update({"head." + name: value for name, value in head_grads.items()})
    return grads
