"""Checkpoints checked as a whole when they are loaded: a tiny model of each kind is trained once, copied,
and one thing in the copy is broken (a field of config.json, vocab.json, a tensor's dtype); every command
that reads the model must then stop with one line naming the file and the field, change nothing, and show
no traceback (docs/reliability.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from tests.robustness.conftest import (
    Snapshot,
    assert_clean_error,
    copy_checkpoint,
    edit_json,
    edit_tensors,
    run_cli,
    train_tiny_models,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    return train_tiny_models(tmp_path_factory.mktemp("tiny"))


# --- the commands that read a checkpoint, per kind ---------------------------------------------------------

COMMANDS: dict[str, dict[str, Callable[[Path, dict[str, Path]], list]]] = {
    "classifier": {
        "predict": lambda m, d: ["predict", "--model", m, "good fun"],
        "evaluate": lambda m, d: ["evaluate", "--model", m, d["tsv"]],
        "explain": lambda m, d: ["explain", "--model", m, "good fun"],
    },
    "language_model": {
        "generate": lambda m, d: ["generate", "--model", m, "--length", "5"],
        "explain": lambda m, d: ["explain", "--model", m, "abc"],
    },
    "forecaster": {
        "forecast": lambda m, d: ["forecast", "--model", m, "--csv", d["csv"], "--steps", "3"],
    },
    "translator": {
        "translate": lambda m, d: ["translate", "--model", m, "eins rot ."],
        "evaluate": lambda m, d: ["evaluate", "--model", m, d["source"], "--reference", d["target"]],
        "explain": lambda m, d: ["explain", "--model", m, "eins rot ."],
    },
    "speech_recognizer": {
        "transcribe": lambda m, d: ["transcribe", "--model", m, d["wav"]],
        "evaluate": lambda m, d: ["evaluate", "--model", m, d["recordings"]],
        "explain": lambda m, d: ["explain", "--model", m, d["wav"]],
    },
}


# --- damage -------------------------------------------------------------------------------------------------


def put(dotted: str, value: object) -> Callable[[dict], None]:
    """Set config["a"]["b"] for "a.b"."""
    *parents, last = dotted.split(".")

    def change(obj: dict) -> None:
        for key in parents:
            obj = obj[key]
        obj[last] = value

    return change


def drop(dotted: str) -> Callable[[dict], None]:
    *parents, last = dotted.split(".")

    def change(obj: dict) -> None:
        for key in parents:
            obj = obj[key]
        del obj[last]

    return change


def both(*changes: Callable[[dict], None]) -> Callable[[dict], None]:
    def change(obj: dict) -> None:
        for one in changes:
            one(obj)

    return change


def as_dtype(name: str, dtype) -> Callable[[dict], None]:
    def change(tensors: dict) -> None:
        tensors[name] = tensors[name].astype(dtype)

    return change


REMOVE = None  # as a change: delete the file


@dataclass(frozen=True)
class Case:
    kind: str
    command: str
    file: str  # the file damaged
    change: Callable | None  # edits the parsed file (JSON: a dict; model.safetensors: the tensors), or REMOVE
    names: tuple[str, ...]  # what the error line must name besides the file
    reported: str | None  # the file the error names, when not the damaged one

    def damage(self, model: Path) -> None:
        path = model / self.file
        if self.change is REMOVE:
            os.remove(path)
        elif self.file == "model.safetensors":
            edit_tensors(path, self.change)
        else:
            edit_json(path, self.change)


def case(id_: str, kind: str, command: str, file: str, change, *names: str, reported: str | None = None):
    return pytest.param(Case(kind, command, file, change, names, reported), id=f"{kind}-{id_}")


def swap_token(index: int, value: object) -> Callable[[dict], None]:
    return lambda vocab: vocab["tokens"].__setitem__(index, value)


CASES = [
    # the network's config: types, ranges, unknown and missing fields (named as config.json spells them)
    case("hidden-size-0", "classifier", "predict", "config.json", put("model.hidden_size", 0), "model.hidden_size"),
    case("layers-negative", "classifier", "evaluate", "config.json", put("model.num_layers", -1), "model.num_layers"),
    case("unknown-cell", "classifier", "explain", "config.json", put("model.cell", "transformer"), "model.cell",
         "transformer"),
    case("hidden-size-string", "classifier", "predict", "config.json", put("model.hidden_size", "4"),
         "model.hidden_size", "integer"),
    case("bidirectional-string", "classifier", "predict", "config.json", put("model.bidirectional", "yes"),
         "model.bidirectional"),
    case("dropout-2", "classifier", "predict", "config.json", put("model.dropout", 2.0), "model.dropout"),
    case("pooling-unknown", "classifier", "explain", "config.json", put("model.pooling", "avg"), "model.pooling"),
    case("unknown-field", "classifier", "predict", "config.json", put("model.heads", 8), "model.heads", "unknown"),
    case("missing-field", "classifier", "evaluate", "config.json", drop("model.vocab_size"), "model.vocab_size",
         "missing"),
    case("model-not-object", "classifier", "predict", "config.json", put("model", [4, 4]), "model", "object"),
    # classes, labels and the head
    case("labels-vs-num-classes", "classifier", "predict", "config.json", put("labels.names", ["0", "1", "2"]),
         "labels", "model.num_classes"),
    case("classes-count", "classifier", "evaluate", "config.json", put("classes", ["0", "1", "2"]), "classes"),
    case("classes-vs-labels", "classifier", "predict", "config.json", put("classes", ["neg", "pos"]), "classes[0]",
         "labels.names[0]"),
    case("classes-not-list", "classifier", "predict", "config.json", put("classes", "01"), "classes"),
    case("labels-duplicate", "classifier", "predict", "config.json", put("labels.names", ["0", "0"]), "labels",
         "duplicate"),
    case("labels-not-object", "classifier", "explain", "config.json", put("labels", ["0", "1"]), "labels"),
    case("label-names-list", "classifier", "evaluate", "config.json", put("label_names", ["negative"]),
         "label_names"),
    case("head-vs-num-classes", "classifier", "predict", "config.json",  # 3 classes everywhere, but the head has 2
         both(put("model.num_classes", 3), put("labels.names", ["0", "1", "2"]), put("classes", ["0", "1", "2"])),
         "head.weight", "(3, 4)", reported="model.safetensors"),
    # estimator parameters used at inference
    case("max-len-0", "classifier", "predict", "config.json", put("estimator.max_len", 0), "estimator.max_len"),
    case("max-len-negative", "classifier", "explain", "config.json", put("estimator.max_len", -5),
         "estimator.max_len"),
    case("max-len-string", "classifier", "predict", "config.json", put("estimator.max_len", "64"),
         "estimator.max_len"),
    case("lowercase-string", "classifier", "predict", "config.json", put("estimator.lowercase", "no"),
         "estimator.lowercase"),
    # special token ids
    case("padding-idx-not-pad", "classifier", "predict", "config.json", put("model.padding_idx", 5),
         "model.padding_idx", "<pad>"),
    case("padding-idx-outside", "classifier", "evaluate", "config.json", put("model.padding_idx", 99),
         "model.padding_idx"),
    case("padding-idx-string", "classifier", "predict", "config.json", put("model.padding_idx", "0"),
         "model.padding_idx"),
    # vocab.json
    case("vocab-duplicate", "classifier", "predict", "vocab.json", swap_token(3, "film"), "tokens", "duplicate"),
    case("vocab-not-list", "classifier", "explain", "vocab.json", put("tokens", "abc"), "tokens", "list"),
    case("vocab-number", "classifier", "predict", "vocab.json", swap_token(3, 7), "tokens", "item 3"),
    case("vocab-no-pad", "classifier", "evaluate", "vocab.json", swap_token(0, "<blank>"), "tokens", "<pad>"),
    case("vocab-size", "classifier", "predict", "vocab.json", lambda v: v["tokens"].pop(), "vocab_size"),
    case("vocab-missing", "classifier", "predict", "vocab.json", REMOVE, "missing"),
    # tensors
    case("tensor-float16", "classifier", "predict", "model.safetensors", as_dtype("head.bias", np.float16),
         "head.bias", "float16"),
    case("tensor-int64", "classifier", "explain", "model.safetensors", as_dtype("head.weight", np.int64),
         "head.weight", "int64"),
    case("tensor-mixed-precision", "classifier", "evaluate", "model.safetensors",
         as_dtype("rnn.weight_hh_l0", np.float64), "rnn.weight_hh_l0", "float64"),
    case("training-history", "classifier", "predict", "config.json", put("training.history", 3), "training.history"),
    # language model
    case("tie-weights-string", "language_model", "generate", "config.json", put("model.tie_weights", "no"),
         "model.tie_weights"),
    case("vocab-size-0", "language_model", "explain", "config.json", put("model.vocab_size", 0), "model.vocab_size"),
    case("start-token-null", "language_model", "generate", "config.json", put("start_token", None), "start_token"),
    case("level-unknown", "language_model", "explain", "config.json", put("estimator.level", "byte"),
         "estimator.level"),
    case("vocab-missing", "language_model", "generate", "vocab.json", REMOVE, "missing"),
    case("vocab-no-unk", "language_model", "generate", "vocab.json", swap_token(1, "<blank>"), "<unk>"),
    case("tensor-int32", "language_model", "generate", "model.safetensors", as_dtype("embedding.weight", np.int32),
         "embedding.weight", "int32"),
    # forecaster
    case("scale-0", "forecaster", "forecast", "config.json", put("scaler.scale", [0.0]), "scaler.scale[0]"),
    case("mean-strings", "forecaster", "forecast", "config.json", put("scaler.mean", ["a"]), "scaler.mean"),
    case("columns-vs-input-size", "forecaster", "forecast", "config.json", put("columns", ["y", "x1"]),
         "model.input_size"),
    case("horizon-mismatch", "forecaster", "forecast", "config.json", put("estimator.horizon", 5),
         "estimator.horizon", "model.horizon"),
    case("window-0", "forecaster", "forecast", "config.json", put("estimator.window", 0), "estimator.window"),
    case("series-not-object", "forecaster", "forecast", "config.json", put("series", ["y"]), "series"),
    case("tensor-float16", "forecaster", "forecast", "model.safetensors", as_dtype("head.bias", np.float16),
         "head.bias", "float16"),
    # translator
    case("target-vocab-too-short", "translator", "translate", "vocab.json",
         put("target.tokens", ["<pad>", "<unk>", "<s>"]), "</s>"),
    case("bos-missing", "translator", "evaluate", "vocab.json", lambda v: v["target"]["tokens"].__setitem__(2, "x"),
         "<s>"),
    case("score-unknown", "translator", "explain", "config.json", put("model.score", "cosine"), "model.score"),
    case("dev-bleu-string", "translator", "translate", "config.json", put("dev_bleu", "high"), "dev_bleu"),
    case("tensor-int64", "translator", "translate", "model.safetensors", as_dtype("decoder.out.bias", np.int64),
         "decoder.out.bias", "int64"),
    # speech recognizer
    case("features-n-mels-0", "speech_recognizer", "transcribe", "config.json", put("features.n_mels", 0),
         "features.n_mels"),
    case("features-kind", "speech_recognizer", "evaluate", "config.json", put("features.kind", "wavelet"),
         "features.kind"),
    case("symbols-duplicate", "speech_recognizer", "transcribe", "config.json", put("symbols", ["0", "0"]),
         "symbols"),
    case("symbols-vs-outputs", "speech_recognizer", "explain", "config.json", put("symbols", ["0", "1", "2"]),
         "model.num_outputs"),
    case("beam-size-0", "speech_recognizer", "transcribe", "config.json", put("estimator.beam_size", 0),
         "estimator.beam_size"),
    case("tensor-float16", "speech_recognizer", "transcribe", "model.safetensors", as_dtype("head.bias", np.float16),
         "head.bias", "float16"),
]


@pytest.mark.parametrize("damaged", CASES)
def test_a_damaged_checkpoint_is_one_line_naming_the_file_and_field(damaged: Case, tiny, workdir):
    model = copy_checkpoint(tiny[damaged.kind], workdir / "model")
    damaged.damage(model)
    before, originals = Snapshot(workdir), Snapshot(tiny[damaged.kind])
    argv = COMMANDS[damaged.kind][damaged.command](model, tiny)
    assert_clean_error(run_cli(*argv), names=(str(model / (damaged.reported or damaged.file)), *damaged.names))
    before.assert_unchanged()
    originals.assert_unchanged()


@pytest.mark.parametrize("kind", list(COMMANDS))
def test_an_undamaged_copy_loads_for_every_command(kind, tiny, workdir):
    """The checks above refuse damage only: the same copy, undamaged, serves every command."""
    model = copy_checkpoint(tiny[kind], workdir / "model")
    for command, argv in COMMANDS[kind].items():
        result = run_cli(*argv(model, tiny))
        assert result.code == 0, (command, result.err)


@pytest.mark.parametrize("kind", list(COMMANDS))
def test_a_float64_copy_of_a_model_still_serves(kind, tiny, workdir):
    """One precision throughout is what the engine needs, float32 or float64 alike."""
    model = copy_checkpoint(tiny[kind], workdir / "model")
    edit_tensors(model / "model.safetensors", lambda t: t.update({k: v.astype(np.float64) for k, v in t.items()}))
    command, argv = next(iter(COMMANDS[kind].items()))
    result = run_cli(*argv(model, tiny))
    assert result.code == 0, (command, result.err)


WRONG_KIND = [
    ("predict", "language_model", lambda m, d: ["predict", "--model", m, "good"]),
    ("generate", "classifier", lambda m, d: ["generate", "--model", m]),
    ("forecast", "translator", lambda m, d: ["forecast", "--model", m, "--csv", d["csv"]]),
    ("translate", "speech_recognizer", lambda m, d: ["translate", "--model", m, "eins"]),
    ("transcribe", "forecaster", lambda m, d: ["transcribe", "--model", m, d["wav"]]),
    ("explain", "forecaster", lambda m, d: ["explain", "--model", m, "good"]),
    ("evaluate", "language_model", lambda m, d: ["evaluate", "--model", m, d["tsv"]]),
]


@pytest.mark.parametrize("command,kind,argv", WRONG_KIND, ids=[f"{c}-{k}" for c, k, _ in WRONG_KIND])
def test_a_model_of_the_wrong_kind_is_named(command, kind, argv, tiny, workdir):
    model = copy_checkpoint(tiny[kind], workdir / "model")
    before = Snapshot(workdir)
    line = assert_clean_error(run_cli(*argv(model, tiny)), names=(str(model / "config.json"), kind))
    assert "kind" in line
    before.assert_unchanged()


def test_a_language_model_whose_start_token_left_the_vocabulary_still_generates(tiny, workdir):
    """Older versions saved the text's first token even when it was too rare for the vocabulary: such a model
    loads, and an empty prompt starts from its first real token instead."""
    from unrolled import RNNLanguageModel

    model = copy_checkpoint(tiny["language_model"], workdir / "old-lm")
    edit_json(model / "config.json", put("start_token", "a-token-not-in-the-vocabulary"))
    loaded = RNNLanguageModel.load(model)
    assert loaded.start_token_ in loaded.vocab_.tokens and loaded.start_token_ not in ("<pad>", "<unk>")
    result = run_cli("generate", "--model", str(model), "--length", "5", cwd=workdir)
    assert result.code == 0, result.err
