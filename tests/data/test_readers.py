"""read_dataset and LabelMap: formats, gzip, and one located one-line error per kind of bad input."""

import gzip
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from unrolled.data import DataError, LabelMap, SkippedRow, TextDataset, read_dataset


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def raises_at(path: Path, line: int | None, field: str | None, problem: str, **kwargs) -> DataError:
    """Read ``path`` and check the DataError's location, attributes and one-line message."""
    with pytest.raises(DataError) as info:
        read_dataset(path, **kwargs)
    error = info.value
    message = str(error)
    assert "\n" not in message
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    assert message.startswith(where), message
    if field is not None:
        assert message.startswith(f"{where}field '{field}': "), message
    assert re.search(problem, message), message
    assert error.path == str(path) and error.line == line and error.field == field
    return error


# --- good files --------------------------------------------------------------------------------------------


def test_tsv(tmp_path):
    path = write(tmp_path / "train.tsv", "sentence\tlabel\na good film .\t1\nbad .\t 0 \n")
    data = read_dataset(path)
    assert isinstance(data, TextDataset)
    assert data.texts == ["a good film .", "bad ."]
    assert data.labels == ["1", "0"]  # stripped
    assert data.lines == [2, 3]
    assert data.path == str(path) and data.skipped == [] and len(data) == 2


def test_tsv_text_column_default_and_explicit(tmp_path):
    path = write(tmp_path / "d.tsv", "id\ttext\tlabel\n7\thello\tpos\n")
    assert read_dataset(path).texts == ["hello"]
    assert read_dataset(path, text_column="id").texts == ["7"]


def test_tsv_keeps_quotes_verbatim(tmp_path):
    path = write(tmp_path / "d.tsv", 'sentence\tlabel\n"quoted" , and `` ptb \'\'\t1\n')
    assert read_dataset(path).texts == ['"quoted" , and `` ptb \'\'']


