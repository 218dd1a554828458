"""Inference on bad input: every option of predict, explain, generate, forecast, translate and transcribe
given values it cannot take (empty or huge texts, invalid UTF-8, out-of-range sampling options, missing
files, models of the wrong kind) fails with one line naming the option, the file or the line; predict
streams standard input; generation never emits special tokens; and training refuses, before allocating
anything, a model that cannot fit in memory (docs/reliability.md)."""

from __future__ import annotations

import io
import select
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.robustness.conftest import (
    Result,
    Snapshot,
    assert_clean_error,
    copy_checkpoint,
    edit_tensors,
    run_cli,
    run_cli_captured,
    run_process,
    train_tiny_models,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    return train_tiny_models(tmp_path_factory.mktemp("tiny"))


def assert_usage_error(result: Result, *names: str) -> str:
    """Exit 2 from argparse or a UsageError: the last stderr line is "unrolled <command>: error: …" naming
    ``names``; no traceback."""
    assert result.code == 2, f"exit {result.code}; stderr: {result.err!r}"
    assert "Traceback" not in result.err, result.err
    line = result.error_lines[-1]
    assert line.startswith("unrolled") and ": error: " in line, line
    for name in names:
        assert name in line, f"{name!r} not named in {line!r}"
    return line


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


MEGABYTE_TEXT = "good fun " * 116_000  # 1 MB, 232,000 tokens


# --- predict ------------------------------------------------------------------------------------------------

PREDICT_ERRORS = [
    ("empty-argument", ["good", ""], "", ("text 2", "empty text")),
    ("whitespace-argument", ["   "], "", ("text 1", "empty text")),
    ("no-input", [], "", ("no texts",)),
]


@pytest.mark.parametrize("argv,stdin,names", [p[1:] for p in PREDICT_ERRORS], ids=[p[0] for p in PREDICT_ERRORS])
def test_predict_refuses_what_it_cannot_read(argv, stdin, names, tiny, workdir):
    before = Snapshot(workdir)
    assert_clean_error(run_cli("predict", "--model", tiny["classifier"], *argv, stdin=stdin, cwd=workdir),
                       names=names)
    before.assert_unchanged()


def test_predict_skips_and_reports_blank_stdin_lines(tiny):
    result = run_cli("predict", "--model", tiny["classifier"], stdin="good fun\n\n   \nbad dull\r\n")
    assert result.code == 0, result.err
    assert result.err.splitlines() == ["stdin line 2: empty text, skipped", "stdin line 3: empty text, skipped"]
    assert [line.split("\t")[-1] for line in result.out.splitlines()] == ["good fun", "bad dull"]


def test_predict_with_only_blank_lines_reports_them_then_fails(tiny):
    result = run_cli("predict", "--model", tiny["classifier"], stdin=" \n\t\n")
    assert result.code == 1 and "Traceback" not in result.err
    assert result.error_lines == ["stdin line 1: empty text, skipped", "stdin line 2: empty text, skipped",
                                  "unrolled: error: no texts: give them as arguments or one per line on standard "
                                  "input (2 lines skipped)"]


def test_predict_reads_a_one_megabyte_line(tiny):
    result = run_cli("predict", "--model", tiny["classifier"], stdin=MEGABYTE_TEXT + "\n")
    assert result.code == 0 and result.err == "" and len(result.out.splitlines()) == 1


@pytest.mark.parametrize("model", ["nowhere", "sst2-nonexistent"])
def test_predict_names_a_model_that_does_not_exist(model, workdir):
    assert_clean_error(run_cli("predict", "--model", workdir / model, "good"), names=(model,))


def test_predict_skips_a_stdin_line_that_is_not_utf8(tiny):
    result = run_process("predict", "--model", tiny["classifier"], stdin=b"good fun\n\xff\xfebad\nbad dull\n",
                         timeout=60)
    assert result.code == 0, result.err
    assert result.err.splitlines() == ["stdin line 2: not UTF-8 text (byte 1), skipped"]
    assert len(result.out.splitlines()) == 2


def test_predict_streams_stdin_answering_each_line_before_the_next(tiny):
    process = subprocess.Popen([sys.executable, "-m", "unrolled", "predict", "--model", str(tiny["classifier"])],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        process.stdin.write(b"good fun\n")
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "no output while standard input stays open: predict read ahead"
        assert process.stdout.readline().endswith(b"\tgood fun\n")
        process.stdin.write(b"\n")
        process.stdin.flush()
        ready, _, _ = select.select([process.stderr], [], [], 60)
        assert ready and process.stderr.readline() == b"stdin line 2: empty text, skipped\n"
        process.stdin.write(b"bad dull\n")
        process.stdin.close()
        assert process.stdout.read().endswith(b"\tbad dull\n")
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
        process.wait()


# --- explain ------------------------------------------------------------------------------------------------

EXPLAIN_ERRORS = [  # (id, argv after --model, file contents by name, names)
    ("missing-file", ["--file", "{w}/nope.txt"], {}, ("nope.txt", "no such file")),
    ("empty-file", ["--file", "{w}/empty.txt"], {"empty.txt": ""}, ("empty.txt", "empty")),
    ("binary-file", ["--file", "{w}/bin.txt"], {"bin.txt": b"good\x00fun\n"}, ("bin.txt:1", "NUL")),
    ("not-utf8-file", ["--file", "{w}/latin1.txt"], {"latin1.txt": b"caf\xe9\n"}, ("latin1.txt", "UTF-8")),
    ("megabyte-file", ["--file", "{w}/big.txt"], {"big.txt": MEGABYTE_TEXT}, ("big.txt", "20,000")),
    ("whitespace-file", ["--file", "{w}/blank.txt"], {"blank.txt": " \n\n"}, ("blank.txt", "empty")),
    ("whitespace-text", ["   "], {}, ("text", "empty")),
    ("unknown-label", ["good", "--label", "neutral"], {}, ("--label", "neutral")),
    ("plot-folder-missing", ["good", "--plot", "{w}/no/such/trace.png"], {}, ("--plot", "does not exist")),
    ("plot-format", ["good", "--plot", "{w}/trace.xyz"], {}, ("--plot", ".xyz")),
    ("plot-is-a-folder", ["good", "--plot", "{w}"], {}, ("--plot", "folder")),
]


@pytest.mark.parametrize("argv,files,names", [e[1:] for e in EXPLAIN_ERRORS], ids=[e[0] for e in EXPLAIN_ERRORS])
def test_explain_refuses_bad_text_and_options(argv, files, names, tiny, workdir):
    for name, content in files.items():
        write(workdir / name, content)
    before = Snapshot(workdir)
    argv = [a.replace("{w}", str(workdir)) for a in argv]
    assert_clean_error(run_cli("explain", "--model", tiny["classifier"], *argv), names=names)
    before.assert_unchanged()


EXPLAIN_USAGE = [
    ("no-text", "classifier", [], ("TEXT", "--file")),
    ("text-and-file", "classifier", ["good", "--file", "x.txt"], ("not both",)),
    ("precision-13", "classifier", ["good", "--precision", "13"], ("--precision",)),
    ("beam-0", "translator", ["eins", "--beam", "0"], ("--beam",)),
    ("file-for-speech", "speech_recognizer", ["--file", "x.txt"], ("--file", "WAV")),
    ("label-for-lm", "language_model", ["abc", "--label", "x"], ("--label",)),
]


@pytest.mark.parametrize("kind,argv,names", [e[1:] for e in EXPLAIN_USAGE], ids=[e[0] for e in EXPLAIN_USAGE])
def test_explain_usage_errors_name_the_option(kind, argv, names, tiny):
    assert_usage_error(run_cli_captured("explain", "--model", tiny[kind], *argv), *names)


def test_explain_reads_a_long_text_from_a_file_and_from_stdin(tiny, workdir):
    text = write(workdir / "review.txt", "good fun film " * 300 + "\n")  # 900 tokens: too long for TEXT in a shell
    from_file = run_cli("explain", "--model", tiny["classifier"], "--file", text, "--json")
    assert from_file.code == 0, from_file.err
    from_stdin = run_cli("explain", "--model", tiny["classifier"], "--file", "-", "--json", stdin=text.read_text())
    assert from_stdin.code == 0 and from_stdin.out == from_file.out
    assert len(__import__("json").loads(from_file.out)["tokens"]) == 900


@pytest.mark.parametrize("stdin,names", [("", ("standard input", "empty")), (" \n\t\n", ("standard input", "empty")),
                                         ("a\x00b", ("standard input", "NUL")),
                                         ("a" * (16 * 2**20 + 1), ("standard input", "16 MiB"))],
                         ids=["empty", "whitespace", "nul", "over-16-mib"])
def test_explain_file_dash_refuses_bad_standard_input(stdin, names, tiny):
    assert_clean_error(run_cli("explain", "--model", tiny["classifier"], "--file", "-", stdin=stdin), names=names)


def test_explain_names_standard_input_that_is_not_utf8(tiny):
    result = run_process("explain", "--model", tiny["classifier"], "--file", "-", stdin=b"\xffgood\n", timeout=60)
    assert_clean_error(result, names=("standard input", "UTF-8"))


# --- generate -----------------------------------------------------------------------------------------------

GENERATE_ERRORS = [
    ("temperature-nan", ["--temperature", "nan"], ("--temperature", "nan")),
    ("temperature-inf", ["--temperature", "inf"], ("--temperature",)),
    ("temperature-negative", ["--temperature", "-1"], ("--temperature",)),
    ("top-p-1.5", ["--top-p", "1.5"], ("--top-p", "1.5")),
    ("length-negative", ["--length", "-1"], ("--length",)),
    ("length-huge", ["--length", "1000000000"], ("--length", "1,000,000")),
    ("prompt-outside-vocabulary", ["--prompt", "abz"], ("--prompt", "'z'", "char 3")),
    ("prompt-nul", ["--prompt", "a\x00b"], ("--prompt", "NUL")),
]


@pytest.mark.parametrize("argv,names", [g[1:] for g in GENERATE_ERRORS], ids=[g[0] for g in GENERATE_ERRORS])
def test_generate_names_the_bad_option(argv, names, tiny):
    assert_clean_error(run_cli("generate", "--model", tiny["language_model"], *argv), names=names)


GENERATE_USAGE = [
    ("top-k-0", ["--top-k", "0"], ("--top-k",)),
    ("top-p-0", ["--top-p", "0"], ("--top-p",)),
    ("length-text", ["--length", "ten"], ("--length",)),
    ("seed-negative", ["--seed", "-1"], ("--seed",)),
    ("no-model", [], ("--model",)),
]


@pytest.mark.parametrize("argv,names", [g[1:] for g in GENERATE_USAGE], ids=[g[0] for g in GENERATE_USAGE])
def test_generate_usage_errors_name_the_option(argv, names, tiny):
    model = [] if argv == [] else ["--model", str(tiny["language_model"])]
    assert_usage_error(run_cli_captured("generate", *model, *argv), *names)


@pytest.fixture(scope="module")
def lm_that_prefers_specials(tiny, tmp_path_factory) -> Path:
    """The tiny language model with its head biased towards <pad> (id 0) and <unk> (id 1) above all."""
    model = copy_checkpoint(tiny["language_model"], tmp_path_factory.mktemp("specials") / "lm")

    def bias(tensors):
        tensors["head.bias"][:2] = 50.0

    edit_tensors(model / "model.safetensors", bias)
    return model


@pytest.mark.parametrize("argv", [["--temperature", "0"], ["--temperature", "1"], ["--temperature", "5"],
                                  ["--top-k", "1"], ["--top-p", "0.5"], ["--prompt", ""]],
                         ids=["greedy", "sampled", "hot", "top-k", "top-p", "no-prompt"])
def test_generate_never_emits_special_tokens(argv, lm_that_prefers_specials):
    result = run_cli("generate", "--model", lm_that_prefers_specials, "--prompt", "ab", "--length", "40", *argv)
    assert result.code == 0, result.err
    assert "<pad>" not in result.out and "<unk>" not in result.out
    assert len(result.out.rstrip("\n")) == 40 + (2 if "" not in argv else 0)


# --- forecast -----------------------------------------------------------------------------------------------

FORECAST_ERRORS = [
    ("steps-huge", ["--steps", "1000000"], ("--steps", "100,000")),
    ("csv-missing", ["--csv", "{w}/nope.csv"], ("nope.csv",)),
    ("plot-folder-missing", ["--plot", "{w}/no/such/forecast.png"], ("--plot",)),
    ("plot-format", ["--plot", "{w}/forecast.doc"], ("--plot", ".doc")),
]


@pytest.mark.parametrize("argv,names", [f[1:] for f in FORECAST_ERRORS], ids=[f[0] for f in FORECAST_ERRORS])
def test_forecast_names_the_bad_option(argv, names, tiny, workdir):
    before = Snapshot(workdir)
    argv = [a.replace("{w}", str(workdir)) for a in argv]
    csv = [] if "--csv" in argv else ["--csv", str(tiny["csv"])]
    assert_clean_error(run_cli("forecast", "--model", tiny["forecaster"], *csv, *argv), names=names)
    before.assert_unchanged()


@pytest.mark.parametrize("steps", ["0", "-3", "ten"])
def test_forecast_steps_must_be_a_positive_integer(steps, tiny):
    result = run_cli_captured("forecast", "--model", tiny["forecaster"], "--csv", tiny["csv"], "--steps", steps)
    assert_usage_error(result, "--steps")


def test_forecast_far_ahead_reads_only_the_last_window():
    """Rolling a forecast out 100,000 steps keeps the history to one window, so it takes time in proportion
    to the steps (it once grew the whole history at every step: quadratic)."""
    from unrolled.models.forecaster import RNNForecaster

    model = RNNForecaster(window=4, horizon=2, hidden_size=4, epochs=1).fit(np.sin(np.arange(60) / 3))
    long = model.forecast(np.sin(np.arange(60) / 3), 20_000)
    assert long.shape == (20_000,) and np.isfinite(long).all()
    assert np.allclose(long[:10], model.forecast(np.sin(np.arange(60) / 3), 10))


# --- translate ----------------------------------------------------------------------------------------------

TRANSLATE_ERRORS = [
    ("empty-text", ["eins", ""], "", ("TEXT 2", "empty")),
    ("empty-stdin-line", [], "eins rot .\n\n", ("line 2 of standard input", "empty")),
    ("megabyte-sentence", [], MEGABYTE_TEXT + "\n", ("line 1 of standard input", "1,000")),
    ("megabyte-text", [MEGABYTE_TEXT[:200_000]], "", ("TEXT 1", "1,000")),
]


@pytest.mark.parametrize("argv,stdin,names", [t[1:] for t in TRANSLATE_ERRORS], ids=[t[0] for t in TRANSLATE_ERRORS])
def test_translate_names_the_text_it_cannot_translate(argv, stdin, names, tiny):
    assert_clean_error(run_cli("translate", "--model", tiny["translator"], *argv, stdin=stdin), names=names)


@pytest.mark.parametrize("argv", [["--beam", "0"], ["--max-len-a", "nan"], ["--alpha", "-1"], ["--max-len-b", "x"]],
                         ids=["beam-0", "max-len-a-nan", "alpha-negative", "max-len-b-text"])
def test_translate_usage_errors_name_the_option(argv, tiny):
    assert_usage_error(run_cli_captured("translate", "--model", tiny["translator"], "eins", *argv), argv[0])


def test_translate_never_emits_pad_or_bos(tiny, workdir):
    model = copy_checkpoint(tiny["translator"], workdir / "model")

    def bias(tensors):
        tensors["decoder.out.bias"][[0, 2]] = 50.0  # <pad> and <s> above everything

    edit_tensors(model / "model.safetensors", bias)
    for beam in ("1", "3"):
        result = run_cli("translate", "--model", model, "eins rot .", "--beam", beam, "--max-len-a", "100")
        assert result.code == 0, result.err
        assert "<pad>" not in result.out and "<s>" not in result.out


def test_translate_output_length_is_bounded(tiny):
    """--max-len-a 1e300 would mean no limit: decoding stops at MAX_OUTPUT_TOKENS."""
    from unrolled.models.decoding import MAX_OUTPUT_TOKENS, max_lengths

    assert max_lengths(np.array([3, 1000]), 1e300, 5.0).tolist() == [MAX_OUTPUT_TOKENS, MAX_OUTPUT_TOKENS]
    result = run_cli("translate", "--model", tiny["translator"], "eins", "--max-len-a", "1e300", "--beam", "1")
    assert result.code == 0, result.err


# --- transcribe ---------------------------------------------------------------------------------------------

TRANSCRIBE_ERRORS = [
    ("missing-wav", "{w}/nope.wav", {}, ("nope.wav",)),
    ("text-file", "{w}/notes.wav", {"notes.wav": "not audio\n"}, ("notes.wav", "WAV")),
    ("empty-file", "{w}/empty.wav", {"empty.wav": b""}, ("empty.wav",)),
    ("folder", "{w}", {}, ("folder",)),
]


@pytest.mark.parametrize("path,files,names", [t[1:] for t in TRANSCRIBE_ERRORS], ids=[t[0] for t in TRANSCRIBE_ERRORS])
def test_transcribe_names_the_file_it_cannot_read(path, files, names, tiny, workdir):
    for name, content in files.items():
        write(workdir / name, content)
    before = Snapshot(workdir)
    assert_clean_error(run_cli("transcribe", "--model", tiny["speech_recognizer"], path.replace("{w}", str(workdir))),
                       names=names)
    before.assert_unchanged()


def test_transcribe_beam_must_be_positive(tiny):
    result = run_cli_captured("transcribe", "--model", tiny["speech_recognizer"], tiny["wav"], "--beam", "0")
    assert_usage_error(result, "--beam")


# --- bounded resources: training memory, long texts ---------------------------------------------------------

MEMORY_CASES = [  # (id, train argv, names in the error)
    ("classifier-hidden", ["--train", "{tsv}", "--hidden-size", "512"], ("--hidden-size 512", "lower --hidden-size")),
    ("classifier-embedding", ["--train", "{tsv}", "--embedding-dim", "8192"],
     ("--embedding-dim 8192", "lower --embedding-dim")),
    ("classifier-vocabulary", ["--train", "{wide}", "--embedding-dim", "64"], ("vocabulary of 20,002", "--max-vocab")),
    ("classifier-layers", ["--train", "{tsv}", "--num-layers", "20000"], ("--num-layers 20000", "lower --num-layers")),
    ("lm-hidden", ["--task", "lm", "--text", "{text}", "--hidden-size", "512", "--batch-size", "2"],
     ("--hidden-size 512", "lower --hidden-size")),
    ("lm-bptt", ["--task", "lm", "--text", "{text}", "--bptt", "1000000", "--batch-size", "2"],
     ("--bptt 1000000", "lower --bptt")),
    ("forecast-hidden", ["--task", "forecast", "--csv", "{csv}", "--column", "y", "--window", "4", "--horizon", "2",
                         "--hidden-size", "512"], ("--hidden-size 512", "lower --hidden-size")),
    ("translate-hidden", ["--task", "translate", "--source", "{source}", "--target", "{target}", "--min-freq", "1",
                          "--hidden-size", "512"], ("--hidden-size 512", "lower --hidden-size")),
    ("speech-hidden", ["--task", "speech", "--data", "{recordings}", "--n-mels", "8", "--n-mfcc", "4",
                       "--validation-fraction", "0", "--hidden-size", "512"],
     ("--hidden-size 512", "lower --hidden-size")),
]


@pytest.fixture(scope="module")
def wide_tsv(tmp_path_factory) -> Path:
    """200 texts of 100 distinct words each: a vocabulary of 20,002 tokens."""
    rows = [" ".join(f"w{i}" for i in range(start, start + 100)) for start in range(0, 20_000, 100)]
    path = tmp_path_factory.mktemp("wide") / "wide.tsv"
    path.write_text("sentence\tlabel\n" + "".join(f"{row}\t{i % 2}\n" for i, row in enumerate(rows)))
    return path


@pytest.mark.parametrize("argv,names", [m[1:] for m in MEMORY_CASES], ids=[m[0] for m in MEMORY_CASES])
def test_training_that_cannot_fit_in_memory_is_refused_before_it_starts(argv, names, tiny, wide_tsv, workdir,
                                                                        monkeypatch):
    monkeypatch.setenv("UNROLLED_MEMORY_LIMIT", str(2_000_000))
    inputs = {**{k: str(v) for k, v in tiny.items()}, "wide": str(wide_tsv)}
    argv = [a.format(**inputs) if a.startswith("{") else a for a in argv]
    before = Snapshot(workdir)
    line = assert_clean_error(run_cli("train", *argv, "--epochs", "1", "--quiet", "--out", workdir / "m"),
                              names=(*names, "training needs about", "available"))
    assert "1.9 MiB available" in line
    before.assert_unchanged()  # no --out directory, nothing half-written


@pytest.mark.parametrize("limit", ["abc", "0", "-5"])
def test_a_bad_memory_limit_is_named(limit, tiny, workdir, monkeypatch):
    monkeypatch.setenv("UNROLLED_MEMORY_LIMIT", limit)
    assert_clean_error(run_cli("train", "--train", tiny["tsv"], "--epochs", "1", "--out", workdir / "m"),
                       names=("UNROLLED_MEMORY_LIMIT", limit))


def test_a_huge_hidden_size_fails_at_once_against_the_real_memory(monkeypatch):
    from unrolled.memory import available_bytes
    from unrolled.models.classifier import RNNClassifier

    monkeypatch.delenv("UNROLLED_MEMORY_LIMIT", raising=False)
    assert available_bytes() is None or available_bytes() > 0
    with pytest.raises(ValueError, match=r"^hidden_size 200000: training needs about [\d.]+ TiB .*lower hidden_size"):
        RNNClassifier(hidden_size=200_000, embedding_dim=8).fit(["good fun", "bad dull"], [1, 0])


def test_the_estimate_counts_parameters_optimizer_state_and_activations():
    from unrolled.memory import training_bytes
    from unrolled.models.classifier_net import ClassifierNetConfig

    config = ClassifierNetConfig(vocab_size=100, embedding_dim=8, hidden_size=16, num_classes=2, cell="gru")
    parameters = sum(int(np.prod(shape)) for shape in config.param_shapes().values())
    assert training_bytes(config, batch_size=1, steps=1) > parameters * 5 * 4  # weights, grads, Adam, best
    doubled = training_bytes(config, batch_size=64, steps=200) - training_bytes(config, batch_size=32, steps=200)
    assert doubled == training_bytes(config, batch_size=32, steps=200) - parameters * 5 * 4  # linear in the batch


LONG = " ".join(f"w{i % 50}" for i in range(10_001))


def test_a_training_text_over_ten_thousand_tokens_is_warned_about():
    from unrolled.models.classifier import RNNClassifier

    with pytest.warns(RuntimeWarning, match=r"X\[1\]: 10,001 tokens.*set max_len"):
        RNNClassifier(hidden_size=4, embedding_dim=4, epochs=1).fit(["good fun", LONG], [1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RNNClassifier(hidden_size=4, embedding_dim=4, epochs=1, max_len=100).fit(["good fun", LONG], [1, 0])


def test_the_cli_shows_the_long_text_warning_as_one_line(workdir):
    data = write(workdir / "long.tsv", f"sentence\tlabel\ngood fun\t1\n{LONG}\t0\n")
    result = run_process("train", "--train", data, "--epochs", "1", "--hidden-size", "4", "--embedding-dim", "4",
                         "--quiet", "--out", workdir / "m", timeout=120)
    assert result.code == 0, result.err
    (line,) = result.error_lines
    assert line.startswith("unrolled: warning: X[1]: 10,001 tokens") and "max_len" in line


def test_stdin_groups_answer_a_line_as_soon_as_it_is_the_last_one_waiting():
    """In-memory streams are read in groups of at most PREDICT_GROUP lines, lazily."""
    from unrolled.cli.classify import PREDICT_GROUP, stdin_groups

    lines = io.StringIO("".join(f"text {i}\n" for i in range(PREDICT_GROUP + 5)))
    groups = stdin_groups(lines)
    first = next(groups)
    assert len(first) == PREDICT_GROUP and first[0] == ("stdin line 1", "text 0", None)
    assert lines.tell() < len(lines.getvalue())  # the rest is not read yet
    assert [len(g) for g in groups] == [5]
