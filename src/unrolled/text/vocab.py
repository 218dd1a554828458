"""Vocabulary: a fixed, ordered list of tokens; a token's id is its position.

Order is deterministic, so a saved model's embedding rows always line up with the same tokens:

    id 0  <pad>   (padding; masked out)
    id 1  <unk>   (any token not in the vocabulary)
    id 2… tokens by frequency, most frequent first; ties by token, ascending (code-point order)

Saved as JSON (``vocab.json`` in a checkpoint), never pickled::

    {"format": "unrolled-vocab", "version": 1, "tokens": ["<pad>", "<unk>", "the", ...],
     "min_freq": 1, "max_size": null}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from unrolled.nn._validation import json_type

__all__ = ["Vocab"]

_FORMAT = "unrolled-vocab"
_VERSION = 1
_JSON_KEYS = ("format", "version", "tokens", "min_freq", "max_size")


class Vocab:
    """An ordered token list with ``<pad>`` at id 0 and ``<unk>`` at id 1.

    Build one with :meth:`Vocab.build` (from tokenized texts) or :meth:`Vocab.from_json`. Two vocabularies
    are equal when their token lists are equal (the build settings are only a record).
    """

    PAD = "<pad>"
    UNK = "<unk>"
    PAD_ID = 0
    UNK_ID = 1

    def __init__(self, tokens: Sequence[str], *, min_freq: int = 1, max_size: int | None = None) -> None:
        """Wrap an explicit token list (``tokens[0] == "<pad>"``, ``tokens[1] == "<unk>"``, no duplicates)."""
        tokens = tuple(tokens)
        try:  # fewer ids than tokens: a duplicate, which the check names
            ids = dict(zip(tokens, range(len(tokens))))
        except TypeError:  # an unhashable item (a list from JSON): the check names it
            ids = {}
        _check_tokens(tokens, "tokens", len(ids))
        self._tokens: tuple[str, ...] = tokens
        self._ids: dict[str, int] = ids
        self.min_freq = min_freq
        self.max_size = max_size

    @classmethod
    def build(
        cls, token_lists: Iterable[list[str]], *, min_freq: int = 1, max_size: int | None = None
    ) -> Vocab:
        """Count tokens over ``token_lists`` and keep those seen at least ``min_freq`` times.

        ``max_size`` caps the total size, the two specials included (so ``max_size=2`` keeps only them).
        Occurrences of ``"<pad>"``/``"<unk>"`` in the data are not counted (they already have ids 0/1).
        """
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"min_freq: expected an integer >= 1, got {min_freq!r}")
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 2):
            raise ValueError(
                f"max_size: expected None or an integer >= 2 (it counts <pad> and <unk>), got {max_size!r}"
            )
        counts: Counter[str] = Counter()
        for i, tokens in enumerate(token_lists):
            if isinstance(tokens, str):
                raise ValueError(f"token_lists[{i}]: expected a list of tokens, got a str (tokenize it first)")
            counts.update(tokens)
        for token in counts:
            if not isinstance(token, str):
                raise ValueError(f"token_lists: tokens must be str, got {type(token).__name__} {token!r}")
        counts.pop(cls.PAD, None)
        counts.pop(cls.UNK, None)
        kept = sorted((item for item in counts.items() if item[1] >= min_freq), key=lambda item: (-item[1], item[0]))
        if max_size is not None:
            kept = kept[: max_size - 2]
        return cls([cls.PAD, cls.UNK, *(token for token, _ in kept)], min_freq=min_freq, max_size=max_size)

    # --- lookup ------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        """V, the number of tokens, specials included."""
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __iter__(self):
        return iter(self._tokens)

    @property
    def tokens(self) -> tuple[str, ...]:
        """All tokens in id order (``tokens[i]`` has id ``i``)."""
        return self._tokens

    def id_of(self, token: str) -> int:
        """The id of ``token``, or ``UNK_ID`` (1) when it is not in the vocabulary."""
        return self._ids.get(token, self.UNK_ID)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token list -> id list (unknown tokens -> 1)."""
        if isinstance(tokens, str):
            raise ValueError("tokens: expected a list of tokens, got a str (tokenize it first)")
        get, unk = self._ids.get, self.UNK_ID
        return [get(token, unk) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Id list -> token list; an id outside ``[0, V)`` is a ValueError."""
        out = []
        size = len(self._tokens)
        for position, token_id in enumerate(ids):
            if isinstance(token_id, bool) or not hasattr(token_id, "__index__"):
                raise ValueError(f"ids[{position}]: expected an integer id, got {token_id!r}")
            index = token_id.__index__()
            if not 0 <= index < size:
                raise ValueError(f"ids[{position}]: id {index} is outside the vocabulary [0, {size})")
            out.append(self._tokens[index])
        return out

    # --- equality ----------------------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return self._tokens == other._tokens

    def __hash__(self) -> int:
        return hash(self._tokens)

    def __repr__(self) -> str:
        preview = ", ".join(repr(t) for t in self._tokens[2:6])
        more = ", …" if len(self._tokens) > 6 else ""
        return f"Vocab(size={len(self)}, tokens=[<pad>, <unk>{', ' if preview else ''}{preview}{more}])"

    # --- JSON --------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: format, version, tokens (id order) and the build settings."""
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "tokens": list(self._tokens),
            "min_freq": self.min_freq,
            "max_size": self.max_size,
        }

    @classmethod
    def from_json(cls, obj: Any, source: str = "vocab.json") -> Vocab:
        """Rebuild from :meth:`to_json` output; any problem is one ValueError naming ``source`` and the field."""
        if not isinstance(obj, dict):
            raise ValueError(f"{source}: expected a JSON object, got {json_type(obj)}")
        unknown = sorted(set(obj) - set(_JSON_KEYS), key=str)
        if unknown:
            raise ValueError(f"{source}: unknown field {unknown[0]!r} (expected {', '.join(_JSON_KEYS)})")
        for key in ("format", "version", "tokens"):
            if key not in obj:
                raise ValueError(f"{source}: field {key!r}: missing")
        if obj["format"] != _FORMAT:
            raise ValueError(f"{source}: field 'format': expected {_FORMAT!r}, got {obj['format']!r}")
        if obj["version"] != _VERSION or isinstance(obj["version"], bool):
            version = obj["version"]
            raise ValueError(f"{source}: field 'version': unsupported version {version!r} (this reads {_VERSION})")
        tokens = obj["tokens"]
        if not isinstance(tokens, list):
            raise ValueError(f"{source}: field 'tokens': expected a list, got {json_type(tokens)}")
        try:
            vocab = cls(tokens)  # checks the tokens (once: a 30,000-word vocabulary is read at every model load)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None
        min_freq = obj.get("min_freq", 1)
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"{source}: field 'min_freq': expected an integer >= 1, got {min_freq!r}")
        max_size = obj.get("max_size")
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 2):
            raise ValueError(f"{source}: field 'max_size': expected null or an integer >= 2, got {max_size!r}")
        vocab.min_freq, vocab.max_size = min_freq, max_size
        return vocab


