"""Bad data files for every training task and for evaluate and forecast: each is refused with one line
naming the file, the line and the field (never a parameter name of the library such as ``values:``), no
traceback, and nothing written or changed (docs/reliability.md). Special files (a FIFO, ``/dev/zero``) are
refused before anything is read from them, and a line without end is refused after 8 MiB, not read whole.

Every case runs in a directory of its own (``run``), the inputs written there, the command run from there
so that messages name the files as given; special files live beside it, out of the snapshot's reach.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from tests.robustness.conftest import Result, Snapshot, assert_clean_error, run_cli_captured, run_process

TINY = ("--epochs", "1", "--hidden-size", "4", "--embedding-dim", "4", "--batch-size", "2")
ROWS = "sentence\tlabel\ni love this\t1\ni hate this\t0\ngreat film\t1\nawful film\t0\nnice one\t1\nbad one\t0\n"
CSV_ROWS = ROWS.replace("\t", ",")
JSONL_ROWS = "".join(json.dumps({"text": t, "label": int(lab)}) + "\n"
                     for t, lab in (line.split("\t") for line in ROWS.splitlines()[1:]))
# A library parameter leaking into a message in place of the file or the option the user gave.
INTERNAL = re.compile(r"^unrolled[^:]*: error: (values|history|y|x|X|text|texts|labels|transcripts|audio|series"
                      r"|validation|dates|samples|subwords)(\[\d+\])?: ")

DIR = object()  # a case's file that is a directory
LINK = "../special/train.tsv"  # symbolic links live out of the snapshot's reach (it would follow them)


class Link:
    """A case's file that is a symbolic link to ``target`` (relative to the run directory)."""

    def __init__(self, target: str) -> None:
        self.target = target


def materialize(root: Path, files: dict) -> None:
    for name, content in files.items():
        path = root / name
        if content is DIR:
            path.mkdir()
        elif isinstance(content, Link):
            os.symlink(content.target, path)
        else:
            path.write_bytes(content.encode() if isinstance(content, str) else content)


def clean_error(result: Result, names: tuple[str, ...], code: int = 1) -> str:
    line = assert_clean_error(result, code=code, names=names)
    assert not INTERNAL.match(line), f"a library parameter, not the user's file or option, in {line!r}"
    return line


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """The run directory (snapshotted); ``tmp_path / "special"`` holds FIFOs and links out of its reach."""
    (tmp_path / "run").mkdir()
    (tmp_path / "special").mkdir()
    return tmp_path / "run"


def refused(run: Path, files: dict, argv: tuple, names: tuple, code: int = 1) -> str:
    """Write ``files`` into ``run``, run the command there: one clean error naming ``names``, nothing changed."""
    materialize(run, files)
    before = Snapshot(run)
    line = clean_error(run_cli_captured(*argv, cwd=run), names, code)
    before.assert_unchanged()
    return line


def gz(text: str | bytes) -> bytes:
    return gzip.compress(text.encode() if isinstance(text, str) else text, mtime=0)


