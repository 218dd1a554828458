"""CTC decoding on hand-built posteriors: greedy, prefix beam search (against brute force), best alignment."""

import numpy as np
import pytest

from unrolled.models.ctc_decoding import best_alignment, collapse, greedy_decode, prefix_beam_search
from unrolled.nn.ctc import ctc_forward


def _frames(*rows):
    probs = np.array(rows, dtype=np.float64)
    return np.log(probs / probs.sum(axis=1, keepdims=True))


def test_collapse_merges_repeats_then_drops_blanks():
    assert collapse([1, 1, 0, 1, 2, 2, 0]) == [1, 1, 2]
    assert collapse([0, 0, 0]) == []
    assert collapse([3, 3, 3], blank=3) == []


def test_greedy_reads_the_argmax_path():
    log_probs = _frames([0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8])
    assert greedy_decode(log_probs) == [1, 1, 2]


def test_beam_search_finds_the_labelling_greedy_misses():
    # Each frame's argmax is the blank (greedy: nothing), but "1" summed over its alignments is more probable.
    log_probs = _frames([0.4, 0.35, 0.25], [0.4, 0.35, 0.25])
    assert greedy_decode(log_probs) == []
    best, _ = prefix_beam_search(log_probs, beam_size=4)[0]
    assert best == [1]


def test_beam_scores_are_exact_when_the_beam_holds_everything():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 4))
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    results = prefix_beam_search(log_probs, beam_size=500)
    for labels, log_p in results[:10]:
        targets = np.array([labels or [1]])
        loss, _ = ctc_forward(logits[None], np.array([6]), targets, np.array([len(labels)]), reduction="none")
        assert log_p == pytest.approx(-loss[0], abs=1e-9)
    total = np.logaddexp.reduce([log_p for _, log_p in results])
    assert total == pytest.approx(0.0, abs=1e-9)  # every labelling of 6 frames, probabilities summing to 1


def test_best_alignment_is_the_most_probable_path_of_the_labels():
    log_probs = _frames([0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8])
    path, log_p = best_alignment(log_probs, [1, 1, 2])
    assert collapse(path) == [1, 1, 2]
    assert list(path) == [0, 1, 0, 1, 2]
    assert log_p == pytest.approx(sum(log_probs[t, k] for t, k in enumerate(path)))
    with pytest.raises(ValueError, match="cannot be emitted in 2 frames"):
        best_alignment(log_probs[:2], [1, 1])
