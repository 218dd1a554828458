"""What every unrolled estimator shares: scikit-learn's parameter protocol and tags, the not-fitted error,
and the checkpoint skeleton (``save`` / ``load``) around a few hooks for what differs between them.

A subclass sets the class attributes ``KIND`` (its checkpoint kind), ``_CONFIG_NAME`` (how "invalid …
config" calls it), ``_FIT_CALL`` (how to fit it, for the not-fitted message), ``_estimator_type`` and the
``_SKLEARN_*`` tags, and implements:

    _config_fields()                       config.json fields of its own (between "estimator" and "training")
    _training_record()                     the "training" field (default: history and seconds)
    _restore_config(config)                set the learned attributes from config.json, ``net_config_`` first;
                                           a KeyError, TypeError or ValueError here means an invalid config
    _restore_checkpoint(checkpoint, path)  the rest (vocab.json, checks across fields), with its own messages

``load`` itself checks what every kind shares: the "estimator" field (known parameters, each of its type), the
training record (``history_``, ``training_seconds_``) and the tensors' dtypes (:mod:`unrolled.models._restore`).

Both sides keep the on-disk layout: config.json is ``{format, format_version, kind, model, estimator, <own
fields>, training, <extra>}`` and the tensors are ``params_`` under the names ``net_config_.param_shapes()``
gives.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from unrolled.checkpoint import Checkpoint, check_tensors, load_checkpoint, save_checkpoint
from unrolled.models import _restore as restore
from unrolled.pretrained import resolve

__all__ = ["Estimator", "NotFittedError"]

_E = TypeVar("_E", bound="Estimator")


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before ``fit`` (same bases as scikit-learn's, so sklearn code catches it)."""


