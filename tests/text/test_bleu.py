import math

import numpy as np
import pytest

from unrolled.text.bleu import corpus_bleu


def test_identical_corpus_scores_100():
    refs = [["a", "man", "rides", "a", "bike", "."], ["two", "dogs", "play", "in", "the", "snow", "."]]
    score = corpus_bleu(refs, refs)
    assert score.score == pytest.approx(100.0) and score.brevity_penalty == 1.0


def test_hand_computed_example():
    hyp = [["the", "cat", "sat", "on", "the", "mat"]]
    ref = [["the", "cat", "is", "on", "the", "mat"]]
    # p1 = 5/6, p2 = 3/5 (the cat, on the, the mat), p3 = 1/4 (on the mat), p4 = 0/3 -> BLEU 0 without smoothing
    score = corpus_bleu(hyp, ref)
    assert score.precisions[:3] == pytest.approx((500 / 6, 60.0, 25.0)) and score.score == 0.0
    score3 = corpus_bleu(hyp, ref, max_order=3)
    assert score3.score == pytest.approx(100 * (5 / 6 * 3 / 5 * 1 / 4) ** (1 / 3))


def test_clipped_counts_and_brevity_penalty():
    score = corpus_bleu([["the", "the", "the"]], [["the", "cat", "sat", "on", "the", "mat"]], max_order=1)
    assert score.precisions[0] == pytest.approx(200 / 3)  # "the" counted at most twice
    assert score.brevity_penalty == pytest.approx(math.exp(1 - 6 / 3))


def test_matches_sacrebleu_on_random_corpora():
    sacrebleu = pytest.importorskip("sacrebleu")
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(12)]
    for trial in range(5):
        refs = [list(rng.choice(words, rng.integers(3, 15))) for _ in range(40)]
        hyps = [list(rng.choice(words, rng.integers(3, 15))) if rng.random() < 0.5 else r[: rng.integers(2, len(r) + 1)]
                for r in refs]
        mine = corpus_bleu(hyps, refs)
        theirs = sacrebleu.corpus_bleu([" ".join(h) for h in hyps], [[" ".join(r) for r in refs]],
                                       tokenize="none", smooth_method="none", force=True)
        assert mine.score == pytest.approx(theirs.score, abs=1e-9), trial
        assert mine.hypothesis_length == theirs.sys_len and mine.reference_length == theirs.ref_len


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="^references: expected one per hypothesis"):
        corpus_bleu([["a"]], [])
    with pytest.raises(ValueError, match=r"^hypotheses\[0\]: expected a list of tokens, got a str"):
        corpus_bleu(["a b"], [["a"]])
    with pytest.raises(ValueError, match="^max_order:"):
        corpus_bleu([["a"]], [["a"]], max_order=0)
    assert corpus_bleu([[]], [["a"]]).score == 0.0
