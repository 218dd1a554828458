"""read_parallel and read_parallel_tsv: aligned files and TSV pairs, gzip, and one located one-line error each."""

import gzip
import os
import random
from pathlib import Path

import pytest

from unrolled.data import DataError, SkippedRow
from unrolled.data.parallel import ParallelText, read_parallel, read_parallel_tsv


def write(path: Path, text: str, *, compress: bool | None = None) -> Path:
    """``text`` as UTF-8 into ``path``, gzip-compressed when the name ends in .gz (or ``compress`` says so)."""
    data = text.encode("utf-8")
    if compress if compress is not None else path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def pair(tmp_path: Path, source: str, target: str, suffix: str = "") -> tuple[Path, Path]:
    return write(tmp_path / f"train.de{suffix}", source), write(tmp_path / f"train.en{suffix}", target)


def error_of(call, *args, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


# --- two aligned files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_two_files_plain_and_gzip(tmp_path, suffix):
    de, en = pair(tmp_path, "Ein Hund läuft.\nZwei Männer.\n", "A dog runs.\nTwo men.\n", suffix)
    data = read_parallel(de, en)
    assert isinstance(data, ParallelText)
    assert data.sources == ["Ein Hund läuft.", "Zwei Männer."]
    assert data.targets == ["A dog runs.", "Two men."]
    assert data.lines == [1, 2] and len(data) == 2 and data.skipped == []
    assert (data.source_path, data.target_path) == (str(de), str(en))


def test_crlf_bom_missing_final_newline_and_inner_whitespace(tmp_path):
    de, en = pair(tmp_path, "\ufeffEin  Hund \r\nim\tWasser", "A  dog \r\nin water\n")
    data = read_parallel(de, en)
    assert data.sources == ["Ein  Hund ", "im\tWasser"]  # only the line ending (and the BOM) go
    assert data.targets == ["A  dog ", "in water"]


def test_gzip_is_detected_by_magic_bytes_whatever_the_name(tmp_path):
    de = write(tmp_path / "train.de", "Hallo\n", compress=True)
    en = write(tmp_path / "train.en.gz", "Hello\n")
    assert read_parallel(de, en).sources == ["Hallo"]


def test_accepts_path_like_and_str(tmp_path):
    de, en = pair(tmp_path, "a\n", "b\n")
    assert read_parallel(str(de), en).source_path == str(de)


def test_line_count_mismatch_names_both_files_and_the_first_unmatched_line(tmp_path):
    de, en = pair(tmp_path, "eins\nzwei\ndrei\n", "one\ntwo\n", ".gz")
    error = error_of(read_parallel, de, en)
    assert str(error) == f"{de}:3: no counterpart in {en} ({de} has 3 lines, {en} has 2)"
    assert (error.path, error.line) == (str(de), 3)
    error = error_of(read_parallel, en, de)  # the longer file is named first, whichever side it is
    assert str(error) == f"{de}:3: no counterpart in {en} ({de} has 3 lines, {en} has 2)"


def test_line_count_mismatch_uses_thousands_separators(tmp_path):
    de, en = pair(tmp_path, "x\n" * 29_000, "y\n" * 28_999, ".gz")
    assert str(error_of(read_parallel, de, en)) == (
        f"{de}:29000: no counterpart in {en} ({de} has 29,000 lines, {en} has 28,999)")


def test_line_count_mismatch_says_when_the_extra_lines_are_blank(tmp_path):
    de, en = pair(tmp_path, "eins\n", "one\n\n \n")
    assert str(error_of(read_parallel, de, en)) == (
        f"{en}:2: no counterpart in {de} ({en} has 3 lines, {de} has 1; the extra lines are blank)")


def test_mismatch_is_raised_even_when_skipping_bad_rows(tmp_path):
    de, en = pair(tmp_path, "eins\n\nzwei\n", "one\n\n")
    assert error_of(read_parallel, de, en, skip_bad_rows=True).line == 3


def test_one_empty_file_is_a_mismatch(tmp_path):
    de, en = pair(tmp_path, "eins\n", "")
    assert str(error_of(read_parallel, de, en)) == f"{de}:1: no counterpart in {en} ({de} has 1 lines, {en} has 0)"


def test_both_empty(tmp_path):
    de, en = pair(tmp_path, "", "", ".gz")
    assert str(error_of(read_parallel, de, en)) == f"{de}: empty file: no lines ({en} is empty too)"


@pytest.mark.parametrize("side", ["source", "target"])
def test_blank_line_on_either_side_names_that_file(tmp_path, side):
    good, bad = "eins\nzwei\ndrei\n", "one\n  \nthree\n"
    de, en = pair(tmp_path, *((bad, good) if side == "source" else (good, bad)))
    error = error_of(read_parallel, de, en)
    blank = de if side == "source" else en
    assert str(error) == f"{blank}:2: blank line"
    assert (error.path, error.line, error.field) == (str(blank), 2, None)


def test_skip_bad_rows_skips_the_pair_and_records_it(tmp_path):
    de, en = pair(tmp_path, "eins\n\ndrei\n\t\nfünf\n", "one\ntwo\n\n\nfive\n")
    data = read_parallel(de, en, skip_bad_rows=True)
    assert data.sources == ["eins", "fünf"] and data.targets == ["one", "five"]
    assert data.lines == [1, 5]
    assert data.skipped == [
        SkippedRow(2, f"blank line in {de}"),
        SkippedRow(3, f"blank line in {en}"),
        SkippedRow(4, f"blank line in {de} and in {en}"),
    ]


def test_all_pairs_skipped_is_an_error(tmp_path):
    de, en = pair(tmp_path, "\n\n", "x\n\n")
    assert str(error_of(read_parallel, de, en, skip_bad_rows=True)) == (
        f"{de}: no usable pairs: all 2 pairs are bad (first: line 1: blank line in {de})")


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_invalid_utf8_names_the_file_and_line(tmp_path, suffix):
    de = tmp_path / f"train.de{suffix}"
    raw = "eins\nzwei\n".encode() + b"dr\xe9i\n"
    de.write_bytes(gzip.compress(raw, mtime=0) if suffix else raw)
    en = write(tmp_path / "train.en", "one\ntwo\nthree\n")
    error = error_of(read_parallel, de, en, skip_bad_rows=True)  # a file problem: never skipped
    assert str(error) == f"{de}:3: not valid UTF-8 (byte 0xe9 at byte 3 of the line)"


def test_missing_file(tmp_path):
    de = write(tmp_path / "train.de", "eins\n")
    assert str(error_of(read_parallel, de, tmp_path / "train.en")) == f"{tmp_path / 'train.en'}: no such file"
    assert str(error_of(read_parallel, tmp_path / "nope.de", de)) == f"{tmp_path / 'nope.de'}: no such file"


def test_directory(tmp_path):
    de = write(tmp_path / "train.de", "eins\n")
    assert str(error_of(read_parallel, de, tmp_path)) == f"{tmp_path}: is a directory, not a text file"


def test_gz_name_but_not_gzip(tmp_path):
    de = write(tmp_path / "train.de.gz", "eins\n", compress=False)
    en = write(tmp_path / "train.en.gz", "one\n")
    assert str(error_of(read_parallel, de, en)) == (
        f"{de}: named .gz but is not gzip-compressed (starts with 65 69, not 1f 8b)")
    empty = tmp_path / "empty.en.gz"
    empty.write_bytes(b"")
    assert str(error_of(read_parallel, en, empty)) == f"{empty}: named .gz but is an empty file, not gzip-compressed"


def test_truncated_gzip(tmp_path):
    de = tmp_path / "train.de.gz"
    de.write_bytes(gzip.compress(("eins\n" * 2000).encode(), mtime=0)[:-12])
    en = write(tmp_path / "train.en", "one\n" * 2000)
    error = error_of(read_parallel, de, en)
    assert str(error).startswith(f"{de}: corrupt or truncated gzip data after line ")


def test_round_trip_of_generated_pairs(tmp_path):
    rng = random.Random(0)
    alphabet = "abcdefghijklmnopqrstuvwxyzäöüßéñ  ,.!?\"'-\t"
    sources = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))).strip() or "x" for _ in range(300)]
    targets = [f"sentence {i}: " + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
               for i in range(300)]
    de, en = pair(tmp_path, "".join(s + "\n" for s in sources), "\r\n".join(targets), ".gz")
    data = read_parallel(de, en)
    assert data.sources == sources and data.targets == targets
    assert data.lines == list(range(1, 301)) and data.skipped == []

    tsv = write(tmp_path / "pairs.tsv", "de\ten\n" + "".join(
        f"{s.replace(chr(9), ' ')}\t{t.replace(chr(9), ' ')}\n" for s, t in zip(sources, targets)))
    from_tsv = read_parallel_tsv(tsv, source_column="de", target_column="en")
    assert from_tsv.sources == [s.replace("\t", " ") for s in sources]
    assert from_tsv.targets == [t.replace("\t", " ") for t in targets]
    assert from_tsv.lines == list(range(2, 302))


