"""Read parallel text (sentence pairs for translation) into a :class:`ParallelText`.

Two layouts:

- :func:`read_parallel`: two aligned files, one sentence per line, line *i* of the source file translating
  line *i* of the target file (Multi30k's ``train.de.gz`` / ``train.en.gz``);
- :func:`read_parallel_tsv`: one TSV file with the two sentences of a pair on one line. Columns given by
  **name** (the default: ``source`` and ``target``) mean the first line is a header that names them; columns
  given by **index** (``0`` and ``1``) mean there is no header and every line is a pair (the layout of the
  Tatoeba/ManyThings ``eng-fra.txt`` files, whose extra columns are ignored).

Files are read the way :mod:`unrolled.data.readers` reads them, line by line: UTF-8, gzip detected by its
magic bytes (a ``.gz`` name that is not gzip is an error; gzip data under another name is read
transparently), the line ending (``\\n`` or ``\\r\\n``) and a byte-order mark on line 1 removed, and
otherwise each sentence kept exactly as in the file (inner and trailing spaces included). A sentence counts
as empty when it is empty after ``str.strip()``.

Every problem is one :class:`~unrolled.data.readers.DataError` naming the file and the line::

    data/train.de.gz:29000: no counterpart in data/train.en.gz (data/train.de.gz has 29,000 lines, ...)
    data/train.en.gz:17: blank line
    pairs.tsv:5: expected 2 tab-separated fields (source, target), got 3

Pair-level problems (a blank line on either side, a TSV row with the wrong number of fields or an empty
field) can be skipped with ``skip_bad_rows=True``: the whole pair is left out and recorded in
``ParallelText.skipped``. Problems with the files themselves (missing, not UTF-8, not gzip, corrupt gzip,
different line counts, a bad header) always raise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator

from unrolled.data.readers import DataError, SkippedRow, _check_header, _open_lines, check_readable_file

__all__ = ["ParallelText", "read_parallel", "read_parallel_tsv"]


@dataclasses.dataclass(frozen=True)
class ParallelText:
    """Sentence pairs in file order: ``sources[i]`` translates to ``targets[i]``.

    ``lines[i]`` is the 1-based line of pair i (the same line in both files, or the TSV line);
    ``source_path`` and ``target_path`` are the files read (both the TSV file for :func:`read_parallel_tsv`);
    ``skipped`` the pairs left out by ``skip_bad_rows=True``, in line order. For two files a skipped pair's
    reason names the file (``"blank line in data/train.en.gz"``); for a TSV file it is as in
    :mod:`~unrolled.data.readers` (``"field 'target': empty value"``).
    """

    sources: list[str]
    targets: list[str]
    lines: list[int]
    source_path: str
    target_path: str
    skipped: list[SkippedRow] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sources)


def read_parallel(
    source_path: str | os.PathLike[str],
    target_path: str | os.PathLike[str],
    *,
    skip_bad_rows: bool = False,
) -> ParallelText:
    """Two aligned files (plain or gzip), one sentence a line, into a :class:`ParallelText`.

    The files are read together, line by line. Raises :class:`DataError` for every problem (see the module
    docstring); when the line counts differ, the error names the first line of the longer file that has no
    counterpart and both files' line counts.
    """
    source, target = os.fspath(source_path), os.fspath(target_path)
    for display in (source, target):
        _check_file(display)
    sources: list[str] = []
    targets: list[str] = []
    numbers: list[int] = []
    skipped: list[SkippedRow] = []
    with _reading(source, target), contextlib.ExitStack() as stack:
        source_lines = stack.enter_context(_open_lines(source, source.lower().endswith(".gz")))
        target_lines = stack.enter_context(_open_lines(target, target.lower().endswith(".gz")))
        count = 0
        while True:
            source_line = next(source_lines, None)
            target_line = next(target_lines, None)
            if source_line is None or target_line is None:
                break
            count += 1
            (number, source_text), (_, target_text) = source_line, target_line
            blank = [display for display, text in ((source, source_text), (target, target_text)) if not text.strip()]
            if blank:
                if not skip_bad_rows:
                    raise DataError(blank[0], "blank line", line=number)
                skipped.append(SkippedRow(number, f"blank line in {' and in '.join(blank)}"))
                continue
            sources.append(source_text)
            targets.append(target_text)
            numbers.append(number)
        if source_line is not None or target_line is not None:
            longer, shorter, rest = (source, target, source_lines) if source_line else (target, source, target_lines)
            first_extra = (source_line or target_line)[1]
            extra, all_blank = 1, not first_extra.strip()
            for _, text in rest:
                extra += 1
                all_blank = all_blank and not text.strip()
            note = "; the extra lines are blank" if all_blank else ""
            raise DataError(
                longer,
                f"no counterpart in {shorter} ({longer} has {count + extra:,} lines, {shorter} has {count:,}{note})",
                line=count + 1,
            )
    if not sources:
        _no_pairs(source, skipped, f"empty file: no lines ({target} is empty too)")
    return ParallelText(sources, targets, numbers, source, target, skipped)


def read_parallel_tsv(
    path: str | os.PathLike[str],
    *,
    source_column: str | int = "source",
    target_column: str | int = "target",
    skip_bad_rows: bool = False,
) -> ParallelText:
    """A TSV file (plain or gzip) of sentence pairs into a :class:`ParallelText`.

    Columns by name (``"de"``, ``"en"``; default ``"source"``, ``"target"``): line 1 is a header naming every
    column, and every row has as many tab-separated fields as the header. Columns by 0-based index: there is no
    header, and every line has as many fields as line 1 (at least enough for both indices). Fields are split on
    tabs with no quoting, so a sentence cannot contain a tab. Raises :class:`DataError` for every problem.
    """
    display = os.fspath(path)
    by_name = isinstance(source_column, str)
    for option, column in (("source_column", source_column), ("target_column", target_column)):
        if isinstance(column, bool) or not isinstance(column, (str, int)):
            raise TypeError(f"{option}: expected a column name or a 0-based index, got {column!r}")
        if isinstance(column, str) != by_name:
            raise ValueError("source_column and target_column must both be names (a header line) or both be "
                             f"indices (no header), got {source_column!r} and {target_column!r}")
        if isinstance(column, int) and column < 0:
            raise ValueError(f"{option}: expected a 0-based index, got {column}")
    if source_column == target_column:
        raise ValueError(f"source_column and target_column are both {source_column!r}")
    _check_file(display)
    sources: list[str] = []
    targets: list[str] = []
    numbers: list[int] = []
    skipped: list[SkippedRow] = []

    def bad(line: int, problem: str, field: str | None = None) -> None:
        error = DataError(display, problem, line=line, field=field)
        if not skip_bad_rows:
            raise error
        skipped.append(SkippedRow(line, error.reason))

    with _reading(display), _open_lines(display, display.lower().endswith(".gz")) as lines:
        if by_name:
            header = next(lines, None)
            if header is None:
                raise DataError(display, "empty file: no header line")
            columns = [c.strip() for c in header[1].split("\t")]
            _check_header(display, columns)
            found = ", ".join(repr(c) for c in columns)
            for name in (source_column, target_column):
                if name not in columns:
                    raise DataError(display, f"missing column (columns: {found})", line=1, field=name)
            indices = (columns.index(source_column), columns.index(target_column))
            fields_names = (source_column, target_column)
            expected: int | None = len(columns)
            shape = f"expected {expected} tab-separated fields ({', '.join(columns)})"
        else:
            indices = (source_column, target_column)
            fields_names = ("source", "target")
            expected = None  # line 1 decides
            needed = max(indices) + 1
        for line, text in lines:
            if not text.strip() and "\t" not in text:
                bad(line, "blank line")
                continue
            fields = text.split("\t")
            if expected is None:
                if len(fields) < needed:
                    raise DataError(display, f"expected at least {needed} tab-separated fields for "
                                             f"columns {indices[0]} and {indices[1]}, got {len(fields)}", line=line)
                expected = len(fields)
                shape = f"expected {expected} tab-separated fields, as on line {line}"
            if len(fields) != expected:
                bad(line, f"{shape}, got {len(fields)}")
                continue
            pair = (fields[indices[0]], fields[indices[1]])
            empty = next((name for name, value in zip(fields_names, pair) if not value.strip()), None)
            if empty is not None:
                bad(line, "empty value", empty)
                continue
            sources.append(pair[0])
            targets.append(pair[1])
            numbers.append(line)
    if not sources:
        _no_pairs(display, skipped, "no data rows" if by_name else "empty file: no rows")
    return ParallelText(sources, targets, numbers, display, display, skipped)


def _check_file(display: str) -> None:
    check_readable_file(display, "a text file")


@contextlib.contextmanager
def _reading(*displays: str) -> Iterator[None]:
    """Turn a PermissionError into a DataError naming the file (the first one when it does not say)."""
    try:
        yield
    except PermissionError as error:
        raise DataError(error.filename or displays[0], f"cannot read: {error.strerror}") from None


def _no_pairs(display: str, skipped: list[SkippedRow], empty: str) -> None:
    if skipped:
        first = skipped[0]
        raise DataError(
            display, f"no usable pairs: all {len(skipped)} pairs are bad (first: line {first.line}: {first.reason})"
        )
    raise DataError(display, empty)
