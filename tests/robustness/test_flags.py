"""Bad command-line options of ``unrolled train``: every numeric training option given 0, a negative number,
NaN, infinity, a huge or a non-numeric value, for every task; unknown choices; options of another task;
malformed --label-names; an --embeddings file that is not word vectors; an --out that cannot take a
checkpoint. Each is one error line naming the option (exit 2 for what the command line alone shows, 1 for
what needs a file), no traceback, and nothing written or changed: a bad --out fails before training
(docs/reliability.md)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from tests.robustness.conftest import Result, Snapshot, assert_clean_error, run_cli_captured

TINY = ("--epochs", "1", "--hidden-size", "4", "--batch-size", "2")
ROWS = "sentence\tlabel\ni love this\t1\ni hate this\t0\ngreat film\t1\nawful film\t0\nnice one\t1\nbad one\t0\n"
SERIES = "y\n" + "".join(f"{v}\n" for v in range(1, 13))
TEXT = "hello world, this is a tiny text to model.\n" * 3
SOURCE = "ein hund\neine katze\nein mann\nzwei hunde\nein haus\neine frau\n"
TARGET = "a dog\na cat\na man\ntwo dogs\na house\na woman\n"

# Each task's data options and files (written into the run directory), enough for a run to start.
TASKS = {
    "classify": (("--train", "train.tsv", "--embedding-dim", "4"), {"train.tsv": ROWS}),
    "forecast": (("--task", "forecast", "--csv", "s.csv", "--column", "y", "--window", "3", "--horizon", "2"),
                 {"s.csv": SERIES}),
    "lm": (("--task", "lm", "--text", "t.txt", "--embedding-dim", "4", "--bptt", "4"), {"t.txt": TEXT}),
    "translate": (("--task", "translate", "--source", "s.txt", "--target", "t.txt", "--embedding-dim", "4",
                   "--min-freq", "1"), {"s.txt": SOURCE, "t.txt": TARGET}),
    "speech": (("--task", "speech", "--data", "recordings"), {}),
}


@pytest.fixture
def run(tmp_path: Path) -> Path:
    (tmp_path / "run").mkdir()
    (tmp_path / "special").mkdir()
    return tmp_path / "run"


def train(run: Path, task: str, *argv: str, tiny: bool = True) -> Result:
    """``unrolled train`` of ``task`` in ``run`` (its files written first) with ``argv`` after the task's options."""
    options, files = TASKS[task]
    for name, content in files.items():
        if not (run / name).exists():
            (run / name).write_text(content)
    return run_cli_captured("train", *options, *(TINY if tiny else ()), *argv, "--out", "model", cwd=run)


def refused(run: Path, task: str, argv: tuple, names: tuple, code: int = 2) -> str:
    """One clean error naming ``names``; the run directory as it was (its files written before the snapshot)."""
    options, files = TASKS[task]
    for name, content in files.items():
        (run / name).write_text(content)
    before = Snapshot(run)
    line = assert_clean_error(train(run, task, *argv), code=code, names=names)
    before.assert_unchanged()
    return line


# --- numbers: 0, negative, NaN, infinity, non-numeric, fractional for an integer ---------------------------------

POSITIVE_INT = ["0", "-1", "1.5", "nan", "ten", ""]
POSITIVE_FLOAT = ["0", "-0.1", "nan", "inf", "-inf", "1e400", "fast"]
PROBABILITY = ["1", "1.5", "-0.1", "nan", "inf", "half"]
NONNEGATIVE_INT = ["-1", "2.5", "x"]
NONNEGATIVE_FLOAT = ["-1", "nan", "inf"]
FRACTION = ["0", "1", "-0.5", "nan"]

