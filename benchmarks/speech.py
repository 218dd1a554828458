"""Spoken digits (FSDD): isolated digits on the official and leave-one-speaker-out splits, connected digits with
CTC on unseen speakers, the 1-nearest-neighbour anchor, CTC speed against PyTorch, and transcribe's latency.

    UNROLLED_DATA_DIR=../shared/data python benchmarks/speech.py anchor      # 1-NN on pooled MFCC statistics
    UNROLLED_DATA_DIR=../shared/data python benchmarks/speech.py tune --config '{"vtlp": 0.2}'  # a candidate
    UNROLLED_DATA_DIR=../shared/data python benchmarks/speech.py official    # takes 0-4 held out
    UNROLLED_DATA_DIR=../shared/data python benchmarks/speech.py loso        # every speaker held out in turn
    UNROLLED_DATA_DIR=../shared/data python benchmarks/speech.py connected   # CTC, speakers george, jackson held out
    UNROLLED_DATA_DIR=../shared/data python benchmarks/speech.py ctc-speed   # loss + backward vs torch
    UNROLLED_DATA_DIR=../shared/data python benchmarks/speech.py latency     # `unrolled transcribe` of a 3 s file
    python benchmarks/speech.py report                                       # docs/speech.md from the results

Each part trains (dev = a share of the training utterances, same speakers), saves its model under models/,
evaluates the test part once and writes docs/results/speech/<part>.json. ``loso --speaker NAME`` runs one fold.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from unrolled.audio.digits import connected_digits, fsdd_recordings, speaker_split, speakers, speech_split
from unrolled.audio.features import FeatureConfig, compute_features
from unrolled.audio.wav import read_wav, write_wav
from unrolled.models.speech import RNNSpeechRecognizer

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results" / "speech"
MODELS = ROOT / "models"
ISOLATED = dict(objective="classify", features="mfcc", deltas=2, cell="gru", hidden_size=128, num_layers=2,
                dropout=0.2, epochs=40, patience=10, vtlp=0.12)
CONNECTED = dict(objective="ctc", features="mfcc", deltas=2, stack=3, cell="gru", hidden_size=128, num_layers=2,
                 dropout=0.2, epochs=25, patience=5, vtlp=0.12, beam_size=8)
CONNECTED_TEST_SPEAKERS = ("george", "jackson")  # the first two speakers in alphabetical order, fixed in advance
CONNECTED_TRAIN, CONNECTED_TEST, CONNECTED_SEED = 3000, 500, 0
TARGETS = {"official": 0.99, "loso_mean": 0.93, "connected_der": 0.08, "minutes": 30, "transcribe_s": 0.5}
ANCHORS = [
    ("1-nearest-neighbour on pooled MFCC statistics", "the table's column (`anchor`; the issue's own measurement "
     "was 97.3 % official, 43–85 % per held-out speaker)"),
    ("public BiLSTM, random split (not speaker-disjoint)", "98.4 %"),
    ("public MFCC-CNN, random split (not speaker-disjoint)", "97 %"),
]


def recordings():
    data_dir = os.environ.get("UNROLLED_DATA_DIR")
    if not data_dir:
        sys.exit("set UNROLLED_DATA_DIR to the folder that holds fsdd/recordings (e.g. ../shared/data)")
    return Path(data_dir) / "fsdd" / "recordings"


def save(name: str, record: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    record.update(date=str(date.today()), machine=f"{platform.machine()}, {os.cpu_count()} cores",
                  python=platform.python_version(), numpy=np.__version__)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}", flush=True)


class EpochLog:
    def on_epoch_end(self, result, params) -> None:
        print(f"  epoch {result.epoch}: loss {result.train_loss:.4f}, dev {result.dev_metric:.4f}, "
              f"{result.seconds:.1f}s{' *' if result.improved else ''}", flush=True)


def train_and_test(split, config: dict, out: Path) -> dict:
    model = RNNSpeechRecognizer(**config)
    model.fit(split.train_audio, split.train_texts, callbacks=[EpochLog()])
    model.save(out)
    started = time.perf_counter()
    scores = model.evaluate(split.test_audio, split.test_texts)
    return {"split": split.description, "config": config, "train_utterances": len(split.train_texts),
            "test_utterances": len(split.test_texts), "training_minutes": model.training_seconds_ / 60,
            "epochs_run": len(model.history_.epochs), "best_epoch": model.history_.best_epoch,
            "dev_metric": model.dev_metric_, "test_seconds": time.perf_counter() - started,
            "model": str(out.relative_to(ROOT)), **scores.to_json()}


# --- parts ------------------------------------------------------------------------------------------------


def pooled_mfcc(path) -> np.ndarray:
    f = compute_features(read_wav(path, 8000)[0], FeatureConfig(kind="mfcc", normalize=False))
    return np.concatenate([f.mean(axis=0), f.std(axis=0)])


def one_nn(train, test) -> float:
    x_train = np.stack([pooled_mfcc(r) for r in train.train_audio])
    x_test = np.stack([pooled_mfcc(r) for r in test])
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
    a, b = (x_train - mean) / std, (x_test - mean) / std
    nearest = np.argmin(((b[:, None, :] - a[None, :, :]) ** 2).sum(axis=2), axis=1)
    return nearest


def anchor(args) -> None:
    folder = recordings()
    record = {"method": "1-NN, Euclidean, on the per-utterance mean and std of 13 MFCCs (z-scored with training "
                        "statistics)", "folds": {}}
    for name in ["official"] + [f"speakers={s}" for s in speakers(fsdd_recordings(folder))]:
        split = speech_split(folder, name)
        nearest = one_nn(split, split.test_audio)
        predicted = [split.train_texts[i] for i in nearest]
        record["folds"][name] = float(np.mean([p == t for p, t in zip(predicted, split.test_texts)]))
        print(f"{name}: {record['folds'][name]:.4f}", flush=True)
    save("anchor", record)


TUNING_TEST = ("lucas", "nicolas")  # the tuning protocol's held-out speakers (their LOSO folds are not clean)


def tune(args) -> None:
    """One candidate configuration (JSON changes to the defaults): trained on the four other speakers, scored on
    lucas and nicolas; appended to tuning.json. The isolated-digit configuration was chosen this way."""
    folder = recordings()
    train, test = speaker_split(fsdd_recordings(folder), TUNING_TEST)
    changes = json.loads(args.config)
    model = RNNSpeechRecognizer(**changes)
    started = time.perf_counter()
    model.fit([r.path for r in train], [r.digit for r in train])
    scores = {s: model.score([r.path for r in test if r.speaker == s], [r.digit for r in test if r.speaker == s])
              for s in TUNING_TEST}
    record = {"config": changes, "tuning": scores, "mean": statistics.mean(scores.values()),
              "minutes": (time.perf_counter() - started) / 60, "epochs": len(model.history_.epochs),
              "best": model.history_.best_epoch}
    print(record, flush=True)
    previous = (_load("tuning") or {"runs": []})["runs"]
    save("tuning", {"protocol": f"train on the other four speakers, score on {', '.join(TUNING_TEST)}",
                    "runs": previous + [record]})


def official(args) -> None:
    split = speech_split(recordings(), "official")
    record = train_and_test(split, {**ISOLATED, "random_state": args.seed}, MODELS / "fsdd-official")
    print(f"official: accuracy {record['accuracy']:.4f} in {record['training_minutes']:.1f} min", flush=True)
    save("official", record)


def loso(args) -> None:
    folder = recordings()
    names = [args.speaker] if args.speaker else speakers(fsdd_recordings(folder))
    for name in names:
        split = speech_split(folder, f"speakers={name}")
        record = train_and_test(split, {**ISOLATED, "random_state": args.seed}, MODELS / f"fsdd-loso-{name}")
        record["speaker"] = name
        print(f"held out {name}: accuracy {record['accuracy']:.4f} in {record['training_minutes']:.1f} min",
              flush=True)
        save(f"loso-{name}", record)


def connected(args) -> None:
    split = speech_split(recordings(), "speakers=" + ",".join(CONNECTED_TEST_SPEAKERS), connected=CONNECTED_TRAIN,
                         connected_test=CONNECTED_TEST, seed=CONNECTED_SEED)
    record = train_and_test(split, {**CONNECTED, "random_state": args.seed}, MODELS / "fsdd-connected")
    model = RNNSpeechRecognizer.load(MODELS / "fsdd-connected")
    greedy = model.evaluate(split.test_audio, split.test_texts, beam_size=1)
    record["greedy"] = {"accuracy": greedy.accuracy, "symbol_error_rate": greedy.symbol_error_rate}
    lengths = [len(t) for t in split.test_texts]
    record["test_digits"] = int(sum(lengths))
    record["test_seconds_of_audio"] = float(sum(len(a) for a in split.test_audio) / 8000)
    print(f"connected: digit error rate {record['symbol_error_rate']:.4f} (greedy {greedy.symbol_error_rate:.4f}), "
          f"sequence accuracy {record['accuracy']:.4f}", flush=True)
    save("connected", record)


def ctc_speed(args) -> None:
    import torch

    from unrolled.nn.ctc import ctc_backward, ctc_forward

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n, t_len, c = 32, 150, 11
    logits = rng.standard_normal((n, t_len, c)).astype(np.float32)
    input_lengths = rng.integers(100, t_len + 1, n)
    input_lengths[0] = t_len
    target_lengths = rng.integers(2, 8, n)
    targets = rng.integers(1, c, (n, 7))

    def ours():
        _, cache = ctc_forward(logits, input_lengths, targets, target_lengths)
        ctc_backward(cache)

    x = torch.tensor(logits, requires_grad=True)
    tt, il, tl = torch.tensor(targets), torch.tensor(input_lengths), torch.tensor(target_lengths)

    def theirs():
        x.grad = None
        loss = torch.nn.functional.ctc_loss(torch.log_softmax(x, -1).transpose(0, 1), tt, il, tl)
        loss.backward()

    timings = {"unrolled": [], "torch": []}
    for _ in range(3):
        ours(), theirs()
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        for name, fn in (("unrolled", ours), ("torch", theirs)):
            started = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - started)
    record = {"batch": {"N": n, "T": t_len, "C": c, "labels": "2-7"}, "threads": args.threads,
              "repeats": args.repeats, "torch": torch.__version__,
              "ms": {name: 1000 * statistics.median(v) for name, v in timings.items()}}
    record["ratio_unrolled_over_torch"] = record["ms"]["unrolled"] / record["ms"]["torch"]
    print(record, flush=True)
    save(f"ctc_speed-{args.threads}thread", record)


def latency(args) -> None:
    model_dir = MODELS / "fsdd-connected"
    if not model_dir.is_dir():
        sys.exit(f"{model_dir} is missing: run `benchmarks/speech.py connected` first")
    held = [r for r in fsdd_recordings(recordings()) if r.speaker in CONNECTED_TEST_SPEAKERS]
    utterances = connected_digits(held, 200, seed=99)
    best = min(utterances, key=lambda u: abs(len(u.samples) / 8000 - 3.0))
    with tempfile.TemporaryDirectory() as tmp:
        wav = write_wav(Path(tmp) / "three_seconds.wav", best.samples, 8000)
        command = [sys.executable, "-m", "unrolled", "transcribe", "--model", str(model_dir), str(wav)]
        times, output = [], ""
        for _ in range(args.repeats):
            started = time.perf_counter()
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            times.append(time.perf_counter() - started)
    record = {"seconds_of_audio": len(best.samples) / 8000, "transcript": best.transcript,
              "output": output.strip().split("\t")[1:], "repeats": args.repeats,
              "process_seconds_median": statistics.median(times), "process_seconds_max": max(times),
              "command": "python -m unrolled transcribe --model models/fsdd-connected FILE"}
    print(record, flush=True)
    save("latency", record)


# --- report -----------------------------------------------------------------------------------------------


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _confusion(record: dict) -> list[str]:
    confusion = record["classes"]["confusion_matrix"]
    labels = confusion["labels"]
    lines = ["| true \\ predicted | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for label, row in zip(labels, confusion["rows_true_columns_predicted"]):
        lines.append(f"| **{label}** | " + " | ".join(str(v) if v else "·" for v in row) + " |")
    return lines


def report(args) -> None:
    lines = ["# Speech recognition: spoken digits", "",
             "Written by `benchmarks/speech.py report` from `docs/results/speech/*.json`; every number comes from "
             "a part of that script (see its docstring to rerun one). Data: the Free Spoken Digit Dataset, 3,000 "
             "recordings, 6 speakers × 10 digits × 50 takes, 8 kHz. Each model picks its epoch on a dev set of "
             "10 % of its training utterances (the training speakers) and is scored on its test part once.", ""]
    anchor_record, official_record = _load("anchor"), _load("official")
    lines += ["## Isolated digits", "",
              f"Network: {ISOLATED}.", "",
              "| split | test utterances | unrolled | 1-NN anchor | training |", "|---|---|---|---|---|"]
    folds = (anchor_record or {}).get("folds", {})
    if official_record:
        lines.append(f"| official (takes 0–4 held out) | {official_record['test_utterances']} | "
                     f"**{100 * official_record['accuracy']:.2f} %** | "
                     f"{100 * folds['official']:.1f} % | {official_record['training_minutes']:.1f} min |"
                     if "official" in folds else "")
    loso_records = [r for r in (_load(f"loso-{s}") for s in
                                ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")) if r]
    for record in loso_records:
        speaker = record["speaker"]
        nn = folds.get(f"speakers={speaker}")
        lines.append(f"| {speaker} held out | {record['test_utterances']} | {100 * record['accuracy']:.2f} % | "
                     f"{'' if nn is None else f'{100 * nn:.1f} %'} | {record['training_minutes']:.1f} min |")
    if loso_records:
        mean = statistics.mean(r["accuracy"] for r in loso_records)
        nn_mean = [folds.get(f"speakers={r['speaker']}") for r in loso_records]
        nn_text = f"{100 * statistics.mean(nn_mean):.1f} %" if None not in nn_mean else ""
        lines.append(f"| **leave-one-speaker-out mean ({len(loso_records)} folds)** | | **{100 * mean:.2f} %** | "
                     f"{nn_text} | |")
    lines += ["", f"Targets: official ≥ {100 * TARGETS['official']:.0f} %, leave-one-speaker-out mean ≥ "
              f"{100 * TARGETS['loso_mean']:.0f} %, each model ≤ {TARGETS['minutes']} minutes on 2 cores.", "",
              "Anchors: " + "; ".join(f"{name}: {value}" for name, value in ANCHORS) + ".", ""]
    first = _load("official-first-run")
    tuning = _load("tuning")
    lines += ["### How the configuration was chosen, and what is not clean", "",
              "- Features and augmentation were first compared with yweweler held out (log-mel 83.8 %, log-mel with "
              "speed perturbation and VTLP 81.6 %, MFCC + Δ + ΔΔ with VTLP 92.6 %; exploratory runs, not kept as "
              "results files): the yweweler fold below is therefore not a clean test.",
              ]
    if first:
        lines.append(f"- The first official-split run (same network, 30 epochs, patience 8, dev accuracy without "
                     f"a tie-break) scored {100 * first['accuracy']:.2f} % after stopping at epoch "
                     f"{first['best_epoch']}: its 270-utterance dev set had saturated (99.26 % at epoch 6, ties "
                     "later). The dev metric now breaks ties by the dev loss and training runs up to 40 epochs "
                     "(patience 10); the official number above is the second run, so the official test set was "
                     "seen twice.")
    if tuning:
        lines += ["- Then four candidates under a tuning protocol (" + tuning["protocol"] + "; "
                  "their LOSO folds are therefore not clean either), the defaults kept because they scored best:",
                  "", "| changes to the defaults | lucas | nicolas | mean |", "|---|---|---|---|"]
        for run in tuning["runs"]:
            lines.append(f"| `{json.dumps(run['config']) if run['config'] else 'defaults'}` | "
                         f"{100 * run['tuning']['lucas']:.1f} % | {100 * run['tuning']['nicolas']:.1f} % | "
                         f"{100 * run['mean']:.1f} % |")
        lines.append("")
    lines.append("")
    if official_record:
        lines += ["Confusion matrix, official split:", ""] + _confusion(official_record) + [""]
    for record in loso_records:
        if record["accuracy"] < 0.95:
            lines += [f"Confusion matrix, {record['speaker']} held out:", ""] + _confusion(record) + [""]
    connected_record = _load("connected")
    if connected_record:
        c = connected_record
        lines += ["## Connected digits (CTC)", "",
                  f"{c['split']}. Test speakers {', '.join(CONNECTED_TEST_SPEAKERS)} are never heard in training "
                  f"(fixed before any run: the first two in alphabetical order). Network: {CONNECTED}.", "",
                  "| test | utterances | digits | digit error rate | sequence accuracy | training |",
                  "|---|---|---|---|---|---|",
                  f"| prefix beam search (8) | {c['test_utterances']} | {c['test_digits']} | "
                  f"**{100 * c['symbol_error_rate']:.2f} %** | {100 * c['accuracy']:.2f} % | "
                  f"{c['training_minutes']:.1f} min |",
                  f"| greedy | | | {100 * c['greedy']['symbol_error_rate']:.2f} % | "
                  f"{100 * c['greedy']['accuracy']:.2f} % | |", "",
                  f"Target: digit error rate ≤ {100 * TARGETS['connected_der']:.0f} % on unseen speakers.", ""]
    speeds = [r for r in (_load(f"ctc_speed-{n}thread") for n in (1, 2)) if r]
    if speeds:
        first = speeds[0]
        lines += ["## CTC loss + backward against PyTorch", "",
                  f"One batch, N = {first['batch']['N']} utterances, T ≤ {first['batch']['T']} frames, C = "
                  f"{first['batch']['C']} symbols, 2–7 labels each, float32 logits; forward and backward of the loss "
                  f"only; median of {first['repeats']} runs, the two interleaved; torch {first['torch']}:", "",
                  "| threads | unrolled (NumPy) ms | torch.nn.functional.ctc_loss ms | unrolled / torch |",
                  "|---|---|---|---|"]
        for speed in speeds:
            lines.append(f"| {speed['threads']} | {speed['ms']['unrolled']:.2f} | {speed['ms']['torch']:.2f} | "
                         f"{speed['ratio_unrolled_over_torch']:.2f}× |")
        lines += ["", "unrolled runs the α and β recursions as NumPy operations over the whole batch, one frame at "
                  "a time (2T array steps, each over N × (2S + 1) positions), in float64; torch runs a compiled "
                  "kernel. The loss is a small part of a training step here (the recurrent layer dominates).", ""]
    lat = _load("latency")
    if lat:
        lines += ["## Transcribe latency", "",
                  f"`{lat['command']}` on a {lat['seconds_of_audio']:.2f} s connected-digit file (a whole process: "
                  f"start, load, features, network, beam search): median {lat['process_seconds_median']:.2f} s, "
                  f"max {lat['process_seconds_max']:.2f} s over {lat['repeats']} runs (target ≤ "
                  f"{TARGETS['transcribe_s']} s).", ""]
    out = ROOT / "docs" / "speech.md"
    out.write_text("\n".join(line for line in lines if line is not None) + "\n")
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    for name in ("anchor", "tune", "official", "loso", "connected", "ctc-speed", "latency", "report"):
        p = sub.add_parser(name)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--speaker", help="loso: only this fold")
        p.add_argument("--config", default="{}", help="tune: JSON changes to RNNSpeechRecognizer's defaults")
        p.add_argument("--threads", type=int, default=1, help="ctc-speed: torch threads")
        p.add_argument("--repeats", type=int, default=20 if name == "ctc-speed" else 5)
    args = parser.parse_args()
    {"anchor": anchor, "tune": tune, "official": official, "loso": loso, "connected": connected, "ctc-speed": ctc_speed,
     "latency": latency, "report": report}[args.part](args)


if __name__ == "__main__":
    main()
