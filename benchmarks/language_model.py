"""Character-level language modelling on Tiny Shakespeare: validation loss against wall time.

    UNROLLED_DATA_DIR=../shared/data python benchmarks/language_model.py --cells lstm --minutes 45
    UNROLLED_DATA_DIR=../shared/data python benchmarks/language_model.py --cells rnn gru lstm --minutes 10

    # the three cells at once, one BLAS thread each, then one report:
    for c in rnn gru lstm; do OPENBLAS_NUM_THREADS=1 UNROLLED_DATA_DIR=../shared/data \
        python benchmarks/language_model.py --cells $c --minutes 40 --save-json lm_$c.json & done; wait
    python benchmarks/language_model.py --combine lm_rnn.json lm_gru.json lm_lstm.json --note "..."

The text's first 90 % trains, the last 10 % validates (nanoGPT's split; the model's own
validation_fraction=0.1). Each cell trains for at most ``--minutes`` of wall time (the loop stops after the
batch that crosses it), and every ``--eval-every`` seconds the validation loss (nats per character, the
state carried through the whole validation text) is measured; the curves go to docs/language_model.png,
the table and a sample from each model to docs/language_model.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

from unrolled.data.readers import read_text
from unrolled.models.language_model import RNNLanguageModel

CONFIG = dict(level="char", embedding_dim=64, hidden_size=256, num_layers=2, dropout=0.2, bptt=64, batch_size=32,
              lr=2e-3, clip_norm=1.0, epochs=1000, validation_fraction=0.1)
TARGET = 1.50  # nats per character (issue: validation loss <= 1.50 in <= 45 minutes on 2 cores)


class Curve:
    """Time box and loss-vs-wall-time recorder (a training-loop callback)."""

    def __init__(self, model: RNNLanguageModel, val_text: str, minutes: float, eval_every: float, log) -> None:
        self.model, self.val_text, self.log = model, val_text, log
        self.deadline_s, self.eval_every = 60 * minutes, eval_every
        self.points: list[tuple[float, int, float]] = []  # (seconds of training, step, validation loss)
        self.start = time.perf_counter()
        self.paused = 0.0  # evaluation time, not counted as training time
        self.next_eval = eval_every
        self.stop_training = False

    def training_seconds(self) -> float:
        return time.perf_counter() - self.start - self.paused

    def on_batch_end(self, step: int, loss: float) -> None:
        elapsed = self.training_seconds()
        if elapsed >= self.next_eval or elapsed >= self.deadline_s:
            self.evaluate(step)
            self.next_eval += self.eval_every
        self.stop_training = elapsed >= self.deadline_s

    def evaluate(self, step: int) -> None:
        t0 = time.perf_counter()
        seconds = self.training_seconds()
        loss = self.model.evaluate_loss(self.val_text)
        self.points.append((seconds, step, loss))
        self.paused += time.perf_counter() - t0
        self.log(f"  {self.model.cell}: {seconds / 60:5.1f} min, step {step}: validation {loss:.4f} nats/char")


def run(cell: str, text: str, minutes: float, eval_every: float, seed: int) -> dict:
    val_text = text[len(text) - int(len(text) * CONFIG["validation_fraction"]) :]
    model = RNNLanguageModel(cell=cell, random_state=seed, **CONFIG)
    curve = Curve(model, val_text, minutes, eval_every, print)
    model.fit(text, callbacks=[curve])
    best = min(loss for _, _, loss in curve.points)
    sample = "".join(model.generate("ROMEO:", 300, temperature=0.8, seed=seed))
    return {"cell": cell, "points": curve.points, "best": best, "final": curve.points[-1][2],
            "minutes": curve.points[-1][0] / 60, "sample": "ROMEO:" + sample}


def plot(results: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for r in results:
        minutes = [s / 60 for s, _, _ in r["points"]]
        ax.plot(minutes, [loss for _, _, loss in r["points"]], marker="o", markersize=3, label=r["cell"].upper())
    ax.axhline(TARGET, color="gray", linestyle="--", linewidth=1, label=f"target {TARGET}")
    ax.set_xlabel("training wall time (minutes, evaluation excluded)")
    ax.set_ylabel("validation loss (nats / character)")
    ax.set_title("Tiny Shakespeare, character level: validation loss against wall time")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"], choices=("rnn", "gru", "lstm"))
    parser.add_argument("--minutes", type=float, default=45.0, help="wall-time budget per cell (default: 45)")
    parser.add_argument("--eval-every", type=float, default=60.0, help="seconds between evaluations (default: 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/language_model.md")
    parser.add_argument("--save-json", metavar="PATH", help="also write the results as JSON (for --combine)")
    parser.add_argument("--combine", nargs="+", metavar="JSON", help="report saved results instead of training")
    parser.add_argument("--note", default="one run at a time", help="how the runs shared the machine")
    args = parser.parse_args()
    if args.combine:
        results = [json.loads(Path(path).read_text()) for path in args.combine]
    else:
        root = os.environ.get("UNROLLED_DATA_DIR")
        if not root or not (Path(root) / "text" / "tinyshakespeare.txt").exists():
            sys.exit("set UNROLLED_DATA_DIR to the shared data folder (it holds text/tinyshakespeare.txt)")
        text = read_text(Path(root) / "text" / "tinyshakespeare.txt")
        results = [run(cell, text, args.minutes, args.eval_every, args.seed) for cell in args.cells]
        if args.save_json:
            Path(args.save_json).write_text(json.dumps(results[0] if len(results) == 1 else results))
            return
    write_report(results, args)


def write_report(results: list[dict], args: argparse.Namespace) -> None:
    out = Path(args.out)
    plot(results, out.parent / "language_model.png")
    rows = "\n".join(
        f"| {r['cell'].upper()} | {r['best']:.4f} | {r['best'] / np.log(2):.3f} | {r['final']:.4f} | {r['minutes']:.1f} | "
        f"{'met' if r['best'] <= TARGET else 'missed'} |" for r in results
    )
    samples = "\n\n".join(f"**{r['cell'].upper()}** (temperature 0.8):\n\n```\n{r['sample']}\n```"
                          for r in results)
    config = ", ".join(f"{k}={v!r}" for k, v in CONFIG.items())
    out.write_text(f"""# Language modelling: Tiny Shakespeare, character level

Made by `benchmarks/language_model.py` on {date.today()} ({os.cpu_count()} cores; {args.note}); the commands
to rerun are in the script's docstring.

First 90 % of the text trains, the last 10 % validates. `RNNLanguageModel({config})`, truncated BPTT
with the state carried between windows; each cell gets {max(r['minutes'] for r in results):.0f} minutes of training wall time;
the validation loss (nats per character) is measured every {args.eval_every:g} s. Target: ≤ {TARGET}.

| cell | best validation loss | bits/char | last validation loss | minutes trained | target ≤ {TARGET} |
|---|---:|---:|---:|---:|---|
{rows}

![validation loss against wall time](language_model.png)

## Samples

{samples}
""")
    print(out.read_text())


if __name__ == "__main__":
    main()
