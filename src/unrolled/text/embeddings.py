"""Pretrained word vectors (GloVe, word2vec text format) and the embedding matrix they give a vocabulary.

The file is text, one word per line, the word then its values, separated by spaces or tabs::

    the 0.418 0.24968 -0.41242 ...          GloVe: no header; DIM = fields on the first line - 1
    3000000 300                             word2vec text format: a first line of exactly two
    </s> 0.001129 -0.000896 ...             integers "COUNT DIM" is a header

Details, as the published files need them:

- gzip-compressed files are read directly; compression is recognized by the file's first bytes, not its
  name. Anything else must be UTF-8 text (a binary word2vec ``.bin`` file is reported as such).
- Fields are split at ASCII whitespace only, so a word with a no-break space (GloVe 840B has some) stays
  whole. A word may contain spaces too (``. . .`` in GloVe 840B): the last DIM fields of a line are the
  vector and the fields before them, joined by one space, are the word. A line with more fields than
  DIM + 1 is therefore a word with spaces, unless the extra fields are numbers: then it has too many values.
- Blank lines and trailing whitespace are skipped; a UTF-8 byte-order mark at the start is ignored.
- A header's COUNT is not checked against the number of lines (many files get it wrong); its DIM is.
- A first line of exactly two integers is always a header (so a 1-dimensional GloVe file whose first
  word is a number cannot be read).
- Duplicate words: the first occurrence wins; later lines for the same word are ignored.

Every line's field count is checked, so a damaged file is reported even when the broken line is a word
no one asked for; its values are parsed only when the word is kept. Errors are one ``ValueError`` line,
``FILE:LINE: what is wrong``.

Speed: parsing the numbers dominates. Measured on a 100-d file with a slow shared core (where
``float("0.12345")`` takes 215 ns): 27 µs a kept line, 6 µs a skipped one, so GloVe 6B 100d (400,000
lines) takes about 2.5 s with ``words`` and 11 s read whole; a core with a 3-4x faster ``float()`` divides
both accordingly.
"""

from __future__ import annotations

import gzip
import math
import operator
import os
import zlib
from collections.abc import Collection, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import numpy as np

from unrolled.data.readers import LINE_LIMIT_TEXT, MAX_LINE_BYTES, check_readable_file
from unrolled.nn._validation import check_positive_int
from unrolled.text.vocab import Vocab

__all__ = ["EmbeddingCoverage", "embedding_matrix", "read_word_vectors", "word_vector_dim"]

_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
_BINARY_HINT = "(a binary word2vec file? convert it to the text format)"


