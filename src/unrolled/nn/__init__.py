"""The engine: every differentiable unit as a ``*_forward`` / ``*_backward`` pair, NumPy only.

Dimension letters used in every docstring: N batch, T time, D input, E embedding, H hidden,
G gates (1 RNN, 3 GRU, 4 LSTM), V vocabulary, C classes.

Each forward pass returns its cache for the backward pass: a frozen dataclass with ``eq=False``, since it holds
arrays (which ``==`` cannot compare) and the ``__eq__``/``__hash__`` it would otherwise generate cost import time.

The names below are imported from their modules on first use (PEP 562), so that a program that needs one
module (``unrolled predict`` needs the forward passes of one cell) does not pay for importing all of them.
"""
from typing import TYPE_CHECKING

from unrolled._lazy import lazy_exports

# public name -> the module of unrolled.nn that defines it
_LAZY = {
    "attention_backward": "attention",
    "attention_forward": "attention",
    "init_attention_params": "attention",
    "dropout_backward": "dropout",
    "dropout_forward": "dropout",
    "SparseRows": "embedding",
    "embedding_backward": "embedding",
    "embedding_forward": "embedding",
    "gru_backward": "gru",
    "gru_forward": "gru",
    "gru_step_backward": "gru",
    "gru_step_forward": "gru",
    "linear_backward": "linear",
    "linear_forward": "linear",
    "log_softmax": "losses",
    "mse_backward": "losses",
    "mse_forward": "losses",
    "sequence_cross_entropy_backward": "losses",
    "sequence_cross_entropy_forward": "losses",
    "softmax": "losses",
    "softmax_cross_entropy_backward": "losses",
    "softmax_cross_entropy_forward": "losses",
    "lstm_backward": "lstm",
    "lstm_forward": "lstm",
    "lstm_step_backward": "lstm",
    "lstm_step_forward": "lstm",
    "RecurrentConfig": "recurrent_layer",
    "init_recurrent_params": "recurrent_layer",
    "load_state_dict": "recurrent_layer",
    "recurrent_backward": "recurrent_layer",
    "recurrent_forward": "recurrent_layer",
    "state_dict": "recurrent_layer",
    "rnn_backward": "rnn",
    "rnn_forward": "rnn",
    "rnn_step_backward": "rnn",
    "rnn_step_forward": "rnn",
}

__all__ = [
    "RecurrentConfig",
    "attention_backward",
    "attention_forward",
    "init_attention_params",
    "sequence_cross_entropy_backward",
    "sequence_cross_entropy_forward",
    "SparseRows",
    "dropout_backward",
    "dropout_forward",
    "embedding_backward",
    "embedding_forward",
    "gru_backward",
    "gru_forward",
    "gru_step_backward",
    "gru_step_forward",
    "init_recurrent_params",
    "linear_backward",
    "linear_forward",
    "load_state_dict",
    "log_softmax",
    "lstm_backward",
    "lstm_forward",
    "lstm_step_backward",
    "lstm_step_forward",
    "mse_backward",
    "mse_forward",
    "recurrent_backward",
    "recurrent_forward",
    "rnn_backward",
    "rnn_forward",
    "rnn_step_backward",
    "rnn_step_forward",
    "softmax",
    "softmax_cross_entropy_backward",
    "softmax_cross_entropy_forward",
    "state_dict",
]

if TYPE_CHECKING:  # what type checkers and IDEs see
    from unrolled.nn.attention import attention_backward, attention_forward, init_attention_params
    from unrolled.nn.dropout import dropout_backward, dropout_forward
    from unrolled.nn.embedding import SparseRows, embedding_backward, embedding_forward
    from unrolled.nn.gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward
    from unrolled.nn.linear import linear_backward, linear_forward
    from unrolled.nn.losses import (log_softmax, mse_backward, mse_forward, sequence_cross_entropy_backward,
                                    sequence_cross_entropy_forward, softmax, softmax_cross_entropy_backward,
                                    softmax_cross_entropy_forward)
    from unrolled.nn.lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward
    from unrolled.nn.recurrent_layer import (RecurrentConfig, init_recurrent_params, load_state_dict,
                                             recurrent_backward, recurrent_forward, state_dict)
    from unrolled.nn.rnn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
