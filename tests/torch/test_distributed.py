"""Data-parallel training (unrolled.distributed) with real processes: 2 ranks under torchrun (gloo, 127.0.0.1)
train the same weights as 1 process with the same global batch, for both engines (float64: <= 1e-10); the CLI
under torchrun writes one checkpoint from rank 0; a rank that dies ends the job; bad worlds are one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="data-parallel training needs torch (the [torch] extra)")

from unrolled.distributed import Distributed, DistributedError, from_environment  # noqa: E402

WORKER = Path(__file__).with_name("ddp_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def torchrun(*args: str, processes: int = 2, timeout: float = 180) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
               "--master_addr=127.0.0.1", f"--master_port={_free_port()}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=ROOT)


def alone(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=_env(),
                          cwd=ROOT)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_two_processes_train_the_weights_of_one(engine, tmp_path):
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    result = alone(str(WORKER), engine, str(one))
    assert result.returncode == 0, result.stderr
    result = torchrun(str(WORKER), engine, str(two))
    assert result.returncode == 0, result.stderr
    a, b = np.load(one), np.load(two)
    assert set(a.files) == set(b.files)
    for name in a.files:
        assert a[name].dtype == np.float64
        np.testing.assert_allclose(b[name], a[name], rtol=0, atol=1e-10, err_msg=name)
    # and training moved them: the comparison is not one of untouched initial weights
    from unrolled.models.classifier_net import ClassifierNetConfig, init_classifier_params

    config = ClassifierNetConfig(vocab_size=30, embedding_dim=5, hidden_size=6, num_classes=3, cell="lstm",
                                 bidirectional=True, pooling="max")
    initial = init_classifier_params(config, np.random.default_rng(1), dtype=np.float64)
    assert all(np.abs(a[name] - initial[name]).max() > 1e-3 for name in a.files)


def test_a_rank_that_dies_ends_the_job(tmp_path):
    result = torchrun(str(WORKER), "numpy", str(tmp_path / "w.npz"), "die", timeout=120)
    assert result.returncode != 0
    assert not (tmp_path / "w.npz").exists()


def test_a_stop_asked_by_one_rank_stops_all(tmp_path):
    out = tmp_path / "w.npz"
    result = torchrun(str(WORKER), "numpy", str(out), "stop", timeout=120)
    assert result.returncode == 0, result.stderr
    steps = [int((tmp_path / f"w.npz.steps{rank}").read_text()) for rank in (0, 1)]
    assert steps == [3, 3]  # rank 1 had no such callback and stopped with rank 0


TSV = "text\tlabel\n" + "".join(f"{w} film {v}\t{'pos' if w == 'good' else 'neg'}\n"
                               for w in ("good", "bad") for v in ("very", "so", "quite", "rather", "truly"))


def test_cli_under_torchrun_writes_one_checkpoint_from_rank_0(tmp_path):
    data = tmp_path / "train.tsv"
    data.write_text(TSV * 3)
    common = ["--train", str(data), "--epochs", "2", "--batch-size", "8", "--hidden", "8", "--embedding-dim", "6"]
    result = torchrun("-m", "unrolled", "train", *common, "--out", str(tmp_path / "two"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("saved ") == 1  # only rank 0 prints
    result = alone("-m", "unrolled", "train", *common, "--out", str(tmp_path / "one"))
    assert result.returncode == 0, result.stderr
    from safetensors.numpy import load_file

    a, b = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=0, atol=1e-5, err_msg=name)
    import json

    record = json.loads((tmp_path / "two" / "config.json").read_text())["training"]
    assert record["processes"] == 2 and record["engine"] == "numpy"


def test_cli_language_model_under_torchrun(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat and the dog sat on the log. " * 20)
    common = ["--task", "lm", "--text", str(text), "--epochs", "1", "--batch-size", "4", "--bptt", "16",
              "--hidden", "12", "--embedding-dim", "8", "--engine", "torch"]
    result = torchrun("-m", "unrolled", "train", *common, "--out", str(tmp_path / "two"))
    assert result.returncode == 0, result.stderr
    result = alone("-m", "unrolled", "train", *common, "--out", str(tmp_path / "one"))
    assert result.returncode == 0, result.stderr
    from safetensors.numpy import load_file

    a, b = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=0, atol=1e-5, err_msg=name)


def test_more_processes_than_examples_is_one_line(tmp_path):
    data = tmp_path / "tiny.tsv"
    data.write_text("text\tlabel\ngood film\tpos\nbad film\tneg\n")  # two classes: the least a classifier takes
    result = torchrun("-m", "unrolled", "train", "--train", str(data), "--out", str(tmp_path / "m"), processes=3)
    assert result.returncode != 0
    assert ("rank 0: unrolled: error: 3 processes but only 2 training examples: use at most 2 processes "
            "(torchrun --nproc_per_node)") in result.stderr
    assert "/unrolled/" not in result.stderr  # no frame of unrolled's: torchrun's own report follows the lines
    assert not (tmp_path / "m").exists()


# --- without processes --------------------------------------------------------------------------------------


def test_shard_takes_every_world_th_row_and_its_share():
    group = Distributed(rank=1, world_size=3)
    rows, share = group.shard(np.array([10, 11, 12, 13, 14, 15, 16]))
    assert rows.tolist() == [11, 14] and share == pytest.approx(2 / 7)
    rows, share = group.shard(np.array([5, 6, 7]), example_weights=np.arange(10.0))
    assert rows.tolist() == [6] and share == pytest.approx(6 / 18)
    rows, share = Distributed(rank=2, world_size=3).shard(np.array([5, 6]))
    assert rows.tolist() == [5] and share == 0.0  # nothing of its own: one row, weight 0
    x, y = np.arange(12).reshape(4, 3), np.arange(12).reshape(4, 3) + 1
    (xs, ys), share = Distributed(rank=0, world_size=2).shard((x, y))
    assert xs.tolist() == [[0, 1, 2], [6, 7, 8]] and ys[0, 0] == 1 and share == 0.5


def test_environment(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert from_environment() is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert from_environment() is None
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert from_environment() == Distributed(rank=2, world_size=4, local_rank=0)
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(DistributedError, match="RANK='x': expected an integer"):
        from_environment()
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(DistributedError, match="RANK=4: expected 0 <= RANK < WORLD_SIZE=4"):
        from_environment()
    with pytest.raises(ValueError, match="4 processes but only 3 streams"):
        Distributed(rank=0, world_size=4).check_size(3, "streams")
    with pytest.raises(ValueError, match="batch_size: 3 rows per global batch for 4 processes"):
        Distributed(rank=0, world_size=4).check_batch_size(3)
    Distributed(rank=0, world_size=4).check_batch_size(4)