@dataclass(frozen=True)
class EmbeddingCoverage:
    """How much of a vocabulary got pretrained vectors (the specials ``<pad>``/``<unk>`` not counted).

    ``found``/``total`` count vocabulary words; ``tokens_found``/``tokens_total`` weight them by their
    training counts (None when the counts were not given).
    """

    found: int
    total: int
    tokens_found: int | None = None
    tokens_total: int | None = None

    def __post_init__(self) -> None:
        if (self.tokens_found is None) != (self.tokens_total is None):
            raise ValueError("tokens_found and tokens_total: give both or neither")

    @property
    def fraction(self) -> float:
        """found / total (0.0 for an empty vocabulary)."""
        return self.found / self.total if self.total else 0.0

    @property
    def token_fraction(self) -> float | None:
        """tokens_found / tokens_total, or None when the token counts are unknown."""
        if self.tokens_found is None or self.tokens_total is None:
            return None
        return self.tokens_found / self.tokens_total if self.tokens_total else 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the four counts and the two fractions."""
        return {
            "found": self.found,
            "total": self.total,
            "fraction": self.fraction,
            "tokens_found": self.tokens_found,
            "tokens_total": self.tokens_total,
            "token_fraction": self.token_fraction,
        }

    def __str__(self) -> str:
        text = f"coverage: {self.found:,} of {self.total:,} words ({_percent(self.found, self.total)} %)"
        if self.tokens_found is not None and self.tokens_total is not None:
            text += f", {_percent(self.tokens_found, self.tokens_total)} % of training tokens"
        return text


def read_word_vectors(
    path: str | os.PathLike[str], words: Collection[str] | None = None, *, dtype: Any = np.float32
) -> tuple[dict[str, np.ndarray], int]:
    """Read a GloVe or word2vec text file (format in the module docstring) -> (word -> (DIM,) vector, DIM).

    With ``words``, keep only a file word ``w`` when ``w.lower()`` is the lower-cased form of one of
    ``words`` (so ``"Paris"`` and ``"paris"`` are both kept for ``{"Paris"}``): a large file never has
    to sit in memory whole. The file must hold at least one vector, but none of them need be wanted.
    """
    source = os.fspath(path)
    wanted = _lowered(words)
    dtype = _float_dtype(dtype)
    vectors: dict[str, np.ndarray] = {}
    dim = 0
    n_fields = 0  # word + DIM values; 0 until the first line is read
    n_vectors = 0
    with closing(_fields_by_line(path, source)) as lines, np.errstate(over="ignore", invalid="ignore"):
        for lineno, fields in lines:
            if not n_fields:
                dim, is_header = _dimension(fields, source, lineno)
                n_fields = dim + 1
                if is_header:
                    continue
            if len(fields) == n_fields:
                word_bytes, values = fields[0], fields[1:]
            else:
                word_bytes, values = _split_long_line(fields, dim, source, lineno)
            n_vectors += 1
            word = word_bytes.decode("utf-8")  # the whole line was checked: every field is valid UTF-8
            if (wanted is not None and word.lower() not in wanted) or word in vectors:
                continue
            vectors[word] = _to_vector(values, word, dtype, source, lineno)
    if not n_vectors:
        raise ValueError(f"{source}: no word vectors")
    return vectors, dim


def word_vector_dim(path: str | os.PathLike[str]) -> int:
    """The vector dimension of a word-vector file, from its header or its first line (reads nothing more)."""
    source = os.fspath(path)
    with closing(_fields_by_line(path, source)) as lines:
        for lineno, fields in lines:
            return _dimension(fields, source, lineno)[0]
    raise ValueError(f"{source}: no word vectors")


def embedding_matrix(
    vocab: Vocab,
    vectors: Mapping[str, np.ndarray],
    dim: int,
    *,
    init: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    counts: Mapping[str, int] | None = None,
    scale: float | None = None,
) -> tuple[np.ndarray, EmbeddingCoverage]:
    """The (V, dim) float32 embedding matrix for ``vocab``, rows from ``vectors`` where they have the word.

    A token is looked up as is, then lower-cased, then against the file's words lower-cased (the first
    such word in file order: a lower-cased vocabulary finds ``Paris`` in a cased file); each counts as found.
    Row 0 (``<pad>``) is zero and row 1 (``<unk>``) is never looked up. Every other row comes from ``init``
    ((V, dim), e.g. the model's own random initialization) if given, else from N(0, scale²) drawn with ``rng`` (default
    ``np.random.default_rng(0)``), ``scale`` defaulting to the standard deviation of the found vectors
    (1.0 when none are found or they are all equal).

    ``counts`` (token -> training count) adds token-weighted coverage: tokens outside the vocabulary
    count as not found (they are read as ``<unk>``).
    """
    tokens = vocab.tokens
    check_positive_int("dim", dim)
    for vector in vectors.values():  # the file's dimension, from any one vector
        file_dim = np.shape(vector)[-1] if np.ndim(vector) else 0
        if file_dim != dim:
            raise ValueError(f"embedding file has dimension {file_dim}, the model's embedding_dim is {dim}")
        break
    if init is not None:
        init = np.asarray(init)
        if init.shape != (len(tokens), dim):
            raise ValueError(f"init: expected shape (V, dim) = {(len(tokens), dim)}, got {init.shape}")
    if rng is None:
        rng = np.random.default_rng(0)
    elif not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if scale is not None:
        is_number = isinstance(scale, (int, float, np.integer, np.floating)) and not isinstance(scale, bool)
        if not (is_number and math.isfinite(scale) and scale >= 0):
            raise ValueError(f"scale: expected a finite number >= 0, got {scale!r}")
        scale = float(scale)

    by_lower: dict[str, np.ndarray] = {}
    for word, vector in vectors.items():  # dicts keep the file's order: the first spelling wins
        by_lower.setdefault(word.lower(), vector)
    matrix = np.zeros((len(tokens), dim), dtype=np.float32)  # row 0 (<pad>) is never written: it stays zero
    found_ids: list[int] = []
    missing_ids: list[int] = [Vocab.UNK_ID]
    for token_id in range(Vocab.UNK_ID + 1, len(tokens)):
        token = tokens[token_id]
        vector = vectors.get(token)
        if vector is None:
            vector = vectors.get(token.lower())
        if vector is None:
            vector = by_lower.get(token.lower())
        if vector is None:
            missing_ids.append(token_id)
            continue
        if np.shape(vector) != (dim,):
            raise ValueError(f"vectors[{token!r}]: expected shape ({dim},), got {np.shape(vector)}")
        matrix[token_id] = vector
        found_ids.append(token_id)

    if init is not None:
        matrix[missing_ids] = init[missing_ids]
    else:
        if scale is None:
            scale = float(np.std(matrix[found_ids], dtype=np.float64)) if found_ids else 0.0
            scale = scale or 1.0
        matrix[missing_ids] = rng.normal(0.0, scale, size=(len(missing_ids), dim))

    tokens_found = tokens_total = None
    if counts is not None:
        tokens_total = sum(_count(counts, token) for token in counts if token not in (Vocab.PAD, Vocab.UNK))
        tokens_found = sum(_count(counts, tokens[i]) for i in found_ids if tokens[i] in counts)
    coverage = EmbeddingCoverage(len(found_ids), len(tokens) - 2, tokens_found, tokens_total)
    return matrix, coverage


# --- reading ---------------------------------------------------------------------------------------------


def _fields_by_line(path: str | os.PathLike[str], source: str) -> Iterator[tuple[int, list[bytes]]]:
    """Yield (line number, the line split at ASCII whitespace) for each non-blank line, gunzipping if needed.

    Checks that every line is UTF-8 text of at most 8 MiB (read no further than that); a damaged gzip stream
    is a ValueError naming the line. Only a regular file is opened (a FIFO or a device is refused first).
    """
    if not os.path.lexists(source):
        raise FileNotFoundError(f"{source}: no such file")
    check_readable_file(source, "a word-vector file")  # no directory, FIFO or device
    with open(path, "rb") as file:
        compressed = file.peek(len(_GZIP_MAGIC))[: len(_GZIP_MAGIC)] == _GZIP_MAGIC
        handle = gzip.GzipFile(fileobj=file, mode="rb") if compressed else file
        lineno = 0
        try:
            while line := handle.readline(MAX_LINE_BYTES + 1):
                lineno += 1
                if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                    raise ValueError(f"{source}:{lineno}: line longer than {LINE_LIMIT_TEXT}, not a word-vector file")
                if not line.isascii():
                    if lineno == 1 and line.startswith(_UTF8_BOM):
                        line = line[len(_UTF8_BOM) :]
                    try:
                        line.decode("utf-8")
                    except UnicodeDecodeError:
                        raise ValueError(f"{source}:{lineno}: not UTF-8 text {_BINARY_HINT}") from None
                if 0 in line:  # a NUL byte
                    raise ValueError(f"{source}:{lineno}: binary data, not text {_BINARY_HINT}")
                fields = line.split()
                if fields:
                    yield lineno, fields
        except (EOFError, OSError, zlib.error) as error:
            if not compressed:
                raise
            raise ValueError(f"{source}:{lineno + 1}: damaged gzip data ({error})") from None


def _dimension(fields: list[bytes], source: str, lineno: int) -> tuple[int, bool]:
    """(DIM, is a header) from the first non-blank line."""
    if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
        dim = int(fields[1])
        if dim < 1:
            raise ValueError(f"{source}:{lineno}: the header 'COUNT DIM' gives dimension {dim}")
        return dim, True
    if len(fields) < 2:
        raise ValueError(f"{source}:{lineno}: no values after the word {fields[0].decode('utf-8')!r}")
    return len(fields) - 1, False


def _split_long_line(fields: list[bytes], dim: int, source: str, lineno: int) -> tuple[bytes, list[bytes]]:
    """(word, values) of a line that has not exactly DIM + 1 fields: a word with spaces, or an error."""
    n_values = len(fields) - 1
    if n_values > dim:
        extra = fields[1 : len(fields) - dim]
        if not all(_is_number(field) for field in extra):
            return b" ".join(fields[: len(fields) - dim]), fields[len(fields) - dim :]
    raise ValueError(f"{source}:{lineno}: expected {dim} values after the word, got {n_values}")


def _to_vector(values: list[bytes], word: str, dtype: np.dtype, source: str, lineno: int) -> np.ndarray:
    """Parse one line's values (call inside ``np.errstate(over="ignore")``: overflow is reported here)."""
    try:
        vector = np.array(values, dtype=dtype)
    except ValueError:
        bad = next((field for field in values if not _is_number(field)), values[0])
        raise ValueError(f"{source}:{lineno}: value {bad.decode('utf-8')!r} is not a number") from None
    if not np.isfinite(vector).all():
        raise ValueError(f"{source}:{lineno}: non-finite value for word {word!r}")
    return vector


