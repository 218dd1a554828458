"""The seed's many-to-one network: tokens -> embedding -> recurrent layer -> pooled states -> linear -> logits.

    x_t = dropout(E[ids_t])                          (N, T, E)
    out = recurrent(x)                               (N, T, dirs·H)
    f = dropout(pool(out))                           (N, dirs·H); pool = last (the seed's final state h_T,
                                                     each sequence's own last real step), max or mean
    logits = f W_headᵀ + b_head                      (N, C)
    loss = mean cross-entropy(softmax(logits), y)

Dropout (inverted, training only) acts on the word vectors, between recurrent layers and on the pooled
features, with one probability.

Parameter names follow a PyTorch module with submodules ``embedding`` (nn.Embedding), ``rnn``
(nn.RNN/GRU/LSTM) and ``head`` (nn.Linear): ``embedding.weight``, ``rnn.weight_ih_l0``, …, ``head.weight``,
``head.bias``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from unrolled.nn._validation import check_choice, check_index_array, check_mask, check_positive_int
from unrolled.nn.dropout import DropoutCache, dropout_backward, dropout_forward
from unrolled.nn.embedding import EmbeddingCache, SparseRows, embedding_backward, embedding_forward
from unrolled.nn.linear import LinearCache, init_linear_params, linear_backward, linear_forward
from unrolled.nn.losses import CrossEntropyCache, softmax_cross_entropy_backward, softmax_cross_entropy_forward
from unrolled.nn.pooling import POOLINGS, PoolCache, pool_backward, pool_forward
from unrolled.nn.projection_table import ProjectionTable, tables_available
from unrolled.nn.recurrent_layer import (
    RecurrentCache,
    RecurrentConfig,
    init_recurrent_params,
    recurrent_backward,
    recurrent_forward,
)
from unrolled.nn.time_loop import input_projection_in_c

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
    dropout: float = 0.0  # on word vectors, between recurrent layers and on the pooled features, in training
    nonlinearity: str = "tanh"
    padding_idx: int | None = 0
    pooling: str = "last"  # last | max | mean

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embedding_dim", "num_classes"):
            check_positive_int(name, getattr(self, name))
        if self.num_classes < 2:
            raise ValueError(f"num_classes: expected at least 2, got {self.num_classes}")
        if self.padding_idx is not None and not 0 <= self.padding_idx < self.vocab_size:
            raise ValueError(f"padding_idx: expected a row in [0, {self.vocab_size}), got {self.padding_idx}")
        check_choice("pooling", self.pooling, POOLINGS)
        self.recurrent  # validates the recurrent part

    def __getstate__(self) -> dict:
        """Pickled without the cached recurrent config (rebuilt on first use)."""
        return {k: v for k, v in self.__dict__.items() if k != "recurrent"}

    @cached_property  # built and validated once per config (frozen: it cannot change)
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
    params["head.weight"], params["head.bias"] = init_linear_params(
        rng, config.num_classes, config.recurrent.output_size, dtype=dtype
    )
    return params


@dataclass(frozen=True, eq=False)
class ClassifierCache:
    config: ClassifierNetConfig
    embedding: EmbeddingCache
    embedding_dropout: DropoutCache
    recurrent: RecurrentCache
    pool: PoolCache | None  # None for 'last' pooling, which reads the final states
    feature_dropout: DropoutCache
    head: LinearCache
    loss: CrossEntropyCache | None
    outputs: np.ndarray  # (N, T, dirs·H) the recurrent layer's outputs (zero at padded steps)
    features: np.ndarray  # (N, dirs·H) the pooled features fed to the head (before dropout)
    logits: np.ndarray  # (N, C)


@dataclass
class BackwardRecord:
    """What :func:`classifier_backward` records when handed one (explain's view of the backward pass).

    dstates[(layer, direction)] (T, N, H): the total gradient reaching that direction's hidden state h at
    each step, in time order (what ``h_t.grad`` is in an autograd framework); dx (N, T, E): the gradient of
    the word vectors; loss: the loss the gradients are of.
    """

    dstates: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    dx: np.ndarray | None = None
    loss: float | None = None


def classifier_forward(
    params: Params,
    config: ClassifierNetConfig,
    ids: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    targets: np.ndarray | None = None,
    training: bool = False,
    rng: np.random.Generator | None = None,
    keep_cache: bool = True,
    projections: tuple[ProjectionTable, ...] | None = None,
) -> tuple[np.ndarray, float | None, ClassifierCache | None]:
    """ids (N, T) int, mask (N, T) bool, targets (N,) int or None -> logits (N, C), loss or None, cache.

    ``rng`` draws the dropout masks in training (needed when ``config.dropout`` > 0).
    ``keep_cache=False`` is inference, what prediction calls: the same computation and the same logits, bit
    for bit, with no caches (cache None) and the parameters taken as the model's own (names, shapes and
    values checked where they came in); for one short sentence the caches and checks cost twice the
    arithmetic.
    ``projections``: inference only, :func:`projection_tables` of these params: where the time loop would
    compute the first layer's input projection in C (a few rows), its rows come from the tables instead,
    the same values, with no embedding lookup or product.
    """
    n, t_len = check_index_array("ids", ids, config.vocab_size, (None, None)).shape
    if t_len == 0:
        raise ValueError("ids: no time steps (shape (N, 0)): nothing to pool")
    if mask is not None:
        check_mask("mask", mask, (n, t_len))
        if not mask.any(axis=1).all():
            raise ValueError(f"mask: sequence {int(np.argmin(mask.any(axis=1)))} has no real step to pool")
    # Inference checks the inputs (above), not the model's own parameters and intermediate arrays.
    p, rec, check = config.dropout, config.recurrent, keep_cache
    if projections is not None and (keep_cache or training):
        raise ValueError("projections: for inference (keep_cache=False, training=False) only")
    first = None
    if projections is not None and projections_apply(config, ids, mask):
        ids_tm = ids.T  # (T, N): the rows come out time-major, as the loop reads them
        first = tuple(table.rows(ids_tm) for table in projections)
        x = None
    else:
        x, emb_cache = embedding_forward(ids, params["embedding.weight"], config.padding_idx, check=check)
        x, emb_drop = dropout_forward(x, p, training=training, rng=rng, check=check)
    out, state_final, rec_cache = recurrent_forward(
        x, params, rec, mask=mask, training=training, rng=rng, prefix="rnn.", keep_cache=keep_cache,
        input_projections=first,
    )
    if config.pooling == "last":  # each direction's final state (padded steps carry the state through)
        features, pool_cache = _final_state_features(state_final, rec), None
    else:
        features, pool_cache = pool_forward(out, mask, config.pooling, num_directions=rec.num_directions,
                                            check=check)
    dropped, feat_drop = dropout_forward(features, p, training=training, rng=rng, check=check)
    logits, head_cache = linear_forward(dropped, params["head.weight"], params["head.bias"], check=check)
    loss, loss_cache = None, None
    if targets is not None:
        loss, loss_cache = softmax_cross_entropy_forward(logits, targets)
    if not keep_cache:
        return logits, loss, None
    cache = ClassifierCache(
        config, emb_cache, emb_drop, rec_cache, pool_cache, feat_drop, head_cache, loss_cache, out, features, logits
    )
    return logits, loss, cache


def classifier_backward(
    cache: ClassifierCache, *, targets: np.ndarray | None = None, record: BackwardRecord | None = None
) -> Grads:
    """Gradients of the mean loss for every parameter; ``embedding.weight``'s is sparse (SparseRows).

    targets (N,) int: take the loss against these classes instead of the forward pass's targets (explain
    asks for the gradient of a chosen class); record: a :class:`BackwardRecord` to fill with the
    per-step state gradients, the word vectors' gradient and the loss.
    """
    if targets is not None:
        loss, loss_cache = softmax_cross_entropy_forward(cache.logits, targets)
    elif cache.loss is None:
        raise ValueError("cache: the forward pass had no targets, so there is no loss to differentiate")
    else:
        loss, loss_cache = None, cache.loss
    dlogits = softmax_cross_entropy_backward(loss_cache)
    ddropped, head_grads = linear_backward(dlogits, cache.head)
    dfeatures = dropout_backward(ddropped, cache.feature_dropout)
    dstates = None if record is None else record.dstates
    if cache.pool is None:
        # 'last' pools each direction's final state, so the gradient enters as the final state's: no (N, T, F)
        # array of zeros to check and add step by step.
        dx, _, rec_grads = recurrent_backward(
            None, _final_state_gradient(dfeatures, cache.config), cache.recurrent, dstates_out=dstates
        )
    else:
        dx, _, rec_grads = recurrent_backward(
            pool_backward(dfeatures, cache.pool), None, cache.recurrent, dstates_out=dstates
        )
    dx = dropout_backward(dx, cache.embedding_dropout)
    if record is not None:
        record.dx = dx
        record.loss = float(loss) if loss is not None else None
    grads: Grads = {"embedding.weight": embedding_backward(dx, cache.embedding)}
    grads.update({"rnn." + name: value for name, value in rec_grads.items()})
    grads.update({"head." + name: value for name, value in head_grads.items()})
    return grads


def projection_tables(params: Params, config: ClassifierNetConfig) -> tuple[ProjectionTable, ...] | None:
    """One :class:`~unrolled.nn.projection_table.ProjectionTable` per direction of the first recurrent layer
    (marking the embedding and those input weights read-only), or None where this build has no use for them
    (see ``tables_available``)."""
    if not tables_available(params["embedding.weight"].dtype):
        return None
    return tuple(ProjectionTable(*sources) for sources in _table_sources(params, config))


def projections_apply(config: ClassifierNetConfig, ids: np.ndarray, mask: np.ndarray | None) -> bool:
    """Whether classifier_forward reads a batch's first-layer projection from tables (ids (N, T), mask (N, T)
    or None): where the time loop would compute it in C (time_loop.input_projection_in_c), a few rows."""
    rec = config.recurrent
    n, t_len = ids.shape
    return input_projection_in_c(rec.kernel, t_len, n, rec.hidden_size, None if mask is None else mask.T)


def tables_match(params: Params, config: ClassifierNetConfig, tables: tuple[ProjectionTable, ...]) -> bool:
    """Whether ``tables`` (of :func:`projection_tables`) were built from these params' arrays."""
    return all(table.made_from(*sources) for table, sources in zip(tables, _table_sources(params, config)))


