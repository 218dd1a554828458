"""Text to token ids: :func:`tokenize` (words and punctuation), :class:`Vocab` (token <-> id), and
pretrained word vectors for a vocabulary (:func:`read_word_vectors`, :func:`embedding_matrix`)."""

from unrolled._lazy import lazy_exports

# tokenize is imported here, not on first use: the module unrolled.text.tokenize has the function's name, and
# importing that module sets this package's attribute ``tokenize`` to the module, over a lazily bound name.
from unrolled.text.tokenize import tokenize
from unrolled.text.vocab import Vocab

TYPE_CHECKING = False
if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports these on first use
    from unrolled.text.embeddings import EmbeddingCoverage, embedding_matrix, read_word_vectors, word_vector_dim

# public name -> the module of unrolled.text that defines it (imported on first use: predicting reads no vectors)
_LAZY = {"EmbeddingCoverage": "embeddings", "embedding_matrix": "embeddings", "read_word_vectors": "embeddings",
         "word_vector_dim": "embeddings"}

__all__ = ["EmbeddingCoverage", "Vocab", "embedding_matrix", "read_word_vectors", "tokenize", "word_vector_dim"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
