"""Read labelled text datasets (TSV, CSV, JSONL, TXT; each optionally gzip-compressed) into a :class:`TextDataset`.

Formats, chosen by the file name (``.gz`` after it means gzip; gzip is also detected by its magic bytes):

- ``.tsv``: one header line, then one row per line, fields split on tabs, no quoting (the SST-2 and MR
  files: ``sentence<TAB>label``);
- ``.csv``: RFC 4180 CSV with a header row (quoted fields may contain commas, quotes and newlines);
- ``.jsonl``: one JSON object per line (IMDB: ``{"text": ..., "label": 0}``); labels may be int or str;
  the first object decides which fields are read;
- ``.txt``: one text per line, no header and no labels (only with ``require_labels=False``).

Every problem is one :class:`DataError` whose message names the file, the line and the field::

    data/train.tsv:17: field 'label': empty value

Row-level problems (wrong field count, empty text or label, a line that is not a JSON object, a blank line)
can be skipped with ``skip_bad_rows=True``; each skipped row is recorded in ``TextDataset.skipped``. Problems
with the file itself (missing, not UTF-8, not gzip, no header, missing column, broken CSV quoting) always
raise. Lines of up to 8 MiB are read (a 1 MB review is fine); a longer line is refused as soon as the limit
is passed, without reading the rest of it (a file without line breaks is not a data file). Only regular
files are read: a directory, a FIFO or a device (``/dev/zero``) is refused before anything is read from it.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import gzip
import json
import os
import re
import stat
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
import dataclasses
from pathlib import Path
from typing import IO, Any

import numpy as np

from unrolled.nn._validation import json_type

__all__ = ["LINE_LIMIT_TEXT", "MAX_LINE_BYTES", "DataError", "LabelMap", "SkippedRow", "TextDataset", "check_dev_labels",
           "check_readable_file", "read_dataset", "rename_labels"]

_GZIP_MAGIC = b"\x1f\x8b"
_FORMATS = (".tsv", ".csv", ".jsonl", ".txt")
_DEFAULT_TEXT_COLUMNS = ("sentence", "text")
MAX_LINE_BYTES = 8 * 2**20  # the longest line a reader accepts (8 MiB): longer means not a line-based text file
LINE_LIMIT_TEXT = f"{MAX_LINE_BYTES // 2**20} MiB"  # the limit as messages say it
_CSV_FIELD_LIMIT = MAX_LINE_BYTES  # a quoted CSV field may span lines, but not grow past one line's limit


class DataError(ValueError):
    """A problem with a data file, located: ``"<path>:<line>: field '<field>': <problem>"``.

    ``line`` (1-based) and ``field`` are None when the problem is not tied to one.
    """

    def __init__(self, path: str, problem: str, *, line: int | None = None, field: str | None = None) -> None:
        self.path = str(path)
        self.problem = problem
        self.line = line
        self.field = field
        super().__init__(f"{self.path}{'' if line is None else f':{line}'}: {self.reason}")

    @property
    def reason(self) -> str:
        """The message without the file and line: ``"field 'label': empty value"``."""
        return self.problem if self.field is None else f"field {self.field!r}: {self.problem}"

    def __reduce__(self):
        return (_rebuild_data_error, (self.path, self.problem, self.line, self.field))


def _rebuild_data_error(path: str, problem: str, line: int | None, field: str | None) -> DataError:
    return DataError(path, problem, line=line, field=field)


@dataclasses.dataclass(frozen=True)
class SkippedRow:
    """A row left out by ``skip_bad_rows=True``: its 1-based line and why (``"field 'text': empty value"``)."""

    line: int
    reason: str


@dataclasses.dataclass(frozen=True)
class TextDataset:
    """The rows of one file, in file order.

    ``texts[i]`` is row i's text exactly as in the file; ``labels[i]`` its raw label string, stripped (None
    when the file has no label column and labels were not required); ``lines[i]`` the 1-based line where
    row i starts (for error messages later on); ``skipped`` the rows left out, in line order.
    """

    texts: list[str]
    labels: list[str] | None
    lines: list[int]
    path: str
    skipped: list[SkippedRow] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)


def rename_labels(dataset: TextDataset, names: Mapping[str, str], *, option: str = "names") -> TextDataset:
    """The dataset with each raw label replaced by its display name (``{"0": "negative", "1": "positive"}``).

    A label without a name is a ValueError naming the file and ``option`` (where the names came from).
    """
    unknown = sorted(set(dataset.labels or ()) - set(names))
    if unknown:
        raise ValueError(f"{dataset.path}: label {unknown[0]!r} has no name in {option}")
    return dataclasses.replace(dataset, labels=[names[label] for label in dataset.labels or ()])


def check_dev_labels(train: TextDataset, dev: TextDataset, *, label_column: str = "label") -> None:
    """Every label of ``dev`` occurs in ``train`` (a class the model never saw cannot be scored); else a
    DataError naming the dev file, the line and the label."""
    known = set(train.labels or ())
    for label, line in zip(dev.labels or (), dev.lines):
        if label not in known:
            shown = ", ".join(map(repr, sorted(known)))
            raise DataError(dev.path, f"label {label!r} does not occur in the training data (known: {shown})",
                            line=line, field=label_column)


def read_dataset(
    path: str | os.PathLike[str],
    *,
    text_column: str | None = None,
    label_column: str = "label",
    require_labels: bool = True,
    skip_bad_rows: bool = False,
) -> TextDataset:
    """Read a TSV/CSV/JSONL/TXT file (optionally gzip-compressed) into a :class:`TextDataset`.

    ``text_column`` defaults to ``sentence`` if the file has it, else ``text``. The label column is read
    when present; when it is absent, ``require_labels=True`` makes that an error and ``False`` gives
    ``labels=None``. Raises :class:`DataError` for every problem (see the module docstring).
    """
    display = os.fspath(path)
    if text_column is not None and text_column == label_column:
        raise ValueError(f"text_column and label_column are both {text_column!r}")
    file_path = Path(display)
    check_readable_file(display)
    name = file_path.name.lower()
    named_gzip = name.endswith(".gz")
    base = name[:-3] if named_gzip else name
    data_format = next((ext for ext in _FORMATS if base.endswith(ext)), None)
    if data_format is None:
        kinds = ", ".join(_FORMATS)
        raise DataError(display, f"unknown file type: expected a name ending in {kinds} (optionally + .gz)")
    if data_format == ".txt":
        if require_labels:
            raise DataError(display, "a .txt file has one text per line and no labels: give a TSV, CSV or JSONL "
                                     "file with a label column (or read it with require_labels=False)")
        if text_column is not None:
            raise DataError(display, f"text_column={text_column!r} does not apply to a .txt file (no columns)")

    rows = _Rows(display, skip_bad_rows)
    try:
        with _open_lines(display, named_gzip) as lines:
            if data_format == ".tsv":
                labels_read = _read_tsv(lines, rows, text_column, label_column, require_labels)
            elif data_format == ".csv":
                labels_read = _read_csv(lines, rows, text_column, label_column, require_labels)
            elif data_format == ".jsonl":
                labels_read = _read_jsonl(lines, rows, text_column, label_column, require_labels)
            else:
                labels_read = _read_txt(lines, rows)
    except PermissionError as error:
        raise DataError(display, f"cannot read: {error.strerror}") from None
    if not rows.texts:
        if rows.skipped:
            first = rows.skipped[0]
            raise DataError(
                display,
                f"no usable rows: all {len(rows.skipped)} rows are bad (first: line {first.line}: {first.reason})",
            )
        raise DataError(display, "no data rows" if data_format in (".tsv", ".csv") else "empty file: no rows")
    return TextDataset(
        texts=rows.texts,
        labels=rows.labels if labels_read else None,
        lines=rows.lines,
        path=display,
        skipped=rows.skipped,
    )


def read_text(path: str | os.PathLike[str]) -> str:
    """A whole text file (optionally gzip-compressed) as one string, for language modelling.

    Line endings become ``\n``. Raises :class:`DataError` for a missing file, a directory, an empty file,
    bytes that are not UTF-8 and NUL bytes (a binary file), each naming the line.
    """
    display = os.fspath(path)
    check_readable_file(display, "a text file")
    parts = []
    with _open_lines(display, display.lower().endswith(".gz"), max_line=None) as lines:  # a corpus may be one line
        for _, line in lines:  # NUL bytes (a binary file) are refused line by line
            parts.append(line)
    text = "\n".join(parts) + "\n" if parts else ""
    if not text.strip():
        raise DataError(display, "empty file: no text")
    return text


# --- files and lines ---------------------------------------------------------------------------------------


def check_readable_file(display: str, kind: str = "a data file") -> None:
    """Refuse, before opening it, anything but a readable regular file: a missing path, a broken symbolic
    link or a loop of them, a directory, a FIFO, a device (``/dev/zero``) or a socket; one DataError naming
    the path (``kind`` says what was expected there)."""
    try:
        info = os.stat(display)
    except FileNotFoundError:
        if os.path.islink(display):
            raise DataError(display, f"is a broken symbolic link (to {os.readlink(display)!r})") from None
        raise DataError(display, "no such file") from None
    except PermissionError as error:
        raise DataError(display, f"cannot read: {error.strerror}") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise DataError(display, "is a loop of symbolic links, not a file") from None
        raise DataError(display, f"cannot read: {error.strerror or error}") from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError(display, f"is a directory, not {kind}")
    if not stat.S_ISREG(info.st_mode):  # reading a FIFO may never end, nor reading /dev/zero
        if stat.S_ISFIFO(info.st_mode):
            what = "a FIFO (named pipe)"
        elif stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
            what = "a device"
        else:
            what = "a socket or another special file"
        raise DataError(display, f"is {what}, not a regular file; only regular files are read")
    if not os.access(display, os.R_OK):
        raise DataError(display, "cannot read: Permission denied")


@contextlib.contextmanager
def _open_lines(display: str, named_gzip: bool, max_line: int | None = MAX_LINE_BYTES
                ) -> Iterator[Iterator[tuple[int, str]]]:
    """Open the file (gunzipping when it starts with the gzip magic) and yield ``(line_number, text)`` pairs.

    Text is decoded as UTF-8 one line at a time (so a bad byte is reported with its line), without the
    line ending (``\\n`` or ``\\r\\n``) and without a UTF-8 byte-order mark on line 1. ``max_line``: the
    longest line read (None: no limit, for a corpus that may be one line).
    """
    with open(display, "rb") as raw:
        magic = raw.read(2)
        raw.seek(0)
        is_gzip = magic == _GZIP_MAGIC
        if named_gzip and not is_gzip:
            if not magic:
                raise DataError(display, "named .gz but is an empty file, not gzip-compressed")
            raise DataError(display, f"named .gz but is not gzip-compressed (starts with {magic.hex(' ')}, not 1f 8b)")
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if is_gzip else raw
        with stream:
            yield _decoded_lines(display, stream, is_gzip, max_line)


def _decoded_lines(display: str, stream: IO[bytes], is_gzip: bool, max_line: int | None = MAX_LINE_BYTES
                   ) -> Iterator[tuple[int, str]]:
    """Each line is read with a limit (:data:`MAX_LINE_BYTES`), so a file without line breaks (or ``/dev/zero``
    under a data file's name) is refused after 8 MiB instead of filling the memory; a NUL byte (a binary
    file), UTF-16 text and CR-only line endings are refused naming the line."""
    line_number = 0
    try:
        while raw_line := stream.readline(-1 if max_line is None else max_line + 1):
            line_number += 1
            ended = raw_line.endswith(b"\n")
            if ended:
                raw_line = raw_line[:-2] if raw_line.endswith(b"\r\n") else raw_line[:-1]
            if line_number == 1:
                _check_first_line(display, raw_line)
            if not ended and max_line is not None and len(raw_line) > max_line:
                raise DataError(display, f"line longer than {LINE_LIMIT_TEXT} (the limit per line); is this a "
                                         "text file with one record a line?", line=line_number)
            if 0 in raw_line:  # a NUL byte (the int test is several times faster than b"\x00" in)
                raise DataError(display, "contains NUL bytes: a binary file, not text", line=line_number)
            try:
                text = raw_line.decode("utf-8")
            except UnicodeDecodeError as error:
                bad = raw_line[error.start : error.start + 1].hex()
                raise DataError(
                    display, f"not valid UTF-8 (byte 0x{bad} at byte {error.start + 1} of the line)", line=line_number
                ) from None
            if line_number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield line_number, text
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        if not is_gzip:
            raise
        raise DataError(display, f"corrupt or truncated gzip data after line {line_number}: {error}") from None


def _check_first_line(display: str, raw_line: bytes) -> None:
    """Name the two ways a text file can look binary or be one line: UTF-16 and CR-only line endings."""
    if raw_line.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(display, "UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8", line=1)
    if b"\r" in raw_line:
        raise DataError(display, "the line holds a carriage return (CR): the file has old Mac (CR-only) line "
                                 "endings; convert them to LF or CRLF", line=1)


class _Rows:
    """Collects good rows; a bad row raises, or is recorded when skipping."""

    def __init__(self, display: str, skip_bad_rows: bool) -> None:
        self.display = display
        self.skip_bad_rows = skip_bad_rows
        self.texts: list[str] = []
        self.labels: list[str] = []
        self.lines: list[int] = []
        self.skipped: list[SkippedRow] = []

    def bad(self, line: int, problem: str, field: str | None = None) -> None:
        error = DataError(self.display, problem, line=line, field=field)
        if not self.skip_bad_rows:
            raise error
        self.skipped.append(SkippedRow(line, error.reason))

    def add(self, line: int, text: str, label: str | None, text_field: str, label_field: str | None) -> None:
        """Check and keep one row (``label`` None when labels are not read)."""
        if not text.strip():
            return self.bad(line, "empty value", text_field)
        if label is not None:
            label = label.strip()
            if not label:
                return self.bad(line, "empty value", label_field)
            self.labels.append(label)
        self.texts.append(text)
        self.lines.append(line)
        return None


# --- formats -----------------------------------------------------------------------------------------------


def _resolve_columns(
    display: str,
    columns: Sequence[str],
    text_column: str | None,
    label_column: str,
    require_labels: bool,
    line: int,
    where: str = "columns",
) -> tuple[str, str | None]:
    """Pick the text column and the label column (None when absent and not required)."""
    found = ", ".join(repr(c) for c in columns) or "none"
    if text_column is None:  # the label column is never the default text column
        text_column = next((c for c in _DEFAULT_TEXT_COLUMNS if c in columns and c != label_column), None)
        if text_column is None:
            problem = (f"no text column: expected 'sentence' or 'text' ({where}: {found}); name it with "
                       "text_column= (--text-column)")
            raise DataError(display, problem, line=line)
    elif text_column not in columns:
        raise DataError(display, f"missing column ({where}: {found})", line=line, field=text_column)
    if label_column in columns:
        return text_column, label_column
    if require_labels:
        raise DataError(display, f"missing column ({where}: {found})", line=line, field=label_column)
    return text_column, None


def _check_header(display: str, columns: list[str]) -> None:
    for i, column in enumerate(columns):
        if not column:
            raise DataError(display, f"header: column {i + 1} has no name", line=1)
        if column in columns[:i]:
            raise DataError(display, f"header: duplicate column {column!r}", line=1)


def _read_tsv(lines, rows: _Rows, text_column, label_column, require_labels) -> bool:
    header = next(lines, None)
    if header is None:
        raise DataError(rows.display, "empty file: no header line")
    columns = [c.strip() for c in header[1].split("\t")]
    _check_header(rows.display, columns)
    text_name, label_name = _resolve_columns(rows.display, columns, text_column, label_column, require_labels, 1)
    text_index = columns.index(text_name)
    label_index = None if label_name is None else columns.index(label_name)
    expected = len(columns)
    shape = f"expected {expected} tab-separated fields ({', '.join(columns)})"
    for line, text in lines:
        if not text.strip() and "\t" not in text:
            rows.bad(line, "blank line")
            continue
        fields = text.split("\t")
        if len(fields) != expected:
            rows.bad(line, f"{shape}, got {len(fields)}")
            continue
        label = None if label_index is None else fields[label_index]
        rows.add(line, fields[text_index], label, text_name, label_name)
    return label_name is not None


@contextlib.contextmanager
def _csv_field_limit(limit: int) -> Iterator[None]:
    """Raise csv's per-field size limit (131,072 by default) while reading, then restore it."""
    previous = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _read_csv(lines, rows: _Rows, text_column, label_column, require_labels) -> bool:
    # csv.reader reports line_num = lines consumed so far, so a row starts one after the previous row ended.
    reader = csv.reader((text + "\n" for _, text in lines), strict=True)

    def next_row() -> tuple[int, list[str] | None]:
        start = reader.line_num + 1
        try:
            return start, next(reader, None)
        except csv.Error as error:
            if "unexpected end of data" in str(error):
                problem = "a quoted field is never closed (it runs to the end of the file)"
            elif "field larger than field limit" in str(error):
                problem = (f"a field longer than {LINE_LIMIT_TEXT} (the limit per field): is a quote left open "
                           "on this line?")
            else:
                problem = f"malformed CSV: {error}"
            raise DataError(rows.display, problem, line=start) from None

    with _csv_field_limit(_CSV_FIELD_LIMIT):
        _, header = next_row()
        if header is None:
            raise DataError(rows.display, "empty file: no header line")
        columns = [c.strip() for c in header]
        if not columns:
            raise DataError(rows.display, "header: blank line", line=1)
        _check_header(rows.display, columns)
        text_name, label_name = _resolve_columns(rows.display, columns, text_column, label_column, require_labels, 1)
        text_index = columns.index(text_name)
        label_index = None if label_name is None else columns.index(label_name)
        expected = len(columns)
        shape = f"expected {expected} comma-separated fields ({', '.join(columns)})"
        while True:
            line, fields = next_row()
            if fields is None:
                break
            if not fields or (len(fields) == 1 and not fields[0].strip() and expected > 1):
                rows.bad(line, "blank line")
                continue
            if len(fields) != expected:
                rows.bad(line, f"{shape}, got {len(fields)}")
                continue
            label = None if label_index is None else fields[label_index]
            rows.add(line, fields[text_index], label, text_name, label_name)
    return label_name is not None


