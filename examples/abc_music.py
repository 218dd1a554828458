"""Generating music is next-character prediction too: train a character-level RNN on tunes in ABC notation
and let it write a new one.

    python examples/abc_music.py            # under a minute on 2 cores; prints generated tunes

The tunes are composed here, by a small random walk over the G-major scale (no external data): each has
an ABC header (X: number, T: title, M: metre, L: note length, K: key) and four bars of eight notes that
end on the tonic. The model learns the header format, the bar lines and the shape of the melodies from
the characters alone; paste its output into any ABC player to hear it.
"""

from __future__ import annotations

import numpy as np

from unrolled.models.language_model import RNNLanguageModel

SCALE = "GABcdefg"  # G major over an octave and a bit, in ABC pitch letters


def compose(rng: np.random.Generator, number: int) -> str:
    """One tune: header, then 4 bars of 8 eighth notes, a random walk that returns to G."""
    degree, bars = 0, []
    for bar in range(4):
        notes = []
        for step in range(8):
            last = bar == 3 and step == 7
            degree = 0 if last else abs(degree + int(rng.choice([-2, -1, -1, 1, 1, 2])))  # reflect at the tonic
            degree = min(degree, len(SCALE) - 1)
            notes.append(SCALE[degree])
        bars.append("".join(notes[:4]) + " " + "".join(notes[4:]))
    return f"X:{number}\nT:Walk {number}\nM:4/4\nL:1/8\nK:G\n|" + "|".join(bars) + "|]\n\n"


def main() -> None:
    rng = np.random.default_rng(0)
    corpus = "".join(compose(rng, i) for i in range(1, 401))
    model = RNNLanguageModel(cell="gru", embedding_dim=16, hidden_size=128, bptt=64, batch_size=16, epochs=30,
                             lr=3e-3, random_state=0)
    model.fit(corpus)
    print(f"trained on {len(corpus):,} characters of ABC; validation loss {model.val_loss_:.3f} nats/char "
          f"({model.bits_per_char:.3f} bits)\n")
    print("X:401\nT:" + "".join(model.generate("X:401\nT:", 160, temperature=0.7, seed=3)))


if __name__ == "__main__":
    main()
