"""Writes the golden values that tests/test_golden.py compares against: logits and gradients of every
network on fixed batches, and the bundled models' predictions and explain traces.

Run once, at commit ed4a45d (before the architecture change of issue 13), on both kernel sets:

    PYTHONPATH=src python tests/golden/make_golden.py                     # fused C kernels -> golden_fused.npz
    UNROLLED_FUSED=0 PYTHONPATH=src python tests/golden/make_golden.py    # NumPy kernels  -> golden_numpy.npz

The script only calls public entry points whose names and signatures the change keeps (the networks'
``*_forward``/``*_backward``, ``RNNClassifier.load``, ``explain``), so rerunning it at a later commit and
comparing the files shows whether behaviour moved. Do not regenerate the committed files to make the test
pass: they are the "before" of a before/after comparison. The one exception is a bundled model replaced by a
retrained one (its old values cannot be reproduced by the new model): ``--replace-model NAME`` rewrites that
model's values only, and tests/test_golden.py's REPLACED records when and why.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SENTENCES = ["I love this", "a dull, lifeless film", "not bad at all , really", "what a boring , boring story ."]


def batch_cases():
    """(name, kwargs of ClassifierNetConfig, mask kind) for every cell and the options that change the path."""
    cases = []
    for cell, nonlin in (("rnn", "tanh"), ("rnn", "relu"), ("gru", "tanh"), ("lstm", "tanh")):
        for bidirectional in (False, True):
            for pooling in ("last", "max", "mean"):
                for mask_kind in ("none", "right", "holes", "small"):
                    name = f"{cell}-{nonlin}-{'bi' if bidirectional else 'uni'}-{pooling}-{mask_kind}"
                    cases.append((name, dict(cell=cell, nonlinearity=nonlin, bidirectional=bidirectional,
                                             pooling=pooling, num_layers=2), mask_kind))
    return cases


def make_mask(kind: str, n: int, t_len: int) -> np.ndarray | None:
    if kind == "none":
        return None
    if kind == "right":
        lengths = np.array([t_len, 3, t_len - 1, 1, 5, 2][:n])
        return np.arange(t_len)[None, :] < lengths[:, None]
    if kind == "small":  # SMALL_BATCH rows or fewer: the C sequence loop when built
        lengths = np.array([t_len, 2, 4][:n])
        return np.arange(t_len)[None, :] < lengths[:, None]
    mask = np.ones((n, t_len), dtype=bool)  # holes: not right-padded
    mask[0, 2] = mask[1, 0] = mask[2, 4] = False
    return mask


def flat_grads(prefix: str, grads: dict, out: dict) -> None:
    for name, value in grads.items():
        if hasattr(value, "indices"):  # SparseRows
            out[f"{prefix}/{name}.indices"] = np.asarray(value.indices)
            out[f"{prefix}/{name}.values"] = np.asarray(value.values)
        else:
            out[f"{prefix}/{name}"] = np.asarray(value)


def compute() -> dict[str, np.ndarray]:
    """Every golden array under its name (the names say network/case/quantity)."""
    from unrolled.explain import explain
    from unrolled.models.classifier import RNNClassifier
    from unrolled.models.classifier_net import ClassifierNetConfig, classifier_backward, classifier_forward, init_classifier_params
    from unrolled.models.forecaster_net import ForecasterNetConfig, forecaster_backward, forecaster_forward, init_forecaster_params
    from unrolled.models.lm_net import LMNetConfig, init_lm_params, lm_backward, lm_forward
    from unrolled.pretrained import model_path

    out: dict[str, np.ndarray] = {}
    for name, kwargs, mask_kind in batch_cases():
        n = 3 if mask_kind == "small" else 6
        t_len = 7
        config = ClassifierNetConfig(vocab_size=23, embedding_dim=5, hidden_size=6, num_classes=3, dropout=0.25, **kwargs)
        params = init_classifier_params(config, np.random.default_rng(1))
        data = np.random.default_rng(2)
        ids = data.integers(1, 23, size=(n, t_len))
        targets = data.integers(0, 3, size=n)
        mask = make_mask(mask_kind, n, t_len)
        logits, loss, _ = classifier_forward(params, config, ids, mask=mask)
        out[f"classifier/{name}/logits"] = logits
        logits, loss, cache = classifier_forward(params, config, ids, mask=mask, targets=targets, training=True,
                                                 rng=np.random.default_rng(3))
        out[f"classifier/{name}/train_logits"] = logits
        out[f"classifier/{name}/loss"] = np.array(loss)
        flat_grads(f"classifier/{name}/grads", classifier_backward(cache), out)

    for cell in ("rnn", "gru", "lstm"):
        for tie in (False, True):
            config = LMNetConfig(vocab_size=17, embedding_dim=6 if tie else 5, hidden_size=6, cell=cell, num_layers=2,
                                 dropout=0.2, tie_weights=tie)
            params = init_lm_params(config, np.random.default_rng(4))
            data = np.random.default_rng(5)
            ids = data.integers(0, 17, size=(4, 9))
            targets = data.integers(0, 17, size=(4, 9))
            logits, loss, state, cache = lm_forward(params, config, ids, targets=targets, training=True,
                                                    rng=np.random.default_rng(6))
            key = f"lm/{cell}-{'tied' if tie else 'untied'}"
            out[key + "/logits"] = logits
            out[key + "/loss"] = np.array(loss)
            for k, s in enumerate(state if isinstance(state, tuple) else (state,)):
                out[key + f"/state{k}"] = s
            grads, dstate0 = lm_backward(cache)
            flat_grads(key + "/grads", grads, out)
            for k, s in enumerate(dstate0 if isinstance(dstate0, tuple) else (dstate0,)):
                out[key + f"/dstate0_{k}"] = s

    for cell in ("rnn", "gru", "lstm"):
        config = ForecasterNetConfig(input_size=3, hidden_size=5, horizon=4, cell=cell, num_layers=2, dropout=0.1)
        params = init_forecaster_params(config, np.random.default_rng(7))
        data = np.random.default_rng(8)
        x = data.standard_normal((5, 11, 3))
        y = data.standard_normal((5, 4))
        pred, loss, cache = forecaster_forward(params, config, x, targets=y, training=True, rng=np.random.default_rng(9))
        out[f"forecaster/{cell}/pred"] = pred
        out[f"forecaster/{cell}/loss"] = np.array(loss)
        flat_grads(f"forecaster/{cell}/grads", forecaster_backward(cache), out)

    for model_name in ("sst2-best", "sst2-rnn"):
        model = RNNClassifier.load(model_path(model_name))
        out[f"pretrained/{model_name}/proba"] = model.predict_proba(SENTENCES)
        for i, sentence in enumerate(SENTENCES):
            trace = explain(model, sentence)
            for field in ("probabilities", "x", "h", "prefix_probabilities", "delta", "grad_h", "grad_x"):
                out[f"explain/{model_name}/{i}/{field}"] = np.asarray(getattr(trace, field))
            for gate, values in trace.gates.items():
                out[f"explain/{model_name}/{i}/gate_{gate}"] = values
            out[f"explain/{model_name}/{i}/loss"] = np.array(trace.loss)
    return out


def fingerprint() -> dict:
    """What the bits depend on: the kernel set and build, NumPy and its BLAS."""
    from threadpoolctl import threadpool_info  # in the dev environment through scikit-learn

    from unrolled.nn import fused

    return {
        "kernels": "fused" if fused.ACTIVE else "numpy",
        "instruction_set": fused.INSTRUCTION_SET,
        "numpy": np.__version__,
        "machine": platform.machine(),
        "blas": [list(pair) for pair in sorted({(i.get("internal_api"), i.get("architecture"))
                                                for i in threadpool_info() if i.get("user_api") == "blas"}, key=str)],
    }


def main() -> None:
    out = compute()
    info = fingerprint()
    kernels = info["kernels"]
    if sys.argv[1:2] == ["--replace-model"]:
        replace_model(sys.argv[2], out, info)
        return
    np.savez_compressed(HERE / f"golden_{kernels}.npz", **out)
    (HERE / f"golden_{kernels}.json").write_text(json.dumps(info, indent=2) + "\n")
    sys.stdout.write(f"wrote {len(out)} arrays for the {kernels} kernels\n")


def replace_model(name: str, out: dict, info: dict) -> None:
    """``--replace-model NAME``: a bundled model was replaced by a retrained one (test_golden.REPLACED says
    which and why). Only that model's values are rewritten; every other saved value stays the "before". Run
    it where the saved fingerprint is reproduced (e.g. UNROLLED_FUSED_ISA=avx2 OPENBLAS_CORETYPE=Haswell), so
    that the new values are as exact as the old ones."""
    kernels = info["kernels"]
    saved_info = json.loads((HERE / f"golden_{kernels}.json").read_text())
    if info != saved_info:
        sys.exit(f"the fingerprint {info} is not the saved {saved_info}: set the build and BLAS kernels it names")
    prefixes = (f"pretrained/{name}/", f"explain/{name}/")
    with np.load(HERE / f"golden_{kernels}.npz", allow_pickle=False) as saved:
        kept = {key: saved[key] for key in saved.files if not key.startswith(prefixes)}
    new = {key: value for key, value in out.items() if key.startswith(prefixes)}
    if not new:
        sys.exit(f"{name}: no golden values are computed for it")
    np.savez_compressed(HERE / f"golden_{kernels}.npz", **kept, **new)
    sys.stdout.write(f"replaced {name}'s values ({len(new)} arrays) for the {kernels} kernels; kept {len(kept)}\n")


if __name__ == "__main__":
    main()
