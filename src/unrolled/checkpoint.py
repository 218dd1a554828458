"""Checkpoints: a directory that any tool can read, written atomically, checked when read.

A checkpoint is a directory with three files::

    model.safetensors   the tensors under PyTorch's names (embedding.weight, rnn.weight_ih_l0, head.bias, …),
                        so ``safetensors.torch.load_file`` + ``load_state_dict`` work on it unchanged
    config.json         {"format": "unrolled-checkpoint", "format_version": 1, "kind": "classifier", …}
                        followed by the caller's fields (model, training, metrics, …) in the caller's order
    vocab.json          optional; whatever JSON object the model's vocabulary writes

Nothing is pickled: tensors go through safetensors, everything else is plain JSON (strict: no NaN).

Writing is atomic. :func:`save_checkpoint` writes all files into a fresh hidden sibling directory
(``.<name>.tmp-<random>``, same parent, so the renames stay on one filesystem), fsyncs them, then swaps it in:
the old checkpoint is renamed aside (``.<name>.old-<random>``), the new one renamed into place, the old one
removed. An exception at any point before the final rename leaves the previous checkpoint as it was and no
temporary directory behind. A process killed part-way (SIGKILL, power loss) can leave a ``.tmp-`` or ``.old-``
sibling, or the previous checkpoint aside under ``.old-`` with none in place: the next save or load of that path
puts it back and removes the rest (:func:`recover_interrupted_save`). A path that exists but is not an unrolled checkpoint (a regular file, a directory
with other files in it, another tool's ``config.json``) is never overwritten. Two processes saving to the same
path at the same time are not supported.

Reading is strict. :func:`load_checkpoint` raises :class:`CheckpointError`, one line that names the file (and
the field where there is one), for every way a checkpoint can be missing, truncated, corrupted, too new or of
the wrong kind; the safetensors header is checked before safetensors parses it so that the message says what
is wrong rather than only that something is. :func:`check_tensors` compares the tensors with the names and
shapes that a model's config implies.
"""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import stat
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "KINDS",
    "Checkpoint",
    "CheckpointError",
    "check_tensors",
    "load_checkpoint",
    "read_safetensors",
    "recover_interrupted_save",
    "save_checkpoint",
]

FORMAT = "unrolled-checkpoint"
FORMAT_VERSION = 1  # the version this code writes and the newest it reads
MIN_FORMAT_VERSION = 1  # the oldest version this code still reads
KINDS = ("classifier", "forecaster", "language_model", "translator", "speech_recognizer")

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
STATE_TENSORS_FILE = "training-state.safetensors"  # a resumable run's state (unrolled.resume)
STATE_FILE = "training-state.json"
_KNOWN_FILES = frozenset({MODEL_FILE, CONFIG_FILE, VOCAB_FILE, STATE_TENSORS_FILE, STATE_FILE})
_STALE_SECONDS = 10.0  # an interrupted save's sibling this old has no save in progress behind it

# safetensors dtype codes this module reads and writes, with their NumPy dtypes (little-endian on disk).
_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8),
    "U64": np.dtype(np.uint64),
    "U32": np.dtype(np.uint32),
    "U16": np.dtype(np.uint16),
    "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}
_MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on the JSON header


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or read; the message is one line that starts with the file.

    Attributes
    ----------
    path : pathlib.Path or None
        The file or directory at fault.
    field : str or None
        The offending field (``"format_version"``, ``"metrics.loss"``, a tensor name), where there is one.
    """

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None, field: str | None = None):
        super().__init__(message)
        self.path = None if path is None else Path(path)
        self.field = field


def _error(path: str | os.PathLike[str], problem: str, *, field: str | None = None) -> CheckpointError:
    one_line = " ".join(str(problem).split())  # messages from libraries may carry newlines
    return CheckpointError(f"{path}: {one_line}", path=path, field=field)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as read from disk.

    ``tensors`` are writable C-contiguous arrays owned by the caller (nothing is memory-mapped);
    ``config`` includes ``format``, ``format_version`` and ``kind``; ``vocab`` is None without a vocab.json.
    """

    path: Path
    tensors: dict[str, np.ndarray]
    config: dict[str, Any]
    vocab: dict[str, Any] | None

    @property
    def kind(self) -> str:
        return self.config["kind"]


# --------------------------------------------------------------------------------------------------- save