# --- one TSV file ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pairs.tsv", "pairs.tsv.gz"])
def test_tsv_with_the_default_header(tmp_path, name):
    path = write(tmp_path / name, "source\ttarget\nEin Hund.\tA dog. \nZwei.\tTwo.\n")
    data = read_parallel_tsv(path)
    assert data.sources == ["Ein Hund.", "Zwei."] and data.targets == ["A dog. ", "Two."]
    assert data.lines == [2, 3] and data.source_path == data.target_path == str(path)


def test_tsv_named_columns_in_any_order_with_extra_columns(tmp_path):
    path = write(tmp_path / "p.tsv", "id\ten\tde\n7\tA dog.\tEin Hund.\n")
    data = read_parallel_tsv(path, source_column="de", target_column="en")
    assert (data.sources, data.targets) == (["Ein Hund."], ["A dog."])


def test_tsv_by_index_has_no_header(tmp_path):
    path = write(tmp_path / "eng-fra.txt", "Go.\tVa !\tCC-BY 2.0 #1\nRun!\tCours !\tCC-BY 2.0 #2\n")
    data = read_parallel_tsv(path, source_column=0, target_column=1)
    assert data.sources == ["Go.", "Run!"] and data.targets == ["Va !", "Cours !"] and data.lines == [1, 2]
    assert read_parallel_tsv(path, source_column=1, target_column=0).sources == ["Va !", "Cours !"]


