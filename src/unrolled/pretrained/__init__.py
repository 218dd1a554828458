"""Models that ship inside the package.

    sst2-rnn    the seed's Elman RNN (max-pooled states); ``unrolled explain`` uses it by default
    sst2-best   the most accurate model measured: an LSTM fine-tuned from a language model pretrained on the
                IMDB training reviews (labels unused); ``unrolled predict`` uses it by default
    imdb-lm     a word-level LSTM language model pretrained on the IMDB training reviews (labels unused):
                where ``unrolled train``'s classifiers start when no network option is given (``init_from``)

The SST-2 classifiers come from ``benchmarks/sentiment.py --save-pretrained``, the language model from
``benchmarks/pretrain.py --model small``.

Each is an ordinary checkpoint directory (model.safetensors, config.json, vocab.json) whose config.json
records the training command, the data files' sha256 and the dev and test accuracy (sst2-best also the
language model it started from, and how it was shrunk to the size budget: its vocabulary cut to the 18,000
most frequent tokens and its weights stored as float16). ``--model`` takes one
of these names or a checkpoint directory; so does ``load`` in the Python API
(``unrolled.load("sst2-best")``, ``RNNClassifier.load("sst2-best")``), through :func:`resolve`.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["BUNDLED", "CLASSIFIERS", "DEFAULT_EXPLAIN", "DEFAULT_INIT", "DEFAULT_PREDICT", "model_path", "resolve"]

BUNDLED = {
    "sst2-rnn": "Elman RNN, max-pooled states, trained on SST-2 (the seed's network)",
    "sst2-best": "LSTM, max-pooled states, fine-tuned on SST-2 from an IMDB language model (the most accurate "
                 "measured)",
    "imdb-lm": "word-level LSTM language model pretrained on the IMDB training reviews (train's default start)",
}
CLASSIFIERS = ("sst2-rnn", "sst2-best")
DEFAULT_INIT = "imdb-lm"
DEFAULT_PREDICT = "sst2-best"
DEFAULT_EXPLAIN = "sst2-rnn"
_HERE = Path(__file__).resolve().parent


def model_path(name_or_dir: str | Path) -> Path:
    """The checkpoint directory of a bundled model's name, or ``name_or_dir`` itself when it is a directory.

    A directory wins over a bundled name it happens to share (what the user typed is a path there).
    """
    path = Path(name_or_dir)
    if path.is_dir():
        return path
    name = str(name_or_dir)
    if name in BUNDLED:
        bundled = _HERE / name
        if not (bundled / "config.json").is_file():
            raise FileNotFoundError(f"bundled model {name!r} is missing from this installation ({bundled}); "
                                    "reinstall unrolled")
        return bundled
    raise FileNotFoundError(f"--model {name}: no such checkpoint directory, and not a bundled model "
                            f"({', '.join(BUNDLED)})")


def resolve(name_or_path: str | os.PathLike[str]) -> Path:
    """The checkpoint directory of a bundled model's name, else ``name_or_path`` itself as a Path.

    As :func:`model_path`, a directory wins over a bundled name it shares; unlike it, a path that does not
    exist comes back unchanged, so that loading it raises the checkpoint's own one-line error about it.
    """
    path = Path(name_or_path)
    if not path.is_dir() and str(name_or_path) in BUNDLED:
        return model_path(name_or_path)
    return path
