"""Greedy and beam search: beam 1 is greedy, a batch decodes as its sentences one at a time, a hand-built
model whose best sequence greedy misses, maximum lengths, <unk> handling."""

import numpy as np
import pytest

from unrolled.models.decoding import beam_search, greedy_decode, length_penalty, max_lengths
from unrolled.models.translator_net import TranslatorNetConfig, init_translator_params

BOS, EOS, UNK = 2, 3, 1


def _random_model(seed=0, input_feeding=False, cell="gru"):
    config = TranslatorNetConfig(11, 10, embedding_dim=6, hidden_size=5, cell=cell, input_feeding=input_feeding)
    params = init_translator_params(config, np.random.default_rng(seed), np.float64)
    params["decoder.out.weight"] *= 8  # peaked distributions: searches that differ
    return config, params


def _sources(seed=1, n=6):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 7, n)
    mask = np.arange(lengths.max()) < lengths[:, None]
    return rng.integers(2, 11, mask.shape) * mask, mask


COMMON = dict(bos_id=BOS, eos_id=EOS, unk_id=UNK)


@pytest.mark.parametrize("input_feeding", [False, True])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_beam_one_is_greedy(input_feeding, cell):
    config, params = _random_model(input_feeding=input_feeding, cell=cell)
    src, mask = _sources()
    limits = max_lengths(mask.sum(1), 1.5, 3)
    greedy = greedy_decode(params, config, src, mask, max_len=limits, **COMMON)
    beam = beam_search(params, config, src, mask, max_len=limits, beam_size=1, **COMMON)
    for g, b in zip(greedy, beam):
        assert g.tokens == b.tokens and g.attended == b.attended and g.finished == b.finished
        assert g.log_prob == pytest.approx(b.log_prob, abs=1e-12)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_a_batch_decodes_as_its_sentences_one_at_a_time(beam_size):
    config, params = _random_model(seed=3)
    src, mask = _sources(seed=4, n=7)
    limits = max_lengths(mask.sum(1), 1.5, 3)
    batch = beam_search(params, config, src, mask, max_len=limits, beam_size=beam_size, alpha=0.6, **COMMON)
    for i in range(src.shape[0]):
        length = int(mask[i].sum())
        (alone,) = beam_search(params, config, src[i : i + 1, :length], mask[i : i + 1, :length],
                               max_len=limits[i : i + 1], beam_size=beam_size, alpha=0.6, **COMMON)
        assert alone.tokens == batch[i].tokens
        assert alone.score == pytest.approx(batch[i].score, abs=1e-10)


def test_wider_beams_find_sequences_at_least_as_probable():
    config, params = _random_model(seed=5)
    src, mask = _sources(seed=6, n=8)
    limits = max_lengths(mask.sum(1), 1.5, 3)
    greedy = greedy_decode(params, config, src, mask, max_len=limits, **COMMON)
    beam = beam_search(params, config, src, mask, max_len=limits, beam_size=6, **COMMON)
    for g, b in zip(greedy, beam):
        if g.finished:
            assert b.log_prob >= g.log_prob - 1e-12
    assert any(b.tokens != g.tokens for g, b in zip(greedy, beam))


def _bigram_model(next_probs: dict[int, dict[int, float]]):
    """A translator whose next-token distribution depends only on the previous token, p(· | prev) as given.

    Vocabulary 6 (pad, unk, <s>, </s>, A = 4, B = 5); H = E = 6. The decoder's embedding is the identity, its
    GRU has z ≈ 0 and n = tanh(3·onehot(prev)), so h = onehot(prev)·tanh(3); the combine layer passes h on
    (õ = tanh(h)) and the output layer reads log p(· | prev) off the coordinate prev.
    """
    v = 6
    config = TranslatorNetConfig(4, v, embedding_dim=v, hidden_size=v, cell="gru")
    params = {name: np.zeros(shape) for name, shape in config.param_shapes().items()}
    params["decoder.embedding.weight"] = np.eye(v)
    params["decoder.rnn.weight_ih_l0"][2 * v :] = 3 * np.eye(v)  # the n gate (PyTorch order r, z, n)
    params["decoder.rnn.bias_ih_l0"][v : 2 * v] = -40.0  # z = σ(−40) ≈ 0: h = n
    params["decoder.combine.weight"][:, 2 * v :] = np.eye(v)  # õ = tanh(h), the context ignored
    level = np.tanh(np.tanh(3.0))
    for prev, probs in next_probs.items():
        logp = np.full(v, -50.0)
        for token, p in probs.items():
            logp[token] = np.log(p)
        params["decoder.out.weight"][:, prev] = logp / level
    return config, params


def test_beam_finds_the_sequence_greedy_misses():
    # after <s>: A 0.6, B 0.4; after A: A 0.35, B 0.35, </s> 0.3; after B: </s> 0.99
    # greedy: A then A … (never better than 0.6 · 0.35 · …); best: B </s> with 0.4 · 0.99 = 0.396
    config, params = _bigram_model({2: {4: 0.6, 5: 0.4}, 4: {4: 0.35, 5: 0.35, 3: 0.3}, 5: {3: 0.99, 4: 0.01}})
    src, mask = np.array([[1, 1]]), np.ones((1, 2), bool)
    limits = np.array([6])
    (greedy,) = greedy_decode(params, config, src, mask, max_len=limits, **COMMON)
    (beam,) = beam_search(params, config, src, mask, max_len=limits, beam_size=2, **COMMON)
    assert greedy.tokens[:2] == [4, 4]
    assert beam.tokens == [5] and beam.finished
    assert beam.log_prob == pytest.approx(np.log(0.4 * 0.99), abs=1e-6)


def test_maximum_length_and_forbidden_unk():
    config, params = _bigram_model({2: {1: 0.9, 4: 0.1}, 1: {1: 0.9, 3: 0.1}, 4: {4: 0.9, 3: 0.1}})
    src, mask = np.array([[1, 1, 1]]), np.ones((1, 3), bool)
    for decode in (greedy_decode, beam_search):
        (h,) = decode(params, config, src, mask, max_len=np.array([4]), **COMMON)
        assert h.tokens == [UNK] * 4 and not h.finished and len(h.attended) == 4
        (h,) = decode(params, config, src, mask, max_len=np.array([4]), forbid_unk=True, **COMMON)
        assert UNK not in h.tokens and h.tokens == [4] * 4


def test_length_penalty_and_max_lengths():
    assert length_penalty(1, 0.0) == 1.0
    assert length_penalty(7, 1.0) == pytest.approx(2.0)
    assert list(max_lengths(np.array([0, 4, 10]), 1.5, 2)) == [2, 8, 17]
    assert list(max_lengths(np.array([3]), 0.0, 0.0)) == [1]