def test_tsv_wrong_number_of_fields_with_a_header(tmp_path):
    path = write(tmp_path / "p.tsv", "source\ttarget\na\tb\na\tb\tc\n")
    error = error_of(read_parallel_tsv, path)
    assert str(error) == f"{path}:3: expected 2 tab-separated fields (source, target), got 3"
    path = write(tmp_path / "q.tsv", "source\ttarget\nonly one\n")
    assert str(error_of(read_parallel_tsv, path)) == (
        f"{path}:2: expected 2 tab-separated fields (source, target), got 1")


def test_tsv_wrong_number_of_fields_without_a_header(tmp_path):
    path = write(tmp_path / "p.tsv", "a\tb\tc\nd\te\n")
    assert str(error_of(read_parallel_tsv, path, source_column=0, target_column=1)) == (
        f"{path}:2: expected 3 tab-separated fields, as on line 1, got 2")
    path = write(tmp_path / "q.tsv", "a\tb\n")
    assert str(error_of(read_parallel_tsv, path, source_column=0, target_column=2)) == (
        f"{path}:1: expected at least 3 tab-separated fields for columns 0 and 2, got 2")


def test_tsv_empty_field_and_blank_line(tmp_path):
    path = write(tmp_path / "p.tsv", "de\ten\nEin Hund.\t \n")
    assert str(error_of(read_parallel_tsv, path, source_column="de", target_column="en")) == (
        f"{path}:2: field 'en': empty value")
    path = write(tmp_path / "q.tsv", "a\tb\n\t\n")
    assert str(error_of(read_parallel_tsv, path, source_column=0, target_column=1)) == (
        f"{path}:2: field 'source': empty value")
    path = write(tmp_path / "r.tsv", "source\ttarget\na\tb\n\n")
    assert str(error_of(read_parallel_tsv, path)) == f"{path}:3: blank line"