def jsonl(*objects) -> str:
    return JSONL_ROWS.splitlines()[0] + "\n" + "".join(
        (o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objects) + JSONL_ROWS.split("\n", 1)[1]


# --- train --task classify: the --train file --------------------------------------------------------------

P = pytest.param
CLASSIFY = [
    P("train.tsv", {}, (), ("train.tsv", "no such file"), id="missing-file"),
    P("train.tsv", {"train.tsv": DIR}, (), ("train.tsv", "is a directory"), id="directory"),
    P("train.tsv", {"train.tsv": ""}, (), ("train.tsv", "empty file"), id="empty-tsv"),
    P("train.csv", {"train.csv": ""}, (), ("train.csv", "empty file"), id="empty-csv"),
    P("train.jsonl", {"train.jsonl": ""}, (), ("train.jsonl", "empty file"), id="empty-jsonl"),
    P("train.tsv", {"train.tsv": "sentence\tlabel\n"}, (), ("train.tsv", "no data rows"), id="header-only-tsv"),
    P("train.csv", {"train.csv": "sentence,label\n"}, (), ("train.csv", "no data rows"), id="header-only-csv"),
    P("train.tsv", {"train.tsv": ROWS.replace("sentence", "review")}, (),
      ("train.tsv:1", "no text column", "--text-column"), id="no-text-column"),
    P("train.tsv", {"train.tsv": ROWS.replace("label", "stars")}, (), ("train.tsv:1", "'label'", "missing column"),
      id="no-label-column"),
    P("train.tsv", {"train.tsv": ROWS + "too\tmany\tfields\n"}, (), ("train.tsv:8", "got 3"), id="ragged-row-long"),
    P("train.tsv", {"train.tsv": ROWS + "lonely\n"}, (), ("train.tsv:8", "got 1"), id="ragged-row-short"),
    P("train.csv", {"train.csv": CSV_ROWS + '"never closed,1\n'}, (), ("train.csv:8", "never closed"),
      id="csv-quote-never-closed"),
    P("train.csv", {"train.csv": CSV_ROWS + '"quoted"tail,1\n'}, (), ("train.csv:8", "malformed CSV"),
      id="csv-text-after-quote"),
    P("train.tsv", {"train.tsv": ROWS.encode() + b"caf\xe9\t1\n"}, (), ("train.tsv:8", "UTF-8", "0xe9"),
      id="invalid-utf8-tsv"),
    P("train.jsonl", {"train.jsonl": JSONL_ROWS.encode() + b'{"text": "caf\xe9", "label": 1}\n'}, (),
      ("train.jsonl:7", "UTF-8"), id="invalid-utf8-jsonl"),
    P("train.tsv.gz", {"train.tsv.gz": gz(ROWS.encode() + b"\xff\t1\n")}, (), ("train.tsv.gz:8", "UTF-8"),
      id="invalid-utf8-inside-gzip"),
    P("train.tsv", {"train.tsv": ROWS + "nul\x00byte\t1\n"}, (), ("train.tsv:8", "NUL"), id="nul-byte-tsv"),
    P("train.csv", {"train.csv": CSV_ROWS + "nul\x00byte,1\n"}, (), ("train.csv:8", "NUL"), id="nul-byte-csv"),
    P("train.jsonl", {"train.jsonl": JSONL_ROWS + '{"text": "a\x00", "label": 1}\n'}, (), ("train.jsonl:7", "NUL"),
      id="nul-byte-jsonl"),
    P("train.tsv", {"train.tsv": ROWS.replace("\n", "\r")}, (), ("train.tsv:1", "CR-only"), id="cr-only-tsv"),
    P("train.csv", {"train.csv": CSV_ROWS.replace("\n", "\r")}, (), ("train.csv:1", "CR-only"), id="cr-only-csv"),
    P("train.jsonl", {"train.jsonl": JSONL_ROWS.replace("\n", "\r")}, (), ("train.jsonl:1", "CR-only"),
      id="cr-only-jsonl"),
    P("train.tsv", {"train.tsv": ROWS.encode("utf-16")}, (), ("train.tsv:1", "UTF-16"), id="utf16"),
    P("train.tsv.gz", {"train.tsv.gz": gz(ROWS * 50)[:-12]}, (), ("train.tsv.gz", "truncated"), id="truncated-gzip"),
    P("train.tsv.gz", {"train.tsv.gz": ROWS}, (), ("train.tsv.gz", "not gzip-compressed"), id="not-gzip-named-gz"),
    P("train.tsv.gz", {"train.tsv.gz": b""}, (), ("train.tsv.gz", "empty file"), id="empty-gz"),
    P("train.jsonl", {"train.jsonl": jsonl("[1, 2]")}, (), ("train.jsonl:2", "JSON object", "array"),
      id="jsonl-array"),
    P("train.jsonl", {"train.jsonl": jsonl('"just a string"')}, (), ("train.jsonl:2", "JSON object", "string"),
      id="jsonl-string"),
    P("train.jsonl", {"train.jsonl": jsonl('{"text": "a", "label": ')}, (), ("train.jsonl:2", "invalid JSON"),
      id="jsonl-invalid-json"),
    P("train.jsonl", {"train.jsonl": jsonl('{"text": "a", "label": 1,}')}, (), ("train.jsonl:2", "invalid JSON"),
      id="jsonl-trailing-comma"),
    P("train.jsonl", {"train.jsonl": jsonl({"text": "a"})}, (), ("train.jsonl:2", "'label'", "missing"),
      id="jsonl-missing-label"),
    P("train.jsonl", {"train.jsonl": JSONL_ROWS + json.dumps({"label": 1}) + "\n"}, (),
      ("train.jsonl:7", "'text'", "missing"), id="jsonl-missing-text"),
    P("train.jsonl", {"train.jsonl": jsonl({"text": "a", "label": [1]})}, (), ("train.jsonl:2", "'label'", "array"),
      id="jsonl-label-list"),
    P("train.jsonl", {"train.jsonl": jsonl({"text": "a", "label": {"y": 1}})}, (),
      ("train.jsonl:2", "'label'", "object"), id="jsonl-label-dict"),
    P("train.jsonl", {"train.jsonl": jsonl({"text": "a", "label": None})}, (), ("train.jsonl:2", "'label'", "null"),
      id="jsonl-label-null"),
    P("train.jsonl", {"train.jsonl": jsonl({"text": "a", "label": 1.5})}, (), ("train.jsonl:2", "'label'", "1.5"),
      id="jsonl-label-float"),
    P("train.jsonl", {"train.jsonl": jsonl({"text": "a", "label": True})}, (),
      ("train.jsonl:2", "'label'", "boolean"), id="jsonl-label-bool"),
    P("train.jsonl", {"train.jsonl": jsonl({"text": 5, "label": 1})}, (), ("train.jsonl:2", "'text'", "string"),
      id="jsonl-text-number"),
    P("train.jsonl", {"train.jsonl": jsonl('{"text": "a", "label": ' + "9" * 5000 + "}")}, (),
      ("train.jsonl:2", "invalid JSON", "digits"), id="jsonl-huge-integer"),
    P("train.jsonl", {"train.jsonl": jsonl("[" * 100_000)}, (), ("train.jsonl:2", "invalid JSON", "nested"),
      id="jsonl-nested-too-deeply"),
    P("train.jsonl", {"train.jsonl": jsonl('{"text": "a\\ud800b", "label": 1}')}, (),
      ("train.jsonl:2", "'text'", "surrogate"), id="jsonl-lone-surrogate-text"),
    P("train.jsonl", {"train.jsonl": jsonl('{"text": "a", "label": "\\udc00"}')}, (),
      ("train.jsonl:2", "'label'", "surrogate"), id="jsonl-lone-surrogate-label"),
    P("train.tsv", {"train.tsv": "sentence\tlabel\ngood\t1\nfine\t1\ngreat\t1\n"}, (),
      ("train.tsv", "'label'", "only one class"), id="one-class"),
    P("train.tsv", {"train.tsv": ROWS + "  \t1\n"}, (), ("train.tsv:8", "'sentence'", "empty value"), id="empty-text"),
    P("train.tsv", {"train.tsv": ROWS + "no label\t \n"}, (), ("train.tsv:8", "'label'", "empty value"),
      id="empty-label"),
    P("train.jsonl", {"train.jsonl": jsonl({"text": " ", "label": 1})}, (), ("train.jsonl:2", "'text'", "empty"),
      id="jsonl-empty-text"),
    P("train.tsv", {"train.tsv": ROWS + "odd one\tpositive\n"}, (), ("train.tsv:8", "'label'", "mixed labels"),
      id="mixed-labels"),
    P("train.tsv", {"train.tsv": ROWS + "odd one\t01\n"}, (), ("train.tsv:8", "same number"),
      id="one-number-two-spellings"),
    P("train.tsv", {"train.tsv": "sentence\tlabel\ngood\t1\n\nbad\t0\n"}, (), ("train.tsv:3", "blank line"),
      id="blank-line"),
    P("train.tsv", {"train.tsv": "sentence\tsentence\tlabel\na\tb\t1\n"}, (), ("train.tsv:1", "duplicate column"),
      id="duplicate-column"),
    P("train.tsv", {"train.tsv": "sentence\t\tlabel\na\tb\t1\n"}, (), ("train.tsv:1", "no name"),
      id="unnamed-column"),
    P("train.xlsx", {"train.xlsx": ROWS}, (), ("train.xlsx", "unknown file type"), id="unknown-extension"),
    P("train.txt", {"train.txt": "i love this\n"}, (), ("train.txt", ".txt", "no labels"), id="txt-has-no-labels"),
    P(LINK, {LINK: Link("nowhere.tsv")}, (), (LINK, "broken symbolic link"), id="broken-symlink"),
    P(LINK, {LINK: Link("loop.tsv"), "../special/loop.tsv": Link("train.tsv")}, (), (LINK, "loop"),
      id="symlink-loop"),
    P("train.tsv", {"train.tsv": ROWS}, ("--text-column", "review"), ("train.tsv:1", "'review'", "missing column"),
      id="text-column-absent"),
    P("train.tsv", {"train.tsv": ROWS}, ("--label-column", "stars"), ("train.tsv:1", "'stars'", "missing column"),
      id="label-column-absent"),
    P("train.tsv", {"train.tsv": ROWS}, ("--label-column", "sentence"), ("train.tsv:1", "no text column"),
      id="label-column-is-the-text-column"),
    P("train.csv", {"train.csv": CSV_ROWS + '"open quote,1\n' + ("x" * 2**20 + "\n") * 9}, (),
      ("train.csv:8", "8 MiB"), id="csv-field-longer-than-limit"),
    P("train.tsv", {"train.tsv": "sentence\tlabel\n" + "good\tbad\tugly\n" * 6}, ("--skip-bad-rows",),
      ("train.tsv", "no usable rows", "all 6 rows are bad", "line 2"), id="skip-bad-rows-all-bad"),
    P("train.tsv", {"train.tsv": ROWS.encode() + b"\xff\t1\n"}, ("--skip-bad-rows",), ("train.tsv:8", "UTF-8"),
      id="skip-bad-rows-keeps-file-errors"),
    P("train.tsv", {"train.tsv": ROWS}, ("--label-names", "0=negative"), ("train.tsv", "'1'", "--label-names"),
      id="label-names-incomplete"),
]


@pytest.mark.parametrize("name,files,argv,names", CLASSIFY)
def test_train_refuses_a_bad_data_file(name, files, argv, names, run):
    refused(run, files, ("train", "--train", name, *argv, *TINY, "--out", "model"), names)


def test_text_column_and_label_column_must_differ(run):
    refused(run, {"train.tsv": ROWS}, ("train", "--train", "train.tsv", "--text-column", "label", *TINY, "--out",
                                       "model"), ("--text-column", "--label-column", "'label'"), code=2)


def test_train_file_without_read_permission(run):
    if os.geteuid() == 0:
        pytest.skip("root reads every file: no permission to take away")
    materialize(run, {"train.tsv": ROWS})
    (run / "train.tsv").chmod(0)
    try:
        clean_error(run_cli_captured("train", "--train", "train.tsv", *TINY, "--out", "model", cwd=run),
                    ("train.tsv", "Permission denied"))
        assert not (run / "model").exists()
    finally:
        (run / "train.tsv").chmod(0o644)


DEV = [
    P({"dev.tsv": "sentence\tlabel\nfine\t1\nodd\t2\n"}, ("dev.tsv:3", "'2'", "does not occur"), id="label-unseen"),
    P({}, ("dev.tsv", "no such file"), id="missing"),
    P({"dev.tsv": DIR}, ("dev.tsv", "is a directory"), id="directory"),
    P({"dev.tsv": ""}, ("dev.tsv", "empty file"), id="empty"),
    P({"dev.tsv": "sentence\tlabel\na\t1\tx\n"}, ("dev.tsv:2", "got 3"), id="ragged"),
    P({"dev.tsv": "sentence\tlabel\na\t1\nb\tpos\n"}, ("dev.tsv:3", "mixed labels"), id="mixed-labels"),
    P({"dev.tsv": b"sentence\tlabel\n\xfe\t1\n"}, ("dev.tsv:2", "UTF-8"), id="invalid-utf8"),
    P({"dev.tsv": "review\tlabel\na\t1\n"}, ("dev.tsv:1", "no text column"), id="other-columns"),
]


@pytest.mark.parametrize("files,names", DEV)
def test_train_refuses_a_bad_dev_file(files, names, run):
    refused(run, {"train.tsv": ROWS, **files}, ("train", "--train", "train.tsv", "--dev", "dev.tsv", *TINY,
                                                "--out", "model"), names)


ACCEPTED = [
    P("train.tsv", ROWS.replace("\n", "\r\n"), id="crlf"),
    P("train.tsv", "\ufeff" + ROWS, id="bom"),
    P("train.csv", "\ufeff" + CSV_ROWS.replace("\n", "\r\n"), id="csv-bom-crlf"),
    P("train.jsonl", "\ufeff" + JSONL_ROWS, id="jsonl-bom"),
    P("train.tsv.gz", gz(ROWS), id="gzip"),
    P("train.tsv", gz(ROWS), id="gzip-without-gz-name"),
    P("train.csv", CSV_ROWS + '"a quoted, multi-line\ntext",1\n', id="csv-quoted-newline"),
]


@pytest.mark.parametrize("name,content", ACCEPTED)
def test_train_reads_crlf_bom_and_gzip(name, content, run):
    materialize(run, {name: content})
    result = run_cli_captured("train", "--train", name, *TINY, "--out", "model", "--json", cwd=run)
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["labels"] == ["0", "1"]
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["data"]["train"]["rows"] == (7 if "multi-line" in str(content) else 6)


def test_skip_bad_rows_reports_each_skipped_row(run):
    rows = ROWS + "ragged\t1\tx\n\t0\nno label\t\n"
    materialize(run, {"train.tsv": rows})
    result = run_cli_captured("train", "--train", "train.tsv", "--skip-bad-rows", *TINY, "--out", "model", cwd=run)
    assert result.code == 0, result.err
    assert "skipped 3 bad row(s) of train.tsv:" in result.err
    assert "line 8: expected 2 tab-separated fields" in result.err
    assert "line 9: field 'sentence': empty value" in result.err
    assert "line 10: field 'label': empty value" in result.err
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["data"]["train"]["rows"] == 6 and config["data"]["train"]["skipped_rows"] == 3


# --- special files: refused before anything is read ----------------------------------------------------------

SPECIAL = [
    P(("train", "--train", "{f}", *TINY), id="train-classify"),
    P(("train", "--task", "lm", "--text", "{f}"), id="train-lm"),
    P(("train", "--task", "forecast", "--csv", "{f}", "--column", "y"), id="train-forecast"),
    P(("train", "--task", "translate", "--source", "{f}", "--target", "{f}"), id="train-translate"),
    P(("train", "--train", "train.tsv", "--embeddings", "{f}"), id="embeddings"),
]


@pytest.mark.parametrize("argv", SPECIAL)
def test_a_fifo_is_refused_without_waiting(argv, run, tmp_path):
    """A FIFO nobody writes to would block its reader forever: it is refused before it is opened (run in a
    subprocess, so that a hang is a timeout, not a stuck suite)."""
    fifo = tmp_path / "special" / "data.tsv"
    os.mkfifo(fifo)
    materialize(run, {"train.tsv": ROWS})
    before = Snapshot(run)
    result = run_process(*[a.replace("{f}", str(fifo)) for a in argv], "--out", "model", cwd=run, timeout=60)
    clean_error(result, (str(fifo), "FIFO", "not a regular file"))
    before.assert_unchanged()


@pytest.mark.parametrize("argv", SPECIAL)
def test_dev_zero_is_refused_without_reading(argv, run):
    """/dev/zero under a data option would fill the memory (or, read line by line, end at the line limit):
    refused before it is opened."""
    argv = tuple(a.replace("{f}", "/dev/zero") for a in argv)
    refused(run, {"train.tsv": ROWS}, (*argv, "--out", "model"), ("/dev/zero", "device", "not a regular file"))


@pytest.mark.parametrize("name", ["train.tsv", "train.jsonl", "train.csv"])
def test_a_line_without_end_is_refused_without_reading_it_all(name, run):
    """50 MB without a newline: refused naming the file, the line and the 8 MiB limit, having held at most
    about one limit's worth of it in memory."""
    header = {"train.tsv": "sentence\tlabel\n", "train.jsonl": "", "train.csv": "sentence,label\n"}[name]
    with open(run / name, "wb") as file:
        file.write(header.encode())
        for _ in range(50):
            file.write(b"a" * 2**20)
    before = Snapshot(run)
    run_cli_captured("train", "--train", "absent.tsv", *TINY, "--out", "model", cwd=run)  # imports done
    tracemalloc.start()
    try:
        result = run_cli_captured("train", "--train", name, *TINY, "--out", "model", cwd=run)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    line_number = 1 if name == "train.jsonl" else 2
    clean_error(result, (f"{name}:{line_number}", "8 MiB"))
    assert peak < 30 * 2**20, f"held {peak / 2**20:.0f} MiB reading a 50 MB line"
    before.assert_unchanged()


# --- evaluate --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("classifier")
    (root / "train.tsv").write_text(ROWS)
    result = run_cli_captured("train", "--train", "train.tsv", *TINY, "--quiet", "--out", "model", cwd=root)
    assert result.code == 0, result.err
    return root / "model"


EVALUATE = [
    P("test.tsv", {}, (), ("test.tsv", "no such file"), id="missing"),
    P("test.tsv", {"test.tsv": DIR}, (), ("test.tsv", "is a directory"), id="directory"),
    P("test.tsv", {"test.tsv": ""}, (), ("test.tsv", "empty file"), id="empty"),
    P("test.tsv", {"test.tsv": "sentence\tlabel\n"}, (), ("test.tsv", "no data rows"), id="header-only"),
    P("test.tsv", {"test.tsv": "sentence\tlabel\ngood\t1\nodd\t7\n"}, (), ("test.tsv:3", "'7'"),
      id="label-unknown-to-the-model"),
    P("test.tsv", {"test.tsv": ROWS + "a\t1\tb\n"}, (), ("test.tsv:8", "got 3"), id="ragged"),
    P("test.tsv", {"test.tsv": ROWS.encode() + b"\xc3\t1\n"}, (), ("test.tsv:8", "UTF-8"), id="invalid-utf8"),
    P("test.tsv", {"test.tsv": ROWS.replace("\n", "\r")}, (), ("test.tsv:1", "CR-only"), id="cr-only"),
    P("test.jsonl", {"test.jsonl": jsonl({"text": "a", "label": None})}, (), ("test.jsonl:2", "null"),
      id="jsonl-label-null"),
    P("test.tsv.gz", {"test.tsv.gz": gz(ROWS)[:-9]}, (), ("test.tsv.gz", "truncated"), id="truncated-gzip"),
    P("test.tsv", {"test.tsv": ROWS}, ("--reference", "ref.txt"), ("--reference",), id="reference-for-classifier"),
    P("test.tsv", {"test.tsv": ROWS}, ("--label-column", "stars"), ("test.tsv:1", "'stars'"),
      id="label-column-absent"),
]


@pytest.mark.parametrize("name,files,argv,names", EVALUATE)
def test_evaluate_refuses_a_bad_file(name, files, argv, names, classifier, run):
    model = Snapshot(classifier)
    code = 2 if "--reference" in argv else 1
    refused(run, files, ("evaluate", "--model", str(classifier), name, *argv), names, code)
    model.assert_unchanged()


def test_evaluate_refuses_a_fifo_without_waiting(classifier, tmp_path):
    fifo = tmp_path / "special" / "test.tsv"
    fifo.parent.mkdir(exist_ok=True)
    os.mkfifo(fifo)
    result = run_process("evaluate", "--model", classifier, fifo, timeout=60)
    clean_error(result, (str(fifo), "FIFO"))


# --- train --task forecast and forecast: series ----------------------------------------------------------------

FORECAST_TINY = ("--window", "3", "--horizon", "2", "--epochs", "1", "--hidden-size", "4", "--batch-size", "2")
SERIES = "month,sales\n" + "".join(f"2020-{m:02d},{10 + m}\n" for m in range(1, 13))  # lines 2..13


def series_with(line: str) -> str:
    """SERIES with one more row, line 14."""
    return SERIES + line + "\n"


SERIES_CASES = [
    P({"s.csv": series_with("2021-01,lots")}, (), ("s.csv:14", "'sales'", "not a number"), id="non-numeric"),
    P({"s.csv": series_with("2021-01,nan")}, (), ("s.csv:14", "'sales'", "not a finite number"), id="nan"),
    P({"s.csv": series_with("2021-01,inf")}, (), ("s.csv:14", "'sales'", "not a finite number"), id="inf"),
    P({"s.csv": series_with("2021-01,-Infinity")}, (), ("s.csv:14", "'sales'", "finite"), id="minus-infinity"),
    P({"s.csv": series_with("2021-01,1e400")}, (), ("s.csv:14", "'sales'", "finite"), id="overflowing-number"),
    P({"s.csv": series_with("2021-01,")}, (), ("s.csv:14", "'sales'", "missing value", "--fill"),
      id="missing-value"),
    P({"s.csv": SERIES.replace("2020-01,11", "2020-01,")}, ("--fill", "interpolate"),
      ("s.csv:2", "'sales'", "missing first value"), id="missing-first-value-interpolate"),
    P({"s.csv": SERIES}, ("--column", "revenue"), ("s.csv:1", "'revenue'", "missing column"), id="missing-column"),
    P({"s.csv": SERIES}, ("--date-column", "day"), ("s.csv:1", "'day'", "missing column"),
      id="missing-date-column"),
    P({"s.csv": SERIES}, ("--exog", "price"), ("s.csv:1", "'price'", "missing column"), id="missing-exog-column"),
    P({"s.csv": SERIES}, ("--exog", "sales"), ("s.csv", "'sales'", "exogenous"), id="exog-repeats-the-target"),
    P({"s.csv": SERIES}, ("--date-column", "sales"), ("s.csv", "'sales'", "date column"),
      id="date-column-is-the-target"),
    P({"s.csv": SERIES}, ("--column", "month"), ("s.csv:2", "'month'", "not a number"), id="dates-as-values"),
    P({"s.csv": "month,sales\n2020-01,1\n2020-02,2\n"}, (), ("s.csv", "--window", "--horizon"),
      id="too-short-for-window"),
    P({"s.csv": SERIES}, ("--test-size", "10"), ("s.csv", "--test-size", "needs at least"),
      id="too-short-after-test-size"),
    P({"s.csv": ""}, (), ("s.csv", "empty file"), id="empty"),
    P({"s.csv": "month,sales\n"}, (), ("s.csv", "no data rows"), id="header-only"),
    P({}, (), ("s.csv", "no such file"), id="missing-file"),
    P({"s.csv": DIR}, (), ("s.csv", "is a directory"), id="directory"),
    P({"s.csv": series_with("2021-13,5")}, ("--date-column", "month"), ("s.csv:14", "'month'", "not a date"),
      id="bad-month"),
    P({"s.csv": series_with("yesterday,5")}, ("--date-column", "month"), ("s.csv:14", "'month'", "not a date"),
      id="bad-date-text"),
    P({"s.csv": series_with("2021-02-30,5")}, ("--date-column", "month"), ("s.csv:14", "'month'", "not a date"),
      id="impossible-day"),
    P({"s.csv": series_with(",5")}, ("--date-column", "month"), ("s.csv:14", "'month'", "empty value"),
      id="empty-date"),
    P({"s.csv": series_with("2020-12,5")}, ("--date-column", "month"), ("s.csv:14", "duplicate date", "line 13"),
      id="duplicate-date"),
    P({"s.csv": series_with("2020-06-15,5")}, ("--date-column", "month"), ("s.csv:14", "out of order"),
      id="dates-out-of-order"),
    P({"s.csv": series_with("2021-01,5,6")}, (), ("s.csv:14", "expected 2 fields", "got 3"), id="ragged-row"),
    P({"s.csv": "month,sales\n2020-01,1\n\n2020-02,2\n"}, (), ("s.csv:3", "blank line"), id="blank-line-inside"),
    P({"s.csv": SERIES.encode() + b"2021-01,\xff5\n"}, (), ("s.csv:14", "UTF-8"), id="invalid-utf8"),
    P({"s.csv": series_with("2021-01,5\x00")}, (), ("s.csv:14", "NUL"), id="nul-byte"),
    P({"s.csv": SERIES.replace("\n", "\r")}, (), ("s.csv:1", "CR-only"), id="cr-only"),
    P({"s.csv": SERIES.encode("utf-16")}, (), ("s.csv:1", "UTF-16"), id="utf16"),
    P({"s.csv.gz": gz("sales\n" + "5\n" * 2000)[:-10]}, (), ("s.csv.gz", "truncated"), id="truncated-gzip"),
    P({"../special/s.csv": Link("s.csv")}, ("--csv", "../special/s.csv"), ("special/s.csv", "loop"),
      id="symlink-loop"),
]


@pytest.mark.parametrize("files,argv,names", SERIES_CASES)
def test_train_forecast_refuses_a_bad_series(files, argv, names, run):
    csv = () if "--csv" in argv else ("--csv", "s.csv.gz" if "s.csv.gz" in files else "s.csv")
    column = () if "--column" in argv else ("--column", "sales")
    refused(run, files, ("train", "--task", "forecast", *csv, *column, *argv, *FORECAST_TINY, "--out", "model"),
            names)


def test_train_forecast_reads_gzip_and_a_bom(run):
    materialize(run, {"s.csv.gz": gz("\ufeff" + SERIES.replace("\n", "\r\n"))})
    result = run_cli_captured("train", "--task", "forecast", "--csv", "s.csv.gz", "--column", "sales",
                              "--date-column", "month", *FORECAST_TINY, "--json", "--out", "model", cwd=run)
    assert result.code == 0, result.err
    assert json.loads(result.out)["values"] == 12


@pytest.fixture(scope="module")
def forecaster(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("forecaster")
    (root / "s.csv").write_text(SERIES)
    result = run_cli_captured("train", "--task", "forecast", "--csv", "s.csv", "--column", "sales", "--date-column",
                              "month", *FORECAST_TINY, "--quiet", "--out", "model", cwd=root)
    assert result.code == 0, result.err
    return root / "model"


FORECAST = [
    P({"s.csv": series_with("2021-01,lots")}, ("s.csv:14", "'sales'", "not a number"), id="non-numeric"),
    P({"s.csv": series_with("2021-01,nan")}, ("s.csv:14", "'sales'", "finite"), id="nan"),
    P({"s.csv": "month,sales\n2020-01,1\n2020-02,2\n"}, ("s.csv", "2 values", "--window 3"), id="shorter-than-window"),
    P({"s.csv": "month,sales\n2020-01,1\n"}, ("s.csv", "1 value", "--window 3"), id="one-row"),
    P({"s.csv": "month,revenue\n2020-01,1\n"}, ("s.csv:1", "'sales'", "missing column"), id="missing-column"),
    P({"s.csv": "day,sales\n2020-01,1\n"}, ("s.csv:1", "'month'", "missing column"), id="missing-date-column"),
    P({"s.csv": "month,sales\n"}, ("s.csv", "no data rows"), id="header-only"),
    P({"s.csv": series_with("2020-11,5")}, ("s.csv:14", "duplicate date"), id="duplicate-date"),
    P({"s.csv": SERIES.replace("\n", "\r")}, ("s.csv:1", "CR-only"), id="cr-only"),
]


@pytest.mark.parametrize("files,names", FORECAST)
def test_forecast_refuses_a_bad_history(files, names, forecaster, run):
    model = Snapshot(forecaster)
    refused(run, files, ("forecast", "--model", str(forecaster), "--csv", "s.csv"), names)
    model.assert_unchanged()


# --- train --task lm: the text ----------------------------------------------------------------------------------

LM_TINY = ("--task", "lm", "--epochs", "1", "--hidden-size", "4", "--embedding-dim", "4", "--batch-size", "2",
           "--bptt", "4")
TEXT = "hello world, this is a tiny text to model.\n" * 3

LM = [
    P({"text.txt": ""}, (), ("text.txt", "empty"), id="empty"),
    P({"text.txt": " \n\t\n   \n"}, (), ("text.txt", "empty"), id="whitespace-only"),
    P({"text.txt": b"fine\n\xff\xfe broken\n"}, (), ("text.txt:2", "UTF-8"), id="invalid-utf8"),
    P({"text.txt": bytes(range(256)) * 4}, (), ("text.txt:1", "NUL", "binary"), id="binary"),
    P({"text.txt": TEXT + "nul \x00 here\n"}, (), ("text.txt:4", "NUL"), id="nul-byte"),
    P({"text.txt": TEXT.encode("utf-16")}, (), ("text.txt:1", "UTF-16"), id="utf16"),
    P({"text.txt": TEXT.replace("\n", "\r")}, (), ("text.txt:1", "CR-only"), id="cr-only"),
    P({"text.txt.gz": gz(TEXT * 40)[:-10]}, (), ("text.txt.gz", "truncated"), id="truncated-gzip"),
    P({"text.txt.gz": TEXT}, (), ("text.txt.gz", "not gzip-compressed"), id="not-gzip-named-gz"),
    P({}, (), ("text.txt", "no such file"), id="missing"),
    P({"text.txt": DIR}, (), ("text.txt", "is a directory"), id="directory"),
    P({"text.txt": "ab\n"}, (), ("text.txt", "--batch-size"),
      id="too-short-for-batch-size"),
    P({"text.txt": "abcdefghij\n"}, (), ("text.txt", "--validation-fraction"),
      id="too-short-for-validation"),
    P({"text.txt": TEXT}, ("--level", "syllable"), ("--level", "syllable"), id="unknown-level"),
]


@pytest.mark.parametrize("files,argv,names", LM)
def test_train_lm_refuses_a_bad_text(files, argv, names, run):
    text = "text.txt.gz" if "text.txt.gz" in files else "text.txt"
    code = 2 if "--level" in argv else 1
    refused(run, files, ("train", *LM_TINY, "--text", text, *argv, "--out", "model"), names, code)


def test_a_corpus_of_one_long_line_is_read_whole(run):
    """A language model's corpus may be one line (text8 is 100 MB without a newline): the per-line limit of
    the record readers does not apply to it."""
    from unrolled.data.readers import MAX_LINE_BYTES, read_text

    with open(run / "text.txt", "wb") as file:
        file.write(b"ab " * (MAX_LINE_BYTES // 3 + 1000))
    assert len(read_text(run / "text.txt")) == 3 * (MAX_LINE_BYTES // 3 + 1000) + 1


# --- train --task translate: sentence pairs ---------------------------------------------------------------------

XL_TINY = ("--task", "translate", "--epochs", "1", "--hidden-size", "4", "--embedding-dim", "4", "--batch-size", "2",
           "--min-freq", "1")
SOURCE = "ein hund\neine katze\nein mann\nzwei hunde\nein haus\neine frau\n"
TARGET = "a dog\na cat\na man\ntwo dogs\na house\na woman\n"
PAIRS = "source\ttarget\n" + "".join(f"{s}\t{t}\n" for s, t in zip(SOURCE.splitlines(), TARGET.splitlines()))
TWO_FILES = ("--source", "src.txt", "--target", "tgt.txt")

TRANSLATE = [
    P({"src.txt": SOURCE, "tgt.txt": TARGET.split("\n", 1)[1]}, TWO_FILES,
      ("src.txt:6", "no counterpart in tgt.txt", "has 6 lines", "has 5"), id="target-shorter"),
    P({"src.txt": SOURCE, "tgt.txt": TARGET + "one more\n"}, TWO_FILES, ("tgt.txt:7", "no counterpart in src.txt"),
      id="target-longer"),
    P({"src.txt": "", "tgt.txt": ""}, TWO_FILES, ("src.txt", "empty file"), id="both-empty"),
    P({"src.txt": "", "tgt.txt": TARGET}, TWO_FILES, ("tgt.txt:1", "no counterpart in src.txt", "has 0"),
      id="empty-source"),
    P({"src.txt": SOURCE, "tgt.txt": TARGET.replace("a man", "  ")}, TWO_FILES, ("tgt.txt:3", "blank line"),
      id="blank-target-line"),
    P({"src.txt": SOURCE.encode() + b"\xe4\n", "tgt.txt": TARGET + "x\n"}, TWO_FILES, ("src.txt:7", "UTF-8"),
      id="invalid-utf8"),
    P({"src.txt": SOURCE.replace("\n", "\r"), "tgt.txt": TARGET}, TWO_FILES, ("src.txt:1", "CR-only"),
      id="cr-only"),
    P({"tgt.txt": TARGET}, TWO_FILES, ("src.txt", "no such file"), id="missing-source"),
    P({"src.txt": SOURCE}, ("--source", "src.txt"), ("source", "target"), id="source-without-target"),
    P({"p.tsv": PAIRS, "src.txt": SOURCE}, ("--pairs", "p.tsv", "--source", "src.txt"), ("--…pairs",),
      id="pairs-and-source"),
    P({"p.tsv": PAIRS + "a\tb\tc\n"}, ("--pairs", "p.tsv"), ("p.tsv:8", "got 3"), id="pairs-ragged"),
    P({"p.tsv": PAIRS.replace("target", "english")}, ("--pairs", "p.tsv"), ("p.tsv:1", "'target'", "missing column"),
      id="pairs-missing-column"),
    P({"p.tsv": PAIRS + "ein\t \n"}, ("--pairs", "p.tsv"), ("p.tsv:8", "'target'", "empty value"),
      id="pairs-empty-field"),
    P({"p.tsv": PAIRS, "dsrc.txt": SOURCE, "dtgt.txt": TARGET.split("\n", 1)[1]},
      ("--pairs", "p.tsv", "--dev-source", "dsrc.txt", "--dev-target", "dtgt.txt"), ("dsrc.txt:6", "dtgt.txt"),
      id="dev-misaligned"),
]


@pytest.mark.parametrize("files,argv,names", TRANSLATE)
def test_train_translate_refuses_bad_pairs(files, argv, names, run):
    code = 2 if argv in (("--source", "src.txt"), ("--pairs", "p.tsv", "--source", "src.txt")) else 1
    refused(run, files, ("train", *XL_TINY, *argv, "--out", "model"), names, code)


def test_translate_skip_bad_rows_reports_the_lines(run):
    materialize(run, {"src.txt": SOURCE, "tgt.txt": TARGET.replace("a man", " ")})
    result = run_cli_captured("train", *XL_TINY, *TWO_FILES, "--skip-bad-rows", "--out", "model", cwd=run)
    assert result.code == 0, result.err
    assert "skipped 1 bad pair(s) of src.txt and tgt.txt:" in result.err
    assert "  line 3: blank line in tgt.txt" in result.err
    assert "SkippedRow" not in result.err


# --- train --task speech: manifests and WAV files ---------------------------------------------------------------

SPEECH_TINY = ("--task", "speech", "--epochs", "1", "--hidden-size", "4", "--batch-size", "2", "--n-mels", "8",
               "--n-mfcc", "4", "--validation-fraction", "0")


def wav_bytes(samples: np.ndarray | None = None, *, bits: int = 16, data: bytes | None = None,
              declared: int | None = None) -> bytes:
    """A mono 8 kHz PCM WAV file's bytes (``data`` replaces the samples, ``declared`` the data chunk's size)."""
    import struct

    if data is None:
        samples = np.random.default_rng(0).uniform(-0.5, 0.5, 1600) if samples is None else samples
        data = np.round(np.asarray(samples) * 32767).astype("<i2").tobytes()
    width = max(1, bits // 8)
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 8000 * width, width, bits)
    size = len(data) if declared is None else declared
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", size) + data)


def manifest_with(bad: str | None = None, transcript: str = "1") -> str:
    rows = "".join(f"{i}.wav\t{i % 2}\n" for i in range(5))  # lines 2..6
    return "path\ttranscript\n" + rows + (f"{bad}\t{transcript}\n" if bad else "")


GOOD_WAVS = {f"{i}.wav": wav_bytes(np.random.default_rng(i).uniform(-0.5, 0.5, 1600)) for i in range(5)}

SPEECH = [
    P({"m.tsv": manifest_with("gone.wav")}, ("m.tsv:7", "'path'", "gone.wav", "does not exist"),
      id="manifest-names-missing-wav"),
    P({"m.tsv": manifest_with("bad.wav"), "bad.wav": "this is not a WAV file\n"}, ("bad.wav", "not a WAV file"),
      id="not-a-wav"),
    P({"m.tsv": manifest_with("bad.wav"), "bad.wav": wav_bytes()[:100]}, ("bad.wav", "truncated"),
      id="truncated-wav"),
    P({"m.tsv": manifest_with("bad.wav"), "bad.wav": wav_bytes(data=b"")}, ("bad.wav", "no samples"),
      id="zero-samples"),
    P({"m.tsv": manifest_with("bad.wav"), "bad.wav": wav_bytes(bits=12, data=b"\0\0" * 100)},
      ("bad.wav", "12-bit", "unsupported"), id="wrong-sample-width"),
    P({"m.tsv": manifest_with("bad.wav"), "bad.wav": b""}, ("bad.wav", "empty file"), id="empty-wav"),
    P({"m.tsv": manifest_with("bad.wav"), "bad.wav": wav_bytes(declared=10**6)}, ("bad.wav", "truncated"),
      id="data-chunk-past-the-end"),
    P({"m.tsv": manifest_with("bad.wav"), "bad.wav": DIR}, ("m.tsv:7", "bad.wav", "not a regular file"),
      id="manifest-names-a-folder"),
    P({"m.tsv": manifest_with().replace("path", "file")}, ("m.tsv:1", "'path'", "missing column"),
      id="manifest-missing-column"),
    P({"m.tsv": manifest_with("0.wav", " ")}, ("m.tsv:7", "'transcript'", "empty value"),
      id="manifest-empty-transcript"),
    P({"m.tsv": manifest_with().replace("\t0\n", "\t1\n")}, ("m.tsv", "one distinct transcript"),
      id="one-transcript-only"),
    P({"m.tsv": ""}, ("m.tsv", "empty file"), id="empty-manifest"),
]


@pytest.mark.parametrize("files,names", SPEECH)
def test_train_speech_refuses_bad_audio(files, names, run):
    refused(run, {**GOOD_WAVS, **files}, ("train", *SPEECH_TINY, "--data", "m.tsv", "--out", "model"), names)


def test_train_speech_refuses_a_fifo_in_the_manifest(run, tmp_path):
    fifo = tmp_path / "special" / "pipe.wav"
    os.mkfifo(fifo)
    materialize(run, {**GOOD_WAVS, "m.tsv": manifest_with(str(fifo))})
    before = Snapshot(run)
    result = run_process("train", *SPEECH_TINY, "--data", "m.tsv", "--out", "model", cwd=run, timeout=60)
    clean_error(result, ("m.tsv:7", "pipe.wav", "not a regular file"))
    before.assert_unchanged()


def test_train_speech_data_that_does_not_exist(run):
    refused(run, {}, ("train", *SPEECH_TINY, "--data", "nowhere", "--out", "model"), ("nowhere",))
