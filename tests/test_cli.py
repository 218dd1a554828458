"""The command line, called in-process: exit codes, text and JSON output."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from unrolled.cli import COMMANDS, main


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_demo_trains_and_predicts_the_seed_sentence():
    code, text = run("demo", "--epochs", "40", "i love this", "i hate this")
    assert code == 0
    lines = text.splitlines()
    first_loss = float(lines[0].split("loss")[1].split()[0])
    last_loss = float(lines[-3].split("loss")[1].split()[0])
    assert last_loss < first_loss / 10
    assert lines[-2].startswith("'i love this' -> positive")
    assert lines[-1].startswith("'i hate this' -> negative")


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_demo_json_has_history_and_predictions(cell):
    code, text = run("demo", "--cell", cell, "--epochs", "5", "--json", "great film")
    assert code == 0
    data = json.loads(text)
    assert data["cell"] == cell
    assert [h["epoch"] for h in data["history"]] == [1, 2, 3, 4, 5]
    (prediction,) = data["predictions"]
    assert prediction["text"] == "great film"
    assert prediction["label"] in ("negative", "positive")
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)


def test_demo_is_deterministic_under_a_seed():
    assert run("demo", "--epochs", "5", "--json", "--seed", "3") == run("demo", "--epochs", "5", "--json", "--seed", "3")
    assert run("demo", "--epochs", "5", "--json", "--seed", "3") != run("demo", "--epochs", "5", "--json", "--seed", "4")


@pytest.mark.parametrize("argv", [["demo", "--epochs", "0"], ["demo", "--cell", "transformer"], ["frobnicate"], []])
def test_usage_errors_exit_2(argv, capsys):
    code, _ = run(*argv)
    assert code == 2


def test_version_and_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "unrolled", "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.startswith("unrolled ")


# --- train / evaluate / predict -------------------------------------------------------------------------

POS = ["i love this", "great movie", "what a joy", "so good", "a wonderful film", "truly great"]
NEG = ["i hate this", "awful movie", "what a bore", "so bad", "a dreadful film", "truly awful"]
FAST = ["--hidden", "12", "--embedding-dim", "8", "--batch-size", "4", "--lr", "0.02", "--epochs", "25"]


def write_tsv(path, rows, header="sentence\tlabel"):
    path.write_text(header + "\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    return path


@pytest.fixture
def data(tmp_path):
    rows = [(t, 1) for t in POS] + [(t, 0) for t in NEG]
    return write_tsv(tmp_path / "train.tsv", rows), write_tsv(tmp_path / "dev.tsv", rows)


def run_full(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def test_train_evaluate_predict_end_to_end(tmp_path, data):
    train, dev = data
    out_dir = tmp_path / "model"
    code, out, err = run_full("train", "--train", str(train), "--dev", str(dev), "--out", str(out_dir),
                              "--label-names", "0=negative,1=positive", "--patience", "30", *FAST)
    assert code == 0, err
    assert "saved" in out and "dev accuracy 1.0000" in out
    assert sorted(p.name for p in out_dir.iterdir()) == ["config.json", "model.safetensors", "vocab.json"]
    config = json.loads((out_dir / "config.json").read_text())
    assert config["kind"] == "classifier" and config["metrics"]["dev_accuracy"] == 1.0
    assert len(config["data"]["train"]["sha256"]) == 64

    code, out, err = run_full("evaluate", "--model", str(out_dir), str(dev))
    assert code == 0, err
    assert "accuracy 1.0000" in out and "confusion matrix" in out and "positive" in out

    code, out, err = run_full("evaluate", "--model", str(out_dir), str(dev), "--json")
    report = json.loads(out)
    assert report["accuracy"] == 1.0 and report["n"] == 12
    assert set(report["per_class"]) == {"negative", "positive"}
    assert report["confusion_matrix"]["rows_true_columns_predicted"] == [[6, 0], [0, 6]]

    code, out, _ = run_full("predict", "--model", str(out_dir), "i love this", "so bad")
    assert code == 0
    first, second = out.splitlines()
    assert first.startswith("positive\t") and first.endswith("\ti love this")
    assert second.startswith("negative\t")

    code, out, _ = run_full("predict", "--model", str(out_dir), "--json", stdin="what a joy\ntruly awful\n")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["label"] for r in rows] == ["positive", "negative"]
    assert [r["text"] for r in rows] == ["what a joy", "truly awful"]
    assert all(sum(r["probabilities"].values()) == pytest.approx(1.0) for r in rows)


def test_train_json_summary(tmp_path, data):
    train, _ = data
    code, out, _ = run_full("train", "--train", str(train), "--out", str(tmp_path / "m"), "--json", "--epochs", "2")
    assert code == 0
    summary = json.loads(out)
    assert summary["epochs_run"] == 2 and summary["labels"] == ["0", "1"] and "train_accuracy" in summary["metrics"]


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("unrolled: error: ")
    return lines[0]


@pytest.mark.parametrize(
    "content,expected",
    [
        (b"", r"train\.tsv.*empty"),
        (b"text_body\tlabel\nhello\t1\n", r"train\.tsv.*(sentence|text)"),
        (b"sentence\tlabel\ngood\t1\nbad\t0\textra\n", r"train\.tsv:3"),
        (b"sentence\tlabel\ngood\t1\n\t0\n", r"train\.tsv:3.*sentence"),
        (b"sentence\tlabel\ngood\t1\nbad\tpos\n", r"train\.tsv.*mixed labels"),
        (b"sentence\tlabel\ngood\t1\nbad \xff\xfe\t0\n", r"train\.tsv:3.*UTF-8"),
    ],
    ids=["empty-file", "missing-column", "ragged-row", "empty-text", "mixed-label", "non-utf8"],
)
def test_bad_training_file_gives_one_line_and_writes_nothing(tmp_path, content, expected):
    train = tmp_path / "train.tsv"
    train.write_bytes(content)
    out_dir = tmp_path / "model"
    code, _, err = run_full("train", "--train", str(train), "--out", str(out_dir), "--epochs", "1")
    assert code == 1
    assert __import__("re").search(expected, one_error_line(err)), err
    assert not out_dir.exists()


def test_a_directory_given_as_a_file(tmp_path):
    code, _, err = run_full("train", "--train", str(tmp_path), "--out", str(tmp_path / "m"))
    assert code == 1 and "directory" in one_error_line(err)


def test_unknown_label_at_evaluation_names_the_line(tmp_path, data):
    train, _ = data
    run_full("train", "--train", str(train), "--out", str(tmp_path / "m"), "--epochs", "1")
    test = write_tsv(tmp_path / "test.tsv", [("good", 1), ("odd", 7)])
    code, _, err = run_full("evaluate", "--model", str(tmp_path / "m"), str(test))
    assert code == 1 and __import__("re").search(r"test\.tsv:3.*'7'", one_error_line(err)), err


def test_a_one_megabyte_line_trains(tmp_path):
    long_text = " ".join(["good"] * 200_000)  # ~1 MB on one line
    train = write_tsv(tmp_path / "train.tsv", [(long_text, 1), ("bad", 0), ("good", 1), ("awful", 0)])
    assert train.stat().st_size > 1_000_000
    code, _, err = run_full("train", "--train", str(train), "--out", str(tmp_path / "m"), "--epochs", "1",
                            "--max-len", "50", "--hidden", "4", "--embedding-dim", "4")
    assert code == 0, err


def test_skip_bad_rows_reports_count_and_reasons(tmp_path):
    rows = "sentence\tlabel\ngood\t1\nragged\t1\tx\n\t0\nbad\t0\nfine\t1\nawful\t0\n"
    train = tmp_path / "train.tsv"
    train.write_text(rows)
    code, out, err = run_full("train", "--train", str(train), "--out", str(tmp_path / "m"), "--epochs", "1",
                              "--skip-bad-rows")
    assert code == 0, err
    assert "skipped 2 bad row(s)" in err and "line 3:" in err and "line 4:" in err
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["data"]["train"]["rows"] == 4 and config["data"]["train"]["skipped_rows"] == 2


def test_broken_checkpoints_give_one_line(tmp_path, data):
    train, dev = data
    model = tmp_path / "m"
    assert run_full("train", "--train", str(train), "--out", str(model), "--epochs", "1")[0] == 0
    weights = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    code, _, err = run_full("predict", "--model", str(model), "hello")
    assert code == 1 and "model.safetensors" in one_error_line(err)

    (model / "model.safetensors").write_bytes(weights)
    config = json.loads((model / "config.json").read_text())
    config["format_version"] = 99
    (model / "config.json").write_text(json.dumps(config))
    code, _, err = run_full("predict", "--model", str(model), "hello")
    assert code == 1 and "config.json" in one_error_line(err) and "newer" in err

    config["format_version"] = 1
    (model / "config.json").write_text(json.dumps(config))
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(model / "model.safetensors"))
    del tensors["head.bias"]
    save_file(tensors, str(model / "model.safetensors"))
    code, _, err = run_full("evaluate", "--model", str(model), str(dev))
    assert code == 1 and "head.bias" in one_error_line(err)

    code, _, err = run_full("predict", "--model", str(tmp_path / "nowhere"), "hello")
    assert code == 1 and "nowhere" in one_error_line(err)


def test_predict_skips_empty_stdin_lines_and_rejects_empty_texts(tmp_path, data):
    train, _ = data
    run_full("train", "--train", str(train), "--out", str(tmp_path / "m"), "--epochs", "1")
    code, out, err = run_full("predict", "--model", str(tmp_path / "m"), stdin="fine\n\n")
    assert code == 0 and err == "stdin line 2: empty text, skipped\n" and len(out.splitlines()) == 1
    code, _, err = run_full("predict", "--model", str(tmp_path / "m"), "fine", " ")
    assert code == 1 and "text 2: empty text" in one_error_line(err)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        run_full("--debug", "predict", "--model", str(tmp_path / "nowhere"), "hello")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help_with_an_example(command, capsys):
    assert main([command, "--help"]) == 0
    assert "example:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "task,present,absent",
    [
        ("lm", ["--text", "--bptt", "--tie-weights", "--hidden-size", "--num-layers", "--random-state"],
         ["--train", "--bidirectional", "--window", "--pooling", "--csv"]),
        ("forecast", ["--csv", "--window", "--horizon", "--test-size", "--hidden-size"],
         ["--text", "--bidirectional", "--embedding-dim", "--train"]),
        ("classify", ["--train", "--dev", "--pooling", "--bidirectional", "--cased", "--embedding-dim"],
         ["--text", "--window", "--bptt"]),
    ],
)
def test_train_help_shows_only_the_options_of_its_task(task, present, absent, capsys):
    assert main(["train", "--task", task, "--help"]) == 0
    text = capsys.readouterr().out
    options = set(re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", text, flags=re.M))
    assert set(present) <= options and not set(absent) & options, text


def test_train_defaults_and_help_come_from_the_estimators(capsys):
    from unrolled.cli.common import estimator_defaults
    from unrolled.cli.train import train_parser
    from unrolled.models.classifier import RNNClassifier
    from unrolled.models.language_model import RNNLanguageModel

    from unrolled.cli import classify, lm
    from unrolled.cli.common import param_values

    for task, estimator, params in (("classify", RNNClassifier, classify.model_params()),
                                    ("lm", RNNLanguageModel, lm.model_params())):
        parser, _ = train_parser(task)
        args = parser.parse_args(["--out", "m"])
        values = param_values(args, estimator, params)  # the options told apart when not given: resolved
        defaults = estimator_defaults(estimator)
        assert values and all(values[name] == defaults[name] for name in values), task
        for name, default in defaults.items():
            if hasattr(args, name) and getattr(args, name) is not None:
                assert getattr(args, name) == default, (task, name)
    assert main(["train", "--help"]) == 0
    assert "[RNNClassifier(hidden_size=…)]" in capsys.readouterr().out


def test_old_flag_names_still_work(tmp_path, data):
    train, _ = data
    args = ["train", "--train", str(train), "--out", str(tmp_path / "m"), "--epochs", "1", "--embedding-dim", "4"]
    assert run_full(*args, "--hidden", "5", "--layers", "2", "--seed", "3")[0] == 0
    first = json.loads((tmp_path / "m" / "config.json").read_text())["estimator"]
    assert (first["hidden_size"], first["num_layers"], first["random_state"]) == (5, 2, 3)
    assert run_full(*args, "--hidden-size", "5", "--num-layers", "2", "--random-state", "3")[0] == 0
    assert json.loads((tmp_path / "m" / "config.json").read_text())["estimator"] == first


def test_debug_after_the_command_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        run_full("predict", "--debug", "--model", str(tmp_path / "nowhere"), "hello")
    with pytest.raises(ValueError):
        run_full("train", "--task", "lm", "--text", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "m"),
                 "--debug")


# --- walkthrough ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_walkthrough_text_and_json(cell):
    code, out, err = run_full("walkthrough", "--cell", cell, "--precision", "6")
    assert code == 0, err
    for heading in ("Forward", "Loss", "Backward (BPTT)", "Update", "Summary"):
        assert f"\n{heading}\n" in out
    code, out, _ = run_full("walkthrough", "--cell", cell, "--json")
    data = json.loads(out)
    assert data["update"]["loss_after"] < data["update"]["loss_before"] == data["loss"]["value"]


def test_walkthrough_weights_template_round_trip_and_errors(tmp_path):
    template = tmp_path / "w.json"
    code, first, _ = run_full("walkthrough", "--save-weights", str(template), "--json")
    assert code == 0 and template.exists()
    code, again, _ = run_full("walkthrough", "--weights", str(template), "--json")
    assert code == 0
    assert json.loads(again)["loss"] == json.loads(first)["loss"]
    broken = json.loads(template.read_text())
    del broken["weight_hh"]
    template.write_text(json.dumps(broken))
    code, _, err = run_full("walkthrough", "--weights", str(template))
    assert code == 1 and "w.json" in one_error_line(err) and "weight_hh" in err


# --- explain --------------------------------------------------------------------------------------------


def test_explain_text_json_and_plot(tmp_path, data):
    train, _ = data
    model = tmp_path / "m"
    assert run_full("train", "--train", str(train), "--out", str(model), *FAST, "--cell", "lstm")[0] == 0
    code, out, err = run_full("explain", "--model", str(model), "i love this")
    assert code == 0, err
    assert "|dL/dh_t|" in out and "gradient flow" in out and "love" in out
    png = tmp_path / "trace.png"
    code, out, err = run_full("explain", "--model", str(model), "so bad", "--json", "--plot", str(png))
    assert code == 0, err
    trace = json.loads(out)
    assert trace["tokens"] == ["so", "bad"]
    assert png.exists() and png.stat().st_size > 10_000


@pytest.mark.parametrize("text,message", [("   ", "text: empty")])
def test_explain_bad_input(tmp_path, data, text, message):
    train, _ = data
    run_full("train", "--train", str(train), "--out", str(tmp_path / "m"), "--epochs", "1")
    code, _, err = run_full("explain", "--model", str(tmp_path / "m"), text)
    assert code == 1 and message in one_error_line(err)


# --- forecasting ----------------------------------------------------------------------------------------

FORECAST_FAST = ["--window", "12", "--horizon", "6", "--hidden", "8", "--epochs", "15", "--batch-size", "16"]


def write_series(path, values, start_year=2000):
    rows = [f"{start_year + i // 12}-{i % 12 + 1:02d},{v}" for i, v in enumerate(values)]
    path.write_text("Month,Sales\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture
def series_csv(tmp_path):
    t = np.arange(96)
    values = 100 + t + 10 * np.sin(2 * np.pi * t / 12)
    return write_series(tmp_path / "sales.csv", [f"{v:.3f}" for v in values])


def test_forecast_train_evaluate_and_continue(tmp_path, series_csv):
    model = tmp_path / "fc"
    png = tmp_path / "tail.png"
    code, out, err = run_full("train", "--task", "forecast", "--csv", str(series_csv), "--column", "Sales",
                              "--date-column", "Month", "--season", "12", "--test-size", "18", "--plot", str(png),
                              "--out", str(model), *FORECAST_FAST)
    assert code == 0, err
    assert "held-out last 18 values" in out and "seasonal_naive" in out and "rnn" in out
    assert png.exists() and png.stat().st_size > 10_000
    config = json.loads((model / "config.json").read_text())
    assert config["kind"] == "forecaster" and set(config["evaluation"]["metrics"]) >= {"rnn", "naive"}

    code, out, err = run_full("forecast", "--model", str(model), "--csv", str(series_csv), "--steps", "8", "--json")
    assert code == 0, err
    rows = json.loads(out)["forecast"]
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert rows[0]["date"] == "2008-01-01" and rows[-1]["date"] == "2008-08-01"
    code, out, _ = run_full("forecast", "--model", str(model), "--csv", str(series_csv))
    assert code == 0 and len(out.splitlines()) == 6  # the model's horizon


@pytest.mark.parametrize(
    "rows,expected",
    [
        (["2000-01,1", "2000-02,abc", "2000-03,3"], r"sales\.csv:3.*'Sales'.*not a number"),
        (["2000-01,1", "2000-02,", "2000-03,3"], r"sales\.csv:3.*'Sales'"),
        (["2000-02,1", "2000-01,2", "2000-03,3"], r"sales\.csv:3.*(sorted|order)"),
        (["2000-01,1", "2000-01,2", "2000-03,3"], r"sales\.csv:3.*duplicate"),
        ([f"2000-{m:02d},{m}" for m in range(1, 10)], r"--window 12 \+ --horizon 6"),
    ],
    ids=["non-numeric", "missing-value", "unsorted-dates", "duplicate-date", "too-short"],
)
def test_forecast_bad_series_gives_one_line(tmp_path, rows, expected):
    csv = tmp_path / "sales.csv"
    csv.write_text("Month,Sales\n" + "\n".join(rows) + "\n")
    code, _, err = run_full("train", "--task", "forecast", "--csv", str(csv), "--column", "Sales",
                            "--date-column", "Month", "--out", str(tmp_path / "m"), *FORECAST_FAST)
    assert code == 1
    assert __import__("re").search(expected, one_error_line(err)), err
    assert not (tmp_path / "m").exists()


def test_forecast_missing_value_can_be_interpolated(tmp_path, series_csv):
    lines = series_csv.read_text().splitlines()
    lines[5] = lines[5].split(",")[0] + ","
    series_csv.write_text("\n".join(lines) + "\n")
    code, _, err = run_full("train", "--task", "forecast", "--csv", str(series_csv), "--column", "Sales",
                            "--fill", "interpolate", "--out", str(tmp_path / "m"), *FORECAST_FAST)
    assert code == 0, err


def test_forecast_usage_errors_exit_2(tmp_path):
    code, _, err = run_full("train", "--task", "forecast", "--out", str(tmp_path / "m"))
    assert code == 2 and "--csv" in err
    code, _, err = run_full("train", "--out", str(tmp_path / "m"))
    assert code == 2 and "--train" in err


def test_a_forecaster_is_refused_where_a_classifier_is_needed_and_vice_versa(tmp_path, series_csv, data):
    forecaster = tmp_path / "fc"
    assert run_full("train", "--task", "forecast", "--csv", str(series_csv), "--column", "Sales",
                    "--out", str(forecaster), *FORECAST_FAST)[0] == 0
    for argv in (["explain", "--model", str(forecaster), "i love this"],
                 ["predict", "--model", str(forecaster), "i love this"]):
        code, _, err = run_full(*argv)
        assert code == 1 and "classifier" in one_error_line(err) and "forecaster" in err
    classifier = tmp_path / "cls"
    assert run_full("train", "--train", str(data[0]), "--out", str(classifier), "--epochs", "1")[0] == 0
    code, _, err = run_full("forecast", "--model", str(classifier), "--csv", str(series_csv))
    assert code == 1 and "forecaster" in one_error_line(err)


# --- review findings: each a bug once -------------------------------------------------------------------


def test_forecast_with_exogenous_columns_plots_only_the_horizon_and_keeps_the_model(tmp_path, series_csv):
    lines = series_csv.read_text().splitlines()
    rows = [lines[0] + ",Promo"] + [f"{line},{i % 3}" for i, line in enumerate(lines[1:])]
    csv = tmp_path / "exog.csv"
    csv.write_text("\n".join(rows) + "\n")
    png = tmp_path / "p.png"
    code, _, err = run_full("train", "--task", "forecast", "--csv", str(csv), "--column", "Sales", "--date-column",
                            "Month", "--exog", "Promo", "--test-size", "18", "--plot", str(png),
                            "--out", str(tmp_path / "fe"), *FORECAST_FAST)
    assert code == 0, err
    assert png.exists() and (tmp_path / "fe" / "model.safetensors").exists()


@pytest.mark.parametrize(
    "argv,flags",
    [
        (["--train", "x.tsv", "--window", "5", "--log"], "--window, --log"),
        (["--task", "forecast", "--csv", "x.csv", "--column", "y", "--optimizer", "sgd", "--bidirectional"],
         "--bidirectional, --optimizer"),
        (["--task", "forecast", "--csv", "x.csv", "--column", "y", "--season", "12"], "--test-size"),
    ],
)
def test_options_of_the_other_task_are_usage_errors(tmp_path, argv, flags):
    code, _, err = run_full("train", "--out", str(tmp_path / "m"), *argv)
    assert code == 2 and flags in err


def test_series_csv_with_a_byte_order_mark(tmp_path, series_csv):
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + series_csv.read_bytes())
    code, _, err = run_full("train", "--task", "forecast", "--csv", str(bom), "--column", "Sales",
                            "--date-column", "Month", "--out", str(tmp_path / "m"), *FORECAST_FAST)
    assert code == 0, err


def test_a_dev_label_unknown_to_training_names_its_line(tmp_path, data):
    train, _ = data
    dev = write_tsv(tmp_path / "dev3.tsv", [("good", 1), ("odd", 2)])
    code, _, err = run_full("train", "--train", str(train), "--dev", str(dev), "--out", str(tmp_path / "m"))
    assert code == 1 and __import__("re").search(r"dev3\.tsv:3.*'2'", one_error_line(err)), err
    code, _, err = run_full("train", "--train", str(train), "--dev", str(dev), "--out", str(tmp_path / "m"),
                            "--label-names", "0=negative,1=positive,2=other")
    assert code == 1 and __import__("re").search(r"dev3\.tsv:3.*'other'", one_error_line(err)), err


def test_out_that_is_not_a_checkpoint_fails_before_training(tmp_path, data):
    train, _ = data
    busy = tmp_path / "notes"
    busy.mkdir()
    (busy / "readme.txt").write_text("mine")
    code, out, err = run_full("train", "--train", str(train), "--out", str(busy), "--epochs", "1")
    assert code == 1 and "not a checkpoint" in one_error_line(err) and out == ""
    assert (busy / "readme.txt").read_text() == "mine" and len(list(busy.iterdir())) == 1


def test_output_into_a_closed_pipe_ends_quietly():
    # ~130 kB of JSON: more than a pipe buffers, so the writer does meet the closed pipe
    process = subprocess.Popen([sys.executable, "-m", "unrolled", "demo", "--epochs", "1500", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.readline()
    process.stdout.close()  # like `| head -1`
    assert process.wait(timeout=60) == 0
    assert process.stderr.read() == b""


# --- language models ------------------------------------------------------------------------------------


def test_lm_train_and_generate(tmp_path):
    text = tmp_path / "toy.txt"
    text.write_text("abcabcabd " * 300)
    model = tmp_path / "lm"
    code, out, err = run_full("train", "--task", "lm", "--text", str(text), "--hidden", "24", "--embedding-dim", "8",
                              "--bptt", "16", "--batch-size", "8", "--epochs", "3", "--out", str(model))
    assert code == 0, err
    assert "val_loss" in out and "val_bits_per_char" in out
    config = json.loads((model / "config.json").read_text())
    assert config["kind"] == "language_model" and config["metrics"]["val_loss"] < 1.6
    code, out, _ = run_full("generate", "--model", str(model), "--prompt", "abc", "--length", "12", "--temperature", "0")
    assert code == 0 and out.startswith("abc") and len(out.rstrip("\n")) == 15
    first = run_full("generate", "--model", str(model), "--length", "30", "--seed", "5", "--top-p", "0.9")
    assert first == run_full("generate", "--model", str(model), "--length", "30", "--seed", "5", "--top-p", "0.9")


def test_lm_train_goes_on_from_another_language_model(tmp_path):
    """--init-from LMDIR: the model trains on from LMDIR on the new text (its vocabulary, recorded in
    config.json); another network is one line naming the options."""
    for name, text in (("base", "the film was good and the plot was bad . " * 40), ("new", "the plot was good . " * 40)):
        (tmp_path / f"{name}.txt").write_text(text)
    shape = ["--level", "word", "--hidden-size", "8", "--embedding-dim", "6", "--bptt", "8", "--batch-size", "4"]
    code, _, err = run_full("train", "--task", "lm", "--text", str(tmp_path / "base.txt"), *shape, "--out",
                            str(tmp_path / "base"))
    assert code == 0, err
    code, _, err = run_full("train", "--task", "lm", "--text", str(tmp_path / "new.txt"), *shape, "--init-from",
                            str(tmp_path / "base"), "--out", str(tmp_path / "tuned"))
    assert code == 0, err
    tuned = json.loads((tmp_path / "tuned" / "config.json").read_text())
    assert tuned["training"]["pretrained_from"]["path"] == str(tmp_path / "base")
    assert (tmp_path / "tuned" / "vocab.json").read_text() == (tmp_path / "base" / "vocab.json").read_text()
    other = shape[:3] + ["9"] + shape[4:]  # --hidden-size 9
    code, _, err = run_full("train", "--task", "lm", "--text", str(tmp_path / "new.txt"), *other, "--init-from",
                            str(tmp_path / "base"), "--out", str(tmp_path / "other"))
    assert code == 1 and err.count("\n") == 1 and not (tmp_path / "other").exists()
    assert "--init-from: " in err and "--hidden-size 9 (its own: 8)" in err


@pytest.mark.parametrize(
    "content,argv,expected",
    [
        (b"", [], r"empty"),
        (b"ab\x00cd\n" * 50, [], r"toy\.txt:1: contains NUL bytes"),
        (b"abc" * 200, ["--level", "word", "--bptt", "4"], r"too short|tokens"),
    ],
    ids=["empty", "binary", "too-short-for-words"],
)
def test_lm_bad_text_gives_one_line(tmp_path, content, argv, expected):
    text = tmp_path / "toy.txt"
    text.write_bytes(content)
    code, _, err = run_full("train", "--task", "lm", "--text", str(text), "--out", str(tmp_path / "m"), *argv)
    assert code == 1 and __import__("re").search(expected, one_error_line(err)), err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("argv", [["--length", "-1"], ["--length", "2000000"], ["--temperature", "-1"]])
def test_generate_bad_options(tmp_path, argv):
    text = tmp_path / "toy.txt"
    text.write_text("abcabcabd " * 300)
    run_full("train", "--task", "lm", "--text", str(text), "--hidden", "8", "--embedding-dim", "4", "--bptt", "8",
             "--batch-size", "4", "--max-steps", "2", "--out", str(tmp_path / "lm"))
    code, _, err = run_full("generate", "--model", str(tmp_path / "lm"), *argv)
    assert code == 1 and one_error_line(err)


def test_explain_a_language_model(tmp_path):
    text = tmp_path / "toy.txt"
    text.write_text("abcabcabd " * 300)
    model = tmp_path / "lm"
    run_full("train", "--task", "lm", "--text", str(text), "--hidden", "8", "--embedding-dim", "4", "--bptt", "8",
             "--batch-size", "4", "--max-steps", "5", "--out", str(model))
    code, out, err = run_full("explain", "--model", str(model), "abcab")
    assert code == 0, err
    assert "top next-token guesses" in out
    code, out, _ = run_full("explain", "--model", str(model), "abcab", "--json")
    assert [step["token"] for step in json.loads(out)["steps"]] == list("abcab")
    code, _, err = run_full("explain", "--model", str(model), "abcab", "--label", "x")
    assert code == 2 and "--label" in err


def test_train_with_embeddings_takes_the_dimension_from_the_file_and_reports_coverage(tmp_path, data):
    import gzip

    train, _ = data
    rng = np.random.default_rng(3)
    lines = "".join(f"{w} {' '.join(f'{v:.4f}' for v in rng.standard_normal(6))}\n" for w in ("love", "great", "bad"))
    vectors = tmp_path / "vectors.txt.gz"
    vectors.write_bytes(gzip.compress(lines.encode()))
    argv = ["train", "--train", str(train), "--out", str(tmp_path / "m"), "--embeddings", str(vectors),
            "--freeze-embeddings", "--word-dropout", "0.1", "--hidden", "8", "--epochs", "2"]
    code, out, err = run_full(*argv, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["embedding_coverage"]["found"] == 3
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model"]["embedding_dim"] == 6 and config["estimator"]["freeze_embeddings"] is True
    code, _, err = run_full(*argv[:-4], "--quiet")  # not quiet about what matters: the coverage line goes to err
    assert code == 0 and err == ""
    code, _, err = run_full(*argv[:-4])
    assert code == 0 and "coverage: 3 of" in err


@pytest.mark.parametrize("argv, message", [
    (["--freeze-embeddings"], "--freeze-embeddings needs --embeddings"),
    (["--embeddings", "missing.txt"], "missing.txt"),
])
def test_embedding_option_errors_are_one_line(tmp_path, data, argv, message):
    train, _ = data
    code, _, err = run_full("train", "--train", str(train), "--out", str(tmp_path / "m"), *argv)
    assert code in (1, 2) and message in err and err.count("\n") == 1


def test_word_dropout_out_of_range_is_a_usage_error(tmp_path, data, capsys):
    train, _ = data
    code, _, _ = run_full("train", "--train", str(train), "--out", str(tmp_path / "m"), "--word-dropout", "1.5")
    assert code == 2 and "--word-dropout: expected a number in [0, 1), got 1.5" in capsys.readouterr().err


# --- pretraining -> fine-tuning --------------------------------------------------------------------------


def test_a_word_language_model_pretrains_a_classifier(tmp_path, data):
    """train --task lm --level word --softmax sampled, then train --init-from: the shape comes from the
    language model, the classifier's config records where it started, and a mismatch is one line."""
    train, dev = data
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" . ".join(POS + NEG) * 20, encoding="utf-8")
    lm_dir = tmp_path / "lm"
    code, _, err = run_full("train", "--task", "lm", "--text", str(corpus), "--level", "word", "--softmax",
                            "sampled", "--num-sampled", "5", "--max-vocab", "20", "--cell", "gru", "--hidden-size",
                            "10", "--embedding-dim", "6", "--bptt", "8", "--batch-size", "4", "--out", str(lm_dir),
                            "--quiet")
    assert code == 0, err
    lm_config = json.loads((lm_dir / "config.json").read_text())
    assert lm_config["estimator"]["softmax"] == "sampled" and lm_config["model"]["vocab_size"] == 20

    out_dir = tmp_path / "clf"
    code, out, err = run_full("train", "--train", str(train), "--dev", str(dev), "--init-from", str(lm_dir),
                              "--layer-lr-decay", "2.6", "--gradual-unfreeze", "--epochs", "3", "--out",
                              str(out_dir), "--quiet")
    assert code == 0, err
    config = json.loads((out_dir / "config.json").read_text())
    assert (config["model"]["cell"], config["model"]["hidden_size"], config["model"]["embedding_dim"]) == ("gru", 10, 6)
    assert config["model"]["vocab_size"] == 20
    record = config["training"]["pretrained_from"]
    assert record["path"] == str(lm_dir) and record["command"] == lm_config["command"]
    assert record["data"]["train"]["path"] == str(corpus)

    code, _, err = run_full("train", "--train", str(train), "--init-from", str(lm_dir), "--cell", "lstm",
                            "--out", str(tmp_path / "bad"), "--quiet")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "another network than this classifier: cell 'lstm' (the language model's: 'gru')" in err
    code, _, err = run_full("train", "--train", str(train), "--init-from", str(out_dir), "--out",
                            str(tmp_path / "bad"), "--quiet")
    assert code == 1 and "init_from:" in err and "'language_model' checkpoint was asked for" in err, err
    assert not (tmp_path / "bad").exists()


