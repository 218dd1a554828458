"""sample_next (sampling.py): greedy at temperature 0, the exact kept set under top-k / top-p, frequencies that
follow the probabilities, determinism under a seed, and argument validation."""

from __future__ import annotations

import numpy as np
import pytest

from unrolled.sampling import sample_next

PROBS = np.array([0.05, 0.4, 0.1, 0.3, 0.15])  # by rank: 1, 3, 4, 2, 0
LOGITS = np.log(PROBS) + 2.0  # any shift gives the same softmax


def _draws(n: int = 4000, seed: int = 0, **kwargs) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([sample_next(LOGITS, rng=rng, **kwargs) for _ in range(n)])


def test_temperature_zero_is_argmax_and_ignores_the_rng():
    rng = np.random.default_rng(0)
    assert {sample_next(LOGITS, rng=rng, temperature=0) for _ in range(50)} == {1}
    assert rng.random() == np.random.default_rng(0).random()  # no number was drawn


def test_a_very_low_temperature_gives_the_argmax():
    assert set(_draws(500, temperature=1e-3).tolist()) == {1}


@pytest.mark.parametrize(
    ("kwargs", "allowed"),
    [
        (dict(top_k=1), {1}),
        (dict(top_k=2), {1, 3}),
        (dict(top_k=3), {1, 3, 4}),
        (dict(top_p=0.4), {1}),  # the top token alone has mass 0.4 >= 0.4
        (dict(top_p=0.5), {1, 3}),  # 0.4 < 0.5 <= 0.7
        (dict(top_p=0.8), {1, 3, 4}),  # 0.7 < 0.8 <= 0.85
        (dict(top_p=0.01), {1}),  # always at least the top token
        (dict(top_k=3, top_p=0.8), {1, 3}),  # after top-k: 0.4/0.85, 0.7/0.85 = 0.82 >= 0.8
    ],
)
def test_top_k_and_top_p_never_emit_an_excluded_token(kwargs, allowed):
    assert set(_draws(3000, **kwargs).tolist()) == allowed


def test_frequencies_follow_the_probabilities():
    counts = np.bincount(_draws(20000), minlength=len(PROBS)) / 20000
    np.testing.assert_allclose(counts, PROBS, atol=0.015)


def test_frequencies_after_top_k_follow_the_renormalized_probabilities():
    counts = np.bincount(_draws(20000, top_k=2), minlength=len(PROBS)) / 20000
    np.testing.assert_allclose(counts, [0, 0.4 / 0.7, 0, 0.3 / 0.7, 0], atol=0.015)


def test_temperature_flattens_or_sharpens_the_distribution():
    hot = np.bincount(_draws(20000, temperature=100.0), minlength=5) / 20000
    np.testing.assert_allclose(hot, 0.2, atol=0.015)
    cold = np.bincount(_draws(20000, temperature=0.5), minlength=5) / 20000
    np.testing.assert_allclose(cold, PROBS**2 / (PROBS**2).sum(), atol=0.015)


def test_same_seed_same_draws_and_another_seed_differs():
    np.testing.assert_array_equal(_draws(200, seed=7, top_p=0.9), _draws(200, seed=7, top_p=0.9))
    assert not np.array_equal(_draws(200, seed=7), _draws(200, seed=8))


def test_large_logits_do_not_overflow():
    rng = np.random.default_rng(0)
    assert sample_next(np.array([1000.0, 1001.0, -1000.0]), rng=rng, top_k=1) == 1


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(temperature=-0.1), "temperature"),
        (dict(temperature=float("nan")), "temperature"),
        (dict(top_k=0), "top_k"),
        (dict(top_k=1.5), "top_k"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.1), "top_p"),
    ],
)
def test_bad_arguments_are_value_errors_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        sample_next(LOGITS, rng=np.random.default_rng(0), **kwargs)


def test_bad_logits_are_value_errors():
    with pytest.raises(ValueError, match="^logits:"):
        sample_next(np.zeros((2, 3)), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="^logits:"):
        sample_next(np.array([0.0, np.inf]), rng=np.random.default_rng(0))
