"""What a training run leaves behind: each epoch's :class:`EpochResult` and the run's :class:`TrainHistory`
(``estimator.history_``, config.json's "training.history").

Every checkpoint load reads a history, so these live apart from the training loop (:mod:`unrolled.train`,
which re-exports them) and its optimizers: loading a model to predict does not import training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["EpochResult", "TrainHistory"]


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based
    train_loss: float  # mean batch loss over the epoch
    dev_metric: float | None  # None without a dev set
    lr: float  # learning rate of the epoch's last step
    seconds: float  # wall time of the epoch, evaluation included
    improved: bool  # the dev metric is the best so far (always True without a dev set)


@dataclass
class TrainHistory:
    epochs: list[EpochResult] = field(default_factory=list)
    best_epoch: int | None = None
    best_metric: float | None = None
    stopped_early: bool = False
    seconds: float = 0.0

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrainHistory:
        """The inverse of :meth:`to_json` (KeyError/TypeError on a malformed object)."""
        return cls(
            epochs=[EpochResult(**epoch) for epoch in obj["epochs"]], best_epoch=obj["best_epoch"],
            best_metric=obj["best_metric"], stopped_early=obj["stopped_early"], seconds=obj["seconds"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "epochs": [asdict(e) for e in self.epochs],
            "best_epoch": self.best_epoch,
            "best_metric": self.best_metric,
            "stopped_early": self.stopped_early,
            "seconds": self.seconds,
        }
