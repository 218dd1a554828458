"""The translation commands end to end: train --task translate on a few hundred pairs, translate (arguments
and streamed stdin), evaluate (BLEU), explain (table, JSON, heatmap), and their one-line errors."""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path

import pytest

from tests.models.test_translator import make_pairs
from unrolled.cli import main


def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def write(path: Path, lines: list[str], gz: bool = False) -> str:
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("translate")
    sources, targets = make_pairs(300)
    dev_sources, dev_targets = make_pairs(30, seed=1)
    files = {
        "src": write(folder / "train.de.gz", sources, gz=True), "tgt": write(folder / "train.en.gz", targets, gz=True),
        "dev_src": write(folder / "dev.de", dev_sources), "dev_tgt": write(folder / "dev.en", dev_targets),
    }
    model = str(folder / "model")
    code, out, err = run("train", "--task", "translate", "--source", files["src"], "--target", files["tgt"],
                         "--dev-source", files["dev_src"], "--dev-target", files["dev_tgt"], "--epochs", "1",
                         "--hidden-size", "16", "--embedding-dim", "8", "--batch-size", "16", "--min-freq", "1",
                         "--out", model)
    assert code == 0, err
    return folder, files, model, out, err


def test_train_saves_a_translator_and_reports_dev_bleu(trained):
    folder, files, model, out, err = trained
    assert out.startswith(f"saved {model}: dev BLEU ")
    assert "epoch 1/1" in err and "tokens/s" in err
    config = json.loads((Path(model) / "config.json").read_text())
    assert config["kind"] == "translator" and config["data"]["train"]["source"]["rows"] == 300
    assert config["estimator"]["hidden_size"] == 16


def test_translate_arguments_and_streamed_stdin(trained):
    _, _, model, _, _ = trained
    code, out, err = run("translate", "--model", model, "zwei rot .", "eins blau .", "--beam", "2")
    assert code == 0, err
    assert len(out.splitlines()) == 2
    code, streamed, err = run("translate", "--model", model, "--beam", "2", stdin="zwei rot .\neins blau .\n")
    assert code == 0 and streamed == out
    code, out, _ = run("translate", "--model", model, "--json", "zwei rot .")
    assert json.loads(out)["source"] == "zwei rot ."


def test_evaluate_gives_bleu_for_two_files_or_a_tsv(trained):
    folder, files, model, _, _ = trained
    code, out, err = run("evaluate", "--model", model, files["dev_src"], "--reference", files["dev_tgt"], "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["pairs"] == 30 and 0 <= result["bleu"] <= 100 and len(result["precisions"]) == 4
    sources, targets = make_pairs(30, seed=1)
    tsv = write(folder / "dev.tsv", ["source\ttarget"] + [f"{s}\t{t}" for s, t in zip(sources, targets)])
    code, out2, _ = run("evaluate", "--model", model, tsv, "--json")
    assert code == 0 and json.loads(out2)["bleu"] == result["bleu"]
    code, text, _ = run("evaluate", "--model", model, tsv)
    assert "tokenized, lower-cased BLEU = " in text and "sacreBLEU" in text


def test_explain_table_json_and_heatmap(trained, tmp_path):
    _, _, model, _, _ = trained
    png = tmp_path / "attention.png"
    code, out, err = run("explain", "--model", model, "drei grün .", "--plot", str(png))
    assert code == 0, err
    assert "attention (rows: output tokens, columns: source tokens)" in out and "top alternatives" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = run("explain", "--model", model, "drei grün .", "--json")
    trace = json.loads(out)
    assert trace["source_tokens"] == ["drei", "grün", "."]
    assert all(len(step["attention"]) == 3 and len(step["top"]) == 5 for step in trace["steps"])
    assert trace["steps"][-1]["token"] == "</s>" or len(trace["steps"]) >= 1


def test_errors_are_one_line_naming_the_file_and_line(trained, tmp_path):
    folder, files, model, _, _ = trained
    short = write(tmp_path / "short.en", ["one"])
    code, _, err = run("train", "--task", "translate", "--source", files["dev_src"], "--target", short,
                       "--out", str(tmp_path / "m"))
    assert code == 1 and err.count("\n") == 1 and "short.en" in err
    blank = write(tmp_path / "blank.en", make_pairs(30, seed=1)[1][:4] + [""] + make_pairs(30, seed=1)[1][5:])
    code, _, err = run("evaluate", "--model", model, files["dev_src"], "--reference", blank)
    assert code == 1 and err.count("\n") == 1 and "blank.en:5: blank line" in err
    code, _, err = run("train", "--task", "translate", "--source", files["dev_src"], "--out", str(tmp_path / "m"))
    assert code == 2 and "both a source and a target" in err
    code, _, err = run("translate", "--model", model, stdin="eins rot .\n\n")
    assert code == 1 and "line 2 of standard input: empty sentence" in err
    code, _, err = run("train", "--task", "translate", "--source", files["dev_src"], "--target", files["dev_tgt"],
                       "--bptt", "5", "--out", str(tmp_path / "m"))
    assert code == 2 and "--bptt: not an option of --task translate" in err


@pytest.mark.skipif(not os.environ.get("UNROLLED_DATA_DIR"), reason="UNROLLED_DATA_DIR not set")
def test_train_on_a_slice_of_multi30k(tmp_path):
    """A few hundred real pairs, one epoch: the real files read and the run completes."""
    from unrolled.datasets import locate

    files = locate("multi30k", os.environ["UNROLLED_DATA_DIR"])
    with gzip.open(files["train.de"], "rt") as de, gzip.open(files["train.en"], "rt") as en:
        pairs = [(next(de).rstrip("\n"), next(en).rstrip("\n")) for _ in range(300)]
    src = write(tmp_path / "de", [p[0] for p in pairs])
    tgt = write(tmp_path / "en", [p[1] for p in pairs])
    code, out, err = run("train", "--task", "translate", "--source", src, "--target", tgt, "--epochs", "1",
                         "--hidden-size", "16", "--embedding-dim", "16", "--out", str(tmp_path / "m"), "--json")
    assert code == 0, err
    assert json.loads(out)["pairs"] == 300
    code, out, _ = run("translate", "--model", str(tmp_path / "m"), "Ein Mann fährt Fahrrad.")
    assert code == 0 and out.strip()
