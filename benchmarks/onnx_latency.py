"""ONNX export: agreement with unrolled and B = 1 latency under onnxruntime (one thread) vs unrolled itself.

    PYTHONPATH=src python benchmarks/onnx_latency.py                 # docs/results/onnx.json, docs/onnx.md
    PYTHONPATH=src python benchmarks/onnx_latency.py --quick --out -  # a smoke run, stdout only

Two models: the bundled classifier ``sst2-best`` (an LSTM, max pooling) and a small character-level
LSTM language model trained here in a few seconds on a built-in paragraph. Both are exported to a temporary
directory with :func:`unrolled.onnx_export.export_onnx` and loaded into onnxruntime with
``intra_op_num_threads = inter_op_num_threads = 1``; NumPy's BLAS is held to one thread as well
(``OPENBLAS_NUM_THREADS=1`` and friends, set before NumPy loads), so both sides get one core.

Agreement: the classifier on 512 random id sequences of lengths 1..60 in right-padded batches of 64 (logits
vs ``classifier_forward``, probabilities vs ``predict_proba``'s softmax) and on a few sentences through
``predict_proba``; the language model over a 256-step window from a random state and step by step with the
state fed back (logits and the final h, c).

Latency, B = 1, the median of ``--repeats`` calls timed one by one, the implementations alternating in blocks
so that machine drift hits all of them:

- classifier, "I love this": unrolled ``predict_proba`` (text -> probabilities: tokenize, encode, forward,
  softmax), unrolled's network alone (``classifier_forward``, ids -> logits), onnxruntime ``run`` (ids and
  lengths -> logits and probabilities), and onnxruntime with the same tokenize + encode in front;
- language model, one generation step: unrolled ``lm_forward`` on one token with the state (what
  ``generate`` runs per token) vs onnxruntime ``run`` with h0, c0.
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before NumPy loads its BLAS
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import unrolled  # noqa: E402
from unrolled.data.batching import pad_batch  # noqa: E402
from unrolled.models.classifier_net import classifier_forward  # noqa: E402
from unrolled.models.lm_net import lm_forward  # noqa: E402
from unrolled.nn.losses import softmax  # noqa: E402
from unrolled.onnx_export import DEFAULT_OPSET, export_onnx  # noqa: E402
from unrolled.text.tokenize import tokenize  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SENTENCE = "I love this"
CHECK_SENTENCES = ["I love this", "a dull , lifeless and overlong mess", "not bad at all", "fine",
                   "the performances are strong but the script lets them down , again and again ."]
LM_TEXT = """\
It was a bright cold day in April, and the clocks were striking thirteen. The hallway smelt of boiled
cabbage and old rag mats. At one end of it a coloured poster, too large for indoor display, had been tacked
to the wall. It depicted simply an enormous face, more than a metre wide: the face of a man of about
forty-five, with a heavy black moustache and ruggedly handsome features. Outside, even through the shut
window-pane, the world looked cold. Down in the street little eddies of wind were whirling dust and torn
paper into spirals, and though the sun was shining and the sky a harsh blue, there seemed to be no colour in
anything, except the posters that were plastered everywhere.
"""
LM_CONFIG = dict(level="char", cell="lstm", embedding_dim=32, hidden_size=128, num_layers=2, bptt=32,
                 batch_size=8, epochs=60, lr=3e-3, validation_fraction=0.0)
DOC_BEGIN, DOC_END = "<!-- onnx-latency:begin -->", "<!-- onnx-latency:end -->"


def ort_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure_interleaved(calls: dict[str, object], repeats: int, block: int = 50, warmup: int = 50) -> dict:
    """Median, p10 and p90 in µs of each callable, timed one call at a time, in alternating blocks."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    clock = time.perf_counter_ns
    for _ in range(max(1, repeats // block)):
        for name, call in calls.items():
            samples = times[name]
            for _ in range(block):
                start = clock()
                call()
                samples.append((clock() - start) / 1000.0)
    out = {}
    for name, samples in times.items():
        deciles = statistics.quantiles(samples, n=10)
        out[name] = {"median_us": statistics.median(samples), "p10_us": deciles[0], "p90_us": deciles[-1],
                     "calls": len(samples)}
    return out


# --- the classifier ------------------------------------------------------------------------------------------


def classifier_section(tmp: Path, repeats: int) -> dict:
    model = unrolled.load("sst2-best")
    started = time.perf_counter()
    path = export_onnx(model, tmp / "sst2-best.onnx")
    export_s = time.perf_counter() - started
    sess = ort_session(path)
    config = model.net_config_

    # agreement: random id sequences of many lengths, right-padded in batches of 64, then real sentences
    rng = np.random.default_rng(0)
    sequences = [rng.integers(2, config.vocab_size, size=int(n)) for n in rng.integers(1, 61, size=512)]
    logit_diff = prob_diff = 0.0
    for start in range(0, len(sequences), 64):
        ids, mask = pad_batch(sequences[start : start + 64], pad_id=0)
        logits, probs = sess.run(["logits", "probabilities"], {"ids": ids, "lengths": mask.sum(axis=1)})
        expected, _, _ = classifier_forward(model.params_, config, ids, mask=mask, keep_cache=False)
        logit_diff = max(logit_diff, float(np.abs(logits - expected).max()))
        prob_diff = max(prob_diff, float(np.abs(probs - softmax(expected.astype(np.float64))).max()))
    ids, mask = pad_batch(model._encode(CHECK_SENTENCES), pad_id=0)
    probs = sess.run(["probabilities"], {"ids": ids, "lengths": mask.sum(axis=1)})[0]
    proba_diff = float(np.abs(probs - model.predict_proba(CHECK_SENTENCES)).max())

    # latency, B = 1
    tokens = model.vocab_
    ids = np.array([model._encode([SENTENCE])[0]], dtype=np.int64)
    lengths = np.array([ids.shape[1]], dtype=np.int64)
    feeds = {"ids": ids, "lengths": lengths}

    def ort_text():
        encoded = tokens.encode(tokenize(SENTENCE, lowercase=model.lowercase)) or [tokens.UNK_ID]
        sess.run(None, {"ids": np.array([encoded], dtype=np.int64), "lengths": np.array([len(encoded)])})

    mask = np.ones(ids.shape, dtype=bool)
    timings = measure_interleaved({
        "unrolled predict_proba (text)": lambda: model.predict_proba([SENTENCE]),
        "unrolled network (ids)": lambda: classifier_forward(model.params_, config, ids, mask=mask,
                                                             keep_cache=False),
        "onnxruntime run (ids)": lambda: sess.run(None, feeds),
        "onnxruntime + tokenize (text)": ort_text,
    }, repeats)
    net = model.net_config_
    shape = (f"{'bidirectional ' if net.bidirectional else ''}{net.cell.upper()}, H {net.hidden_size}, "
             f"E {net.embedding_dim}, V {net.vocab_size}, {net.pooling} pooling")
    return {"model": "sst2-best", "description": shape,
            "input": f"{SENTENCE!r} ({ids.shape[1]} tokens)", "onnx_bytes": path.stat().st_size,
            "export_seconds": round(export_s, 3), "max_abs_diff": {"logits": logit_diff, "probabilities": prob_diff,
                                                                    "predict_proba": proba_diff},
            "latency": timings}


# --- the language model --------------------------------------------------------------------------------------


def lm_section(tmp: Path, repeats: int, quick: bool) -> dict:
    started = time.perf_counter()
    config = dict(LM_CONFIG, epochs=2) if quick else LM_CONFIG
    model = unrolled.RNNLanguageModel(**config).fit(LM_TEXT * 2)
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    path = export_onnx(model, tmp / "lm.onnx")
    export_s = time.perf_counter() - started
    sess = ort_session(path)
    net = model.net_config_
    layers, hidden = net.num_layers, net.hidden_size

    rng = np.random.default_rng(1)
    ids = rng.integers(0, net.vocab_size, size=(1, 256))
    h0 = rng.uniform(-0.5, 0.5, (layers, 1, hidden)).astype(np.float32)
    c0 = rng.uniform(-0.5, 0.5, (layers, 1, hidden)).astype(np.float32)
    logits, hn, cn = sess.run(["logits", "hn", "cn"], {"ids": ids, "h0": h0, "c0": c0})
    expected, _, (eh, ec), _ = lm_forward(model.params_, net, ids, state0=(h0, c0))
    window = {"logits": float(np.abs(logits - expected).max()), "h": float(np.abs(hn - eh).max()),
              "c": float(np.abs(cn - ec).max()), "max_abs_c": float(np.abs(ec).max())}
    step = {"logits": 0.0, "h": 0.0, "c": 0.0}
    h, c = h0, c0
    for t in range(64):  # one step per call, the state fed back
        step_logits, h, c = sess.run(["logits", "hn", "cn"], {"ids": ids[:, t : t + 1], "h0": h, "c0": c})
        _, _, (eh, ec), _ = lm_forward(model.params_, net, ids[:, : t + 1], state0=(h0, c0))
        for key, diff in (("logits", step_logits[0, 0] - expected[0, t]), ("h", h - eh), ("c", c - ec)):
            step[key] = max(step[key], float(np.abs(diff).max()))

    one = np.array([[model.vocab_.id_of("e")]], dtype=np.int64)
    state = (h0, c0)
    feeds = {"ids": one, "h0": h0, "c0": c0}
    timings = measure_interleaved({
        "unrolled lm_forward (1 step)": lambda: lm_forward(model.params_, net, one, state0=state),
        "onnxruntime run (1 step)": lambda: sess.run(None, feeds),
    }, repeats)
    sample = model.generate("It was", 60, temperature=0)
    return {"model": "char LSTM trained here", "description": f"{layers}-layer LSTM, H {hidden}, "
            f"E {net.embedding_dim}, V {net.vocab_size}", "input": "one token and the state",
            "train_seconds": round(train_s, 2), "onnx_bytes": path.stat().st_size, "export_seconds": round(export_s, 3),
            "max_abs_diff": {"window_256_steps": window, "stepwise_64_steps": step},
            "greedy_sample": "It was" + "".join(sample), "latency": timings}


# --- report ------------------------------------------------------------------------------------------------


def table(results: dict) -> str:
    rows = ["| model | what is timed | median µs | p10 µs | p90 µs | vs unrolled |", "|---|---|---:|---:|---:|---:|"]
    for key in ("classifier", "language_model"):
        section = results[key]
        latency = section["latency"]
        base = next(v["median_us"] for k, v in latency.items() if k.startswith("unrolled"))
        for name, t in latency.items():
            rows.append(f"| {section['model']} | {name} | {t['median_us']:.1f} | {t['p10_us']:.1f} | "
                        f"{t['p90_us']:.1f} | {base / t['median_us']:.2f}× |")
    return "\n".join(rows)


def differences(results: dict) -> str:
    c, lm = results["classifier"]["max_abs_diff"], results["language_model"]["max_abs_diff"]
    w, s = lm["window_256_steps"], lm["stepwise_64_steps"]
    return (f"Max |onnxruntime − unrolled|: classifier logits {c['logits']:.1e}, probabilities "
            f"{c['probabilities']:.1e} (512 random sequences of 1–60 tokens, padded batches of 64), "
            f"`predict_proba` {c['predict_proba']:.1e}. Language model over a 256-step window from a random "
            f"state: logits {w['logits']:.1e}, h {w['h']:.1e}, c {w['c']:.1e} (the cell state grows to "
            f"|c| = {w['max_abs_c']:.1f}: a float32 rounding of {w['c'] / w['max_abs_c']:.0e} relative); step "
            f"by step with the state fed back (64 steps): logits {s['logits']:.1e}, h {s['h']:.1e}, "
            f"c {s['c']:.1e}.")


def render(results: dict) -> str:
    m = results["machine"]
    c, lm = results["classifier"], results["language_model"]
    return (f"Measured by `benchmarks/onnx_latency.py` on {results['date']} ({m['machine']}, {m['cores']} cores, "
            f"Python {m['python']}, NumPy {m['numpy']}, onnxruntime {m['onnxruntime']}, opset {results['opset']}); "
            "one thread on both sides, B = 1, the median of "
            f"{c['latency']['onnxruntime run (ids)']['calls']} calls each. Classifier: `{c['model']}` "
            f"({c['description']}), input {c['input']}, {c['onnx_bytes'] / 1e6:.1f} MB file. Language model: "
            f"{lm['description']}, trained in {lm['train_seconds']:.1f} s, one generation step, "
            f"{lm['onnx_bytes'] / 1e6:.1f} MB file. \"vs unrolled\" is unrolled's first row over this row "
            "(above 1: faster than unrolled).\n\n" + table(results) + "\n\n" + differences(results) + "\n")


def update_doc(path: Path, text: str) -> None:
    doc = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(DOC_BEGIN) + ".*?" + re.escape(DOC_END), re.S)
    if not pattern.search(doc):
        raise SystemExit(f"{path}: no {DOC_BEGIN} … {DOC_END} block to fill")
    path.write_text(pattern.sub(lambda _: f"{DOC_BEGIN}\n{text}{DOC_END}", doc), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3000, help="timed calls per implementation (default 3000)")
    parser.add_argument("--quick", action="store_true", help="few repeats, a shorter training: a smoke run")
    parser.add_argument("--out", default=str(REPO_ROOT / "docs"), metavar="DIR",
                        help="where docs/onnx.md and results/onnx.json go; '-' prints only (default: docs)")
    args = parser.parse_args()
    import onnxruntime

    repeats = 200 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            "date": date.today().isoformat(), "opset": DEFAULT_OPSET, "unrolled": unrolled.__version__,
            "machine": {"machine": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version(),
                        "numpy": np.__version__, "onnxruntime": onnxruntime.__version__,
                        "threads": {"onnxruntime": 1, "blas": os.environ["OPENBLAS_NUM_THREADS"]}},
            "classifier": classifier_section(Path(tmp), repeats),
            "language_model": lm_section(Path(tmp), repeats, args.quick),
        }
    text = render(results)
    sys.stdout.write(text)
    if args.out != "-":
        out = Path(args.out)
        (out / "results").mkdir(parents=True, exist_ok=True)
        (out / "results" / "onnx.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        update_doc(out / "onnx.md", text)


if __name__ == "__main__":
    main()