def test_crlf_and_bom_are_handled(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_bytes("\ufeffsentence\tlabel\r\nfine\t1\r\n".encode("utf-8"))
    data = read_dataset(path)
    assert data.texts == ["fine"] and data.labels == ["1"]


def test_csv_with_quoting_and_multiline_field(tmp_path):
    path = write(tmp_path / "d.csv", 'text,label\n"a, b ""c""",1\n"two\nlines",0\nplain,1\n')
    data = read_dataset(path)
    assert data.texts == ['a, b "c"', "two\nlines", "plain"]
    assert data.labels == ["1", "0", "1"]
    assert data.lines == [2, 3, 5]


def test_jsonl_int_and_string_labels(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "good", "label": 1}\n{"text": "bad", "label": "neg"}\n')
    data = read_dataset(path)
    assert data.texts == ["good", "bad"] and data.labels == ["1", "neg"] and data.lines == [1, 2]


def test_jsonl_without_labels_when_not_required(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "good"}\n')
    assert read_dataset(path, require_labels=False).labels is None


def test_tsv_without_label_column_when_not_required(tmp_path):
    path = write(tmp_path / "d.tsv", "sentence\nfine\n")
    data = read_dataset(path, require_labels=False)
    assert data.texts == ["fine"] and data.labels is None


def test_txt_one_text_per_line(tmp_path):
    path = write(tmp_path / "d.txt", "first line\nsecond , line\n")
    data = read_dataset(path, require_labels=False)
    assert data.texts == ["first line", "second , line"] and data.labels is None and data.lines == [1, 2]


@pytest.mark.parametrize("name", ["d.jsonl.gz", "d.tsv.gz", "d.csv.gz"])
def test_gzip_is_transparent(tmp_path, name):
    rows = {"jsonl": '{"text": "x y", "label": 0}\n', "tsv": "text\tlabel\nx y\t0\n", "csv": "text,label\nx y,0\n"}
    path = tmp_path / name
    path.write_bytes(gzip.compress(rows[name.split(".")[1]].encode("utf-8"), mtime=0))
    data = read_dataset(path)
    assert data.texts == ["x y"] and data.labels == ["0"]


def test_gzip_detected_by_magic_bytes_without_gz_name(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(gzip.compress(b'{"text": "x", "label": 1}\n'))
    assert read_dataset(path).texts == ["x"]


@pytest.mark.parametrize("suffix", ["tsv", "jsonl", "csv"])
def test_one_megabyte_line_works(tmp_path, suffix):
    long_text = "word " * 300_000  # 1.5 MB in one field
    long_text = long_text.strip()
    rows = {
        "tsv": f"sentence\tlabel\n{long_text}\t1\nshort\t0\n",
        "jsonl": json.dumps({"text": long_text, "label": 1}) + '\n{"text": "short", "label": 0}\n',
        "csv": f"text,label\n{long_text},1\nshort,0\n",
    }
    path = write(tmp_path / f"big.{suffix}", rows[suffix])
    data = read_dataset(path)
    assert data.texts == [long_text, "short"] and data.labels == ["1", "0"]


def test_csv_field_limit_is_restored(tmp_path):
    import csv

    before = csv.field_size_limit()
    read_dataset(write(tmp_path / "d.csv", "text,label\nx,1\n"))
    assert csv.field_size_limit() == before


# --- bad files: each raises one DataError naming file, line and field ----------------------------------------


def test_missing_file(tmp_path):
    raises_at(tmp_path / "nope.tsv", None, None, "no such file")


def test_directory(tmp_path):
    folder = tmp_path / "folder.tsv"
    folder.mkdir()
    raises_at(folder, None, None, "is a directory")


def test_unknown_extension(tmp_path):
    raises_at(write(tmp_path / "d.parquet", "x"), None, None, r"unknown file type: .*\.tsv, \.csv, \.jsonl, \.txt")


@pytest.mark.parametrize("name", ["empty.tsv", "empty.csv"])
def test_empty_file_without_header(tmp_path, name):
    raises_at(write(tmp_path / name, ""), None, None, "empty file: no header line")


def test_empty_jsonl(tmp_path):
    raises_at(write(tmp_path / "empty.jsonl", ""), None, None, "empty file: no rows")


def test_header_only(tmp_path):
    raises_at(write(tmp_path / "d.tsv", "sentence\tlabel\n"), None, None, "no data rows")


def test_missing_label_column_lists_columns(tmp_path):
    path = write(tmp_path / "d.tsv", "sentence\tpolarity\nx\t1\n")
    raises_at(path, 1, "label", r"missing column \(columns: 'sentence', 'polarity'\)")


def test_missing_explicit_text_column(tmp_path):
    path = write(tmp_path / "d.csv", "sentence,label\nx,1\n")
    raises_at(path, 1, "review", r"missing column \(columns: 'sentence', 'label'\)", text_column="review")


def test_no_default_text_column(tmp_path):
    path = write(tmp_path / "d.tsv", "review\tlabel\nx\t1\n")
    raises_at(path, 1, None, r"no text column: expected 'sentence' or 'text' \(columns: 'review', 'label'\)")


def test_duplicate_header_column(tmp_path):
    raises_at(write(tmp_path / "d.tsv", "text\ttext\tlabel\nx\ty\t1\n"), 1, None, "duplicate column 'text'")


def test_ragged_row_too_many_fields(tmp_path):
    path = write(tmp_path / "d.tsv", "sentence\tlabel\nok\t1\nhas\ta tab\t0\n")
    raises_at(path, 3, None, r"expected 2 tab-separated fields \(sentence, label\), got 3")


def test_ragged_row_too_few_fields(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\nok,1\nno label here\n")
    raises_at(path, 3, None, r"expected 2 comma-separated fields \(text, label\), got 1")


def test_empty_text(tmp_path):
    raises_at(write(tmp_path / "d.tsv", "sentence\tlabel\nok\t1\n  \t0\n"), 3, "sentence", "empty value")


def test_empty_label(tmp_path):
    raises_at(write(tmp_path / "d.tsv", "sentence\tlabel\nok\t1\nfine\t \n"), 3, "label", "empty value")


def test_blank_line(tmp_path):
    raises_at(write(tmp_path / "d.tsv", "sentence\tlabel\nok\t1\n\nfine\t0\n"), 3, None, "blank line")


def test_jsonl_invalid_json(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": \n')
    raises_at(path, 2, None, r"invalid JSON: Expecting value \(column \d+\)")


def test_jsonl_line_not_an_object(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": 1}\n["b", 0]\n')
    raises_at(path, 2, None, "expected a JSON object, got array")


def test_jsonl_missing_field_on_a_line(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": 1}\n{"text": "b"}\n')
    raises_at(path, 2, "label", r"missing \(fields on this line: 'text'\)")


def test_jsonl_missing_label_field(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a"}\n')
    raises_at(path, 1, "label", r"missing column \(fields on this line: 'text'\)")


@pytest.mark.parametrize(
    ("value", "problem"), [("null", "got null"), ("1.5", "got number 1.5"), ("true", "got boolean")]
)
def test_jsonl_bad_label_type(tmp_path, value, problem):
    path = write(tmp_path / "d.jsonl", f'{{"text": "a", "label": {value}}}\n')
    raises_at(path, 1, "label", f"expected an integer or a string, {problem}")


def test_jsonl_text_not_a_string(tmp_path):
    raises_at(write(tmp_path / "d.jsonl", '{"text": 5, "label": 1}\n'), 1, "text", "expected a string, got number")


def test_jsonl_empty_text(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": 1}\n{"text": " ", "label": 0}\n')
    raises_at(path, 2, "text", "empty value")


def test_non_utf8_reports_the_line(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_bytes(b"sentence\tlabel\nok\t1\nalso ok\t0\ncaf\xe9\t1\n")
    raises_at(path, 4, None, r"not valid UTF-8 \(byte 0xe9 at byte 4 of the line\)")


def test_non_utf8_inside_gzip_reports_the_line(tmp_path):
    path = tmp_path / "d.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"text": "a", "label": 1}\n{"text": "\xff", "label": 1}\n'))
    raises_at(path, 2, None, "not valid UTF-8")


def test_gz_name_but_not_gzip(tmp_path):
    path = write(tmp_path / "d.jsonl.gz", '{"text": "a", "label": 1}\n')
    raises_at(path, None, None, r"named \.gz but is not gzip-compressed \(starts with 7b 22, not 1f 8b\)")


def test_truncated_gzip(tmp_path):
    path = tmp_path / "d.jsonl.gz"
    data = gzip.compress(b'{"text": "a", "label": 1}\n' * 1000)
    path.write_bytes(data[: len(data) // 2])
    raises_at(path, None, None, "corrupt or truncated gzip data")


def test_csv_unclosed_quote(tmp_path):
    path = write(tmp_path / "d.csv", 'text,label\nok,1\n"never closed,0\nmore,1\n')
    raises_at(path, 3, None, "quoted field is never closed")


def test_txt_requires_require_labels_false(tmp_path):
    raises_at(write(tmp_path / "d.txt", "hello\n"), None, None, "require_labels=False")


def test_same_text_and_label_column_is_a_usage_error(tmp_path):
    with pytest.raises(ValueError, match="both 'label'"):
        read_dataset(write(tmp_path / "d.tsv", "label\nx\n"), text_column="label")


def test_data_error_attributes_and_reason():
    error = DataError("data/train.tsv", "empty value", line=17, field="label")
    assert str(error) == "data/train.tsv:17: field 'label': empty value"
    assert error.reason == "field 'label': empty value"
    assert isinstance(error, ValueError)


# --- skip_bad_rows -----------------------------------------------------------------------------------------


def test_skip_bad_rows_tsv_records_each_reason(tmp_path):
    text = "sentence\tlabel\nok\t1\nthree\tfields\t0\n\t1\nno label\t\n\nalso ok\t0\n"
    data = read_dataset(write(tmp_path / "d.tsv", text), skip_bad_rows=True)
    assert data.texts == ["ok", "also ok"] and data.labels == ["1", "0"] and data.lines == [2, 7]
    assert data.skipped == [
        SkippedRow(3, "expected 2 tab-separated fields (sentence, label), got 3"),
        SkippedRow(4, "field 'sentence': empty value"),
        SkippedRow(5, "field 'label': empty value"),
        SkippedRow(6, "blank line"),
    ]


def test_skip_bad_rows_jsonl(tmp_path):
    text = '{"text": "a", "label": 1}\n{bad json\n[1]\n{"text": "", "label": 0}\n{"text": "b", "label": 0}\n'
    data = read_dataset(write(tmp_path / "d.jsonl", text), skip_bad_rows=True)
    assert data.texts == ["a", "b"] and data.lines == [1, 5]
    assert [row.line for row in data.skipped] == [2, 3, 4]
    assert data.skipped[0].reason.startswith("invalid JSON")
    assert data.skipped[1].reason == "expected a JSON object, got array"
    assert data.skipped[2].reason == "field 'text': empty value"


def test_skip_bad_rows_still_raises_file_level_errors(tmp_path):
    path = write(tmp_path / "d.tsv", "sentence\tpolarity\nx\t1\n")
    raises_at(path, 1, "label", "missing column", skip_bad_rows=True)
    bad_bytes = tmp_path / "e.tsv"
    bad_bytes.write_bytes(b"sentence\tlabel\n\xff\t1\nok\t0\n")
    raises_at(bad_bytes, 2, None, "not valid UTF-8", skip_bad_rows=True)


def test_all_rows_skipped_is_an_error(tmp_path):
    path = write(tmp_path / "d.tsv", "sentence\tlabel\n\t1\nx\t\n")
    raises_at(path, None, None, r"no usable rows: all 2 rows are bad \(first: line 2: field 'sentence': empty value\)",
              skip_bad_rows=True)


# --- LabelMap ----------------------------------------------------------------------------------------------


def test_label_map_integers_in_numeric_order():
    assert LabelMap.fit(["1", "0", "1"]).names == ("0", "1")
    assert LabelMap.fit(["10", "-1", "2", "1"]).names == ("-1", "1", "2", "10")
    assert LabelMap.fit([1, 0]).names == ("0", "1")


def test_label_map_names_in_alphabetical_order():
    assert LabelMap.fit(["pos", "neg", "neutral", "pos"]).names == ("neg", "neutral", "pos")


def test_label_map_mixed_labels():
    with pytest.raises(ValueError, match=r"^mixed labels: '1' and 'pos'"):
        LabelMap.fit(["1", "pos", "0", "neg"])


def test_label_map_same_number_two_ways():
    with pytest.raises(ValueError, match="'1' and '01' are the same number"):
        LabelMap.fit(["1", "01"])


def test_label_map_rejects_empty_and_bad_types():
    with pytest.raises(ValueError, match="empty"):
        LabelMap.fit([])
    with pytest.raises(ValueError, match=r"labels\[1\]: empty label"):
        LabelMap.fit(["a", " "])
    with pytest.raises(ValueError, match=r"labels\[0\]: expected a str or int label, got float"):
        LabelMap.fit([1.0])


def test_label_map_encode_decode():
    labels = LabelMap.fit(["neg", "pos"])
    ids = labels.encode(["pos", "neg", "pos"])
    assert ids.dtype == np.int64 and ids.tolist() == [1, 0, 1]
    assert labels.decode(ids) == ["pos", "neg", "pos"]
    assert len(labels) == 2
    with pytest.raises(ValueError, match=r"ids\[0\]: class id 2 is outside \[0, 2\)"):
        labels.decode([2])


def test_label_map_unknown_label_names_file_and_line():
    labels = LabelMap.fit(["0", "1"])
    with pytest.raises(DataError) as info:
        labels.encode(["0", "2"], path="data/dev.tsv", lines=[2, 9])
    assert str(info.value) == "data/dev.tsv:9: field 'label': unknown label '2' (known: '0', '1')"
    with pytest.raises(ValueError, match=r"^labels\[1\]: unknown label '2'"):
        labels.encode(["0", "2"])


def test_label_map_encodes_a_dataset(tmp_path):
    data = read_dataset(write(tmp_path / "d.tsv", "sentence\tlabel\na\t1\nb\t0\n"))
    labels = LabelMap.fit(data.labels)
    assert labels.encode(data.labels, path=data.path, lines=data.lines).tolist() == [1, 0]


def test_label_map_json_round_trip_and_validation():
    labels = LabelMap.fit(["-1", "1"])
    obj = json.loads(json.dumps(labels.to_json()))
    assert obj == {"format": "unrolled-labels", "version": 1, "names": ["-1", "1"]}
    assert LabelMap.from_json(obj) == labels
    for bad, match in [
        ({**obj, "format": "x"}, "field 'format'"),
        ({**obj, "version": 9}, "field 'version'"),
        ({**obj, "names": ["1", "1"]}, r"duplicate label '1'"),
        ({**obj, "names": "01"}, "field 'names': expected a list"),
        ({"format": obj["format"], "version": 1}, "field 'names': missing"),
    ]:
        with pytest.raises(ValueError, match=r"^ckpt/labels\.json: .*" + match):
            LabelMap.from_json(bad, source="ckpt/labels.json")


# --- the real datasets (when UNROLLED_DATA_DIR points at them) ---------------------------------------------


@pytest.mark.parametrize(
    ("relative", "rows", "positives"),
    [
        ("sst2/train.tsv", 6920, 3610),
        ("sst2/dev.tsv", 872, 444),
        ("sst2/test.tsv", 1821, 909),
        ("mr/mr.tsv", 10662, 5331),
        ("imdb/test.jsonl.gz", 25000, 12500),
    ],
)
def test_real_dataset_row_counts(relative, rows, positives):
    root = os.environ.get("UNROLLED_DATA_DIR")
    if not root:
        pytest.skip("UNROLLED_DATA_DIR is not set (it points at the shared data folder)")
    path = Path(root) / relative
    if not path.exists():
        pytest.skip(f"{path} does not exist")
    data = read_dataset(path)
    assert len(data) == rows and data.skipped == []
    labels = LabelMap.fit(data.labels)
    assert labels.names == ("0", "1")
    assert int(labels.encode(data.labels, path=data.path, lines=data.lines).sum()) == positives
    assert data.lines[0] == (2 if relative.endswith(".tsv") else 1)


def test_read_text_whole_file_and_its_errors(tmp_path):
    from unrolled.data.readers import read_text

    good = tmp_path / "t.txt"
    good.write_bytes(b"First Citizen:\r\nBefore we proceed\n")
    assert read_text(good) == "First Citizen:\nBefore we proceed\n"
    gz = tmp_path / "t.txt.gz"
    gz.write_bytes(gzip.compress(b"abc\n"))
    assert read_text(gz) == "abc\n"
    cases = [(b"", "empty file"), (b"\n \n", "empty file"), (b"ok\nbad \x00 byte\n", ":2: contains NUL bytes"),
             (b"ok\n\xff\n", ":2: not valid UTF-8")]
    for content, message in cases:
        bad = tmp_path / "bad.txt"
        bad.write_bytes(content)
        with pytest.raises(DataError, match=message):
            read_text(bad)
    with pytest.raises(DataError, match="is a directory"):
        read_text(tmp_path)


def test_label_names_and_dev_labels(tmp_path):
    from unrolled.data.readers import check_dev_labels, rename_labels

    train = TextDataset(texts=["a", "b"], labels=["0", "1"], lines=[2, 3], path="train.tsv")
    dev = TextDataset(texts=["c", "d"], labels=["1", "2"], lines=[2, 3], path="dev.tsv")
    named = rename_labels(train, {"0": "negative", "1": "positive"})
    assert named.labels == ["negative", "positive"] and named.texts == train.texts and train.labels == ["0", "1"]
    with pytest.raises(ValueError, match=r"^dev\.tsv: label '2' has no name in --label-names$"):
        rename_labels(dev, {"0": "negative", "1": "positive"}, option="--label-names")
    with pytest.raises(DataError, match=r"^dev\.tsv:3: field 'label': label '2' does not occur in the training data \(known: '0', '1'\)$"):
        check_dev_labels(train, dev)
    check_dev_labels(train, TextDataset(texts=["c"], labels=["0"], lines=[2], path="dev.tsv"))
