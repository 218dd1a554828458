"""Tokenizer rules (module docstring of unrolled.text.tokenize), on hand-made and real sentences."""

import doctest
import importlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unrolled.text import tokenize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I love this", ["i", "love", "this"]),
        ("Hello, world!", ["hello", ",", "world", "!"]),
        ("I don't know", ["i", "don't", "know"]),
        ("ca n't stand it", ["ca", "n't", "stand", "it"]),
        ("the film 's star", ["the", "film", "'s", "star"]),
        ("they 're here , we 've gone", ["they", "'re", "here", ",", "we", "'ve", "gone"]),
        ("i 'm sure they 'll go", ["i", "'m", "sure", "they", "'ll", "go"]),
        ("a `` quoted '' word -- and ... more", ["a", "``", "quoted", "''", "word", "--", "and", "...", "more"]),
        ("'The Matrix' rules", ["'", "the", "matrix", "'", "rules"]),
        ("the '70s", ["the", "'", "70s"]),
        ("Wow!!! Really???", ["wow", "!!!", "really", "???"]),
        ("(yes) [no] {x}", ["(", "yes", ")", "[", "no", "]", "{", "x", "}"]),
        ("co-writer/director", ["co", "-", "writer", "/", "director"]),
        ("", []),
        ("   \t\n ", []),
    ],
)
def test_rules(text, expected):
    assert tokenize(text) == expected


@pytest.mark.parametrize("br", ["<br />", "<br/>", "<br>", "<BR />", "< br / >", "<Br>"])
def test_html_breaks_become_spaces(br):
    assert tokenize(f"The end.{br}{br}Great film") == ["the", "end", ".", "great", "film"]


def test_other_tags_are_not_removed():
    assert tokenize("a <b>bold</b> claim") == ["a", "<", "b", ">", "bold", "<", "/", "b", ">", "claim"]


def test_lowercase_flag():
    assert tokenize("The Matrix", lowercase=False) == ["The", "Matrix"]
    assert tokenize("'S clitic", lowercase=False) == ["'S", "clitic"]


def test_unicode_words_stay_whole():
    assert tokenize("Amélie über naïve") == ["amélie", "über", "naïve"]
    assert tokenize("東京物語 is great") == ["東京物語", "is", "great"]
    assert tokenize("Кино хорошее") == ["кино", "хорошее"]
    # Devanagari vowel signs and the virama are combining marks, which \w alone does not match.
    assert tokenize("हिन्दी फ़िल्म") == ["हिन्दी", "फ़िल्म"]


def test_nfc_normalization_merges_decomposed_forms():
    decomposed = "cafe\u0301"
    assert tokenize(decomposed) == tokenize("café") == ["café"]


def test_typographic_apostrophe_is_an_apostrophe():
    assert tokenize("don\u2019t") == tokenize("don't") == ["don't"]


def test_docstring_examples():
    module = importlib.import_module("unrolled.text.tokenize")
    result = doctest.testmod(module)
    assert result.attempted >= 3 and result.failed == 0


def test_rejects_non_string():
    with pytest.raises(TypeError, match="text: expected a str"):
        tokenize(["a", "list"])


def test_every_token_is_a_nonempty_substring_without_spaces():
    text = "It's a 10/10 — really!! <br />Ünïcödé, 日本語 🙂 ca n't"
    tokens = tokenize(text, lowercase=False)
    assert tokens
    for token in tokens:
        assert token and not any(ch.isspace() for ch in token)


def _data_file(relative: str) -> Path:
    root = os.environ.get("UNROLLED_DATA_DIR")
    if not root:
        pytest.skip("UNROLLED_DATA_DIR is not set (it points at the shared data folder)")
    path = Path(root) / relative
    if not path.exists():
        pytest.skip(f"{path} does not exist")
    return path


def test_sst2_ptb_tokens_mostly_survive():
    """SST-2 is already PTB-tokenized: words and PTB punctuation tokens must come back unchanged."""
    path = _data_file("sst2/train.tsv")
    sentences = [line.split("\t")[0] for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    assert len(sentences) == 6920
    for sentence in sentences:
        tokens = tokenize(sentence)
        assert "".join(tokens) == sentence.replace(" ", "")  # nothing lost, nothing added
    for ptb_token in ["``", "''", "--", "...", "'s", "n't", "'re"]:
        assert any(ptb_token in tokenize(s) for s in sentences), ptb_token


def test_the_precomputed_combining_marks_equal_a_scan_of_this_pythons_unicode():
    """text/_combining_marks.py spares every import a 20 ms scan; its entry must be what the scan finds."""
    import unicodedata

    from unrolled.text import _combining_marks

    version = unicodedata.unidata_version
    if version not in _combining_marks.RANGES:
        pytest.skip(f"no precomputed table for Unicode {version}: the tokenizer scans (same result)")
    scan = importlib.import_module("unrolled.text.tokenize")._scan_combining_marks()
    assert list(_combining_marks.RANGES[version]) == scan


_ASCII_TEXTS = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=60)


@settings(max_examples=300, deadline=None)
@given(_ASCII_TEXTS)
def test_the_ascii_pattern_gives_the_full_patterns_tokens_on_ascii_text(text):
    """tokenize runs ASCII text through a pattern without the combining-mark class (cheap to compile); on ASCII
    text it must find exactly what the full pattern finds."""
    from unrolled.text.tokenize import _ASCII_TOKEN_RE, _unicode_token_regex

    for case in (text, text.lower()):
        assert _ASCII_TOKEN_RE.findall(case) == _unicode_token_regex().findall(case)


@pytest.mark.parametrize("text", ["don't 's 'RE 'em '' `` ... --- !!! ??? ***", "o'clock ca n't 'd'm x_y 10/10 a-b",
                                  "'s'", "''s", "a'b'c", "_'_", "9'll"])
def test_the_ascii_pattern_on_the_clitic_and_punctuation_rules(text):
    from unrolled.text.tokenize import _ASCII_TOKEN_RE, _unicode_token_regex

    assert _ASCII_TOKEN_RE.findall(text) == _unicode_token_regex().findall(text)
