"""Beyond one CPU, measured (docs/scaling.md): the torch engine against the NumPy engine, and data-parallel
training over torch.distributed against one process.

Sections (``--sections``; all by default):

- ``equality``: (a) 2 processes under torchrun vs 1 process, same global batch, float64, both engines (the
  worker of tests/torch/ddp_worker.py: uneven shards, a one-row last batch): max |Δweight|; (b) the same for
  the CLI on SST-2 sentences in float32; (c) torch engine vs NumPy engine from the same initial weights and
  batches, the first ``--steps`` losses of an SST-2 classifier, a character LM and a forecaster: max |Δloss|.
- ``throughput``: training an SST-2 sentence classifier (the first ``--examples`` training sentences, one
  epoch, GRU, E = 64, H = 128, global batch 64 — the default — and 256) as a fresh process per configuration:
  NumPy and torch engines × {1 process × 1 thread, 1 process × 2 threads, 2 processes × 1 thread
  (torchrun)}; tokens/s of the fit (start-up and data reading excluded), median of ``--repeats`` runs, the
  configurations interleaved.
  Scaling efficiency = tokens/s(2 processes) / (2 × tokens/s(1 process × 1 thread)).
- ``gpu``: the torch engine on ``cuda`` when torch sees a GPU; otherwise the doc says there was none.

    PYTHONPATH=src python benchmarks/scaling.py                       # full run, writes docs/scaling.md's tables
    PYTHONPATH=src python benchmarks/scaling.py --quick --out -       # smoke run, stdout only

Needs torch; the data through UNROLLED_DATA_DIR (../shared/data by default).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import free_port, write_between_markers

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "scaling.md"
RESULTS = ROOT / "docs" / "results" / "scaling.json"


def data_dir() -> Path:
    return Path(os.environ.get("UNROLLED_DATA_DIR", ROOT.parent / "shared" / "data"))


def sst2_sentences(n: int) -> tuple[list[str], list[str]]:
    from unrolled.data.readers import read_dataset

    data = read_dataset(data_dir() / "sst2" / "train.tsv")
    return list(data.texts[:n]), list(data.labels[:n])


def _env(threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env



def launch(args: list[str], *, processes: int = 1, threads: int = 1, timeout: float = 1800) -> None:
    """Run ``python ARGS`` alone or under torchrun with ``processes`` ranks; raise with its stderr on failure."""
    if processes == 1:
        command = [sys.executable, *args]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                   "--master_addr=127.0.0.1", f"--master_port={free_port()}", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_env(threads), cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")


# --- the worker: one training run, timed from inside --------------------------------------------------------


def worker(engine: str, device: str, examples: int, batch_size: int, out: str) -> None:
    import unrolled.torch.engine  # noqa: F401  (imported before the clock starts, for both engines)
    from unrolled import RNNClassifier
    from unrolled.distributed import from_environment
    from unrolled.text.tokenize import tokenize

    distributed = from_environment()
    if distributed is not None:
        distributed.start(device if engine == "torch" else None)
    texts, labels = sst2_sentences(examples)
    tokens = sum(len(tokenize(t)) for t in texts)
    model = RNNClassifier(cell="gru", embedding_dim=64, hidden_size=128, epochs=1, batch_size=batch_size,
                          patience=None)
    started = time.perf_counter()
    model.fit(texts, labels, engine=engine, device=device, distributed=distributed)
    seconds = time.perf_counter() - started
    if distributed is None or distributed.is_main:
        import torch

        Path(out).write_text(json.dumps({"engine": engine, "device": device, "batch_size": batch_size,
                                         "seconds": seconds, "tokens": tokens,
                                         "tokens_per_s": tokens / seconds, "torch_threads": torch.get_num_threads(),
                                         "processes": 1 if distributed is None else distributed.world_size}))
    if distributed is not None:
        distributed.stop()


# --- sections ---------------------------------------------------------------------------------------------------


def run_equality(steps: int, quick: bool) -> dict:
    out: dict = {"ddp_float64": {}, "ddp_cli_float32": None, "engines": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        worker_script = str(ROOT / "tests" / "torch" / "ddp_worker.py")
        for engine in ("numpy", "torch"):
            launch([worker_script, engine, str(tmp / f"{engine}1.npz")])
            launch([worker_script, engine, str(tmp / f"{engine}2.npz")], processes=2)
            a, b = np.load(tmp / f"{engine}1.npz"), np.load(tmp / f"{engine}2.npz")
            out["ddp_float64"][engine] = max(float(np.abs(a[k] - b[k]).max()) for k in a.files)
        train = tmp / "train.tsv"
        texts, labels = sst2_sentences(300 if quick else 2000)
        train.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)))
        cli = ["-m", "unrolled", "train", "--train", str(train), "--epochs", "1", "--batch-size", "64", "--quiet"]
        launch([*cli, "--out", str(tmp / "cli1")])
        launch([*cli, "--out", str(tmp / "cli2")], processes=2)
        from safetensors.numpy import load_file

        a, b = load_file(tmp / "cli1" / "model.safetensors"), load_file(tmp / "cli2" / "model.safetensors")
        out["ddp_cli_float32"] = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    out["engines"] = engine_curves(steps, quick)
    return out


class _Losses:
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_batch_end(self, step: int, loss: float) -> None:
        self.values.append(loss)


def engine_curves(steps: int, quick: bool) -> dict:
    from unrolled import RNNClassifier, RNNForecaster, RNNLanguageModel
    from unrolled.data.readers import read_text

    texts, labels = sst2_sentences(64 * steps)
    shakespeare = read_text(data_dir() / "text" / "tinyshakespeare.txt")[: 64 * 65 * (steps + 2)]
    series = np.sin(np.arange(2000) / 7) + 0.1 * np.random.default_rng(0).standard_normal(2000)
    cases = {
        "classifier (SST-2, GRU 128, batch 64)": (
            lambda: RNNClassifier(cell="gru", epochs=1, batch_size=64), lambda m, **k: m.fit(texts, labels, **k)),
        "language model (Shakespeare chars, LSTM 256, 64 x 64)": (
            lambda: RNNLanguageModel(epochs=1, max_steps=steps), lambda m, **k: m.fit(shakespeare, **k)),
        "forecaster (GRU 32, window 24, float64)": (
            lambda: RNNForecaster(epochs=3), lambda m, **k: m.fit(series, **k)),
    }
    results = {}
    for name, (make, fit) in cases.items():
        losses = {}
        for engine in ("numpy", "torch"):
            record = _Losses()
            fit(make(), callbacks=[record], engine=engine)
            losses[engine] = np.array(record.values[:steps])
        diff = np.abs(losses["numpy"] - losses["torch"])
        results[name] = {"steps": int(len(diff)), "max_abs_loss_diff": float(diff.max()),
                         "max_rel_loss_diff": float((diff / np.abs(losses["numpy"])).max()),
                         "first_loss": float(losses["numpy"][0]), "last_loss": float(losses["numpy"][-1])}
    return results


CONFIGS = [  # (engine, processes, threads)
    ("numpy", 1, 1), ("numpy", 1, 2), ("numpy", 2, 1),
    ("torch", 1, 1), ("torch", 1, 2), ("torch", 2, 1),
]


def run_throughput(examples: int, repeats: int, batch_sizes: list[int]) -> list[dict]:
    configs = [(batch, *config) for batch in batch_sizes for config in CONFIGS]
    runs: dict[tuple, list[dict]] = {config: [] for config in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            for config in configs:  # interleaved: machine drift hits every configuration
                batch, engine, processes, threads = config
                out = Path(tmp) / f"{batch}-{engine}-{processes}-{threads}-{repeat}.json"
                launch([str(Path(__file__).resolve()), "--worker", engine, "cpu", str(examples), str(batch),
                        str(out)], processes=processes, threads=threads)
                runs[config].append(json.loads(out.read_text()))
    rows = []
    for (batch, engine, processes, threads), results in runs.items():
        rates = [r["tokens_per_s"] for r in results]
        rows.append({"batch_size": batch, "engine": engine, "processes": processes, "threads": threads,
                     "tokens": results[0]["tokens"], "tokens_per_s": float(np.median(rates)), "runs": rates,
                     "seconds": float(np.median([r["seconds"] for r in results]))})
    for row in rows:
        base = next(r for r in rows if r["batch_size"] == row["batch_size"] and r["engine"] == row["engine"]
                    and r["processes"] == 1 and r["threads"] == 1)
        row["speedup_vs_1x1"] = row["tokens_per_s"] / base["tokens_per_s"]
        row["efficiency"] = row["speedup_vs_1x1"] / (row["processes"] * row["threads"])
    return rows


def run_gpu(examples: int) -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"available": False, "note": "torch sees no CUDA GPU on this machine: no GPU measurement was made"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "gpu.json"
        launch([str(Path(__file__).resolve()), "--worker", "torch", "cuda", str(examples), "64", str(out)],
               threads=2)
        return {"available": True, "device": torch.cuda.get_device_name(0), **json.loads(out.read_text())}


# --- the doc ------------------------------------------------------------------------------------------------------


def render(results: dict) -> str:
    lines = [f"Measured by `benchmarks/scaling.py` on {results['date']} ({results['machine']}); torch "
             f"{results['torch']}, gloo on 127.0.0.1.", ""]
    eq = results.get("equality")
    if eq:
        lines += ["**Same weights.** 2 processes vs 1 process with the same global batch:", "",
                  "| run | engine | max \\|Δ weight\\| |", "|---|---|---:|"]
        for engine, diff in eq["ddp_float64"].items():
            lines.append(f"| float64 classifier network, batch 7 over 36 examples (uneven shards, a one-row last "
                         f"batch), 3 epochs | {engine} | {diff:.1e} |")
        lines.append(f"| `unrolled train` on SST-2 sentences, float32, batch 64, 1 epoch | numpy | "
                     f"{eq['ddp_cli_float32']:.1e} |")
        lines += ["", "**Same loss curve.** torch engine vs NumPy engine, same initial weights and batches "
                  "(the classifier and the language model in float32, the forecaster in float64 as it always "
                  "trains; these models' defaults have no dropout):", "",
                  "| model | steps | first loss | last loss | max \\|Δ loss\\| | max relative |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, r in eq["engines"].items():
            lines.append(f"| {name} | {r['steps']} | {r['first_loss']:.4f} | {r['last_loss']:.4f} | "
                         f"{r['max_abs_loss_diff']:.1e} | {r['max_rel_loss_diff']:.1e} |")
        lines.append("")
    rows = results.get("throughput")
    if rows:
        lines += [f"**Throughput.** Training an SST-2 sentence classifier (GRU, E = 64, H = 128) on the first "
                  f"{results['examples']:,} training sentences ({rows[0]['tokens']:,} tokens), one epoch, each "
                  f"configuration a fresh process, median of {results['repeats']} interleaved runs; the batch is "
                  "the global batch (each of 2 processes computes half of it):", "",
                  "| batch | engine | processes × threads | tokens/s | fit seconds | speed-up vs 1 × 1 "
                  "| efficiency |",
                  "|---:|---|---|---:|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['batch_size']} | {r['engine']} | {r['processes']} × {r['threads']} | "
                         f"{r['tokens_per_s']:,.0f} | {r['seconds']:.2f} | {r['speedup_vs_1x1']:.2f}× | "
                         f"{r['efficiency']:.0%} |")
        lines.append("")
        for batch in sorted({r["batch_size"] for r in rows}):
            for engine in ("numpy", "torch"):
                pick = [r for r in rows if r["batch_size"] == batch and r["engine"] == engine]
                two_proc = next(r for r in pick if r["processes"] == 2)
                two_thr = next(r for r in pick if r["threads"] == 2)
                verdict = "beats" if two_proc["tokens_per_s"] > two_thr["tokens_per_s"] else "does not beat"
                lines.append(f"- batch {batch}, {engine}: 2 processes × 1 thread {verdict} 1 process × 2 threads "
                             f"({two_proc['tokens_per_s']:,.0f} vs {two_thr['tokens_per_s']:,.0f} tokens/s).")
        lines.append("")
    gpu = results.get("gpu")
    if gpu:
        if gpu["available"]:
            lines.append(f"**GPU.** torch engine on {gpu['device']}: {gpu['tokens_per_s']:,.0f} tokens/s.")
        else:
            lines.append(f"**GPU.** None: {gpu['note']}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="+", default=["equality", "throughput", "gpu"],
                        choices=["equality", "throughput", "gpu"])
    parser.add_argument("--examples", type=int, default=6920, help="SST-2 training sentences per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=20, help="steps of the engine loss-curve comparison")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--out", default=None, help="'-': print only; default: docs/scaling.md and the JSON")
    parser.add_argument("--worker", nargs=5, metavar=("ENGINE", "DEVICE", "EXAMPLES", "BATCH", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        engine, device, examples, batch_size, out = args.worker
        worker(engine, device, int(examples), int(batch_size), out)
        return
    import platform

    import torch

    if args.quick:
        args.examples, args.repeats = 600, 1
    results = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
               "torch": torch.__version__, "examples": args.examples, "repeats": args.repeats}
    if "equality" in args.sections:
        results["equality"] = run_equality(args.steps, args.quick)
    if "throughput" in args.sections:
        results["throughput"] = run_throughput(args.examples, args.repeats, args.batch_sizes)
    if "gpu" in args.sections:
        results["gpu"] = run_gpu(args.examples)
    text = render(results)
    print(text)
    if args.out != "-":
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        write_between_markers(DOC, "scaling", text)


if __name__ == "__main__":
    main()