def save_checkpoint(
    directory: str | os.PathLike[str],
    *,
    kind: str,
    tensors: Mapping[str, np.ndarray],
    config: Mapping[str, Any],
    vocab: Mapping[str, Any] | None = None,
    training_state: tuple[Mapping[str, np.ndarray], Mapping[str, Any]] | None = None,
) -> Path:
    """Write a checkpoint directory atomically and return its path.

    Parameters
    ----------
    directory : path
        The checkpoint directory. It may be missing (parents are created), an empty directory, or an existing
        unrolled checkpoint (replaced as a whole: a vocab.json not written this time does not survive).
    kind : {"classifier", "language_model", "forecaster"}
    tensors : mapping of str to numpy.ndarray
        PyTorch-style names to float, int or bool arrays (copied to C-contiguous order where needed).
    config : mapping
        JSON-able fields (string keys; numbers, strings, booleans, None, lists, mappings; NumPy scalars are
        converted). ``format``, ``format_version`` and ``kind`` are put first; if the caller gives them they
        must agree.
    vocab : mapping or None
        JSON-able contents of vocab.json; None writes no vocab.json.
    training_state : (tensors, mapping) or None
        A resumable run's state (:mod:`unrolled.resume`): training-state.safetensors and training-state.json.

    Raises
    ------
    CheckpointError
        For a tensor or JSON value that cannot be written (named, with its field path: NaN in
        ``metrics.loss`` is refused rather than written as invalid JSON), or a target that is not a
        checkpoint. Everything is checked and serialised before the disk is touched.
    """
    target = Path(directory)
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    arrays = _prepare_tensors(target / MODEL_FILE, tensors)
    state_arrays = state_bytes = None
    if training_state is not None:
        state_arrays = _prepare_tensors(target / STATE_TENSORS_FILE, training_state[0])
        state_bytes = _json_bytes(target / STATE_FILE, _require_mapping(target / STATE_FILE, training_state[1]))
    config_bytes = _json_bytes(target / CONFIG_FILE, _full_config(target / CONFIG_FILE, kind, config))
    vocab_path = target / VOCAB_FILE
    vocab_bytes = None if vocab is None else _json_bytes(vocab_path, _require_mapping(vocab_path, vocab))

    if target.is_symlink():  # replace what the link points to and keep the link (e.g. latest -> run3)
        target = Path(os.path.realpath(target))
    recover_interrupted_save(target, stale_after=0.0)  # saves to one path are not concurrent: all are stale
    check_replaceable(target)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)

    tmp = _fresh_sibling(target, "tmp", create=True)
    old: Path | None = None
    try:
        # Every file is written the same way (umask permissions, fsynced), model.safetensors included.
        _write_tensors(tmp / MODEL_FILE, arrays)
        _write_file(tmp / CONFIG_FILE, config_bytes)
        if vocab_bytes is not None:
            _write_file(tmp / VOCAB_FILE, vocab_bytes)
        if state_arrays is not None:
            _write_tensors(tmp / STATE_TENSORS_FILE, state_arrays)
            _write_file(tmp / STATE_FILE, state_bytes)
        _fsync_dir(tmp)

        if target.exists():
            old = _fresh_sibling(target, "old", create=False)
            os.rename(target, old)
        os.rename(tmp, target)  # the commit point
        _fsync_dir(parent)
    finally:
        if tmp.exists():  # failed before the commit point: put the old checkpoint back, drop the new files
            if old is not None and old.exists() and not target.exists():
                os.rename(old, target)
                old = None
            shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        try:
            shutil.rmtree(old)
        except OSError as exc:
            warnings.warn(f"{target}: saved, but the previous checkpoint left at {old} could not be removed: "
                          f"{exc}", RuntimeWarning, stacklevel=2)
    return Path(directory)