def _check_tokens(tokens: Sequence[Any], field: str, distinct: int) -> None:
    """Raise ``ValueError("field '<field>': …")`` unless tokens are unique non-empty str with the specials at 0/1.

    ``distinct``: the number of distinct tokens, as the caller counted them (the keys of its id dict).
    """
    # The common case, a valid list, in C-speed passes (a 30,000-word vocabulary is read at every model load);
    # anything else falls through to the loops below, which find the first bad item for the message.
    if set(map(type, tokens)) == {str} and tuple(tokens[:2]) == (Vocab.PAD, Vocab.UNK):
        if distinct == len(tokens) and "" not in tokens:
            return
    for i, token in enumerate(tokens):
        if not isinstance(token, str):
            raise ValueError(f"field '{field}': item {i}: expected a string, got {json_type(token)} {token!r}")
        if not token:
            raise ValueError(f"field '{field}': item {i}: empty token")
    for i, special in ((Vocab.PAD_ID, Vocab.PAD), (Vocab.UNK_ID, Vocab.UNK)):
        if len(tokens) <= i or tokens[i] != special:
            got = repr(tokens[i]) if len(tokens) > i else "nothing"
            raise ValueError(f"field '{field}': item {i}: expected {special!r}, got {got}")
    first_seen: dict[str, int] = {}
    for i, token in enumerate(tokens):
        if token in first_seen:
            raise ValueError(f"field '{field}': item {i}: duplicate token {token!r} (first at {first_seen[token]})")
        first_seen[token] = i

