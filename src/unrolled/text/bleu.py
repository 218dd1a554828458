"""Corpus BLEU (Papineni et al. 2002) over tokenized text, one reference per sentence.

    p_n  = Σ_sentences Σ_{n-grams g of the hypothesis} min(count_hyp(g), count_ref(g))
           / Σ_sentences (number of n-grams of the hypothesis)                        n = 1 … 4
    BP   = 1 if c > r else exp(1 − r / c)        c, r: total hypothesis and reference lengths
    BLEU = 100 · BP · exp(Σ_n ¼ log p_n)         (0 when some p_n = 0: no smoothing)

This is the "tokenized BLEU" that published Multi30k results report (the references and the hypotheses
both tokenized, lower-cased), and what sacreBLEU computes with ``tokenize="none"`` and no smoothing
(``smooth_method="none"``) on the same tokens joined by spaces (tested).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BleuScore", "corpus_bleu", "sacrebleu_score"]


@dataclass(frozen=True)
class BleuScore:
    score: float  # 0 … 100
    precisions: tuple[float, ...]  # p_1 … p_4, in percent
    brevity_penalty: float
    hypothesis_length: int  # c
    reference_length: int  # r

    @property
    def ratio(self) -> float:
        return self.hypothesis_length / self.reference_length if self.reference_length else 0.0

    def to_json(self) -> dict:
        return {"bleu": self.score, "precisions": list(self.precisions), "brevity_penalty": self.brevity_penalty,
                "hypothesis_length": self.hypothesis_length, "reference_length": self.reference_length}

    def __str__(self) -> str:
        precisions = "/".join(f"{p:.1f}" for p in self.precisions)
        return (f"BLEU = {self.score:.2f} {precisions} (BP = {self.brevity_penalty:.3f} ratio = {self.ratio:.3f} "
                f"hyp_len = {self.hypothesis_length} ref_len = {self.reference_length})")


def sacrebleu_score(hypotheses: Sequence[str], references: Sequence[str]) -> float | None:
    """sacreBLEU (its 13a tokenizer, case-insensitive) of detokenized hypotheses against the raw references;
    None when sacreBLEU (an optional dependency) is not installed."""
    try:
        import sacrebleu
    except ImportError:
        return None
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], lowercase=True).score)


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]], *,
                max_order: int = 4) -> BleuScore:
    """BLEU of token lists ``hypotheses`` against ``references`` (one per hypothesis, same order)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"references: expected one per hypothesis ({len(hypotheses)}), got {len(references)}")
    if isinstance(max_order, bool) or not isinstance(max_order, int) or max_order < 1:
        raise ValueError(f"max_order: expected an integer >= 1, got {max_order!r}")
    matches = [0] * max_order
    totals = [0] * max_order
    hyp_len = ref_len = 0
    for i, (hyp, ref) in enumerate(zip(hypotheses, references)):
        for name, tokens in (("hypotheses", hyp), ("references", ref)):
            if isinstance(tokens, str):
                raise ValueError(f"{name}[{i}]: expected a list of tokens, got a str (tokenize it first)")
        hyp_len += len(hyp)
        ref_len += len(ref)
        for n in range(1, max_order + 1):
            hyp_counts, ref_counts = _ngrams(hyp, n), _ngrams(ref, n)
            matches[n - 1] += sum(min(count, ref_counts[g]) for g, count in hyp_counts.items())
            totals[n - 1] += max(0, len(hyp) - n + 1)
    precisions = tuple(100.0 * m / t if t else 0.0 for m, t in zip(matches, totals))
    if hyp_len == 0:
        return BleuScore(0.0, precisions, 0.0, 0, ref_len)
    bp = 1.0 if hyp_len > ref_len else math.exp(1.0 - ref_len / hyp_len)
    if min(matches) == 0:
        return BleuScore(0.0, precisions, bp, hyp_len, ref_len)
    log_mean = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_order
    return BleuScore(100.0 * bp * math.exp(log_mean), precisions, bp, hyp_len, ref_len)