def _read_jsonl(lines, rows: _Rows, text_column, label_column, require_labels) -> bool:
    text_name: str | None = None
    label_name: str | None = None
    for line, text in lines:
        if not text.strip():
            rows.bad(line, "blank line")
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as error:
            rows.bad(line, f"invalid JSON: {error.msg} (column {error.colno})")
            continue
        except ValueError as error:  # an integer of more than 4,300 digits
            rows.bad(line, f"invalid JSON: {' '.join(str(error).split(';')[0].split())}")
            continue
        except RecursionError:
            rows.bad(line, "invalid JSON: nested too deeply")
            continue
        if not isinstance(obj, dict):
            rows.bad(line, f"expected a JSON object, got {json_type(obj)}")
            continue
        if text_name is None:  # the first object decides the columns
            text_name, label_name = _resolve_columns(
                rows.display, list(obj), text_column, label_column, require_labels, line, where="fields on this line"
            )
        if text_name not in obj:
            rows.bad(line, f"missing (fields on this line: {', '.join(repr(k) for k in obj) or 'none'})", text_name)
            continue
        value = obj[text_name]
        if not isinstance(value, str):
            rows.bad(line, f"expected a string, got {json_type(value)}", text_name)
            continue
        if (surrogate := _unpaired_surrogate(value)) is not None:
            rows.bad(line, f"an unpaired surrogate escape ({surrogate}) is not text", text_name)
            continue
        label = None
        if label_name is not None:
            if label_name not in obj:
                rows.bad(line, f"missing (fields on this line: {', '.join(repr(k) for k in obj)})", label_name)
                continue
            raw_label = obj[label_name]
            if isinstance(raw_label, str):
                label = raw_label
                if (surrogate := _unpaired_surrogate(label)) is not None:
                    rows.bad(line, f"an unpaired surrogate escape ({surrogate}) is not text", label_name)
                    continue
            elif isinstance(raw_label, int) and not isinstance(raw_label, bool):
                label = str(raw_label)
            else:
                got = "null" if raw_label is None else f"{json_type(raw_label)} {raw_label!r}"
                rows.bad(line, f"expected an integer or a string, got {got}", label_name)
                continue
        rows.add(line, value, label, text_name, label_name)
    return label_name is not None


