"""Checks for reading a checkpoint back as a whole: config.json's fields (the network's, the estimator's, the
training record), vocab.json and the tensors' dtypes.

Each failure is one ValueError. Raised from a model's ``_restore_config``, the message starts with the field
as config.json spells it (``model.hidden_size: expected a positive integer, got 0``), and
:meth:`Estimator.load` puts the file in front; the helpers for ``_restore_checkpoint`` take the file
(``source``) and start the message with it.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from collections import Counter
from collections.abc import Mapping
from os import PathLike
from typing import Any

import numpy as np

from unrolled.checkpoint import CheckpointError
from unrolled.nn._validation import json_type
from unrolled.text.vocab import Vocab
from unrolled.history import EpochResult, TrainHistory

__all__ = [
    "check_estimator_params",
    "check_tensor_dtypes",
    "dataclass_from_json",
    "field",
    "float16_tensors",
    "json_value",
    "load_vocab",
    "net_config",
    "saved_record",
    "storage_of",
    "training_record",
]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def json_value(value: Any) -> str:
    """A value as JSON writes it (``"4"``, ``true``, ``null``), shortened, for messages about config.json."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."



def field(config: Mapping[str, Any], name: str, where: str | None = None) -> Any:
    """``config[name]``, or a ValueError naming the field when it is missing."""
    if not isinstance(config, Mapping):
        raise ValueError(f"{where}: expected an object, got {json_type(config, article=True)}")
    if name not in config:
        raise ValueError(f"{where + '.' if where else ''}{name}: missing")
    return config[name]


# annotation (as ``from __future__ import annotations`` leaves it) -> (accepts, what it expects)
_KINDS = {
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "float": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str": (lambda v: isinstance(v, str), "a string"),
}


def _check_type(where: str, value: Any, annotation: object) -> None:
    """Raise unless ``value`` fits the annotation (``int``, ``float | None``, …); other annotations pass."""
    if not isinstance(annotation, str):
        return
    parts = [part.strip() for part in annotation.split("|")]
    optional = "None" in parts
    parts = [part for part in parts if part != "None"]
    if len(parts) != 1 or parts[0] not in _KINDS:
        return
    accepts, what = _KINDS[parts[0]]
    if (value is None and optional) or (value is not None and accepts(value)):
        return
    raise ValueError(f"{where}: expected {what}{' or null' if optional else ''}, got {json_value(value)}")


def dataclass_from_json(cls: type, obj: Any, where: str) -> Any:
    """Build the dataclass ``cls`` from a config.json object, each problem naming ``where.<field>``: not an
    object, an unknown or missing field, a value of the wrong JSON type, or one the class refuses."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected an object, got {json_type(obj, article=True)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for name in obj:
        if name not in fields:
            raise ValueError(f"{where}.{name}: unknown field (expected {', '.join(fields)})")
    for name, f in fields.items():
        if name in obj:
            _check_type(f"{where}.{name}", obj[name], f.type)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ValueError(f"{where}.{name}: missing")
    try:
        return cls(**obj)
    except (TypeError, ValueError) as error:
        message = str(error)
        head, sep, rest = message.partition(": ")
        names = [name.strip() for name in head.split(",")]
        if sep and all(name in fields for name in names):  # "hidden_size: expected …" -> "model.hidden_size: …"
            raise ValueError(f"{', '.join(f'{where}.{name}' for name in names)}: {rest}") from None
        raise ValueError(f"{where}: {message}") from None


def net_config(cls: type, config: Mapping[str, Any]) -> Any:
    """The network's config from config.json's "model" field."""
    return dataclass_from_json(cls, field(config, "model"), "model")


def check_estimator_params(estimator: type, config: Mapping[str, Any]) -> dict[str, Any]:
    """The "estimator" field, an object of the estimator class's parameters only, each of its type
    (``max_len`` an integer or null, ``lowercase`` true or false, …); returned."""
    params = field(config, "estimator")
    if not isinstance(params, dict):
        raise ValueError(f"estimator: expected an object, got {json_type(params, article=True)}")
    signature = inspect.signature(estimator.__init__).parameters
    for name, value in params.items():
        if name not in signature or signature[name].kind != inspect.Parameter.KEYWORD_ONLY:
            raise ValueError(f"estimator.{name}: unknown field")
        _check_type(f"estimator.{name}", value, signature[name].annotation)
    return params


def training_record(config: Mapping[str, Any]) -> tuple[TrainHistory, float]:
    """The training history and seconds of config.json's "training" field."""
    training = field(config, "training")
    if not isinstance(training, dict):
        raise ValueError(f"training: expected an object, got {json_type(training, article=True)}")
    history = field(training, "history", "training")
    if not isinstance(history, dict):
        raise ValueError(f"training.history: expected an object, got {json_type(history, article=True)}")
    epochs = field(history, "epochs", "training.history")
    if not isinstance(epochs, list):
        raise ValueError(f"training.history.epochs: expected an array, got {json_type(epochs, article=True)}")
    for i, epoch in enumerate(epochs):
        dataclass_from_json(EpochResult, epoch, f"training.history.epochs[{i}]")
    for name in ("best_epoch", "best_metric", "stopped_early", "seconds"):
        field(history, name, "training.history")
    try:
        restored = TrainHistory.from_json(history)
    except (KeyError, TypeError) as error:
        raise ValueError(f"training.history: not the object fit writes ({error})") from None
    seconds = training.get("seconds", 0.0)
    _check_type("training.seconds", seconds, "float")
    return restored, seconds


