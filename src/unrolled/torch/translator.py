"""The translation network in PyTorch, with the same parameter names (``unrolled.torch.to_torch`` builds it
from an :class:`unrolled.RNNTranslator`; the torch engine trains it). The equations are those of
:mod:`unrolled.models.translator_net` and :mod:`unrolled.nn.decoder`: the encoder reads packed sequences
(``pack_padded_sequence``), so padded source steps change nothing, as the engine's masks.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from unrolled.models.translator_net import TranslatorNetConfig

__all__ = ["TorchTranslator"]

_RNNS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class _Attention(nn.Module):
    def __init__(self, score: str, query_size: int, key_size: int, attention_size: int) -> None:
        super().__init__()
        self.score = score
        if score == "additive":
            self.query = nn.Linear(query_size, attention_size, bias=False)
            self.key = nn.Linear(key_size, attention_size, bias=False)
            self.v = nn.Linear(attention_size, 1, bias=False)
        elif score == "general":
            self.weight = nn.Parameter(torch.empty(query_size, key_size))

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor):
        """queries (N, T, Q), keys (N, S, K), mask (N, S) -> context (N, T, K), weights (N, T, S)."""
        if self.score == "additive":
            hidden = torch.tanh(self.query(queries)[:, :, None, :] + self.key(keys)[:, None, :, :])
            scores = self.v(hidden)[..., 0]
        elif self.score == "general":
            scores = (queries @ self.weight) @ keys.transpose(1, 2)
        else:
            scores = queries @ keys.transpose(1, 2)
        weights = torch.softmax(scores.masked_fill(~mask[:, None, :], float("-inf")), dim=2)
        return weights @ keys, weights


class TorchTranslator(nn.Module):
    def __init__(self, config: TranslatorNetConfig, *, sparse_embeddings: bool = False) -> None:
        super().__init__()
        self.config = config
        e, h, layers = config.embedding_dim, config.hidden_size, config.num_layers
        rnn = _RNNS[config.cell]
        between = config.dropout if layers > 1 else 0.0  # torch's dropout between layers (none with one)
        self.encoder = nn.Module()
        self.encoder.embedding = nn.Embedding(config.source_vocab_size, e, sparse=sparse_embeddings)
        self.encoder.rnn = rnn(e, h, layers, batch_first=True, bidirectional=True, dropout=between)
        self.bridge = nn.Linear(2 * h, h)
        if config.cell == "lstm":
            self.bridge_cell = nn.Linear(2 * h, h)
        dec = config.decoder
        self.decoder = nn.Module()
        self.decoder.embedding = nn.Embedding(dec.vocab_size, e, sparse=sparse_embeddings)
        self.decoder.rnn = rnn(dec.recurrent.input_size, h, layers, batch_first=True, dropout=between)
        self.decoder.attention = _Attention(dec.score, h, dec.context_size,
                                            dec.attention_size if dec.attention_size is not None else h)
        self.decoder.combine = nn.Linear(dec.context_size + h, h, bias=False)
        self.decoder.out = nn.Linear(h, dec.vocab_size)
        self.dropout = nn.Dropout(config.dropout)

    def _bridge(self, final: torch.Tensor, linear: nn.Linear, squash: bool) -> torch.Tensor:
        layers, n, h = self.config.num_layers, final.shape[1], self.config.hidden_size
        joined = final.reshape(layers, 2, n, h).permute(0, 2, 1, 3).reshape(layers, n, 2 * h)
        value = linear(joined)
        return torch.tanh(value) if squash else value

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor):
        """src (N, S), src_mask (N, S) bool, tgt_in (N, T) -> logits (N, T, V), attention (N, T, S)."""
        x = self.dropout(self.encoder.embedding(src))
        lengths = src_mask.sum(dim=1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        keys, final = self.encoder.rnn(packed)
        keys, _ = pad_packed_sequence(keys, batch_first=True, total_length=src.shape[1])
        if self.config.cell == "lstm":
            state = (self._bridge(final[0], self.bridge, True), self._bridge(final[1], self.bridge_cell, False))
        else:
            state = self._bridge(final, self.bridge, True)
        y = self.dropout(self.decoder.embedding(tgt_in))
        if not self.config.input_feeding:
            h, _ = self.decoder.rnn(y, state)
            return self._output(h, keys, src_mask)
        n, t_len = tgt_in.shape
        output = y.new_zeros(n, 1, self.config.hidden_size)
        all_logits, all_weights = [], []
        for t in range(t_len):
            h, state = self.decoder.rnn(torch.cat([y[:, t : t + 1], output], dim=2), state)
            logits, weights, output = self._output(h, keys, src_mask, with_output=True)
            all_logits.append(logits)
            all_weights.append(weights)
        return torch.cat(all_logits, dim=1), torch.cat(all_weights, dim=1)

    def _output(self, h, keys, src_mask, with_output: bool = False):
        context, weights = self.decoder.attention(h, keys, src_mask)
        output = torch.tanh(self.decoder.combine(torch.cat([context, h], dim=2)))
        logits = self.decoder.out(self.dropout(output))
        return (logits, weights, output) if with_output else (logits, weights)
