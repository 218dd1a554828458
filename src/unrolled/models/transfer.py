"""Fine-tuning a classifier from a pretrained language model (Dai & Le 2015; ULMFiT, Howard & Ruder 2018).

A word-level :class:`unrolled.RNNLanguageModel` and an :class:`unrolled.RNNClassifier` share their lower
part under the same tensor names, ``embedding.weight`` and ``rnn.*``; only the heads differ (next word vs
class). ``RNNClassifier(init_from=LMDIR)`` starts from the language model's vocabulary and those tensors,
with a new head:

- :func:`load_language_model` reads the checkpoint and refuses what cannot carry over (not a language model,
  character level), :func:`check_same_network` refuses a classifier of another shape, naming both;
- :func:`carried_tensors`: every tensor but the head's;
- :func:`layer_groups`: the parameters from the top (the head) down to the embedding, one group per
  recurrent layer, for the two fine-tuning schedules:
  - discriminative learning rates (:func:`discriminative_lr_scales`): group g (0 = the head) trains at
    lr / decay^g (ULMFiT's decay is 2.6);
  - gradual unfreezing (:func:`trainable_in_epoch`): epoch 1 trains the head only, each later epoch one
    group more, until everything trains.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = [
    "carried_tensors",
    "check_same_network",
    "discriminative_lr_scales",
    "layer_groups",
    "load_language_model",
    "pretraining_record",
    "trainable_in_epoch",
]

_LAYER = re.compile(r"_l(\d+)(_reverse)?$")


def load_language_model(path: str | Path):
    """The language model at ``path`` (a checkpoint directory), refused unless it is word level."""
    from unrolled.models.language_model import RNNLanguageModel

    try:
        model = RNNLanguageModel.load(path)
    except ValueError as error:  # CheckpointError included: the message names the file
        raise ValueError(f"init_from: {error}") from None
    if model.level != "word":
        raise ValueError(f"init_from: {path} is a {model.level}-level language model; a classifier reads words, "
                         "so it needs one trained with level 'word'")
    return model


def check_same_network(lm, path: str | Path, *, cell: str, embedding_dim: int, hidden_size: int, num_layers: int,
                       bidirectional: bool) -> None:
    """Refuse a classifier whose embedding or recurrent layer differs from the language model's."""
    lm_config = lm.net_config_
    theirs = dict(cell=lm_config.cell, embedding_dim=lm_config.embedding_dim, hidden_size=lm_config.hidden_size,
                  num_layers=lm_config.num_layers)
    ours = dict(cell=cell, embedding_dim=embedding_dim, hidden_size=hidden_size, num_layers=num_layers)
    differ = [f"{name} {ours[name]!r} (the language model's: {theirs[name]!r})"
              for name in theirs if ours[name] != theirs[name]]
    if differ:
        raise ValueError(f"init_from: {path} has another network than this classifier: {'; '.join(differ)}; "
                         "give the language model's cell and sizes")
    if bidirectional:
        raise ValueError(f"init_from: {path} is a left-to-right language model and has no backward direction to "
                         "carry over; set bidirectional False")


def carried_tensors(lm) -> dict[str, Any]:
    """Copies of the language model's ``embedding.weight`` and ``rnn.*`` tensors (not its head), each on a
    cache line (see ``fused.on_cache_line``)."""
    from unrolled.nn.fused import cache_line_copy

    return {name: cache_line_copy(value) for name, value in lm.params_.items()
            if name == "embedding.weight" or name.startswith("rnn.")}


def layer_groups(param_names: list[str]) -> list[list[str]]:
    """The parameter names grouped from the top down: [head.*], [rnn layer L−1], …, [rnn layer 0],
    [embedding.weight] (both directions of a layer in one group)."""
    head = [name for name in param_names if name.startswith("head.")]
    layers: dict[int, list[str]] = {}
    for name in param_names:
        if name.startswith("rnn."):
            match = _LAYER.search(name)
            if match is None:
                raise ValueError(f"{name}: not a recurrent layer's parameter name (expected …_l<k>)")
            layers.setdefault(int(match.group(1)), []).append(name)
    embedding = [name for name in param_names if name == "embedding.weight"]
    return [head, *(layers[k] for k in sorted(layers, reverse=True)), embedding]


def discriminative_lr_scales(groups: list[list[str]], decay: float) -> dict[str, float]:
    """name -> 1 / decay^g for the names of group g (the head, g = 0, at the base learning rate)."""
    return {name: decay ** -depth for depth, names in enumerate(groups) for name in names}


def trainable_in_epoch(groups: list[list[str]], epoch: int) -> set[str]:
    """The names that train in ``epoch`` (1-based) under gradual unfreezing: the top ``epoch`` groups."""
    return {name for names in groups[:max(1, epoch)] for name in names}


def pretraining_record(lm, path: str | Path) -> dict[str, Any]:
    """What the classifier's checkpoint records of its start: the language model's path (or bundled name),
    network, vocabulary size, validation loss, and the corpus and command it was trained with (from the
    config.json it was loaded from)."""
    config = lm.config_
    return {"path": str(path), "model": dict(config.get("model", {})), "vocab_size": len(lm.vocab_),
            "val_loss": lm.val_loss_, "data": config.get("data"), "command": config.get("command")}
