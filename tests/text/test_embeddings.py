"""Word-vector files (GloVe, word2vec text, gzip) and the embedding matrix and coverage they give a Vocab."""

import gzip
import json
import re

import numpy as np
import pytest

from unrolled.text import Vocab
from unrolled.text.embeddings import EmbeddingCoverage, embedding_matrix, read_word_vectors, word_vector_dim

# Values exactly representable in float32, so rows can be compared with ==.
GLOVE = "the 0.5 -0.25 1.0\ncat 0.125 2.0 -3.5\nParis 4.0 0.0 -0.5\n"
EXPECTED = {
    "the": [0.5, -0.25, 1.0],
    "cat": [0.125, 2.0, -3.5],
    "Paris": [4.0, 0.0, -0.5],
}


def write(tmp_path, text, name="vectors.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def as_lists(vectors):
    return {word: vector.tolist() for word, vector in vectors.items()}


def error_of(path, **kwargs):
    with pytest.raises(ValueError) as info:
        read_word_vectors(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- reading ---------------------------------------------------------------------------------------------


def test_glove_format(tmp_path):
    vectors, dim = read_word_vectors(write(tmp_path, GLOVE))
    assert dim == 3
    assert as_lists(vectors) == EXPECTED
    assert all(v.dtype == np.float32 and v.shape == (3,) for v in vectors.values())


def test_word2vec_header_is_not_a_word(tmp_path):
    vectors, dim = read_word_vectors(write(tmp_path, "3 3\n" + GLOVE))
    assert dim == 3
    assert as_lists(vectors) == EXPECTED


def test_header_count_may_be_wrong(tmp_path):
    vectors, dim = read_word_vectors(write(tmp_path, "1000 3\n" + GLOVE))
    assert (len(vectors), dim) == (3, 3)


def test_dtype(tmp_path):
    vectors, _ = read_word_vectors(write(tmp_path, "x 0.1 0.2\n"), dtype=np.float64)
    assert vectors["x"].dtype == np.float64
    assert vectors["x"].tolist() == [0.1, 0.2]
    with pytest.raises(ValueError, match="dtype: expected a floating-point dtype, got int64"):
        read_word_vectors(write(tmp_path, "x 1 2\n"), dtype=np.int64)


@pytest.mark.parametrize("name", ["vectors.txt.gz", "vectors.txt"])
def test_gzip_recognized_by_content_not_name(tmp_path, name):
    path = write(tmp_path, gzip.compress(GLOVE.encode()), name)
    vectors, dim = read_word_vectors(path)
    assert dim == 3 and as_lists(vectors) == EXPECTED
    assert word_vector_dim(path) == 3


def test_plain_file_with_gz_name(tmp_path):
    vectors, _ = read_word_vectors(write(tmp_path, GLOVE, "vectors.txt.gz"))
    assert as_lists(vectors) == EXPECTED


def test_damaged_gzip(tmp_path):
    data = gzip.compress(("".join(f"w{i} {i}.5 1.0\n" for i in range(2000))).encode())
    path = write(tmp_path, data[: len(data) // 2])
    message = error_of(path)
    assert re.fullmatch(rf"{re.escape(str(path))}:\d+: damaged gzip data \(.+\)", message)


def test_words_with_spaces(tmp_path):
    text = "the 0.5 1.0\n. . . 2.0 3.0\nat name@domain.com 4.0 5.0\n"
    vectors, dim = read_word_vectors(write(tmp_path, text))
    assert dim == 2
    assert as_lists(vectors) == {"the": [0.5, 1.0], ". . .": [2.0, 3.0], "at name@domain.com": [4.0, 5.0]}


def test_only_ascii_whitespace_separates(tmp_path):
    # A no-break space is part of the word (str.split() would cut it there).
    vectors, _ = read_word_vectors(write(tmp_path, "the 0.5 1.0\n1\u00a0000 2.0 3.0\n"))
    assert vectors["1\u00a0000"].tolist() == [2.0, 3.0]


def test_tabs_blank_lines_trailing_space_crlf_bom(tmp_path):
    text = "\ufeff\n\nthe\t0.5\t-0.25 1.0  \r\n\n  \ncat 0.125\t2.0 -3.5\t\n\nParis 4.0 0.0 -0.5"
    vectors, dim = read_word_vectors(write(tmp_path, text))
    assert dim == 3 and as_lists(vectors) == EXPECTED


def test_duplicates_first_wins(tmp_path):
    vectors, _ = read_word_vectors(write(tmp_path, "a 1.0 2.0\nb 3.0 4.0\na 5.0 6.0\n"))
    assert as_lists(vectors) == {"a": [1.0, 2.0], "b": [3.0, 4.0]}
    vectors, _ = read_word_vectors(write(tmp_path, "a 1.0 2.0\nb 3.0 4.0\na 5.0 6.0\n"), words={"a"})
    assert as_lists(vectors) == {"a": [1.0, 2.0]}


def test_words_filter_keeps_case_variants(tmp_path):
    text = "the 1.0\nThe 2.0\nparis 3.0\nParis 4.0\nPARIS 5.0\ndog 6.0\ncat 7.0\n"
    vectors, dim = read_word_vectors(write(tmp_path, text), words={"the", "Paris", "bird"})
    assert dim == 1
    assert as_lists(vectors) == {"the": [1.0], "The": [2.0], "paris": [3.0], "Paris": [4.0], "PARIS": [5.0]}


def test_words_filter_may_keep_nothing(tmp_path):
    vectors, dim = read_word_vectors(write(tmp_path, GLOVE), words=["zebra"])
    assert vectors == {} and dim == 3


def test_words_must_be_a_collection_of_str(tmp_path):
    with pytest.raises(ValueError, match="words: expected a collection of words, got a str"):
        read_word_vectors(write(tmp_path, GLOVE), words="the")


def test_unwanted_values_are_not_parsed_but_counts_are_checked(tmp_path):
    # 'abc' is never parsed (the word is not wanted) ...
    vectors, _ = read_word_vectors(write(tmp_path, "the 1.0 2.0\nodd abc 2.0\n"), words={"the"})
    assert as_lists(vectors) == {"the": [1.0, 2.0]}
    # ... but a wrong field count is reported for any line.
    path = write(tmp_path, "the 1.0 2.0\nodd 2.0\n")
    assert error_of(path, words={"the"}) == f"{path}:2: expected 2 values after the word, got 1"


def test_word_vector_dim(tmp_path):
    assert word_vector_dim(write(tmp_path, "\n\nthe 0.5 1.0 2.0 3.0\nbroken\n")) == 4
    assert word_vector_dim(write(tmp_path, "2000000 300\nthe 1 2\n")) == 300
    path = write(tmp_path, "\n \n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: no word vectors$"):
        word_vector_dim(path)


# --- reading errors: one line, FILE:LINE --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a 1.0 2.0\nb 1.0\n", ":2: expected 2 values after the word, got 1"),
        ("a 1.0 2.0\n\nb 1.0 2.0 3.0\n", ":3: expected 2 values after the word, got 3"),
        ("a 1.0 2.0\nb\n", ":2: expected 2 values after the word, got 0"),
        ("3 2\na 1.0 2.0\nb 1.0 2.0 3.0\n", ":3: expected 2 values after the word, got 3"),  # header DIM
        ("3 4\na 1.0 2.0\n", ":2: expected 4 values after the word, got 2"),
        ("a 1.0 2.0\nb 1.0 abc\n", ":2: value 'abc' is not a number"),
        ("a 1.0 2.0\nb 1,5 2.0\n", ":2: value '1,5' is not a number"),
        ("a 1.0 2.0\nb nan 2.0\n", ":2: non-finite value for word 'b'"),
        ("a 1.0 2.0\nb 1.0 -inf\n", ":2: non-finite value for word 'b'"),
        ("a 1.0 2.0\nb 1.0 1e39\n", ":2: non-finite value for word 'b'"),  # overflows float32
        ("\nalone\n", ":2: no values after the word 'alone'"),
        ("5 0\n", ":1: the header 'COUNT DIM' gives dimension 0"),
    ],
)
def test_errors_name_file_and_line(tmp_path, text, expected):
    path = write(tmp_path, text)
    assert error_of(path) == f"{path}{expected}"


@pytest.mark.parametrize("text", ["", "\n\n  \t\n", "3 100\n"])
def test_no_vectors(tmp_path, text):
    path = write(tmp_path, text)
    assert error_of(path) == f"{path}: no word vectors"


def test_binary_word2vec_file(tmp_path):
    body = b"the " + np.array([0.1, -2.5, 3.75], dtype=np.float32).tobytes() + b"\n"
    path = write(tmp_path, b"2 3\n" + body)
    assert error_of(path) == (
        f"{path}:2: not UTF-8 text (a binary word2vec file? convert it to the text format)"
    )
    zeros = write(tmp_path, b"2 3\nthe " + np.zeros(3, dtype=np.float32).tobytes() + b"\n", "zeros.bin")
    assert error_of(zeros) == (
        f"{zeros}:2: binary data, not text (a binary word2vec file? convert it to the text format)"
    )


def test_bad_utf8_line_number(tmp_path):
    path = write(tmp_path, b"a 1.0\nb 2.0\ncaf\xe9 3.0\n")
    assert error_of(path).startswith(f"{path}:3: not UTF-8 text")


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope" / "glove.6B.100d.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        read_word_vectors(path)
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        word_vector_dim(path)


# --- embedding_matrix ------------------------------------------------------------------------------------

VOCAB = Vocab(["<pad>", "<unk>", "the", "cat", "paris", "Cat", "zebra", "quokka"])


def test_found_rows_are_the_file_vectors(tmp_path):
    vectors, dim = read_word_vectors(write(tmp_path, GLOVE), words=VOCAB.tokens)
    matrix, coverage = embedding_matrix(VOCAB, vectors, dim)
    assert matrix.shape == (8, 3) and matrix.dtype == np.float32
    assert matrix[2].tolist() == EXPECTED["the"]
    assert matrix[3].tolist() == EXPECTED["cat"]
    assert matrix[5].tolist() == EXPECTED["cat"]  # "Cat" -> "cat"
    assert matrix[4].tolist() == EXPECTED["Paris"]  # the file's "Paris" for the lower-cased token "paris"
    assert matrix[0].tolist() == [0.0, 0.0, 0.0]
    assert (coverage.found, coverage.total) == (4, 6)
    assert coverage.tokens_found is None and coverage.token_fraction is None


def test_missing_rows_from_init_and_pad_is_zero():
    vectors = {"the": np.array([1.0, 2.0], np.float32), "<pad>": np.array([9.0, 9.0], np.float32)}
    vocab = Vocab(["<pad>", "<unk>", "the", "zebra"])
    init = np.arange(8, dtype=np.float64).reshape(4, 2) + 0.5
    matrix, coverage = embedding_matrix(vocab, vectors, 2, init=init)
    assert matrix.tolist() == [[0.0, 0.0], [2.5, 3.5], [1.0, 2.0], [6.5, 7.5]]
    assert (coverage.found, coverage.total) == (1, 2)


def test_unk_is_never_looked_up():
    vectors = {"<unk>": np.array([9.0, 9.0], np.float32), "the": np.array([1.0, 2.0], np.float32)}
    vocab = Vocab(["<pad>", "<unk>", "the"])
    matrix, coverage = embedding_matrix(vocab, vectors, 2, init=np.zeros((3, 2)))
    assert matrix[1].tolist() == [0.0, 0.0]
    assert (coverage.found, coverage.total) == (1, 1)


def test_random_rows_scale_with_the_found_vectors():
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(400)]
    vectors = {w: (3.0 * rng.standard_normal(50)).astype(np.float32) for w in words[:200]}
    vocab = Vocab(["<pad>", "<unk>", *words])
    matrix, coverage = embedding_matrix(vocab, vectors, 50)
    assert coverage.found == 200
    random_rows = matrix[202:]
    assert abs(random_rows.std() - 3.0) < 0.1 and abs(random_rows.mean()) < 0.1
    again, _ = embedding_matrix(vocab, vectors, 50)  # default rng is seeded: reproducible
    assert np.array_equal(matrix, again)
    other, _ = embedding_matrix(vocab, vectors, 50, rng=np.random.default_rng(5))
    assert not np.array_equal(matrix[202:], other[202:]) and np.array_equal(matrix[2:202], other[2:202])
    small, _ = embedding_matrix(vocab, vectors, 50, scale=0.01)
    assert abs(small[202:].std() - 0.01) < 0.001


def test_nothing_found_uses_scale_one():
    vocab = Vocab(["<pad>", "<unk>", *(f"w{i}" for i in range(100))])
    matrix, coverage = embedding_matrix(vocab, {"other": np.ones(20, np.float32)}, 20)
    assert coverage.found == 0 and coverage.fraction == 0.0
    assert abs(matrix[1:].std() - 1.0) < 0.05
    assert matrix[0].tolist() == [0.0] * 20


def test_token_weighted_coverage():
    vectors = {"the": np.ones(2, np.float32), "cat": np.ones(2, np.float32)}
    vocab = Vocab(["<pad>", "<unk>", "the", "Cat", "zebra"])
    counts = {"the": 90, "Cat": 6, "zebra": 3, "rare": 1, "<unk>": 50}  # "rare" is outside the vocab
    _, coverage = embedding_matrix(vocab, vectors, 2, counts=counts)
    assert coverage == EmbeddingCoverage(found=2, total=3, tokens_found=96, tokens_total=100)
    assert coverage.fraction == 2 / 3 and coverage.token_fraction == 0.96
    assert str(coverage) == "coverage: 2 of 3 words (66.7 %), 96.0 % of training tokens"
    assert json.loads(json.dumps(coverage.to_json())) == {
        "found": 2, "total": 3, "fraction": 2 / 3,
        "tokens_found": 96, "tokens_total": 100, "token_fraction": 0.96,
    }
    with pytest.raises(ValueError, match=r"counts\['the'\]: expected a non-negative integer, got -1"):
        embedding_matrix(vocab, vectors, 2, counts={"the": -1})


def test_coverage_str():
    assert str(EmbeddingCoverage(12345, 14000)) == "coverage: 12,345 of 14,000 words (88.2 %)"
    assert str(EmbeddingCoverage(12345, 14000, 971, 1000)) == (
        "coverage: 12,345 of 14,000 words (88.2 %), 97.1 % of training tokens"
    )
    assert str(EmbeddingCoverage(13999, 14000)) == "coverage: 13,999 of 14,000 words (99.9 %)"
    assert str(EmbeddingCoverage(0, 0)) == "coverage: 0 of 0 words (0.0 %)"
    assert EmbeddingCoverage(0, 0, 0, 0).token_fraction == 0.0


def test_dimension_mismatch():
    vectors = {"the": np.ones(100, np.float32)}
    with pytest.raises(ValueError, match=r"^embedding file has dimension 100, the model's embedding_dim is 64$"):
        embedding_matrix(VOCAB, vectors, 64)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"init": np.zeros((8, 2))}, r"init: expected shape \(V, dim\) = \(8, 3\), got \(8, 2\)"),
        ({"rng": 0}, "rng: expected a numpy.random.Generator, got int"),
        ({"scale": -1.0}, "scale: expected a finite number >= 0, got -1.0"),
        ({"scale": float("nan")}, "scale: expected a finite number >= 0"),
    ],
)
def test_bad_embedding_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        embedding_matrix(VOCAB, {"the": np.ones(3, np.float32)}, 3, **kwargs)


def test_cli_flow_sets_dim_from_the_file(tmp_path):
    path = write(tmp_path, gzip.compress(("2 3\n" + GLOVE).encode()), "w2v.txt")
    dim = word_vector_dim(path)
    vectors, file_dim = read_word_vectors(path, words=VOCAB.tokens)
    matrix, coverage = embedding_matrix(VOCAB, vectors, dim)
    assert dim == file_dim == 3 and matrix.shape == (8, 3) and coverage.found == 4