def load_vocab(obj: Any, source: str | PathLike[str], what: str) -> Vocab:
    """vocab.json as a :class:`Vocab` (its own checks: an object, tokens a list of unique strings with
    ``<pad>`` at 0 and ``<unk>`` at 1), or a ValueError naming the file when there is none."""
    if obj is None:
        raise ValueError(f"{source}: missing ({what} needs its vocabulary)")
    return Vocab.from_json(obj, source=str(source))


def saved_record(training: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """A record the "training" field keeps as saved (training.pretrained_from, training.vocabulary_cut): an
    object, or absent; so that saving a loaded model again keeps it."""
    record = training.get(name)
    if record is not None and not isinstance(record, dict):
        raise ValueError(f"training.{name}: expected an object, got {json_value(record)}")
    return record


STORAGE_DTYPES = ("float16",)  # config.json "storage": weights kept on disk in less than they compute in


def check_tensor_dtypes(tensors: Mapping[str, np.ndarray], source: str | PathLike[str],
                        storage: str | None = None) -> dict[str, np.ndarray]:
    """Every tensor float32 or float64, all of one dtype (the engine computes in the parameters' precision);
    with ``storage="float16"`` (a checkpoint saved so), every tensor float16, returned as float32, the
    precision it computes in. A CheckpointError naming the tensor and its dtype otherwise."""
    if storage == "float16":
        for name, array in tensors.items():
            if array.dtype != np.float16:
                raise CheckpointError(f"{source}: tensor {name!r} has dtype {array.dtype}, expected float16 "
                                      "(config.json says storage float16)", path=source, field=name)
        from unrolled.nn.fused import float32_of_float16  # (imported by every network's forward pass anyway)

        return {name: float32_of_float16(array) for name, array in tensors.items()}
    for name, array in tensors.items():
        if array.dtype not in FLOAT_DTYPES:
            raise CheckpointError(f"{source}: tensor {name!r} has dtype {array.dtype}, expected float32 or float64 "
                                  "(a model's weights are floating point; float16 only with config.json's "
                                  "storage float16)", path=source, field=name)
    counts = Counter(array.dtype for array in tensors.values())
    if len(counts) > 1:
        common = counts.most_common(1)[0][0]
        odd = next(name for name, array in tensors.items() if array.dtype != common)
        raise CheckpointError(f"{source}: tensor {odd!r} has dtype {tensors[odd].dtype}, the other tensors "
                              f"{common} (a model's tensors share one dtype)", path=source, field=odd)
    return dict(tensors)


def storage_of(config: Mapping[str, Any]) -> str | None:
    """config.json's "storage" (absent: the tensors are stored in the precision they compute in)."""
    storage = config.get("storage")
    if storage is not None and storage not in STORAGE_DTYPES:
        raise ValueError(f"storage: expected {' or '.join(map(repr, STORAGE_DTYPES))} or no field, got "
                         f"{json_value(storage)}")
    return storage


def float16_tensors(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """float32 tensors rounded to float16 for storage; a ValueError naming the first one with a value beyond
    float16's range (it would be stored as infinity) or of another dtype."""
    largest = float(np.finfo(np.float16).max)
    for name, array in tensors.items():
        if array.dtype != np.float32:  # loaded back as float32: a float64 model would change precision
            raise ValueError(f"storage float16: tensor {name!r} is {array.dtype}; float16 storage is for models "
                             "that compute in float32 (they load back as float32)")
        peak = float(np.abs(array).max()) if array.size else 0.0
        if peak > largest:
            raise ValueError(f"storage float16: tensor {name!r} holds {peak:.6g}, beyond float16's largest value "
                             f"{largest:g} (save it without storage='float16')")
    return {name: array.astype(np.float16) for name, array in tensors.items()}
