"""The seed's picture as a job that runs in a second: an RNN learns the sentiment of a few short sentences.

Words become vectors, the recurrent layer reads them one by one, the last hidden state goes through a
linear layer and a softmax to P(positive), cross-entropy compares it with the truth, and BPTT with Adam
trains every weight. The data is embedded here; training on real datasets is :mod:`unrolled.train`'s job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from unrolled.models.classifier_net import (
    ClassifierNetConfig,
    classifier_backward,
    classifier_forward,
    init_classifier_params,
)
from unrolled.nn._validation import check_positive_int
from unrolled.nn.losses import softmax
from unrolled.optim import Adam

LABELS = ("negative", "positive")
SENTENCES = (
    ("i love this", 1),
    ("i love this movie", 1),
    ("what a great film", 1),
    ("this is wonderful", 1),
    ("i really enjoyed it", 1),
    ("a great and moving story", 1),
    ("i like this a lot", 1),
    ("wonderful acting and a great story", 1),
    ("i hate this", 0),
    ("i hate this movie", 0),
    ("what a terrible film", 0),
    ("this is awful", 0),
    ("i really disliked it", 0),
    ("a boring and tedious story", 0),
    ("i do not like this", 0),
    ("awful acting and a boring story", 0),
)
PAD, UNK = "<pad>", "<unk>"


@dataclass(frozen=True)
class EpochReport:
    epoch: int  # 1-based
    loss: float  # mean training cross-entropy before this epoch's update
    accuracy: float  # training accuracy before this epoch's update


@dataclass(frozen=True)
class DemoModel:
    config: ClassifierNetConfig
    params: dict[str, np.ndarray]
    vocab: dict[str, int]  # word -> row of the embedding; 0 = <pad>, 1 = <unk>
    history: tuple[EpochReport, ...]

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Whitespace tokens -> ids (N, T) right-padded with 0 and the mask (N, T)."""
        rows = [[self.vocab.get(word, 1) for word in text.lower().split()] or [1] for text in texts]
        ids = np.zeros((len(rows), max(map(len, rows))), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        return ids, ids != 0

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """(N, 2) probabilities of (negative, positive)."""
        ids, mask = self.encode(texts)
        logits, _, _ = classifier_forward(self.params, self.config, ids, mask=mask)
        return softmax(logits)


def train_demo(
    *,
    cell: str = "rnn",
    epochs: int = 60,
    hidden_size: int = 16,
    embedding_dim: int = 8,
    lr: float = 0.01,
    seed: int = 0,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> DemoModel:
    """Train on :data:`SENTENCES` (full batch, Adam) and return the model with its loss history."""
    check_positive_int("epochs", epochs)
    words = sorted({w for text, _ in SENTENCES for w in text.split()})
    vocab = {PAD: 0, UNK: 1, **{w: i + 2 for i, w in enumerate(words)}}
    config = ClassifierNetConfig(len(vocab), embedding_dim, hidden_size, num_classes=2, cell=cell)
    rng = np.random.default_rng(seed)
    params = init_classifier_params(config, rng)
    model = DemoModel(config, params, vocab, ())
    ids, mask = model.encode([text for text, _ in SENTENCES])
    targets = np.array([label for _, label in SENTENCES])
    optimizer = Adam(params, lr=lr)
    history = []
    for epoch in range(1, epochs + 1):
        logits, loss, cache = classifier_forward(params, config, ids, mask=mask, targets=targets, training=True, rng=rng)
        report = EpochReport(epoch, loss, float(np.mean(logits.argmax(axis=1) == targets)))
        history.append(report)
        if on_epoch is not None:
            on_epoch(report)
        optimizer.step(classifier_backward(cache))
    return DemoModel(config, params, vocab, tuple(history))
