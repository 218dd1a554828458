"""The engine: every differentiable unit as a ``*_forward`` / ``*_backward`` pair, NumPy only.

Dimension letters used in every docstring: N batch, T time, D input, E embedding, H hidden,
G gates (1 RNN, 3 GRU, 4 LSTM), V vocabulary, C classes.
"""

from unrolled.nn.attention import attention_backward, attention_forward, init_attention_params
from unrolled.nn.dropout import dropout_backward, dropout_forward
from unrolled.nn.embedding import SparseRows, embedding_backward, embedding_forward
from unrolled.nn.gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward
from unrolled.nn.linear import linear_backward, linear_forward
from unrolled.nn.losses import (
    log_softmax,
    mse_backward,
    mse_forward,
    sequence_cross_entropy_backward,
    sequence_cross_entropy_forward,
    softmax,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from unrolled.nn.lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward
from unrolled.nn.recurrent_layer import (
    RecurrentConfig,
    init_recurrent_params,
    load_state_dict,
    recurrent_backward,
    recurrent_forward,
    state_dict,
)
from unrolled.nn.rnn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward

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