NUMERIC = {
    "classify": {"--hidden-size": POSITIVE_INT, "--num-layers": ["0", "-2"], "--embedding-dim": ["0", "x"],
                 "--epochs": ["0", "-1", "1e3", "inf"], "--batch-size": ["0", "-4"], "--lr": POSITIVE_FLOAT,
                 "--clip-norm": ["0", "nan", "inf"], "--dropout": PROBABILITY, "--word-dropout": ["1", "nan"],
                 "--weight-decay": NONNEGATIVE_FLOAT, "--warmup-steps": NONNEGATIVE_INT, "--min-freq": ["0"],
                 "--max-vocab": ["0", "-1"], "--max-len": ["0"], "--patience": ["0"]},
    "forecast": {"--window": ["0", "-3", "nan"], "--horizon": ["0", "-1"], "--test-size": ["-1", "x"],
                 "--season": ["0"], "--lr": ["nan", "-1"], "--epochs": ["0"], "--dropout": ["1"]},
    "lm": {"--bptt": ["0", "-1"], "--validation-fraction": FRACTION, "--max-steps": ["0"], "--min-freq": ["0"],
           "--batch-size": ["0"], "--lr": ["inf"]},
    "translate": {"--subwords": ["0"], "--label-smoothing": ["1", "nan"], "--max-steps": ["-1"], "--patience": ["0"],
                  "--embedding-dim": ["0"], "--clip-norm": ["-1"]},
    "speech": {"--n-mels": ["0"], "--n-mfcc": ["0"], "--deltas": ["-1"], "--window-ms": ["0", "nan", "inf"],
               "--hop-ms": ["-1"], "--stack": ["0"], "--time-masks": ["-1"], "--feature-masks": ["1.5"],
               "--validation-fraction": ["1"], "--beam-size": ["0"], "--connected": ["-1"],
               "--connected-test": ["0"], "--connected-seed": ["abc"]},
}
NUMERIC_CASES = [pytest.param(task, flag, value, id=f"{task}{flag}={value or 'empty'}")
                 for task, flags in NUMERIC.items() for flag, values in flags.items() for value in values]


@pytest.mark.parametrize("task,flag,value", NUMERIC_CASES)
def test_a_bad_number_is_a_usage_error_naming_the_option(task, flag, value, run):
    line = refused(run, task, (f"{flag}={value}",), (flag, "expected"))
    assert "see unrolled train --help" in line


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("value", ["-1", "1.5", "seven"])
def test_seed_must_be_a_nonnegative_integer(task, value, run):
    refused(run, task, ("--seed", value), ("--seed", "expected an integer >= 0"))


# --- huge values ----------------------------------------------------------------------------------------------

DIVERGES = [
    pytest.param("classify", ("--lr", "1e30"), id="classify-lr-1e30"),
    pytest.param("forecast", ("--lr", "1e30"), id="forecast-lr-1e30"),
    pytest.param("lm", ("--lr", "1e30"), id="lm-lr-1e30"),
    pytest.param("translate", ("--lr", "1e30"), id="translate-lr-1e30"),
    pytest.param("classify", ("--lr", "1e300", "--epochs", "3"), id="classify-lr-1e300"),
    pytest.param("classify", ("--lr", "1e300", "--batch-size", "32"), id="classify-lr-1e300-one-step"),
    pytest.param("classify", ("--weight-decay", "1e300", "--epochs", "3"), id="classify-weight-decay-1e300"),
]


@pytest.mark.parametrize("task,argv", DIVERGES)
def test_a_diverging_run_says_so_and_names_the_learning_rate(task, argv, run):
    flag = "--weight-decay" if "--weight-decay" in argv else "--lr"
    refused(run, task, argv, ("diverged", flag), code=1)


HUGE = [
    pytest.param("forecast", ("--test-size", "1000000000"), ("s.csv", "--test-size"), id="forecast-test-size"),
    pytest.param("forecast", ("--test-size", "4", "--season", "1000000000"), ("s.csv", "--season"),
                 id="forecast-season"),
    pytest.param("forecast", ("--window", "1000000000"), ("s.csv", "--window"), id="forecast-window"),
]


@pytest.mark.parametrize("task,argv,names", HUGE)
def test_a_huge_value_is_refused_naming_it(task, argv, names, run):
    refused(run, task, argv, names, code=1)


# --- choices, other tasks' options, unknown options --------------------------------------------------------------

CHOICES = [
    ("classify", "--cell", "transformer"), ("classify", "--pooling", "avg"), ("classify", "--optimizer", "lbfgs"),
    ("classify", "--schedule", "cyclic"), ("classify", "--engine", "jax"), ("forecast", "--fill", "zero"),
    ("forecast", "--cell", "RNN"), ("lm", "--level", "byte"), ("translate", "--attention", "dot"),
    ("speech", "--features", "spectrogram"), ("speech", "--objective", "rnnt"), ("speech", "--pooling", "last"),
]


@pytest.mark.parametrize("task,flag,value", CHOICES, ids=[f"{t}{f}={v}" for t, f, v in CHOICES])
def test_an_unknown_choice_names_the_option_and_the_choices(task, flag, value, run):
    refused(run, task, (flag, value), (flag, "invalid choice", repr(value), "choose from"))