class Estimator:
    """``get_params``/``set_params``/``repr`` from the keyword-only arguments of ``__init__``, which only
    stores them (so ``sklearn.base.clone`` works); scikit-learn tags; ``save``/``load`` of checkpoints."""

    KIND: ClassVar[str]  # the checkpoint kind, one of unrolled.checkpoint.KINDS
    _CONFIG_NAME: ClassVar[str]  # "classifier" in "<path>/config.json: invalid classifier config (…)"
    _FIT_CALL: ClassVar[str]  # "fit(texts, labels)" in the not-fitted message
    _estimator_type: ClassVar[str | None] = None  # "classifier", "regressor" or None (read by scikit-learn < 1.6)
    _SKLEARN_TARGET_REQUIRED: ClassVar[bool] = False  # fit needs y
    _SKLEARN_INPUT_TAGS: ClassVar[dict[str, bool]] = {}  # sklearn.utils.InputTags fields that differ from its defaults
    _BEST_METRIC: ClassVar[str | None] = None  # the attribute that holds the best dev metric after fit ("val_loss_")
    seconds_before_resume_: float = 0.0  # training time of a resumed run before it was interrupted

    # --- parameters ----------------------------------------------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        return [p.name for p in inspect.signature(cls.__init__).parameters.values() if p.kind == p.KEYWORD_ONLY]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Estimator:
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{name}: not a parameter of {type(self).__name__} (valid: {', '.join(valid)})")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = type(self)().get_params()
        changed = {k: v for k, v in self.get_params().items() if v != defaults[k]}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    # --- scikit-learn protocol -----------------------------------------------------------------------

    def __sklearn_tags__(self):  # scikit-learn >= 1.6 asks estimators for their tags
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags  # only from sklearn

        kind = self._estimator_type
        return Tags(
            estimator_type=kind, target_tags=TargetTags(required=self._SKLEARN_TARGET_REQUIRED),
            classifier_tags=ClassifierTags() if kind == "classifier" else None,
            regressor_tags=RegressorTags() if kind == "regressor" else None,
            input_tags=InputTags(**self._SKLEARN_INPUT_TAGS),
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call {self._FIT_CALL} or unrolled.load(path)"
            )

    # --- checkpoints ---------------------------------------------------------------------------------

    def _config_fields(self) -> dict[str, Any]:
        """The estimator's own config.json fields, written between "estimator" and "training"."""
        return {}

    def _training_record(self) -> dict[str, Any]:
        """The "training" field of config.json; with ``pretrained_from``, what a model that started from another
        (``init_from``: a fine-tuned classifier, a language model trained on) records of it (``pretrained_``)."""
        record = {"history": self.history_.to_json(), "seconds": self.training_seconds_, **self._runtime_record()}
        if getattr(self, "pretrained_", None) is not None:
            record["pretrained_from"] = self.pretrained_
        return record

    def _runtime_record(self) -> dict[str, Any]:
        """How the model was trained: engine, device, processes (absent for a model that predates them)."""
        return dict(getattr(self, "runtime_", {}))

    def _train_loop(self, make_batches, batch_loss, config, *, engine: str = "numpy", device: str | None = None,
                    distributed=None, torch_task=None, **options: Any):
        """:func:`unrolled.train.fit` on ``params_``, with the engine, device and process group of ``fit``'s
        arguments, recorded in ``runtime_`` (the checkpoint's "training" field)."""
        from unrolled.train import fit, resume_hooks

        used = device or "cpu"
        if distributed is not None and device == "cuda":
            used = f"cuda:{distributed.local_rank}"  # the GPU this process trains on (rank 0's, as saved)
        self.runtime_ = {"engine": engine, "device": used,
                         "processes": 1 if distributed is None else distributed.world_size}
        resumed = resume_hooks(options.get("callbacks", ()))[0]
        self.seconds_before_resume_ = 0.0 if resumed is None else resumed.seconds  # training_seconds_ counts them
        self._training = True  # predictions inside the loop (validation, callbacks) read arrays that change
        try:
            return fit(self.params_, make_batches, batch_loss, config, engine=engine, device=device,
                       distributed=distributed, torch_task=torch_task, **options)
        finally:
            self._training = False

    def _save_progress(self, path: str | Path, state, *, extra: dict[str, Any] | None = None,
                       training_state=None) -> Path:
        """Write a run in progress (:class:`unrolled.train.LoopState` ``state``) as a checkpoint of the best model
        so far, with ``training_state`` files beside it (:class:`unrolled.resume.Checkpointer` calls this)."""
        self.history_, self.training_seconds_ = state.history, state.seconds
        if self._BEST_METRIC is not None:
            setattr(self, self._BEST_METRIC, state.history.best_metric)
        tensors = state.best_params if state.best_params is not None else state.params
        extra = {**(extra or {}), "training": {**self._training_record(), "complete": False}}
        return self._write(path, tensors, extra, training_state)

    def _restore_config(self, config: dict[str, Any]) -> None:
        """Set the learned attributes that config.json holds (``net_config_`` among them)."""
        raise NotImplementedError

    def _restore_checkpoint(self, checkpoint: Checkpoint, path: Path) -> None:
        """Set or check what the rest of the checkpoint holds (vocab.json); raise with its own message."""

    def save(self, path: str | Path, *, extra: dict[str, Any] | None = None, storage: str | None = None) -> Path:
        """Write a checkpoint directory (model.safetensors, config.json and, with a vocabulary, vocab.json),
        atomically; ``extra`` adds fields to config.json (e.g. metrics).

        ``storage="float16"`` stores the weights rounded to float16 (half the file; config.json records
        ``"storage": "float16"``); :meth:`load` reads them back as float32, the precision they compute in.
        """
        self._check_fitted()
        if storage is None:
            return self._write(path, self.params_, extra)
        if storage not in restore.STORAGE_DTYPES:
            raise ValueError(f"storage: expected None or {' or '.join(map(repr, restore.STORAGE_DTYPES))}, "
                             f"got {storage!r}")
        return self._write(path, restore.float16_tensors(self.params_), {**(extra or {}), "storage": storage})

    def _write(self, path: str | Path, tensors: dict[str, Any], extra: dict[str, Any] | None,
               training_state=None) -> Path:
        config = {
            "model": asdict(self.net_config_),
            "estimator": self.get_params(),
            **self._config_fields(),
            "training": self._training_record(),
            **(extra or {}),
        }
        vocab = getattr(self, "vocab_", None)
        return save_checkpoint(path, kind=self.KIND, tensors=tensors, config=config,
                               vocab=None if vocab is None else vocab.to_json(), training_state=training_state)

    @classmethod
    def load(cls: type[_E], path: str | Path) -> _E:
        """Read a checkpoint directory written by :meth:`save`, or a bundled model's name ("sst2-best").

        Raises :class:`unrolled.checkpoint.CheckpointError` for a missing, broken or other-kind checkpoint and
        ``ValueError`` for a config.json that does not describe this estimator; each is one line naming the file.
        """
        directory = resolve(path)
        checkpoint = load_checkpoint(directory, kind=cls.KIND)
        config = checkpoint.config
        source = str(directory / "config.json")
        try:
            storage = restore.storage_of(config)
            model = cls(**restore.check_estimator_params(cls, config))
            model.history_, model.training_seconds_ = restore.training_record(config)
            model._restore_config(config)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{source}: invalid {cls._CONFIG_NAME} config ({error})") from None
        tensors = restore.check_tensor_dtypes(checkpoint.tensors, directory / "model.safetensors", storage)
        model._restore_checkpoint(checkpoint, directory)
        expected = model.net_config_.param_shapes()
        check_tensors(tensors, expected, source=str(directory / "model.safetensors"))
        from unrolled.nn.fused import on_cache_line  # (imported by every network's forward pass anyway)

        # The recurrent weights where the C loops load them fastest (float32_of_float16's arrays already are)
        model.params_ = {name: on_cache_line(tensors[name]) if "weight_hh" in name else tensors[name]
                         for name in expected}
        model.config_ = config
        return model
