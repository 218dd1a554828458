"""Make the README's walkthrough text and explain figure from a model trained here.

    UNROLLED_DATA_DIR=../shared/data python benchmarks/docs_figures.py

Writes docs/walkthrough.txt (``unrolled walkthrough``'s output) and, after training the seed's Elman RNN
(last-state pooling) on the SST-2 phrase set for a few epochs, docs/explain.txt and docs/explain.png:
the trace of one review sentence. The checkpoint goes to models/sst2-rnn-docs (not committed).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from unrolled import walkthrough
from unrolled.data.readers import read_dataset
from unrolled.explain import explain, render_text
from unrolled.models.classifier import RNNClassifier
from unrolled.plot import plot_trace

SENTENCE = "it 's a charming and often affecting journey , though the ending is too long and rather dull ."
NAMES = {"0": "negative", "1": "positive"}


def main() -> None:
    docs = Path("docs")
    docs.mkdir(exist_ok=True)
    (docs / "walkthrough.txt").write_text(walkthrough.render_text(walkthrough.run_walkthrough()))

    root = os.environ.get("UNROLLED_DATA_DIR")
    if not root or not (Path(root) / "sst2" / "train_phrases.tsv").exists():
        sys.exit("set UNROLLED_DATA_DIR to the shared data folder (it holds sst2/)")
    train = read_dataset(Path(root) / "sst2" / "train_phrases.tsv")
    dev = read_dataset(Path(root) / "sst2" / "dev.tsv")
    model = RNNClassifier(cell="rnn", pooling="last", embedding_dim=64, hidden_size=64, dropout=0.3, lr=1e-3,
                          epochs=4, batch_size=64, patience=2, min_freq=2)
    model.fit(train.texts, [NAMES[y] for y in train.labels], validation=(dev.texts, [NAMES[y] for y in dev.labels]))
    model.save("models/sst2-rnn-docs")
    trace = explain(model, SENTENCE)
    (docs / "explain.txt").write_text(
        f"$ unrolled explain --model models/sst2-rnn-docs \"{SENTENCE}\"\n"
        f"(Elman RNN, dev accuracy {model.history_.best_metric:.3f})\n\n" + render_text(trace)
    )
    plot_trace(trace, docs / "explain.png")
    print(render_text(trace))


if __name__ == "__main__":
    main()