def test_an_unknown_task_lists_the_tasks(run):
    before = Snapshot(run)
    result = run_cli_captured("train", "--task", "regression", "--out", "model", cwd=run)
    assert_clean_error(result, code=2, names=("--task", "'regression'", "classify", "forecast", "speech"))
    before.assert_unchanged()


FOREIGN = [
    ("classify", ("--window", "3"), ("--window", "--task classify")),
    ("classify", ("--n-mels", "8"), ("--n-mels", "--task classify")),
    ("classify", ("--window", "3", "--bptt", "4"), ("--window", "--bptt", "not an option of --task classify")),
    ("forecast", ("--bptt", "4"), ("--bptt", "--task forecast")),
    ("forecast", ("--label-names", "0=a,1=b"), ("--label-names", "--task forecast")),
    ("lm", ("--train", "train.tsv"), ("--train", "--task lm")),
    ("lm", ("--skip-bad-rows",), ("--skip-bad-rows", "--task lm")),
    ("translate", ("--csv", "s.csv"), ("--csv", "--task translate")),
    ("translate", ("--pooling", "max"), ("--pooling", "--task translate")),
    ("speech", ("--text", "t.txt"), ("--text", "--task speech")),
    ("speech", ("--embeddings", "vectors.txt"), ("--embeddings", "--task speech")),
    ("classify", ("--frobnicate",), ("unrecognized arguments", "--frobnicate")),
    ("classify", ("--window", "3", "--frobnicate"), ("unrecognized arguments", "--frobnicate")),
]


@pytest.mark.parametrize("task,argv,names", FOREIGN, ids=[f"{t}:{' '.join(a)}" for t, a, _ in FOREIGN])
def test_an_option_of_another_task_says_whose_it_is(task, argv, names, run):
    refused(run, task, argv, names)


# --- --label-names ----------------------------------------------------------------------------------------------

LABEL_NAMES = [
    pytest.param("0=negative,,1=positive", 2, ("--label-names", "LABEL=NAME", "''"), id="empty-pair"),
    pytest.param("=positive", 2, ("--label-names", "'=positive'"), id="no-label"),
    pytest.param("0=", 2, ("--label-names", "'0='"), id="no-name"),
    pytest.param("negative", 2, ("--label-names", "'negative'"), id="no-equals-sign"),
    pytest.param("", 2, ("--label-names", "LABEL=NAME"), id="empty"),
    pytest.param(",", 2, ("--label-names", "LABEL=NAME"), id="only-a-comma"),
    pytest.param("0=negative", 1, ("train.tsv", "'1'", "--label-names"), id="a-label-without-a-name"),
    pytest.param("0=bad,1=good,1=fine", 2, ("--label-names", "'1'", "twice"), id="a-label-named-twice"),
    pytest.param("0=same,1=same", 2, ("--label-names", "'same'"), id="two-labels-one-name"),
]


@pytest.mark.parametrize("value,code,names", LABEL_NAMES)
def test_malformed_label_names(value, code, names, run):
    refused(run, "classify", ("--label-names", value), names, code=code)


# --- --embeddings -----------------------------------------------------------------------------------------------

EMBEDDINGS = [
    pytest.param(None, (), ("vectors.txt", "no such file"), id="missing"),
    pytest.param("dir", (), ("vectors.txt", "is a directory"), id="directory"),
    pytest.param("", (), ("vectors.txt", "no word vectors"), id="empty"),
    pytest.param("love\n", (), ("vectors.txt:1", "no values after the word"), id="a-word-without-values"),
    pytest.param("love 1 2\nhate x 3\n", (), ("vectors.txt:2", "'x'", "not a number"), id="not-a-number"),
    pytest.param("love 1 2\nhate 3\n", (), ("vectors.txt:2", "expected 2 values"), id="ragged"),
    pytest.param("love 1 inf\n", (), ("vectors.txt:1", "non-finite", "'love'"), id="infinite-value"),
    pytest.param(b"\x00\x01\x02\xff\xfe binary", (), ("vectors.txt:1", "binary word2vec"), id="binary"),
    pytest.param("3 0\nlove\n", (), ("vectors.txt:1", "dimension 0"), id="header-dimension-0"),
    pytest.param(gzip.compress(b"love 1 2\n" * 1000)[:-10], (), ("vectors.txt", "gzip"), id="truncated-gzip"),
    pytest.param("love 1 2\nhate 3 4\n", ("--embedding-dim", "5"), ("vectors.txt", "--embedding-dim"),
                 id="dimension-differs-from-embedding-dim"),
]


