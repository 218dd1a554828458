"""PyTorch twins of unrolled's networks: the same equations, the same parameter names (so a checkpoint's tensors
load with ``load_state_dict`` as they are), the same pooling, masking and heads.

    TorchClassifier(ClassifierNetConfig)      forward(ids (N, T), mask (N, T)) -> logits (N, C)
    TorchLanguageModel(LMNetConfig)           forward(ids (N, T), state0) -> logits (N, T, V), state_final
    TorchForecaster(ForecasterNetConfig)      forward(x (N, W, F)) -> predictions (N, K)
    TorchSpeechNet(SpeechNetConfig)           forward(x (N, T, F), mask (N, T)) -> logits (N, C) or (N, T, C)
    TorchTranslator(TranslatorNetConfig)      (unrolled.torch.translator) forward(src, src_mask, tgt_in)

Masks are right-padded (True on each sequence's first L_n steps), as unrolled's batches are: the recurrent
layers read packed sequences (``pack_padded_sequence``), so padded steps change nothing, as the NumPy engine's
masks; the reverse direction starts at each sequence's own last step. Dropout is ``nn.Dropout`` at the places the
NumPy networks put it (torch draws its own masks, so training runs with dropout agree in distribution, not in
numbers). ``sparse_embeddings=True`` makes the embeddings' gradients sparse (for torch code that wants them;
the torch engine keeps them dense and updates only the rows the batch's ids used, as the NumPy optimizers do).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from unrolled.models.classifier_net import ClassifierNetConfig
from unrolled.models.forecaster_net import ForecasterNetConfig
from unrolled.models.lm_net import LMNetConfig
from unrolled.models.speech_net import SpeechNetConfig
from unrolled.nn.recurrent_layer import RecurrentConfig

__all__ = ["TorchClassifier", "TorchForecaster", "TorchLanguageModel", "TorchSpeechNet", "recurrent_module"]

_RNNS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def recurrent_module(config: RecurrentConfig) -> nn.RNNBase:
    """nn.RNN/GRU/LSTM (batch_first) with the layer's sizes; torch's dropout between layers is unrolled's."""
    extra = {"nonlinearity": config.nonlinearity} if config.cell == "rnn" else {}
    between = config.dropout if config.num_layers > 1 else 0.0  # torch warns about dropout with one layer
    return _RNNS[config.cell](config.input_size, config.hidden_size, config.num_layers, batch_first=True,
                              bidirectional=config.bidirectional, dropout=between, **extra)


def run_packed(rnn: nn.RNNBase, x: torch.Tensor, mask: torch.Tensor):
    """x (N, T, D), mask (N, T) right-padded -> out (N, T, dirs·H) with zeros at padded steps, final state."""
    lengths = mask.sum(dim=1).cpu()
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, final = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, final


def _hidden(final):
    """h of an LSTM's (h, c) or the state itself."""
    return final[0] if isinstance(final, tuple) else final


def pool(out: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """unrolled.nn.pooling's max and mean over the real steps: out (N, T, F), mask (N, T) -> (N, F)."""
    keep = mask[:, :, None]
    if mode == "max":
        return out.masked_fill(~keep, float("-inf")).max(dim=1).values
    return (out * keep).sum(dim=1) / mask.sum(dim=1, keepdim=True).to(out.dtype)


def last_states(final, num_layers: int, num_directions: int) -> torch.Tensor:
    """'last' pooling: the top layer's final state of each direction, concatenated -> (N, dirs·H)."""
    top = _hidden(final)[(num_layers - 1) * num_directions :]
    return torch.cat(list(top), dim=1)


class TorchClassifier(nn.Module):
    """embedding -> dropout -> recurrent layer -> pooling (last, max, mean) -> dropout -> head."""

    def __init__(self, config: ClassifierNetConfig, *, sparse_embeddings: bool = False) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.padding_idx,
                                      sparse=sparse_embeddings)
        self.rnn = recurrent_module(config.recurrent)
        self.head = nn.Linear(config.recurrent.output_size, config.num_classes)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids (N, T) int64, mask (N, T) bool -> logits (N, C)."""
        rec = self.config.recurrent
        out, final = run_packed(self.rnn, self.dropout(self.embedding(ids)), mask)
        if self.config.pooling == "last":
            features = last_states(final, rec.num_layers, rec.num_directions)
        else:
            features = pool(out, mask, self.config.pooling)
        return self.head(self.dropout(features))


class _TiedHead(nn.Module):
    """The head of a language model with tied weights: only a bias of its own (``head.bias``)."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(vocab_size))


class TorchLanguageModel(nn.Module):
    """embedding -> dropout -> recurrent layer -> dropout -> head at every step; state carried in and out."""

    def __init__(self, config: LMNetConfig, *, sparse_embeddings: bool = False) -> None:
        super().__init__()
        self.config = config
        # A tied embedding is also the head's dense weight: its gradient is dense, as the NumPy engine's.
        sparse = sparse_embeddings and not config.tie_weights
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, sparse=sparse)
        self.rnn = recurrent_module(config.recurrent)
        self.head = _TiedHead(config.vocab_size) if config.tie_weights else nn.Linear(config.hidden_size,
                                                                                        config.vocab_size)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, ids: torch.Tensor, state0=None):
        """ids (N, T) int64, state0 h (L, N, H) or (h, c), or None -> logits (N, T, V), state_final."""
        out, state = self.rnn(self.dropout(self.embedding(ids)), state0)
        weight = self.embedding.weight if self.config.tie_weights else self.head.weight
        return nn.functional.linear(self.dropout(out), weight, self.head.bias), state


class TorchForecaster(nn.Module):
    """window -> recurrent layer -> the top layer's final state -> dropout -> head (the next K values)."""

    def __init__(self, config: ForecasterNetConfig) -> None:
        super().__init__()
        self.config = config
        self.rnn = recurrent_module(config.recurrent)
        self.head = nn.Linear(config.hidden_size, config.horizon)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, W, F) -> predictions (N, K), in the model's scaled units."""
        _, final = self.rnn(x)
        return self.head(self.dropout(_hidden(final)[-1]))


class TorchSpeechNet(nn.Module):
    """frames -> recurrent layer -> pooled -> head ("classify") or -> head at every frame ("ctc")."""

    def __init__(self, config: SpeechNetConfig) -> None:
        super().__init__()
        self.config = config
        self.rnn = recurrent_module(config.recurrent)
        self.head = nn.Linear(config.recurrent.output_size, config.num_outputs)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (N, T, F), mask (N, T) bool -> logits (N, C) ("classify") or (N, T, C) ("ctc", blank 0)."""
        out, _ = run_packed(self.rnn, x, mask)
        features = pool(out, mask, self.config.pooling) if self.config.objective == "classify" else out
        return self.head(self.dropout(features))
