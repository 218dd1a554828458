"""Classification metrics (accuracy, per-class precision/recall/F1, confusion matrix) and sequence ones
(edit distance, symbol error rate)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ClassificationReport:
    labels: tuple[str, ...]  # C class names, in index order
    accuracy: float
    precision: np.ndarray  # (C,)
    recall: np.ndarray  # (C,)
    f1: np.ndarray  # (C,)
    support: np.ndarray  # (C,) true items per class
    confusion: np.ndarray  # (C, C) rows = true class, columns = predicted class

    def to_json(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "n": int(self.support.sum()),
            "per_class": {
                name: {
                    "precision": float(self.precision[i]),
                    "recall": float(self.recall[i]),
                    "f1": float(self.f1[i]),
                    "support": int(self.support[i]),
                }
                for i, name in enumerate(self.labels)
            },
            "macro_f1": float(self.f1.mean()),
            "confusion_matrix": {"labels": list(self.labels), "rows_true_columns_predicted": self.confusion.tolist()},
        }


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts: entry [i, j] = items of true class i predicted as j."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, labels: tuple[str, ...]) -> ClassificationReport:
    """Metrics of integer predictions against integer truths; a ratio with a zero denominator is 0."""
    if len(y_true) == 0:
        raise ValueError("y_true: no items to evaluate")
    confusion = confusion_matrix(y_true, y_pred, len(labels))
    true_pos = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    precision = np.divide(true_pos, predicted, out=np.zeros_like(true_pos), where=predicted > 0)
    recall = np.divide(true_pos, support, out=np.zeros_like(true_pos), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(true_pos), where=denom > 0)
    accuracy = float(true_pos.sum() / len(y_true))
    return ClassificationReport(tuple(labels), accuracy, precision, recall, f1, support, confusion)


def edit_distance(reference: Sequence[object], hypothesis: Sequence[object]) -> int:
    """The Levenshtein distance: the fewest substitutions, deletions and insertions turning one into the other."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def symbol_error_rate(references: Sequence[Sequence[object]], hypotheses: Sequence[Sequence[object]]) -> float:
    """Σ edit distances / Σ reference lengths (the word, character or digit error rate of a corpus)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"hypotheses: {len(hypotheses)} for {len(references)} references")
    total = sum(len(ref) for ref in references)
    if total == 0:
        raise ValueError("references: no symbols to score against")
    return sum(edit_distance(ref, hyp) for ref, hyp in zip(references, hypotheses)) / total