@pytest.mark.parametrize("content,argv,names", EMBEDDINGS)
def test_a_bad_embeddings_file_is_named(content, argv, names, run):
    if content == "dir":
        (run / "vectors.txt").mkdir()
    elif content is not None:
        (run / "vectors.txt").write_bytes(content.encode() if isinstance(content, str) else content)
    (run / "train.tsv").write_text(ROWS)  # no --embedding-dim (unless a case gives it): read from the file
    before = Snapshot(run)
    result = run_cli_captured("train", "--train", "train.tsv", *TINY, "--embeddings", "vectors.txt", *argv,
                              "--out", "model", cwd=run)
    assert_clean_error(result, code=1, names=names)
    before.assert_unchanged()


def test_freeze_embeddings_needs_embeddings(run):
    refused(run, "classify", ("--freeze-embeddings",), ("--freeze-embeddings", "--embeddings"))


# --- --out ------------------------------------------------------------------------------------------------------

OUT_TASKS = ["classify", "forecast", "lm", "translate"]


@pytest.mark.parametrize("task", OUT_TASKS)
def test_out_that_is_a_regular_file_fails_before_training(task, run):
    (run / "model").write_text("precious\n")
    refused(run, task, (), ("model", "exists and is not a directory"), code=1)


@pytest.mark.parametrize("task", OUT_TASKS)
def test_out_that_is_a_folder_of_other_files_fails_before_training(task, run):
    (run / "model").mkdir()
    (run / "model" / "notes.txt").write_text("mine\n")
    refused(run, task, (), ("model", "not a checkpoint"), code=1)


def test_out_that_holds_a_foreign_config_json_is_refused(run):
    (run / "model").mkdir()
    (run / "model" / "config.json").write_text('{"name": "someone else\'s"}')
    refused(run, "classify", (), ("model", "config.json", "not an unrolled checkpoint"), code=1)


def test_out_that_is_the_training_file_is_refused(run):
    (run / "train.tsv").write_text(ROWS)
    before = Snapshot(run)
    result = run_cli_captured("train", "--train", "train.tsv", *TINY, "--embedding-dim", "4", "--out", "train.tsv",
                              cwd=run)
    assert_clean_error(result, code=1, names=("train.tsv", "not a directory"))
    before.assert_unchanged()


def test_out_under_a_regular_file_is_refused(run):
    (run / "notes").write_text("a file\n")
    (run / "train.tsv").write_text(ROWS)
    before = Snapshot(run)
    result = run_cli_captured("train", "--train", "train.tsv", *TINY, "--embedding-dim", "4", "--out", "notes/model",
                              cwd=run)
    assert_clean_error(result, code=1, names=("--out", "notes", "not a directory"))
    before.assert_unchanged()


def test_out_that_is_a_broken_symbolic_link_is_refused(run, tmp_path):
    link = tmp_path / "special" / "model"
    os.symlink(tmp_path / "special" / "nowhere", link)
    (run / "train.tsv").write_text(ROWS)
    before = Snapshot(run)
    result = run_cli_captured("train", "--train", "train.tsv", *TINY, "--embedding-dim", "4", "--out", link, cwd=run)
    assert_clean_error(result, code=1, names=(str(link), "broken symbolic link"))
    assert os.path.islink(link) and not os.path.exists(link)
    before.assert_unchanged()


def test_out_empty_is_refused_naming_the_option(run):
    (run / "train.tsv").write_text(ROWS)
    before = Snapshot(run)
    result = run_cli_captured("train", "--train", "train.tsv", *TINY, "--embedding-dim", "4", "--out", "", cwd=run)
    assert_clean_error(result, code=2, names=("--out",))
    before.assert_unchanged()


def test_out_whose_parent_is_not_writable_fails_before_training(run):
    if os.geteuid() == 0:
        pytest.skip("root writes into every folder: no permission to take away")
    locked = run / "locked"
    locked.mkdir()
    (run / "train.tsv").write_text(ROWS)
    locked.chmod(0o555)
    try:
        before = Snapshot(run)
        result = run_cli_captured("train", "--train", "train.tsv", *TINY, "--embedding-dim", "4", "--out",
                                  "locked/model", cwd=run)
        assert_clean_error(result, code=1, names=("locked",))
        before.assert_unchanged()
    finally:
        locked.chmod(0o755)
