"""Held-out splits for corpora that ship without a dev set (IMDB, MR)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["split_dev"]


def split_dev(
    texts: Sequence[str], labels: Sequence[object], *, fraction: float = 0.1, seed: int = 0
) -> tuple[list[str], list[object], list[str], list[object]]:
    """Split off a stratified dev set: ``round(fraction · n_c)`` examples of every class ``c``, at random.

    Returns ``(train_texts, train_labels, dev_texts, dev_labels)``; both parts keep the input order. The
    same inputs, fraction and seed always give the same split.
    """
    if len(texts) != len(labels):
        raise ValueError(f"labels: expected {len(texts)} labels (one per text), got {len(labels)}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction: expected a number in (0, 1), got {fraction!r}")
    keys = np.array([str(label) for label in labels])
    rng = np.random.default_rng(seed)
    is_dev = np.zeros(len(keys), dtype=bool)
    for key in sorted(set(keys)):
        members = np.flatnonzero(keys == key)
        take = int(round(fraction * len(members)))
        if take >= len(members):
            raise ValueError(f"labels: class {key!r} has {len(members)} example(s), too few to hold out "
                             f"{fraction:.0%} and still train on it")
        is_dev[rng.choice(members, size=take, replace=False)] = True
    train = np.flatnonzero(~is_dev)
    dev = np.flatnonzero(is_dev)
    return ([texts[i] for i in train], [labels[i] for i in train], [texts[i] for i in dev], [labels[i] for i in dev])
