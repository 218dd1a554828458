"""Pretrain the word-level language models that classifiers fine-tune from (``init_from``).

    python benchmarks/pretrain.py --model large    # sentiment.py's *-pre-imdb configurations (≈ 40 min, 1 thread)
    python benchmarks/pretrain.py --model small    # the bundled imdb-lm, train's default start (≈ 35 min)
    python benchmarks/pretrain.py --model elman    # sentiment.py's rnn*-pre-imdb configurations (≈ 30 min)
    python benchmarks/pretrain.py --model large-sst2   # the large one trained on on SST-2's text (≈ 1 min)
    python benchmarks/pretrain.py --model large-backward   # the large one's right-to-left twin (after large)
    python benchmarks/pretrain.py --corpus-only    # only write the corpus

The corpus is unlabelled text only: the 25,000 IMDB *training* reviews (their labels unused; ``<br />``
line breaks read as spaces), one review per line. It never holds a test review of any dataset evaluated here:
IMDB's test reviews are a separate file, and SST-2 and MR are other datasets (MR is deliberately not used:
its Rotten Tomatoes snippets contain SST-2's test sentences).

``large-sst2`` is ULMFiT's second stage: the ``large`` model (``--init-from``: its vocabulary and weights)
trained on for 2 epochs (lr 1e-3, the last 5 % held out) on SST-2's 6,920 training sentences, one per line,
their labels unused: the text the SST-2 classifier trains on (as phrases), never its dev or test sentences.

``large-backward`` reads the same corpus right to left (``--direction backward``: each token predicted from
the ones after it), starting from the ``large`` model's weights with its embedding frozen
(``--init-from``, ``--freeze-embeddings``), so that the two share one vocabulary and one set of word vectors:
a bidirectional classifier starts its left-to-right direction from ``large`` and its right-to-left one from
this (``RNNClassifier(init_from=…, init_from_backward=…)``, sentiment.py's ``bilstm256-*-bi`` configurations).

Every other model: ``unrolled train --task lm`` at word level, sampled softmax with 1,024
candidates per batch, 3 epochs of truncated BPTT (64 steps, 32 streams), the last 2 % of the corpus for
validation. ``large``: a one-layer LSTM over the 30,000 most frequent tokens, E = 128, H = 256 (48 MB).
``elman``: the same vocabulary and sizes for a two-layer Elman (tanh) RNN, what the Elman classifiers start
from. ``small``: a one-layer LSTM over 10,000 tokens, E = H = 128 with the output layer tied to the
embedding, to fit the 6 MB budget of a bundled model. The
command is printed and recorded in the model's config.json, which every classifier fine-tuned from it
copies (``training.pretrained_from``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from unrolled.datasets import locate

COMMON = ["--level", "word", "--softmax", "sampled", "--num-sampled", "1024", "--dropout", "0.1",
          "--bptt", "64", "--batch-size", "32", "--epochs", "3", "--validation-fraction", "0.02",
          "--checkpoint-every", "500"]
LARGE = ["--cell", "lstm", "--max-vocab", "30000", "--embedding-dim", "128", "--hidden-size", "256"]
MODELS = {  # name -> (output directory, options, the text it trains on: the IMDB corpus or a dataset's sentences)
    "large": ("imdb-lm-lstm256", LARGE, "imdb"),
    "large-sst2": ("imdb-lm-lstm256-sst2", [*LARGE, "--init-from", "{work}/imdb-lm-lstm256", "--epochs", "2",
                                            "--lr", "1e-3", "--validation-fraction", "0.05"], "sst2"),
    "large-backward": ("imdb-lm-lstm256-backward", [*LARGE, "--init-from", "{work}/imdb-lm-lstm256", "--direction",
                                                    "backward", "--freeze-embeddings"], "imdb"),
    "small": ("imdb-lm", ["--cell", "lstm", "--max-vocab", "10000", "--embedding-dim", "128", "--hidden-size", "128",
                          "--tie-weights"], "imdb"),
    "elman": ("imdb-lm-rnn256x2", ["--cell", "rnn", "--num-layers", "2", "--max-vocab", "30000", "--embedding-dim",
                                   "128", "--hidden-size", "256"], "imdb"),
}


def write_corpus(out: Path, data_dir: str | None) -> str:
    """The IMDB training reviews, one per line; returns the file's sha256."""
    files = locate("imdb", data_dir=data_dir, download=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(files["train"], "rt", encoding="utf-8") as reviews, open(out, "w", encoding="utf-8") as corpus:
        for line in reviews:
            corpus.write(json.loads(line)["text"].replace("<br />", " ").replace("\n", " ") + "\n")
    return hashlib.sha256(out.read_bytes()).hexdigest()


def write_sentences(out: Path, dataset: str, data_dir: str | None) -> str:
    """A dataset's training sentences (labels unused), one per line; returns the file's sha256."""
    from unrolled.data.readers import read_dataset

    files = locate(dataset, data_dir=data_dir, download=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(text.replace("\n", " ") + "\n" for text in read_dataset(files["train"]).texts),
                   encoding="utf-8")
    return hashlib.sha256(out.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", default="runs/pretrain", help="where the corpus and the model go")
    parser.add_argument("--data-dir", help="folder laid out like the shared data (default: $UNROLLED_DATA_DIR)")
    parser.add_argument("--model", choices=sorted(MODELS), default="large")
    parser.add_argument("--corpus-only", action="store_true")
    args = parser.parse_args()
    work = Path(args.work_dir)
    name, options, text = MODELS[args.model]
    corpus = work / f"{text}_train.txt"
    digest = write_corpus(corpus, args.data_dir) if text == "imdb" else write_sentences(corpus, text, args.data_dir)
    print(f"corpus {corpus}: {corpus.stat().st_size:,} bytes, sha256 {digest}", file=sys.stderr)
    if args.corpus_only:
        return
    options = [option.format(work=work) for option in options]
    command = [sys.executable, "-m", "unrolled", "train", "--task", "lm", "--text", str(corpus), *COMMON, *options,
               "--out", str(work / name)]
    print(" ".join(command), file=sys.stderr, flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    sys.exit(subprocess.call(command, env=env))


if __name__ == "__main__":
    main()
