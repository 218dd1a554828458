"""Decoding a translation: greedy search and beam search over the attention decoder, batched.

Both encode a batch of sources once, then run the decoder one step at a time (``decoder_step_forward`` in
inference mode) for every live hypothesis of every sentence together. A sentence's search depends only on
its own rows, so a batch gives the same outputs as one sentence at a time (up to float rounding in the
batched matrix products).

Beam search (as fairseq's): each step scores every live hypothesis' extensions by the sum of log
probabilities, and takes the best 2K of each sentence's K·V candidates, best first. A candidate that ends
with ``</s>`` is finished when it ranks among the first K; the others continue, K of them. A sentence is
done when it has K finished hypotheses and none of its live ones can still beat the best of them (a log
probability only falls as tokens are added), or when it reaches its maximum length (its live hypotheses
then count as finished). The answer is the finished hypothesis with the best length-normalised score

    score(y) = log p(y | x) / lp(|y|),   lp(n) = ((5 + n) / 6)^α        (Wu et al. 2016; α = 0: no penalty)

where |y| counts ``</s>``. With K = 1 this is exactly greedy search (tested).

Maximum length of a sentence's output: ⌊a·S + b⌋ tokens before ``</s>`` (S its source length), at most
MAX_OUTPUT_TOKENS.
``<unk>``: ``forbid_unk`` takes it out of the candidates; otherwise each output ``<unk>`` comes with the source
position the step attended most, so the caller can copy the source token there (Luong et al. 2015's
replacement). ``<pad>`` and ``<s>`` are never candidates: they are not words of a translation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unrolled.models.translator_net import TranslatorNetConfig, encode
from unrolled.nn.decoder import decoder_step_forward
from unrolled.nn.losses import log_softmax
from unrolled.nn.recurrent_layer import sub_params
from unrolled.text.vocab import Vocab

__all__ = ["Hypothesis", "max_lengths", "greedy_decode", "beam_search", "length_penalty"]


@dataclass(frozen=True)
class Hypothesis:
    tokens: list[int]  # target ids, without <s>, without </s>
    attended: list[int]  # per output token (and </s> when it ended with one), the most attended source position
    log_prob: float  # log p(tokens </s> | source) (without </s> when it ran to the maximum length)
    score: float  # log_prob / lp(length)
    finished: bool  # ended with </s> (False: stopped at the maximum length)


def length_penalty(length: int, alpha: float) -> float:
    """lp(n) = ((5 + n) / 6)^α."""
    return ((5.0 + length) / 6.0) ** alpha


MAX_OUTPUT_TOKENS = 2_000  # the longest output decoded, whatever a and b say (a step costs S work each)


def max_lengths(source_lengths: np.ndarray, a: float, b: float) -> np.ndarray:
    """⌊a·S + b⌋ per sentence, at least 1 and at most MAX_OUTPUT_TOKENS."""
    limits = np.floor(a * np.asarray(source_lengths, dtype=np.float64) + b)
    return np.clip(limits, 1, MAX_OUTPUT_TOKENS).astype(np.int64)


def _take_state(state, rows: np.ndarray):
    """The recurrent state (L, M, H) (or a tuple of them) of the given rows."""
    if isinstance(state, tuple):
        return tuple(component[:, rows] for component in state)
    return state[:, rows]


class _Decoder:
    """One step of the decoder for M live rows, each row pointing at its sentence's keys."""

    def __init__(self, params, config: TranslatorNetConfig, src_ids, src_mask, forbid_unk, unk_id, bos_id):
        self.config = config
        self.never = [Vocab.PAD_ID, bos_id]  # ids no output step may choose
        self.params = sub_params(params, "decoder.")
        self.keys, self.state0, _ = encode(params, config, src_ids, src_mask, keep_cache=False)
        self.keys = np.ascontiguousarray(self.keys)
        self.src_mask = src_mask
        self.forbid_unk, self.unk_id = forbid_unk, unk_id

    def step(self, sentence_of_row, prev_ids, state, prev_output):
        logits, weights, state, output, _ = decoder_step_forward(
            self.params, self.config.decoder, prev_ids, self.keys[sentence_of_row],
            src_mask=self.src_mask[sentence_of_row], state=state, prev_output=prev_output, keep_cache=False,
        )
        logp = log_softmax(logits)  # (M, V)
        logp[:, self.never] = -np.inf
        if self.forbid_unk:
            logp[:, self.unk_id] = -np.inf
        return logp, weights.argmax(axis=1), state, output