def test_tsv_skip_bad_rows(tmp_path):
    path = write(tmp_path / "p.tsv", "source\ttarget\na\tb\n\nc\t\nd\te\tf\ng\th\n")
    data = read_parallel_tsv(path, skip_bad_rows=True)
    assert data.sources == ["a", "g"] and data.lines == [2, 6]
    assert data.skipped == [
        SkippedRow(3, "blank line"),
        SkippedRow(4, "field 'target': empty value"),
        SkippedRow(5, "expected 2 tab-separated fields (source, target), got 3"),
    ]
    path = write(tmp_path / "q.tsv", "source\ttarget\n\t\n")
    assert str(error_of(read_parallel_tsv, path, skip_bad_rows=True)) == (
        f"{path}: no usable pairs: all 1 pairs are bad (first: line 2: field 'source': empty value)")


def test_tsv_header_problems(tmp_path):
    path = write(tmp_path / "p.tsv", "de\ten\na\tb\n")
    error = error_of(read_parallel_tsv, path)
    assert str(error) == f"{path}:1: field 'source': missing column (columns: 'de', 'en')"
    assert error.field == "source"
    path = write(tmp_path / "dup.tsv", "source\tsource\ttarget\n")
    assert str(error_of(read_parallel_tsv, path)) == f"{path}:1: header: duplicate column 'source'"
    path = write(tmp_path / "empty.tsv", "")
    assert str(error_of(read_parallel_tsv, path)) == f"{path}: empty file: no header line"
    path = write(tmp_path / "header.tsv", "source\ttarget\n")
    assert str(error_of(read_parallel_tsv, path)) == f"{path}: no data rows"
    assert str(error_of(read_parallel_tsv, path.with_name("none.tsv"), source_column=0, target_column=1)) == (
        f"{path.with_name('none.tsv')}: no such file")
    assert read_parallel_tsv(path, source_column=0, target_column=1).sources == ["source"]  # no header by index
    path = write(tmp_path / "one.tsv", "just one field\n")
    assert str(error_of(read_parallel_tsv, path, source_column=0, target_column=1)) == (
        f"{path}:1: expected at least 2 tab-separated fields for columns 0 and 1, got 1")
    path = write(tmp_path / "nothing.tsv", "")
    assert str(error_of(read_parallel_tsv, path, source_column=0, target_column=1)) == f"{path}: empty file: no rows"


def test_tsv_file_level_errors(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_bytes(b"source\ttarget\nGr\xfc\xdfe\thello\n")
    assert str(error_of(read_parallel_tsv, path, skip_bad_rows=True)) == (
        f"{path}:2: not valid UTF-8 (byte 0xfc at byte 3 of the line)")
    path = write(tmp_path / "p.tsv.gz", "source\ttarget\n", compress=False)
    assert str(error_of(read_parallel_tsv, path)) == (
        f"{path}: named .gz but is not gzip-compressed (starts with 73 6f, not 1f 8b)")


def test_tsv_column_options_are_checked(tmp_path):
    path = write(tmp_path / "p.tsv", "source\ttarget\na\tb\n")
    with pytest.raises(ValueError, match="both be names"):
        read_parallel_tsv(path, source_column=0, target_column="target")
    with pytest.raises(ValueError, match="are both 'source'"):
        read_parallel_tsv(path, source_column="source", target_column="source")
    with pytest.raises(ValueError, match="0-based index, got -1"):
        read_parallel_tsv(path, source_column=-1, target_column=0)
    with pytest.raises(TypeError):
        read_parallel_tsv(path, source_column=True, target_column=0)


# --- the real Multi30k files (when UNROLLED_DATA_DIR points at them) ---------------------------------------------


@pytest.mark.parametrize("stem, pairs", [("train", 29_000), ("val", 1_014), ("test_2016_flickr", 1_000),
                                         ("test_2017_flickr", 1_000)])
def test_real_multi30k_splits(stem, pairs):
    root = os.environ.get("UNROLLED_DATA_DIR")
    if not root or not (Path(root) / "multi30k" / f"{stem}.de.gz").is_file():
        pytest.skip("UNROLLED_DATA_DIR is not set to a folder holding multi30k/ (the shared data folder)")
    folder = Path(root) / "multi30k"
    data = read_parallel(folder / f"{stem}.de.gz", folder / f"{stem}.en.gz")
    assert len(data) == pairs and data.skipped == [] and data.lines[-1] == pairs
    if stem == "train":
        assert data.sources[0] == "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche."
        assert data.targets[0] == "Two young, White males are outside near many bushes."
        assert "\t" in data.sources[7365]  # one German training sentence holds a tab: kept as in the file
