"""Text to token ids: :func:`tokenize` (words and punctuation), :class:`Vocab` (token <-> id), and
pretrained word vectors for a vocabulary (:func:`read_word_vectors`, :func:`embedding_matrix`)."""

from unrolled.text.embeddings import EmbeddingCoverage, embedding_matrix, read_word_vectors, word_vector_dim
from unrolled.text.tokenize import tokenize
from unrolled.text.vocab import Vocab

__all__ = ["EmbeddingCoverage", "Vocab", "embedding_matrix", "read_word_vectors", "tokenize", "word_vector_dim"]