def _read_txt(lines, rows: _Rows) -> bool:
    for line, text in lines:
        if not text.strip():
            rows.bad(line, "blank line")
            continue
        rows.add(line, text, None, "text", None)
    return False


def _unpaired_surrogate(text: str) -> str | None:
    """The first lone UTF-16 surrogate of ``text`` as an escape (``\\ud800``): JSON can spell one, UTF-8 cannot."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"\\u{ord(text[error.start]):04x}"
    return None



# --- labels ------------------------------------------------------------------------------------------------

_INTEGER_RE = re.compile(r"[+-]?[0-9]+")


class LabelMap:
    """Class names <-> class ids ``0..C-1``, in a fixed order.

    :meth:`fit` orders integer labels by value (``"-1", "1"`` or ``"0", "1"``) and names alphabetically
    (``"neg", "pos"``); ``names[c]`` is the label of class id ``c``.
    """

    _FORMAT = "unrolled-labels"
    _VERSION = 1

    def __init__(self, names: Sequence[str]) -> None:
        names = tuple(names)
        if not names:
            raise ValueError("names: expected at least one label")
        for i, name in enumerate(names):
            if not isinstance(name, str) or not name.strip() or name != name.strip():
                raise ValueError(f"names[{i}]: expected a non-empty string without surrounding spaces, got {name!r}")
            if name in names[:i]:
                raise ValueError(f"names[{i}]: duplicate label {name!r}")
        self._names = names
        self._ids = {name: i for i, name in enumerate(names)}

    @classmethod
    def fit(
        cls, labels: Iterable[str | int], *, path: str | None = None, lines: Sequence[int] | None = None
    ) -> LabelMap:
        """The classes found in ``labels``: all integers -> numeric order; all names -> alphabetical order.

        A mix (``"1"`` and ``"pos"``) or two spellings of one number (``"1"`` and ``"01"``) is a ValueError;
        with ``path`` and ``lines`` (the source line of each label) it is a DataError naming the line.
        """
        first_seen: dict[str, int] = {}  # label -> index of its first occurrence
        for i, label in enumerate(labels):
            first_seen.setdefault(_label_string(label, f"labels[{i}]"), i)
        if not first_seen:
            raise ValueError("labels: empty, no classes to fit")

        def fail(problem: str, later: str) -> None:
            if path is not None and lines is not None:
                raise DataError(path, problem, line=lines[first_seen[later]], field="label")
            raise ValueError(problem)

        numeric = [name for name in first_seen if _INTEGER_RE.fullmatch(name)]
        other = [name for name in first_seen if not _INTEGER_RE.fullmatch(name)]
        if numeric and other:
            later = max(numeric[0], other[0], key=first_seen.__getitem__)
            fail(f"mixed labels: {numeric[0]!r} and {other[0]!r} (labels must be all integers or all names)", later)
        if other:
            return cls(sorted(other))
        by_value: dict[int, str] = {}
        for name in numeric:
            value = int(name)
            if value in by_value:
                first = by_value[value]
                fail(f"labels {first!r} and {name!r} are the same number; write each class one way", name)
            by_value[value] = name
        return cls([by_value[value] for value in sorted(by_value)])

    @property
    def names(self) -> tuple[str, ...]:
        """The class labels in id order."""
        return self._names

    def __len__(self) -> int:
        """C, the number of classes."""
        return len(self._names)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelMap):
            return NotImplemented
        return self._names == other._names

    def __hash__(self) -> int:
        return hash(self._names)

    def __repr__(self) -> str:
        return f"LabelMap({list(self._names)!r})"

    def encode(
        self, labels: Sequence[str | int], *, path: str | None = None, lines: Sequence[int] | None = None
    ) -> np.ndarray:
        """Labels -> class ids, (N,) int64. An unknown label is an error naming ``path:line`` when given."""
        if lines is not None and len(lines) != len(labels):
            raise ValueError(f"lines: expected {len(labels)} line numbers (one per label), got {len(lines)}")
        ids = np.empty(len(labels), dtype=np.int64)
        for i, label in enumerate(labels):
            name = _label_string(label, f"labels[{i}]")
            class_id = self._ids.get(name)
            if class_id is None:
                known = ", ".join(repr(n) for n in self._names)
                problem = f"unknown label {name!r} (known: {known})"
                if path is None:
                    raise ValueError(f"labels[{i}]: {problem}")
                if lines is None:
                    raise DataError(path, f"{problem} in row {i + 1}", field="label")
                raise DataError(path, problem, line=lines[i], field="label")
            ids[i] = class_id
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Class ids -> labels; an id outside ``[0, C)`` is a ValueError."""
        out = []
        for i, class_id in enumerate(ids):
            if isinstance(class_id, bool) or not hasattr(class_id, "__index__"):
                raise ValueError(f"ids[{i}]: expected an integer class id, got {class_id!r}")
            index = class_id.__index__()
            if not 0 <= index < len(self._names):
                raise ValueError(f"ids[{i}]: class id {index} is outside [0, {len(self._names)})")
            out.append(self._names[index])
        return out

    def to_json(self) -> dict[str, Any]:
        """``{"format": "unrolled-labels", "version": 1, "names": [...]}``."""
        return {"format": self._FORMAT, "version": self._VERSION, "names": list(self._names)}

    @classmethod
    def from_json(cls, obj: Any, source: str = "labels.json") -> LabelMap:
        """Rebuild from :meth:`to_json` output; any problem is one ValueError naming ``source`` and the field."""
        if not isinstance(obj, dict):
            raise ValueError(f"{source}: expected a JSON object, got {json_type(obj)}")
        unknown = sorted(key for key in obj if key not in ("format", "version", "names"))
        if unknown:
            raise ValueError(f"{source}: unknown field {unknown[0]!r} (expected format, version, names)")
        for key in ("format", "version", "names"):
            if key not in obj:
                raise ValueError(f"{source}: field {key!r}: missing")
        if obj["format"] != cls._FORMAT:
            raise ValueError(f"{source}: field 'format': expected {cls._FORMAT!r}, got {obj['format']!r}")
        if obj["version"] != cls._VERSION or isinstance(obj["version"], bool):
            raise ValueError(f"{source}: field 'version': unsupported version {obj['version']!r} (this build reads 1)")
        if not isinstance(obj["names"], list):
            raise ValueError(f"{source}: field 'names': expected a list, got {json_type(obj['names'])}")
        try:
            return cls(obj["names"])
        except ValueError as error:
            raise ValueError(f"{source}: field {error}") from None


def _label_string(label: Any, where: str) -> str:
    """A label as its stripped string (ints allowed); anything else or an empty label is a ValueError."""
    if isinstance(label, str):
        label = label.strip()
    elif isinstance(label, (int, np.integer)) and not isinstance(label, (bool, np.bool_)):
        label = str(int(label))
    else:
        raise ValueError(f"{where}: expected a str or int label, got {type(label).__name__} {label!r}")
    if not label:
        raise ValueError(f"{where}: empty label")
    return label