def test_a_backward_language_model_and_a_bidirectional_classifier_from_both(tmp_path, data, capsys):
    """train --task lm --direction backward --init-from FW --freeze-embeddings, then train --init-from FW
    --init-from-backward BW: a bidirectional classifier (no --bidirectional needed) that records both starts;
    generate refuses the backward model in one line."""
    train, dev = data
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" . ".join(POS + NEG) * 20, encoding="utf-8")
    common = ["--task", "lm", "--text", str(corpus), "--level", "word", "--max-vocab", "20", "--cell", "gru",
              "--hidden-size", "10", "--embedding-dim", "6", "--bptt", "8", "--batch-size", "4", "--quiet"]
    fw, bw = tmp_path / "fw", tmp_path / "bw"
    code, _, err = run_full("train", *common, "--out", str(fw))
    assert code == 0, err
    code, _, err = run_full("train", *common, "--direction", "backward", "--init-from", str(fw),
                            "--freeze-embeddings", "--out", str(bw))
    assert code == 0, err
    estimator = json.loads((bw / "config.json").read_text())["estimator"]
    assert estimator["direction"] == "backward" and estimator["freeze_embeddings"] is True
    code, out, err = run_full("generate", "--model", str(bw), "--prompt", "good")
    assert code == 1 and err.count("\n") == 1 and "reads right to left (direction 'backward')" in err, err

    code, out, err = run_full("train", "--train", str(train), "--dev", str(dev), "--init-from", str(fw),
                              "--init-from-backward", str(bw), "--epochs", "1", "--out", str(tmp_path / "clf"),
                              "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["init_from"] == str(fw) and summary["init_from_backward"] == str(bw)
    config = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert config["model"]["bidirectional"] is True
    assert config["training"]["pretrained_from"]["backward"]["path"] == str(bw)
    code, _, err = run_full("train", "--train", str(train), "--init-from", str(bw), "--out", str(tmp_path / "bad"),
                            "--quiet")
    assert code == 1 and err.count("\n") == 1 and "give it as --init-from-backward" in err, err
    code, _, _ = run_full("train", "--task", "lm", "--text", str(corpus), "--direction", "up", "--out",
                          str(tmp_path / "bad"))
    assert code == 2 and "argument --direction: invalid choice: 'up'" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_with_no_network_option_train_fine_tunes_the_bundled_language_model(tmp_path, data):
    """The default recipe (classify.DEFAULT_RECIPE): no network option -> init_from imdb-lm and the measured
    settings; any network option, or --init-from none, -> RNNClassifier's own defaults from scratch."""
    from unrolled.cli.classify import DEFAULT_RECIPE
    from unrolled.models.classifier import RNNClassifier
    from unrolled.models.language_model import RNNLanguageModel

    train, dev = data
    code, out, err = run_full("train", "--train", str(train), "--dev", str(dev), "--epochs", "1", "--out",
                              str(tmp_path / "recipe"), "--json")
    assert code == 0 and err.count("\n") <= 2, err  # the progress lines only
    assert json.loads(out)["init_from"] == DEFAULT_RECIPE["init_from"] == "imdb-lm"
    config = json.loads((tmp_path / "recipe" / "config.json").read_text())
    estimator, model = config["estimator"], config["model"]
    for name, value in DEFAULT_RECIPE.items():
        assert estimator.get(name, model.get(name)) == value, name
    lm = RNNLanguageModel.load("imdb-lm")
    assert model["vocab_size"] == len(lm.vocab_) and config["training"]["pretrained_from"]["path"] == "imdb-lm"

    defaults = RNNClassifier().get_params()
    for given in (["--cell", "gru"], ["--init-from", "none"], ["--pooling", "max"]):
        out_dir = tmp_path / "-".join(given).strip("-")
        code, _, err = run_full("train", "--train", str(train), "--epochs", "1", "--out", str(out_dir), "--quiet",
                                *given)
        assert code == 0, err
        config = json.loads((out_dir / "config.json").read_text())
        assert config["estimator"]["init_from"] is None and "pretrained_from" not in config["training"], given
        assert config["estimator"]["lr"] == defaults["lr"] and config["estimator"]["dropout"] == defaults["dropout"]
        assert config["model"]["hidden_size"] == defaults["hidden_size"], given