def _is_number(field: bytes) -> bool:
    """Whether NumPy parses ``field`` as a float (nan and inf included)."""
    try:
        np.array(field, dtype=np.float64)
    except ValueError:
        return False
    return True


def _lowered(words: Collection[str] | None) -> set[str] | None:
    """The lower-cased forms of ``words`` (None stays None)."""
    if words is None:
        return None
    if isinstance(words, (str, bytes)):
        raise ValueError(f"words: expected a collection of words, got a {type(words).__name__}")
    lowered = set()
    for word in words:
        if not isinstance(word, str):
            raise ValueError(f"words: expected str items, got {type(word).__name__} {word!r}")
        lowered.add(word.lower())
    return lowered


def _float_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as a NumPy floating dtype, or a ValueError."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype: expected a floating-point dtype, got {dtype!r}") from None
    if resolved.kind != "f":
        raise ValueError(f"dtype: expected a floating-point dtype, got {resolved}")
    return resolved


# --- coverage --------------------------------------------------------------------------------------------


def _count(counts: Mapping[str, int], token: str) -> int:
    """``counts[token]`` checked to be a non-negative integer."""
    value = counts[token]
    try:
        count = operator.index(value)
    except TypeError:
        count = -1
    if isinstance(value, bool) or count < 0:
        raise ValueError(f"counts[{token!r}]: expected a non-negative integer, got {value!r}")
    return count


def _percent(part: int, whole: int) -> str:
    """``part / whole`` as a percentage with one decimal; never "100.0" unless all, never "0.0" unless none."""
    if not whole:
        return "0.0"
    text = f"{100.0 * part / whole:.1f}"
    if text == "100.0" and part < whole:
        return "99.9"
    if text == "0.0" and part > 0:
        return "0.1"
    return text
