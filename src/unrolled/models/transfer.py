"""Fine-tuning a classifier from a pretrained language model (Dai & Le 2015; ULMFiT, Howard & Ruder 2018).

A word-level :class:`unrolled.RNNLanguageModel` and an :class:`unrolled.RNNClassifier` share their lower
part under the same tensor names, ``embedding.weight`` and ``rnn.*``; only the heads differ (next word vs
class). ``RNNClassifier(init_from=LMDIR)`` starts from the language model's vocabulary and those tensors,
with a new head:

- :func:`load_language_model` reads the checkpoint and refuses what cannot carry over (not a language model,
  character level), :func:`check_same_network` refuses a classifier of another shape, naming both, and
  :func:`check_directions` language models that read the other way;
- :func:`carried_tensors`: every tensor but the head's; with a backward language model as well (a
  bidirectional classifier: ``init_from_backward``), its recurrent layer under the ``_reverse`` names, after
  :func:`check_shared_embedding` has made sure both read the same word vectors;
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
    "check_directions",
    "check_same_network",
    "check_shared_embedding",
    "discriminative_lr_scales",
    "layer_groups",
    "load_language_model",
    "pretraining_record",
    "trainable_in_epoch",
]

_LAYER = re.compile(r"_l(\d+)(_reverse)?$")


def load_language_model(path: str | Path, option: str = "init_from"):
    """The language model at ``path`` (a checkpoint directory), refused unless it is word level; ``option``
    names the parameter that gave it, in the messages."""
    from unrolled.models.language_model import RNNLanguageModel

    try:
        model = RNNLanguageModel.load(path)
    except ValueError as error:  # CheckpointError included: the message names the file
        raise ValueError(f"{option}: {error}") from None
    if model.level != "word":
        raise ValueError(f"{option}: {path} is a {model.level}-level language model; a classifier reads words, "
                         "so it needs one trained with level 'word'")
    return model


def check_same_network(lm, path: str | Path, *, cell: str, embedding_dim: int, hidden_size: int, num_layers: int,
                       option: str = "init_from") -> None:
    """Refuse a classifier whose embedding or recurrent layer differs from the language model's (given as
    ``option``)."""
    lm_config = lm.net_config_
    theirs = dict(cell=lm_config.cell, embedding_dim=lm_config.embedding_dim, hidden_size=lm_config.hidden_size,
                  num_layers=lm_config.num_layers)
    ours = dict(cell=cell, embedding_dim=embedding_dim, hidden_size=hidden_size, num_layers=num_layers)
    differ = [f"{name} {ours[name]!r} (the language model's: {theirs[name]!r})"
              for name in theirs if ours[name] != theirs[name]]
    if differ:
        raise ValueError(f"{option}: {path} has another network than this classifier: {'; '.join(differ)}; "
                         "give the language model's cell and sizes")


def check_directions(lm, path: str | Path, lm_backward, backward_path: str | Path | None, *, bidirectional: bool,
                     num_layers: int) -> None:
    """Refuse language models that do not match the classifier's directions: init_from's ``lm`` must read left
    to right, init_from_backward's ``lm_backward`` (None: not given) right to left, and the latter is there
    exactly when the classifier is bidirectional, with one layer (a bidirectional layer 2 reads 2·H inputs)."""
    if lm.direction != "forward":
        raise ValueError(f"init_from: {path} reads right to left (direction {lm.direction!r}); it can start a "
                         "bidirectional classifier's backward direction: give it as init_from_backward")
    if lm_backward is None:
        if bidirectional:
            raise ValueError(f"init_from: {path} is a left-to-right language model and has no backward direction "
                             "to carry over; set bidirectional False, or give a backward model as "
                             "init_from_backward")
        return
    if lm_backward.direction != "backward":
        raise ValueError(f"init_from_backward: {backward_path} reads left to right (direction "
                         f"{lm_backward.direction!r}); give a backward language model (train --task lm "
                         "--direction backward)")
    if not bidirectional:
        raise ValueError(f"init_from_backward: {backward_path} starts the right-to-left direction, which this "
                         "classifier lacks; set bidirectional True")
    if num_layers != 1:
        raise ValueError(f"init_from_backward: a bidirectional classifier's layer 2 reads both directions' states "
                         f"(2·H inputs) where a language model's reads H, so only one layer carries over; set "
                         f"num_layers 1 (got {num_layers})")


def check_shared_embedding(lm, path: str | Path, lm_backward, backward_path: str | Path) -> None:
    """Refuse two language models that do not read one vocabulary with one embedding (a bidirectional
    classifier has one embedding for both directions)."""
    import numpy as np

    if lm_backward.vocab_.tokens != lm.vocab_.tokens:
        raise ValueError(f"init_from_backward: {backward_path} has another vocabulary than {path} "
                         f"({len(lm_backward.vocab_):,} and {len(lm.vocab_):,} tokens); train the backward model "
                         "with init_from the forward one")
    if not np.array_equal(lm_backward.params_["embedding.weight"], lm.params_["embedding.weight"]):
        raise ValueError(f"init_from_backward: {backward_path} has another embedding than {path}; train the "
                         "backward model with init_from the forward one and freeze_embeddings, so both directions "
                         "read the same word vectors")


def carried_tensors(lm, lm_backward=None) -> dict[str, Any]:
    """Copies of the language model's ``embedding.weight`` and ``rnn.*`` tensors (not its head), each on a
    cache line (see ``fused.on_cache_line``); with ``lm_backward``, its ``rnn.*`` tensors as well, under the
    names of the right-to-left direction (``rnn.weight_ih_l0`` -> ``rnn.weight_ih_l0_reverse``)."""
    from unrolled.nn.fused import cache_line_copy

    carried = {name: cache_line_copy(value) for name, value in lm.params_.items()
               if name == "embedding.weight" or name.startswith("rnn.")}
    if lm_backward is not None:
        carried.update({f"{name}_reverse": cache_line_copy(value) for name, value in lm_backward.params_.items()
                        if name.startswith("rnn.")})
    return carried


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
