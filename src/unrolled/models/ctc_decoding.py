"""Reading labels out of CTC's per-frame distributions: greedy (best path), prefix beam search, and the best
alignment of a given labelling (Viterbi), for explain's picture of which frame emitted which symbol.

Every function takes one utterance's log-probabilities ``log_probs`` (T, C) (log-softmax of the network's
per-frame logits, real frames only) and the ``blank`` symbol's index.
"""

from __future__ import annotations

import numpy as np

__all__ = ["best_alignment", "collapse", "greedy_decode", "prefix_beam_search"]


def collapse(path: np.ndarray | list[int], blank: int = 0) -> list[int]:
    """A frame path -> its labelling: merge repeated symbols, then drop blanks (1 1 _ 1 2 2 -> 1 1 2)."""
    labels, previous = [], None
    for symbol in map(int, path):
        if symbol != previous and symbol != blank:
            labels.append(symbol)
        previous = symbol
    return labels


def greedy_decode(log_probs: np.ndarray, blank: int = 0) -> list[int]:
    """The labelling of the most probable frame path (the argmax of every frame, collapsed)."""
    return collapse(np.argmax(log_probs, axis=1), blank)


def prefix_beam_search(log_probs: np.ndarray, beam_size: int = 8, blank: int = 0) -> list[tuple[list[int], float]]:
    """The ``beam_size`` most probable labellings and their log-probabilities, best first (Hannun et al. 2014).

    Each prefix keeps two scores, the probability of its alignments so far that end in a blank and of those
    that end in its last symbol, so that a repeated symbol is told apart from a held one (1 _ 1 is "1 1",
    1 1 is "1"). The scores are summed over every alignment kept in the beam: the exact p(labelling | x)
    when the beam holds every prefix, a lower bound otherwise.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size: expected a positive integer, got {beam_size}")
    t_len, c = log_probs.shape
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -np.inf)}  # prefix: (log p_blank, log p_symbol)
    # Prune each frame's symbols to those that could matter: the beam's worth of most probable ones.
    keep = min(c, beam_size + 1)
    for t in range(t_len):
        frame = log_probs[t]
        symbols = np.argpartition(-frame, keep - 1)[:keep] if keep < c else range(c)
        grown: dict[tuple[int, ...], list[float]] = {}

        def add(prefix: tuple[int, ...], index: int, value: float) -> None:
            scores = grown.setdefault(prefix, [-np.inf, -np.inf])
            scores[index] = np.logaddexp(scores[index], value)

        for prefix, (p_blank, p_symbol) in beams.items():
            total = np.logaddexp(p_blank, p_symbol)
            for symbol in symbols:
                symbol = int(symbol)
                p = float(frame[symbol])
                if symbol == blank:
                    add(prefix, 0, total + p)
                elif prefix and prefix[-1] == symbol:
                    add(prefix, 1, p_symbol + p)  # the held symbol
                    add(prefix + (symbol,), 1, p_blank + p)  # a repeat, after a blank
                else:
                    add(prefix + (symbol,), 1, total + p)
        ranked = sorted(grown.items(), key=lambda item: -np.logaddexp(*item[1]))[:beam_size]
        beams = {prefix: (scores[0], scores[1]) for prefix, scores in ranked}
    results = [(list(prefix), float(np.logaddexp(*scores))) for prefix, scores in beams.items()]
    return sorted(results, key=lambda item: -item[1])


def best_alignment(log_probs: np.ndarray, labels: list[int], blank: int = 0) -> tuple[np.ndarray, float]:
    """The most probable frame path that collapses to ``labels``: (T,) symbol per frame and its log-probability.

    Viterbi over the extended labelling (blank, l_1, blank, …, l_S, blank), with CTC's transitions (stay,
    advance one, or skip a blank between different symbols). Raises ValueError when T frames cannot emit
    the labels.
    """
    t_len = len(log_probs)
    ext = [blank]
    for label in labels:
        ext += [int(label), blank]
    width = len(ext)
    score = np.full(width, -np.inf)
    score[0] = log_probs[0, ext[0]]
    if width > 1:
        score[1] = log_probs[0, ext[1]]
    back = np.zeros((t_len, width), dtype=np.int64)
    for t in range(1, t_len):
        new = np.full(width, -np.inf)
        for s in range(width):
            candidates = [(score[s], s)]
            if s >= 1:
                candidates.append((score[s - 1], s - 1))
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                candidates.append((score[s - 2], s - 2))
            best, source = max(candidates)
            new[s] = best + log_probs[t, ext[s]]
            back[t, s] = source
        score = new
    ends = [width - 1] + ([width - 2] if width > 1 else [])
    end = max(ends, key=lambda s: score[s])
    if not np.isfinite(score[end]):
        raise ValueError(f"labels: {len(labels)} labels cannot be emitted in {t_len} frames")
    positions = np.zeros(t_len, dtype=np.int64)
    positions[-1] = end
    for t in range(t_len - 1, 0, -1):
        positions[t - 1] = back[t, positions[t]]
    return np.array([ext[s] for s in positions], dtype=np.int64), float(score[end])