def _prepare_tensors(path: Path, tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not isinstance(tensors, Mapping):
        raise _error(path, f"tensors: expected a dict of name to NumPy array, got {type(tensors).__name__}")
    codes = {dtype: code for code, dtype in _DTYPES.items()}
    arrays: dict[str, np.ndarray] = {}
    for name, a in tensors.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise _error(path, f"tensor name {name!r} is not allowed (a non-empty string other than "
                               "'__metadata__')", field=str(name))
        if not isinstance(a, np.ndarray):
            raise _error(path, f"tensor {name!r}: expected a NumPy array, got {type(a).__name__}", field=name)
        native = a.dtype.newbyteorder("=") if a.dtype.byteorder in "<>" else a.dtype
        if native not in codes:
            raise _error(path, f"tensor {name!r} has dtype {a.dtype}, which a checkpoint cannot hold (float, "
                               "int or bool)", field=name)
        arrays[name] = np.require(a, dtype=native, requirements="C")  # keeps 0-d arrays 0-d
    return arrays


def _full_config(path: Path, kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
    config = _require_mapping(path, config)
    fixed = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind}
    for key, value in fixed.items():
        if key in config and config[key] != value:
            raise _error(path, f"config gives {key} {config[key]!r}, but this save writes {value!r}", field=key)
    return {**fixed, **{k: v for k, v in config.items() if k not in fixed}}


def _require_mapping(path: Path, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _error(path, f"expected a dict to write as a JSON object, got {type(value).__name__}")
    return value


def _json_bytes(path: Path, value: Mapping[str, Any]) -> bytes:
    plain = _to_json(path, value, "")
    text = json.dumps(plain, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def _to_json(path: Path, value: Any, where: str) -> Any:
    """``value`` as plain JSON types, or a CheckpointError naming the field (``metrics.loss``, ``tokens[3]``)."""
    if isinstance(value, np.generic) and not isinstance(value, (np.str_, np.bytes_, np.void, np.complexfloating)):
        value = value.item()  # NumPy scalars (np.float32 metrics) become Python numbers
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _error(path, f"{where or 'value'} is {value}, which JSON cannot hold (store null or a string "
                               "instead)", field=where or None)
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _error(path, f"key {key!r} in {where or 'the top level'} is not a string (JSON object keys "
                                   "are strings; it would not read back the same)", field=where or None)
            out[key] = _to_json(path, item, f"{where}.{key}" if where else key)
        return out
    if isinstance(value, (list, tuple)):
        return [_to_json(path, item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise _error(path, f"{where or 'value'} is a {type(value).__name__}, which JSON cannot hold",
                 field=where or None)


def recover_interrupted_save(target: str | Path, *, stale_after: float | None = None) -> Path | None:
    """Undo what a save killed part-way left beside ``target``: if ``target`` is missing and the previous
    checkpoint sits aside as ``.<name>.old-*`` (the save died between its two renames), rename it back; then
    remove the save's leftover ``.tmp-*`` and ``.old-*`` directories. Siblings changed less than
    ``stale_after`` seconds ago (default ``_STALE_SECONDS``) may belong to a save in progress and are left
    alone. Returns the restored path, or None."""
    target = Path(target)
    stale_after = _STALE_SECONDS if stale_after is None else stale_after
    parent = target.parent
    if not parent.is_dir():
        return None
    now = time.time()

    def stale(path: Path) -> bool:
        """Nothing changed in it for ``stale_after`` seconds: not the directory (a rename or a new file
        updates its ctime), nor a file being written in it (its mtime)."""
        try:
            times = [path.lstat().st_ctime, *(f.lstat().st_mtime for f in path.iterdir())]
        except OSError:
            return False
        return now - max(times) >= stale_after

    restored = None
    olds = [p for p in _set_aside(target) if stale(p)]
    if not os.path.lexists(target) and olds and (olds[-1] / CONFIG_FILE).is_file():
        try:
            os.rename(olds[-1], target)
            restored = target
            olds.pop()
        except OSError:
            pass
    leftovers = [p for p in parent.glob(f".{glob.escape(target.name)}.tmp-*") if p.is_dir() and stale(p)]  # never restored
    if os.path.lexists(target):  # with the checkpoint in place, the copies set aside are garbage too
        leftovers += olds
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
    return restored


def _set_aside(target: Path) -> list[Path]:
    """The copies of ``target`` that saves renamed aside (``.<name>.old-*`` directories), oldest first."""
    if not target.parent.is_dir():
        return []
    return sorted((p for p in target.parent.glob(f".{glob.escape(target.name)}.old-*") if p.is_dir()),
                  key=lambda p: p.lstat().st_ctime)


def check_replaceable(target: str | Path) -> None:
    """Refuse to replace anything that is not an empty directory or an unrolled checkpoint (call it before
    a long training run, so that a bad --out fails at once rather than after training)."""
    target = Path(target)
    if not target.exists():
        if target.is_symlink():
            raise _error(target, "is a broken symbolic link; refusing to write through it")
        return
    if not target.is_dir():
        raise _error(target, "exists and is not a directory; refusing to overwrite it with a checkpoint")
    entries = sorted(p.name for p in target.iterdir())
    if not entries:
        return
    if CONFIG_FILE not in entries:
        raise _error(target, f"is a non-empty directory without {CONFIG_FILE}, not a checkpoint; refusing to "
                             "overwrite it")
    try:
        config = json.loads((target / CONFIG_FILE).read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        config = None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise _error(target, f"holds a {CONFIG_FILE} that is not an unrolled checkpoint's; refusing to "
                             "overwrite it")
    others = [name for name in entries if name not in _KNOWN_FILES]
    if others:
        raise _error(target, f"holds files that are not part of a checkpoint ({', '.join(others[:5])}"
                             f"{', …' if len(others) > 5 else ''}); move them or save elsewhere")


def _fresh_sibling(target: Path, tag: str, *, create: bool) -> Path:
    """A hidden, unused path beside ``target``: ``.<name>.<tag>-<random>``; created (with umask) if asked."""
    while True:
        path = target.parent / f".{target.name}.{tag}-{os.urandom(4).hex()}"
        if not create:
            if not os.path.lexists(path):
                return path
            continue
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _write_tensors(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """A safetensors file written array by array, so that saving needs no second copy of the tensors in
    memory: the 8-byte header length, the JSON header (space-padded to 8 bytes), then the data, the widest
    dtypes first so that every tensor starts aligned to its item size."""
    codes = {dtype: code for code, dtype in _DTYPES.items()}
    order = sorted(arrays, key=lambda name: (-arrays[name].dtype.itemsize, name))
    header, offset = {}, 0
    for name in order:
        a = arrays[name]
        header[name] = {"dtype": codes[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "xb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        for name in order:  # _prepare_tensors made them native-order and C-contiguous; the file is little-endian
            a = arrays[name] if sys.byteorder == "little" else arrays[name].astype(arrays[name].dtype.newbyteorder("<"))
            f.write(memoryview(a.reshape(-1)).cast("B"))
        f.flush()
        os.fsync(f.fileno())


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    """Persist a directory's entries (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------------- load


def checkpoint_kind(directory: str | os.PathLike[str]) -> str:
    """The kind of the checkpoint in ``directory``, from its config.json alone (the tensors are not read);
    the same one-line errors as :func:`load_checkpoint` for a missing or broken directory or config."""
    return _checked_config(_existing_directory(Path(directory)), None)[1]["kind"]


def _existing_directory(path: Path) -> Path:
    """``path``, or where an interrupted save left its checkpoint: renamed back when the save is surely dead,
    else read where it lies (``.<name>.old-*``) until the save in progress ends."""
    if path.exists():
        return path
    recover_interrupted_save(path)
    if path.exists():
        return path
    aside = [p for p in _set_aside(path) if (p / CONFIG_FILE).is_file()]
    if aside:
        return aside[-1]
    raise _error(path, "checkpoint directory not found")


def _checked_config(path: Path, kind: str | None) -> tuple[Path, dict[str, Any]]:
    """config.json of the checkpoint directory ``path`` (which exists), checked (and of ``kind`` when given)."""
    if not path.is_dir():
        raise _error(path, "is a file, not a checkpoint directory")
    config_path = path / CONFIG_FILE
    if not config_path.exists():
        raise _error(config_path, f"not found; {path} is not a checkpoint directory")
    config = _read_json_object(config_path)
    _check_config(config_path, config, kind)
    return config_path, config


def load_checkpoint(directory: str | os.PathLike[str], *, kind: str | None = None) -> Checkpoint:
    """Read and check a checkpoint directory.

    Parameters
    ----------
    directory : path
    kind : {"classifier", "language_model", "forecaster"} or None
        If given, the checkpoint must be of this kind.

    Raises
    ------
    CheckpointError
        One line naming the file (and field): directory missing or a file; config.json missing, not UTF-8,
        invalid JSON (with line and column), not an object, not an unrolled checkpoint, a format_version this
        code does not read, an unknown kind or the wrong kind; model.safetensors missing, truncated or
        corrupted; vocab.json invalid.
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind: expected one of {', '.join(KINDS)} or None, got {kind!r}")
    path = _existing_directory(Path(directory))
    _, config = _checked_config(path, kind)

    model_path = path / MODEL_FILE
    if not model_path.exists():
        raise _error(model_path, "not found; the checkpoint has no tensors")
    tensors = read_safetensors(model_path)

    vocab_path = path / VOCAB_FILE
    vocab = _read_json_object(vocab_path) if vocab_path.exists() else None
    return Checkpoint(path=path, tensors=tensors, config=config, vocab=vocab)


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _error(path, f"cannot be read: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _error(path, f"is not UTF-8 text (byte {exc.start})") from exc

    def no_constants(name: str) -> Any:
        raise _error(path, f"invalid JSON: {name} is not a JSON value")

    try:
        value = json.loads(text, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        raise _error(path, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    except RecursionError as exc:
        raise _error(path, "invalid JSON: nested too deeply") from exc
    if not isinstance(value, dict):
        raise _error(path, f"expected a JSON object, got a JSON {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "null")


def _check_config(path: Path, config: dict[str, Any], kind: str | None) -> None:
    if "format" not in config:
        raise _error(path, f"has no 'format' field; not an unrolled checkpoint (expected format {FORMAT!r})",
                     field="format")
    if config["format"] != FORMAT:
        raise _error(path, f"format is {config['format']!r}, expected {FORMAT!r}; not an unrolled checkpoint",
                     field="format")
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _error(path, f"format_version must be an integer, got {version!r}", field="format_version")
    if version > FORMAT_VERSION:
        raise _error(path, f"format_version {version} is newer than this version of unrolled reads "
                           f"({FORMAT_VERSION}); upgrade unrolled", field="format_version")
    if version < MIN_FORMAT_VERSION:
        raise _error(path, f"format_version {version} is older than this version of unrolled reads "
                           f"({MIN_FORMAT_VERSION} to {FORMAT_VERSION})", field="format_version")
    found = config.get("kind")
    if found not in KINDS:
        raise _error(path, f"kind {found!r} is not one this version of unrolled knows ({', '.join(KINDS)})",
                     field="kind")
    if kind is not None and found != kind:
        raise _error(path, f"kind is {found!r}, but a {kind!r} checkpoint was asked for", field="kind")


def read_safetensors(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file, its header checked against the file's size before the data is read
    (a header that promises more than the file holds, or a file of the wrong size, is refused unread)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            size = info.st_size
            if not stat.S_ISREG(info.st_mode):
                raise _error(path, "is not a regular file")
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            header = f.read(n) if len(head) == 8 and n <= _MAX_HEADER_BYTES and 8 + n <= size else b""
            _check_safetensors_header(path, head + header, size)
            data = head + header + f.read()
    except FileNotFoundError:
        raise _error(path, "not found") from None
    except OSError as exc:
        raise _error(path, f"cannot be read: {exc.strerror or exc}") from exc
    if len(data) != size:
        raise _error(path, f"changed while being read ({size} bytes, then {len(data)})")
    try:
        loaded = safetensors.numpy.load(data)
    except Exception as exc:  # safetensors raises SafetensorError, and others on odd input
        raise _error(path, f"corrupted: safetensors cannot read it ({type(exc).__name__}: {exc})") from exc
    tensors = {}
    for name, a in loaded.items():
        if not (a.flags.writeable and a.flags.c_contiguous):
            a = a.copy()
        tensors[name] = a
    return tensors


def _check_safetensors_header(path: Path, data: bytes, size: int) -> None:
    """Check the layout that safetensors promises, so that a damaged file gets a specific message.

    Layout: 8 bytes little-endian u64 n, n bytes of JSON header (a UTF-8 object, maybe space-padded), then the
    data buffer; every tensor's ``data_offsets`` [begin, end) lies in the buffer, its length is
    prod(shape) * itemsize, and the tensors tile the buffer with no gap or overlap. ``data``: the file's
    first bytes (the length field and the header), ``size``: the file's size.
    """
    if size < 8:
        raise _error(path, f"truncated: {size} bytes, shorter than the 8-byte header length")
    n = int.from_bytes(data[:8], "little")
    if n > _MAX_HEADER_BYTES or 8 + n > size:
        raise _error(path, f"truncated or corrupted: the header length field says {n} bytes, but the file "
                           f"has {size - 8} after it")
    try:
        text = data[8:8 + n].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _error(path, f"corrupted header: not UTF-8 (byte {8 + exc.start})") from exc

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise _error(path, f"corrupted header: tensor {key!r} appears twice", field=key)
            out[key] = value
        return out

    try:
        header = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise _error(path, f"corrupted header: invalid JSON at column {exc.colno}: {exc.msg}") from exc
    if not isinstance(header, dict):
        raise _error(path, f"corrupted header: expected a JSON object, got a JSON {_json_type(header)}")

    buffer = size - 8 - n
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise _error(path, "corrupted header: __metadata__ must map strings to strings", field=name)
            continue
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise _error(path, f"corrupted header: tensor {name!r} needs exactly dtype, shape and data_offsets",
                         field=name)
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _DTYPES:
            raise _error(path, f"tensor {name!r} has dtype {dtype!r}, which unrolled cannot read "
                               f"({', '.join(_DTYPES)})", field=name)
        if not (isinstance(shape, list) and all(_is_count(d) for d in shape)):
            raise _error(path, f"corrupted header: tensor {name!r} has shape {shape!r}", field=name)
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)
                and offsets[0] <= offsets[1]):
            raise _error(path, f"corrupted header: tensor {name!r} has data_offsets {offsets!r}", field=name)
        nbytes = math.prod(shape) * _DTYPES[dtype].itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise _error(path, f"corrupted header: tensor {name!r} of shape {tuple(shape)} and dtype {dtype} "
                               f"needs {nbytes} bytes, offsets span {offsets[1] - offsets[0]}", field=name)
        spans.append((offsets[0], offsets[1], name))
    end = 0
    for begin, stop, name in sorted(spans):
        if begin != end:
            raise _error(path, f"corrupted header: tensor {name!r} starts at byte {begin} of the data, expected "
                               f"{end} (gap or overlap)", field=name)
        end = stop
    if end > buffer:
        raise _error(path, f"truncated: the tensors need {end} bytes of data, the file has {buffer}")
    if end < buffer:
        raise _error(path, f"corrupted: {buffer - end} bytes after the last tensor's data")


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


# --------------------------------------------------------------------------------------------------- check


def check_tensors(
    checkpoint_or_tensors: Checkpoint | Mapping[str, np.ndarray],
    expected: Mapping[str, tuple[int, ...]],
    source: str | os.PathLike[str] = MODEL_FILE,
) -> dict[str, np.ndarray]:
    """Check that the tensors are exactly the ``expected`` names with the expected shapes and finite
    values; return them.

    A model calls this after rebuilding its config from a checkpoint. With a :class:`Checkpoint` and the
    default ``source``, messages name the checkpoint's model.safetensors path.

    Raises
    ------
    CheckpointError
        For missing tensors, unexpected tensors, a shape mismatch (name, expected and found shapes), or a
        tensor holding NaN or infinity.
    """
    if isinstance(checkpoint_or_tensors, Checkpoint):
        tensors = checkpoint_or_tensors.tensors
        if source == MODEL_FILE:
            source = checkpoint_or_tensors.path / MODEL_FILE
    else:
        tensors = checkpoint_or_tensors
    missing = [name for name in expected if name not in tensors]
    if missing:
        raise _error(source, f"missing tensor{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(repr(m) for m in missing)} (expected shape "
                             f"{', '.join(str(tuple(expected[m])) for m in missing)})", field=missing[0])
    unexpected = [name for name in tensors if name not in expected]
    if unexpected:
        raise _error(source, f"unexpected tensor{'s' if len(unexpected) > 1 else ''} "
                             f"{', '.join(repr(u) for u in unexpected)} (not part of this model's config)",
                     field=unexpected[0])
    for name, shape in expected.items():
        found = tuple(np.shape(tensors[name]))
        if found != tuple(shape):
            raise _error(source, f"tensor {name!r} has shape {found}, expected {tuple(shape)}", field=name)
    for name in expected:  # a model's forward pass checks shapes and dtypes, not values: check them here
        a = np.asarray(tensors[name])
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise _error(source, f"tensor {name!r} contains NaN or infinity", field=name)
    return dict(tensors)
