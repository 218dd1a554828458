"""One word-level language-model training step, full softmax vs sampled softmax, on the IMDB pretraining corpus.

    python benchmarks/sampled_softmax_speed.py [--steps 20] [--data-dir DIR]

Builds the corpus as benchmarks/pretrain.py does, trains ``--steps`` steps of each (V = 30,000 words, an LSTM
with E = 128, H = 256, 32 streams × 64 steps, K = 1,024 candidates) on the first 3 MB of it, and prints the
mean milliseconds per step (a validation pass over 0.1 % of the text included, the same in both).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pretrain import write_corpus

from unrolled.models.language_model import RNNLanguageModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        corpus = Path(work) / "imdb_train.txt"
        write_corpus(corpus, args.data_dir)
        text = corpus.read_text(encoding="utf-8")[:3_000_000]
    print("| softmax | ms per step |\n|---|---:|")
    for softmax in ("sampled", "full"):
        model = RNNLanguageModel(level="word", cell="lstm", embedding_dim=128, hidden_size=256, max_vocab=30000,
                                 softmax=softmax, num_sampled=1024, bptt=64, batch_size=32, max_steps=args.steps,
                                 validation_fraction=0.001)
        started = time.perf_counter()
        model.fit(text)
        print(f"| {softmax} | {(time.perf_counter() - started) / args.steps * 1000:.0f} |", flush=True)


if __name__ == "__main__":
    main()
