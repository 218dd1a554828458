"""Text to token ids: :func:`tokenize` (words and punctuation) and :class:`Vocab` (token <-> id)."""

from unrolled.text.tokenize import tokenize
from unrolled.text.vocab import Vocab

__all__ = ["Vocab", "tokenize"]
