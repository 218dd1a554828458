"""Tests for unrolled.checkpoint: round trips, torch interop, atomic replacement, and every bad-input message."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import safetensors.numpy

from unrolled.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    Checkpoint,
    CheckpointError,
    check_tensors,
    load_checkpoint,
    save_checkpoint,
)

CONFIG = {
    "model": {"cell": "gru", "vocab_size": 7, "embedding_dim": 3, "hidden_size": 4, "num_classes": 2},
    "training": {"epochs": 2, "lr": 0.01, "seed": 0},
    "metrics": {"dev_accuracy": 0.875},
    "label_names": ["positive", "négatif"],
}
VOCAB = {"tokens": ["<pad>", "<unk>", "i", "love", "this", "ça", "!"]}
SHAPES = {
    "embedding.weight": (7, 3),
    "rnn.weight_ih_l0": (12, 3),
    "rnn.weight_hh_l0": (12, 4),
    "rnn.bias_ih_l0": (12,),
    "head.weight": (2, 4),
    "head.bias": (2,),
}


def make_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    tensors = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in SHAPES.items()}
    tensors["head.bias"] = tensors["head.bias"].astype(np.float64)
    tensors["steps"] = np.array([3, -1, 2**40], dtype=np.int64)
    return tensors


def save(path, seed: int = 0, **overrides):
    args = {"kind": "classifier", "tensors": make_tensors(seed), "config": CONFIG, "vocab": VOCAB}
    args.update(overrides)
    return save_checkpoint(path, **args)


def assert_same(ckpt: Checkpoint, tensors: dict[str, np.ndarray]) -> None:
    assert sorted(ckpt.tensors) == sorted(tensors)
    for name, a in tensors.items():
        b = ckpt.tensors[name]
        assert b.dtype == a.dtype and b.shape == a.shape, name
        assert b.tobytes() == a.tobytes(), name  # bit-exact


def files_in(path) -> list[str]:
    return sorted(os.listdir(path))


# ------------------------------------------------------------------------------------------- round trip


def test_round_trip_is_bit_exact(tmp_path):
    tensors = make_tensors()
    tensors["weird"] = np.array([np.nan, -0.0, np.inf, 1e-45], dtype=np.float64)  # values survive, bit for bit
    tensors["scalar"] = np.array(2.5, dtype=np.float32)
    returned = save_checkpoint(tmp_path / "ckpt", kind="classifier", tensors=tensors, config=CONFIG, vocab=VOCAB)
    assert returned == tmp_path / "ckpt"
    assert files_in(tmp_path / "ckpt") == ["config.json", "model.safetensors", "vocab.json"]
    assert files_in(tmp_path) == ["ckpt"]  # no temporary directory left

    ckpt = load_checkpoint(tmp_path / "ckpt", kind="classifier")
    assert_same(ckpt, tensors)
    assert ckpt.tensors["scalar"].shape == ()
    assert ckpt.config == {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "classifier", **CONFIG}
    assert list(ckpt.config) == ["format", "format_version", "kind", *CONFIG]  # caller's order kept
    assert ckpt.vocab == VOCAB
    assert ckpt.kind == "classifier"
    assert all(a.flags.writeable and a.flags.c_contiguous for a in ckpt.tensors.values())


def test_config_json_is_readable_text(tmp_path):
    save(tmp_path / "ckpt")
    text = (tmp_path / "ckpt" / "config.json").read_text(encoding="utf-8")
    assert "négatif" in text  # ensure_ascii=False
    assert text.startswith('{\n  "format": "unrolled-checkpoint",\n  "format_version": 1,\n  "kind": "classifier"')


def test_non_contiguous_and_big_endian_tensors_are_written_as_values(tmp_path):
    base = np.arange(12, dtype=np.float64).reshape(3, 4)
    tensors = {"t": base.T, "s": base[:, ::2], "be": base.astype(">f4")}
    save_checkpoint(tmp_path / "c", kind="forecaster", tensors=tensors, config={})
    ckpt = load_checkpoint(tmp_path / "c")
    np.testing.assert_array_equal(ckpt.tensors["t"], base.T)
    np.testing.assert_array_equal(ckpt.tensors["s"], base[:, ::2])
    np.testing.assert_array_equal(ckpt.tensors["be"], base.astype(np.float32))
    assert ckpt.vocab is None and not (tmp_path / "c" / "vocab.json").exists()


def test_numpy_scalars_in_config_become_json_numbers(tmp_path):
    save_checkpoint(tmp_path / "c", kind="forecaster", tensors={"w": np.zeros(2)},
                    config={"metrics": {"loss": np.float32(0.5), "steps": np.int64(3)}})
    assert load_checkpoint(tmp_path / "c").config["metrics"] == {"loss": 0.5, "steps": 3}


def test_files_load_in_torch_with_the_same_names(tmp_path):
    torch = pytest.importorskip("torch")
    import safetensors.torch

    tensors = make_tensors()
    save(tmp_path / "ckpt")
    loaded = safetensors.torch.load_file(tmp_path / "ckpt" / "model.safetensors")
    assert sorted(loaded) == sorted(tensors)
    for name, a in tensors.items():
        assert np.array_equal(loaded[name].numpy(), a), name
    assert loaded["steps"].dtype == torch.int64
    # and a torch module with the same names takes the state dict as is
    gru = torch.nn.GRU(3, 4, batch_first=True)
    state = {k.removeprefix("rnn."): v for k, v in loaded.items() if k.startswith("rnn.")}
    state["bias_hh_l0"] = torch.zeros(12)
    gru.load_state_dict(state)
    assert torch.equal(gru.weight_hh_l0.detach(), torch.from_numpy(tensors["rnn.weight_hh_l0"]))


# ------------------------------------------------------------------------------------------- atomicity


def test_overwrite_replaces_the_whole_checkpoint(tmp_path):
    save(tmp_path / "ckpt", seed=0)
    save(tmp_path / "ckpt", seed=1, vocab=None)
    ckpt = load_checkpoint(tmp_path / "ckpt")
    assert_same(ckpt, make_tensors(1))
    assert ckpt.vocab is None  # the old vocab.json did not survive
    assert files_in(tmp_path) == ["ckpt"]


def test_empty_existing_directory_is_filled(tmp_path):
    (tmp_path / "ckpt").mkdir()
    save(tmp_path / "ckpt")
    assert_same(load_checkpoint(tmp_path / "ckpt"), make_tensors())
    assert files_in(tmp_path) == ["ckpt"]


def test_missing_parents_are_created(tmp_path):
    save(tmp_path / "runs" / "a" / "ckpt")
    assert_same(load_checkpoint(tmp_path / "runs" / "a" / "ckpt"), make_tensors())


@pytest.mark.parametrize("failing", ["model.safetensors", "config.json", "vocab.json"])
def test_failed_overwrite_keeps_the_previous_checkpoint(tmp_path, monkeypatch, failing):
    import unrolled.checkpoint as checkpoint_module

    save(tmp_path / "ckpt", seed=0)
    before = {name: (tmp_path / "ckpt" / name).read_bytes() for name in files_in(tmp_path / "ckpt")}
    write_file, write_tensors = checkpoint_module._write_file, checkpoint_module._write_tensors

    def boom(write):
        def failing_write(path, data):
            write(path, data)
            if path.name == failing:  # written, then cut to half as a full disk would leave it
                with open(path, "r+b") as f:
                    f.truncate(os.path.getsize(path) // 2)
                raise OSError("disk full")
        return failing_write

    monkeypatch.setattr(checkpoint_module, "_write_file", boom(write_file))
    monkeypatch.setattr(checkpoint_module, "_write_tensors", boom(write_tensors))
    with pytest.raises(OSError, match="disk full"):
        save(tmp_path / "ckpt", seed=1)

    assert files_in(tmp_path) == ["ckpt"]  # no temporary directory left behind
    assert {name: (tmp_path / "ckpt" / name).read_bytes() for name in files_in(tmp_path / "ckpt")} == before
    assert_same(load_checkpoint(tmp_path / "ckpt"), make_tensors(0))


def test_failure_between_the_two_renames_puts_the_old_checkpoint_back(tmp_path, monkeypatch):
    save(tmp_path / "ckpt", seed=0)
    real_rename = os.rename
    calls = []

    def rename(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the old one is aside, the new one not yet in place
            raise OSError("power cut")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="power cut"):
        save(tmp_path / "ckpt", seed=1)
    monkeypatch.undo()
    assert files_in(tmp_path) == ["ckpt"]
    assert_same(load_checkpoint(tmp_path / "ckpt"), make_tensors(0))


def test_invalid_content_is_refused_before_the_disk_is_touched(tmp_path):
    save(tmp_path / "ckpt", seed=0)
    bad = {**CONFIG, "metrics": {"dev_loss": float("nan")}}
    with pytest.raises(CheckpointError, match=r"config\.json: metrics\.dev_loss is nan") as info:
        save(tmp_path / "ckpt", seed=1, config=bad)
    assert info.value.field == "metrics.dev_loss"
    assert files_in(tmp_path) == ["ckpt"]
    assert_same(load_checkpoint(tmp_path / "ckpt"), make_tensors(0))


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"config": {"metrics": {"loss": float("inf")}}}, r"config\.json: metrics\.loss is inf"),
        ({"config": {"ids": {1: "a"}}}, r"config\.json: key 1 in ids is not a string"),
        ({"config": {"model": {"shape": {3, 4}}}}, r"config\.json: model\.shape is a set"),
        ({"config": {"kind": "forecaster"}}, r"config\.json: config gives kind 'forecaster'"),
        ({"config": {"format_version": 2}}, r"config\.json: config gives format_version 2"),
        ({"config": [1, 2]}, r"config\.json: expected a dict"),
        ({"vocab": {"tokens": ["a", float("nan")]}}, r"vocab\.json: tokens\[1\] is nan"),
        ({"vocab": ["a", "b"]}, r"vocab\.json: expected a dict"),
        ({"tensors": {"w": [1.0, 2.0]}}, r"model\.safetensors: tensor 'w': expected a NumPy array, got list"),
        ({"tensors": {"w": np.array(["a"])}}, r"model\.safetensors: tensor 'w' has dtype <U1"),
        ({"tensors": {"w": np.zeros(2, np.complex64)}}, r"model\.safetensors: tensor 'w' has dtype complex64"),
        ({"tensors": {"": np.zeros(2)}}, r"model\.safetensors: tensor name '' is not allowed"),
    ],
)
def test_unwritable_content_is_a_checkpoint_error(tmp_path, overrides, pattern):
    with pytest.raises(CheckpointError, match=pattern):
        save(tmp_path / "ckpt", **overrides)
    assert files_in(tmp_path) == []


def test_unknown_kind_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="kind: expected one of"):
        save(tmp_path / "ckpt", kind="tagger")
    with pytest.raises(ValueError, match="kind: expected one of"):
        load_checkpoint(tmp_path, kind="tagger")


# ------------------------------------------------------------------------------------------- never lose user data


def test_refuses_to_overwrite_a_regular_file(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("precious")
    with pytest.raises(CheckpointError, match=r"notes\.txt: exists and is not a directory"):
        save(target)
    assert target.read_text() == "precious"
    assert files_in(tmp_path) == ["notes.txt"]


def test_refuses_to_overwrite_an_unrelated_directory(tmp_path):
    target = tmp_path / "thesis"
    target.mkdir()
    (target / "chapter1.tex").write_text("precious")
    with pytest.raises(CheckpointError, match=r"thesis: is a non-empty directory without config\.json"):
        save(target)
    assert files_in(target) == ["chapter1.tex"]
    assert files_in(tmp_path) == ["thesis"]


def test_refuses_to_overwrite_another_tools_model_directory(tmp_path):
    target = tmp_path / "bert"
    target.mkdir()
    (target / "config.json").write_text('{"model_type": "bert"}')
    (target / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(CheckpointError, match=r"bert: holds a config\.json that is not an unrolled checkpoint"):
        save(target)
    assert (target / "model.safetensors").read_bytes() == b"weights"


def test_refuses_to_overwrite_a_checkpoint_with_extra_files(tmp_path):
    save(tmp_path / "ckpt", seed=0)
    (tmp_path / "ckpt" / "notes.md").write_text("precious")
    pattern = r"ckpt: holds files that are not part of a checkpoint \(notes\.md\)"
    with pytest.raises(CheckpointError, match=pattern):
        save(tmp_path / "ckpt", seed=1)
    assert (tmp_path / "ckpt" / "notes.md").read_text() == "precious"
    assert_same(load_checkpoint(tmp_path / "ckpt"), make_tensors(0))


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_saving_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    save(tmp_path / "run3", seed=0)
    (tmp_path / "latest").symlink_to(tmp_path / "run3", target_is_directory=True)
    save(tmp_path / "latest", seed=1)
    assert (tmp_path / "latest").is_symlink()
    assert_same(load_checkpoint(tmp_path / "run3"), make_tensors(1))
    assert files_in(tmp_path) == ["latest", "run3"]


# ------------------------------------------------------------------------------------------- bad checkpoints


@pytest.fixture
def ckpt(tmp_path):
    return save(tmp_path / "ckpt")


def rewrite_config(ckpt, **changes):
    path = ckpt / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config.update(changes)
    path.write_text(json.dumps(config), encoding="utf-8")


def load_error(path, **kwargs) -> CheckpointError:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return info.value


def test_missing_directory(tmp_path):
    err = load_error(tmp_path / "nope")
    assert str(err) == f"{tmp_path / 'nope'}: checkpoint directory not found"


def _siblings(parent):
    return sorted(p.name for p in parent.iterdir())


def test_a_save_cut_between_its_renames_is_read_then_restored(tmp_path, monkeypatch):
    import unrolled.checkpoint as checkpoint_module

    save(tmp_path / "ckpt")
    expected = load_checkpoint(tmp_path / "ckpt").tensors
    os.rename(tmp_path / "ckpt", tmp_path / ".ckpt.old-1234abcd")  # as a power cut between the renames leaves it
    (tmp_path / ".ckpt.tmp-99999999").mkdir()  # and the new copy's directory, maybe incomplete
    # Fresh leftovers may belong to a save in progress: the checkpoint is read where it lies, nothing is moved.
    found = load_checkpoint(tmp_path / "ckpt")
    assert found.path == tmp_path / ".ckpt.old-1234abcd"
    assert all(np.array_equal(found.tensors[k], v) for k, v in expected.items())
    assert _siblings(tmp_path) == [".ckpt.old-1234abcd", ".ckpt.tmp-99999999"]
    # Once they are old enough that no save can be behind them, the load puts the checkpoint back and cleans up.
    monkeypatch.setattr(checkpoint_module, "_STALE_SECONDS", 0.0)
    assert load_checkpoint(tmp_path / "ckpt").path == tmp_path / "ckpt"
    assert _siblings(tmp_path) == ["ckpt"]


def test_the_next_save_recovers_and_cleans_what_a_killed_save_left(tmp_path):
    save(tmp_path / "ckpt")
    os.rename(tmp_path / "ckpt", tmp_path / ".ckpt.old-1234abcd")
    (tmp_path / ".ckpt.tmp-99999999").mkdir()
    save(tmp_path / "ckpt")
    assert _siblings(tmp_path) == ["ckpt"]
    save(tmp_path / "other")
    (tmp_path / ".other.old-00000000").mkdir()  # killed after the commit, before the old copy was removed
    save(tmp_path / "other")
    assert _siblings(tmp_path) == ["ckpt", "other"]


def test_every_file_gets_the_same_permissions(tmp_path):
    previous = os.umask(0o027)
    try:
        save(tmp_path / "ckpt")
    finally:
        os.umask(previous)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "ckpt").iterdir()}
    assert set(modes.values()) == {0o640}, modes


def test_a_header_that_promises_more_than_the_file_is_refused_unread(tmp_path):
    save(tmp_path / "ckpt")
    path = tmp_path / "ckpt" / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes((10**9).to_bytes(8, "little") + data[8:])
    assert "header length field says 1000000000 bytes" in str(load_error(tmp_path / "ckpt"))


def test_path_is_a_file(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x")
    assert str(load_error(tmp_path / "model.bin")).endswith("model.bin: is a file, not a checkpoint directory")


def test_missing_config(ckpt):
    (ckpt / "config.json").unlink()
    err = load_error(ckpt)
    assert str(err).startswith(f"{ckpt / 'config.json'}: not found")


def test_invalid_config_json_says_line_and_column(ckpt):
    (ckpt / "config.json").write_text('{\n  "format": "unrolled-checkpoint",\n  "kind": "classifier"\n  "x": 1\n}')
    err = load_error(ckpt)
    assert str(err) == f"{ckpt / 'config.json'}: invalid JSON at line 4, column 3: Expecting ',' delimiter"
    assert err.path == ckpt / "config.json"


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"\xff\xfe{}", r"config\.json: is not UTF-8 text"),
        (b'{"format": NaN}', r"config\.json: invalid JSON: NaN is not a JSON value"),
        (b"[1, 2]", r"config\.json: expected a JSON object, got a JSON array"),
        (b"", r"config\.json: invalid JSON at line 1, column 1"),
        (b'{"format_version": 1, "kind": "classifier"}', r"config\.json: has no 'format' field"),
        (b'{"format": "hf", "format_version": 1}', r"config\.json: format is 'hf', expected 'unrolled-"),
    ],
)
def test_bad_config_content(ckpt, content, pattern):
    (ckpt / "config.json").write_bytes(content)
    with pytest.raises(CheckpointError, match=pattern):
        load_checkpoint(ckpt)


def test_newer_format_version(ckpt):
    rewrite_config(ckpt, format_version=FORMAT_VERSION + 1)
    err = load_error(ckpt)
    assert str(err) == (f"{ckpt / 'config.json'}: format_version {FORMAT_VERSION + 1} is newer than this version "
                        f"of unrolled reads ({FORMAT_VERSION}); upgrade unrolled")
    assert err.field == "format_version"


@pytest.mark.parametrize(
    ("version", "pattern"),
    [(0, "format_version 0 is older than"), ("1", "format_version must be an integer, got '1'"),
     (True, "must be an integer"), (None, "must be an integer")],
)
def test_unreadable_format_version(ckpt, version, pattern):
    rewrite_config(ckpt, format_version=version)
    assert pattern in str(load_error(ckpt))


def test_kind_mismatch(ckpt):
    err = load_error(ckpt, kind="forecaster")
    assert str(err) == (f"{ckpt / 'config.json'}: kind is 'classifier', but a 'forecaster' checkpoint "
                        "was asked for")
    assert err.field == "kind"


def test_unknown_kind_in_file(ckpt):
    rewrite_config(ckpt, kind="tagger")
    assert "config.json: kind 'tagger' is not one this version of unrolled knows" in str(load_error(ckpt))


def test_missing_safetensors(ckpt):
    (ckpt / "model.safetensors").unlink()
    assert str(load_error(ckpt)) == f"{ckpt / 'model.safetensors'}: not found; the checkpoint has no tensors"


def test_truncated_safetensors(ckpt):
    path = ckpt / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    err = load_error(ckpt)
    assert str(err).startswith(f"{path}: truncated")
    assert err.path == path


@pytest.mark.parametrize("size", [0, 5, 8, 9])
def test_very_short_safetensors(ckpt, size):
    path = ckpt / "model.safetensors"
    path.write_bytes(path.read_bytes()[:size])
    assert f"{path}: truncated" in str(load_error(ckpt))


def test_data_cut_just_short(ckpt):
    path = ckpt / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-1])
    assert "model.safetensors: truncated: the tensors need" in str(load_error(ckpt))


def test_trailing_bytes_after_the_data(ckpt):
    path = ckpt / "model.safetensors"
    path.write_bytes(path.read_bytes() + b"\0" * 8)
    assert "model.safetensors: corrupted: 8 bytes after the last tensor's data" in str(load_error(ckpt))


@pytest.mark.parametrize("offset", [8, 9, 20, 40])
def test_corrupted_header_bytes(ckpt, offset):
    path = ckpt / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[offset : offset + 4] = b"\xff\x00}]"
    path.write_bytes(bytes(data))
    err = load_error(ckpt)
    assert str(err).startswith(f"{path}: corrupted header")


@pytest.mark.parametrize("byte", range(8))
def test_flipped_bytes_in_header_length(ckpt, byte):
    path = ckpt / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[byte] ^= 0xFF
    path.write_bytes(bytes(data))
    message = str(load_error(ckpt))
    assert message.startswith(f"{path}: ")
    assert "truncated or corrupted: the header length" in message or "corrupted header" in message


@pytest.mark.parametrize("delta", [-1, 1])
def test_header_length_off_by_one(ckpt, delta):
    path = ckpt / "model.safetensors"
    data = bytearray(path.read_bytes())
    n = int.from_bytes(data[:8], "little")
    data[:8] = (n + delta).to_bytes(8, "little")
    path.write_bytes(bytes(data))
    assert str(load_error(ckpt)).startswith(f"{path}: corrupted")


def write_raw_safetensors(path, header: dict | str, data: bytes = b"") -> None:
    text = header if isinstance(header, str) else json.dumps(header)
    blob = text.encode("utf-8")
    path.write_bytes(len(blob).to_bytes(8, "little") + blob + data)


@pytest.mark.parametrize(
    ("header", "data", "pattern"),
    [
        ({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4, "tensor 'w' has dtype 'BF16'"),
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4,
         "needs 8 bytes, offsets span 4"),
        ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "has shape [-1]"),
        ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, b"\0" * 4, "data_offsets [4, 0]"),
        ({"w": {"dtype": "F32", "shape": [1]}}, b"\0" * 4, "needs exactly dtype, shape and data_offsets"),
        ({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
          "b": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}, b"\0" * 3, "gap or overlap"),
        ({"__metadata__": {"x": 1}}, b"", "__metadata__ must map strings to strings"),
        ('{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, '
         '"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}', b"\0", "tensor 'w' appears twice"),
        ("[1]", b"", "expected a JSON object, got a JSON array"),
    ],
)
def test_insane_headers(ckpt, header, data, pattern):
    path = ckpt / "model.safetensors"
    write_raw_safetensors(path, header, data)
    message = str(load_error(ckpt))
    assert message.startswith(f"{path}: ")
    assert pattern in message


def test_safetensors_own_errors_become_checkpoint_errors(ckpt, monkeypatch):
    def broken(data):
        raise RuntimeError("something\nunexpected")

    monkeypatch.setattr(safetensors.numpy, "load", broken)
    message = str(load_error(ckpt))
    assert message == (f"{ckpt / 'model.safetensors'}: corrupted: safetensors cannot read it "
                       "(RuntimeError: something unexpected)")


def test_invalid_vocab(ckpt):
    (ckpt / "vocab.json").write_text('{"tokens": ["a",]}')
    assert str(load_error(ckpt)).startswith(f"{ckpt / 'vocab.json'}: invalid JSON at line 1, column 17")
    (ckpt / "vocab.json").write_text('"a b c"')
    assert str(load_error(ckpt)) == f"{ckpt / 'vocab.json'}: expected a JSON object, got a JSON string"


# ------------------------------------------------------------------------------------------- check_tensors


def test_check_tensors_accepts_the_expected_set(ckpt):
    loaded = load_checkpoint(ckpt)
    expected = {**SHAPES, "steps": (3,)}
    assert check_tensors(loaded, expected).keys() == loaded.tensors.keys()
    assert check_tensors(loaded.tensors, expected).keys() == loaded.tensors.keys()


def test_check_tensors_missing(ckpt):
    loaded = load_checkpoint(ckpt)
    expected = {**SHAPES, "steps": (3,), "rnn.bias_hh_l0": (12,)}
    with pytest.raises(CheckpointError) as info:
        check_tensors(loaded, expected)
    assert str(info.value) == (f"{ckpt / 'model.safetensors'}: missing tensor 'rnn.bias_hh_l0' "
                               "(expected shape (12,))")
    assert info.value.field == "rnn.bias_hh_l0"


def test_check_tensors_unexpected(ckpt):
    loaded = load_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: unexpected tensor 'steps'"):
        check_tensors(loaded, SHAPES)


def test_check_tensors_wrong_shape_with_a_plain_dict():
    tensors = {"head.weight": np.zeros((2, 5)), "head.bias": np.zeros(2)}
    with pytest.raises(CheckpointError) as info:
        check_tensors(tensors, {"head.weight": (2, 4), "head.bias": (2,)})
    assert str(info.value) == "model.safetensors: tensor 'head.weight' has shape (2, 5), expected (2, 4)"
    with pytest.raises(CheckpointError, match=r"^run/weights: tensor 'head.weight'"):
        check_tensors(tensors, {"head.weight": (2, 4), "head.bias": (2,)}, source="run/weights")



@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_tensors_refuses_non_finite_values_by_name(bad):
    """Models run their forward pass without a pass over every weight, so loading checks the values."""
    tensors = {"head.weight": np.zeros((2, 4), np.float32), "head.bias": np.zeros(2)}
    tensors["head.weight"][1, 3] = bad
    with pytest.raises(CheckpointError) as info:
        check_tensors(tensors, {"head.weight": (2, 4), "head.bias": (2,)})
    assert str(info.value) == "model.safetensors: tensor 'head.weight' contains NaN or infinity"
    assert info.value.field == "head.weight"
