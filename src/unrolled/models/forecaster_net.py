"""The forecaster's network: a window of past values -> recurrent layer -> final state -> linear -> the next
``horizon`` values, all at once (direct multi-output forecasting).

    out, h_T = recurrent(x)                          x (N, W, F) the window; h_T (L, N, H)
    f = dropout(h_T[-1])                             (N, H) the top layer's final state
    pred = f W_headᵀ + b_head                        (N, K) K = horizon, one output per step ahead
    loss = mean over N·K of (pred - targets)²

Dimension letters: N windows, W window length (time steps), F features per step, H hidden units, L layers,
K horizon. Dropout (inverted, training only) acts between recurrent layers and on the final state.

Parameter names follow a PyTorch module with submodules ``rnn`` (nn.RNN/GRU/LSTM, batch_first) and ``head``
(nn.Linear): ``rnn.weight_ih_l0``, …, ``head.weight``, ``head.bias``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unrolled.nn._validation import check_positive_int

from unrolled.nn.dropout import DropoutCache, dropout_backward, dropout_forward
from unrolled.nn.linear import LinearCache, init_linear_params, linear_backward, linear_forward
from unrolled.nn.losses import MSECache, mse_backward, mse_forward
from unrolled.nn.recurrent_layer import (
    RecurrentCache,
    RecurrentConfig,
    init_recurrent_params,
    recurrent_backward,
    recurrent_forward,
    recurrent_params_of,
)

__all__ = [
    "ForecasterNetConfig",
    "ForecasterCache",
    "init_forecaster_params",
    "forecaster_forward",
    "forecaster_backward",
]

Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class ForecasterNetConfig:
    input_size: int  # F, features per time step (the target first)
    hidden_size: int  # H
    horizon: int  # K, steps predicted at once
    cell: str = "gru"
    num_layers: int = 1  # L
    dropout: float = 0.0  # between recurrent layers and on the final state, in training

    def __post_init__(self) -> None:
        for name in ("input_size", "horizon"):
            check_positive_int(name, getattr(self, name))
        self.recurrent  # validates cell, hidden_size, num_layers and dropout

    @property
    def recurrent(self) -> RecurrentConfig:
        return RecurrentConfig(self.cell, self.input_size, self.hidden_size, self.num_layers, dropout=self.dropout)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape, in the order of a PyTorch module's state dict."""
        shapes = {"rnn." + name: shape for name, shape in self.recurrent.param_shapes().items()}
        shapes["head.weight"] = (self.horizon, self.hidden_size)
        shapes["head.bias"] = (self.horizon,)
        return shapes


def init_forecaster_params(
    config: ForecasterNetConfig, rng: np.random.Generator, dtype: np.dtype | type = np.float64
) -> Params:
    """PyTorch's default initialisation: every entry ~ U(−1/√fan_in, 1/√fan_in) (fan_in = H for all)."""
    recurrent = init_recurrent_params(config.recurrent, rng, dtype=dtype)
    params: Params = {"rnn." + name: value for name, value in recurrent.items()}
    params["head.weight"], params["head.bias"] = init_linear_params(
        rng, config.horizon, config.hidden_size, dtype=dtype
    )
    return params


@dataclass(frozen=True, eq=False)
class ForecasterCache:
    config: ForecasterNetConfig
    recurrent: RecurrentCache
    feature_dropout: DropoutCache
    head: LinearCache
    loss: MSECache | None
    features: np.ndarray  # (N, H) the top layer's final state (before dropout)


def forecaster_forward(
    params: Params,
    config: ForecasterNetConfig,
    x: np.ndarray,
    *,
    targets: np.ndarray | None = None,
    training: bool = False,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, float | None, ForecasterCache]:
    """x (N, W, F), targets (N, K) or None -> pred (N, K), loss (mean squared error) or None, cache.

    ``rng`` draws the dropout masks in training (needed when ``config.dropout`` > 0).
    """
    out, state, rec_cache = recurrent_forward(
        x, recurrent_params_of(params), config.recurrent, training=training, rng=rng
    )
    h_top = config.recurrent.hidden_of(state)  # (L, N, H); for LSTM the h of (h, c)
    features = h_top[-1]  # (N, H)
    dropped, feat_drop = dropout_forward(features, config.dropout, training=training, rng=rng)
    pred, head_cache = linear_forward(dropped, params["head.weight"], params["head.bias"])
    loss, loss_cache = None, None
    if targets is not None:
        loss, loss_cache = mse_forward(pred, targets)
    return pred, loss, ForecasterCache(config, rec_cache, feat_drop, head_cache, loss_cache, features)


def forecaster_backward(cache: ForecasterCache) -> Params:
    """Gradients of the mean squared error for every parameter, under the parameters' names."""
    if cache.loss is None:
        raise ValueError("cache: the forward pass had no targets, so there is no loss to differentiate")
    config = cache.config
    dpred = mse_backward(cache.loss)
    ddropped, head_grads = linear_backward(dpred, cache.head)
    dfeatures = dropout_backward(ddropped, cache.feature_dropout)
    dh = np.zeros((config.num_layers,) + dfeatures.shape, dtype=dfeatures.dtype)  # (L, N, H)
    dh[-1] = dfeatures  # only the top layer's final state feeds the head
    dstate = config.recurrent.state_of_hidden(dh)  # the final cell state feeds nothing
    _, _, rec_grads = recurrent_backward(None, dstate, cache.recurrent)
    grads: Params = {"rnn." + name: value for name, value in rec_grads.items()}
    grads.update({"head." + name: value for name, value in head_grads.items()})
    return grads