def greedy_decode(params, config: TranslatorNetConfig, src_ids: np.ndarray, src_mask: np.ndarray, *,
                  bos_id: int, eos_id: int, unk_id: int, max_len: np.ndarray,
                  forbid_unk: bool = False) -> list[Hypothesis]:
    """The most probable token at every step, until ``</s>`` or ``max_len`` (N,) tokens."""
    decoder = _Decoder(params, config, src_ids, src_mask, forbid_unk, unk_id, bos_id)
    n = src_ids.shape[0]
    live = np.arange(n)  # the sentences still decoding
    prev = np.full(n, bos_id, np.int64)
    state, output = decoder.state0, None
    tokens: list[list[int]] = [[] for _ in range(n)]
    attended: list[list[int]] = [[] for _ in range(n)]
    log_probs = np.zeros(n)
    finished = np.zeros(n, bool)
    for t in range(int(max_len.max()) + 1):
        logp, argmax_src, state, output = decoder.step(live, prev, state, output)
        best = logp.argmax(axis=1)
        keep = []
        for row, sentence in enumerate(live):
            token = int(best[row])
            log_probs[sentence] += logp[row, token]
            attended[sentence].append(int(argmax_src[row]))
            if token == eos_id:
                finished[sentence] = True
                continue
            tokens[sentence].append(token)
            if len(tokens[sentence]) < max_len[sentence]:
                keep.append(row)
        if not keep:
            break
        keep_rows = np.array(keep)
        live, prev = live[keep_rows], best[keep_rows]
        state = _take_state(state, keep_rows)
        output = None if output is None else output[keep_rows]
    return [Hypothesis(tokens[i], attended[i], float(log_probs[i]), float(log_probs[i]), bool(finished[i]))
            for i in range(n)]


def _settled(done: list[Hypothesis], live: list, limit: int, alpha: float) -> bool:
    """No live hypothesis can beat the best finished one: a log probability only falls as tokens are added,
    so a live one's best possible score is its log probability over lp(limit), the largest penalty."""
    if not live:
        return True
    best_live = max(score for _, _, score, _ in live)
    return max(h.score for h in done) >= best_live / length_penalty(limit, alpha)


def beam_search(params, config: TranslatorNetConfig, src_ids: np.ndarray, src_mask: np.ndarray, *,
                bos_id: int, eos_id: int, unk_id: int, max_len: np.ndarray, beam_size: int = 5,
                alpha: float = 0.0, forbid_unk: bool = False) -> list[Hypothesis]:
    """Beam search of width ``beam_size`` (see the module docstring); the best hypothesis per sentence."""
    decoder = _Decoder(params, config, src_ids, src_mask, forbid_unk, unk_id, bos_id)
    n, k = src_ids.shape[0], beam_size
    # the live hypotheses, one row each: its sentence, its tokens, attended positions and log probability
    sentence_of_row = np.arange(n)
    histories: list[tuple[list[int], list[int]]] = [([], []) for _ in range(n)]
    row_log_prob = np.zeros(n)
    prev = np.full(n, bos_id, np.int64)
    state, output = decoder.state0, None
    done: list[list[Hypothesis]] = [[] for _ in range(n)]
    step = 0
    while sentence_of_row.size:
        logp, argmax_src, state, output = decoder.step(sentence_of_row, prev, state, output)
        total = row_log_prob[:, None] + logp  # (M, V)
        vocab = total.shape[1]
        keep_rows, keep_tokens, keep_scores, keep_histories = [], [], [], []
        start = 0
        while start < sentence_of_row.size:  # the rows of one sentence are contiguous
            sentence = int(sentence_of_row[start])
            stop = start
            while stop < sentence_of_row.size and sentence_of_row[stop] == sentence:
                stop += 1
            flat = total[start:stop].reshape(-1)
            width = min(2 * k, flat.size)
            top = np.argpartition(-flat, width - 1)[:width]
            top = top[np.lexsort((top, -flat[top]))]  # best first; ties by (row, token) order
            live = []
            for rank, index in enumerate(top):
                score = flat[index]
                if not np.isfinite(score):
                    break
                row, token = start + int(index) // vocab, int(index) % vocab
                tokens, attended = histories[row]
                if token == eos_id:
                    if rank < k:
                        length = len(tokens) + 1
                        done[sentence].append(Hypothesis(list(tokens), attended + [int(argmax_src[row])],
                                                         float(score), float(score) / length_penalty(length, alpha),
                                                         True))
                    continue
                if len(live) < k:
                    live.append((row, token, score, (tokens + [token], attended + [int(argmax_src[row])])))
            at_max = step + 1 >= int(max_len[sentence])
            settled = len(done[sentence]) >= k and _settled(done[sentence], live, int(max_len[sentence]), alpha)
            if at_max or not live or settled:
                if at_max:  # out of length: the live hypotheses count as finished too
                    for row, token, score, (tokens, attended) in live:
                        done[sentence].append(Hypothesis(tokens, attended, float(score),
                                                         float(score) / length_penalty(len(tokens), alpha), False))
            else:
                for row, token, score, history in live:
                    keep_rows.append(row)
                    keep_tokens.append(token)
                    keep_scores.append(score)
                    keep_histories.append(history)
            start = stop
        if not keep_rows:
            break
        rows = np.array(keep_rows)
        sentence_of_row = sentence_of_row[rows]
        histories = keep_histories
        row_log_prob = np.array(keep_scores)
        prev = np.array(keep_tokens, np.int64)
        state = _take_state(state, rows)
        output = None if output is None else output[rows]
        step += 1
    best = []
    for i in range(n):
        best.append(max(done[i], key=lambda h: h.score) if done[i] else Hypothesis([], [], 0.0, 0.0, False))
    return best