def _table_sources(params: Params, config: ClassifierNetConfig) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(embedding, weight_ih, bias_ih) of each direction of the first recurrent layer: what a table reads."""
    rec = config.recurrent
    layer0 = [rec.direction_params(params, 0, d, "rnn.") for d in range(rec.num_directions)]
    return [(params["embedding.weight"], p["weight_ih"], p["bias_ih"]) for p in layer0]


def _final_state_features(state_final, rec: RecurrentConfig) -> np.ndarray:
    """'last' pooling: the top layer's final state of each direction, concatenated -> (N, dirs·H)."""
    h = rec.hidden_of(state_final)  # (L·dirs, N, H)
    top = h[(rec.num_layers - 1) * rec.num_directions :]
    return top[0] if len(top) == 1 else np.concatenate(list(top), axis=1)


def _final_state_gradient(dfeatures: np.ndarray, config: ClassifierNetConfig):
    """dfeatures (N, dirs·H) of 'last' pooling -> the gradient of the recurrent layer's final state, in its
    layout ((L·dirs, N, H); for an LSTM the pair (h, None): the final c feeds nothing)."""
    rec = config.recurrent
    n, hidden = dfeatures.shape[0], rec.hidden_size
    dh = np.zeros((rec.num_layers * rec.num_directions, n, hidden), dtype=dfeatures.dtype)
    top = (rec.num_layers - 1) * rec.num_directions
    for direction in range(rec.num_directions):
        dh[top + direction] = dfeatures[:, direction * hidden : (direction + 1) * hidden]
    return rec.state_of_hidden(dh)
