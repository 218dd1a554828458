"""The linear baselines that benchmarks/sentiment.py measures beside unrolled, on the same splits, in the same run.

- ``tfidf-lr``: TF-IDF of unigrams and bigrams (sublinear tf, lower-cased) and an L2 logistic regression.
- ``nbsvm-bi``: Wang & Manning 2012's NBSVM with bigrams: binarised unigram+bigram counts scaled by the
  naive-Bayes log-count ratio r = log((α + Σ pos x / ‖·‖₁) / (α + Σ neg x / ‖·‖₁)), α = 1, a linear SVM on
  x ⊙ r, and its weights interpolated towards their mean magnitude, w' = (1 − β) mean|w| + β w, β = 0.25.

The regularisation C of each is chosen on the dev split (the same one unrolled early-stops on) from ``GRID``;
the test split is scored once, with the chosen C. scikit-learn is the benchmark's optional dependency.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

GRID = (0.25, 1.0, 4.0, 16.0, 64.0)
BASELINES = ("tfidf-lr", "nbsvm-bi")


class NBSVM(ClassifierMixin, BaseEstimator):
    """Binary NBSVM (Wang & Manning 2012, section 2.3) over a sparse count matrix; labels 0/1 or two strings."""

    def __init__(self, C: float = 1.0, alpha: float = 1.0, beta: float = 0.25) -> None:
        self.C, self.alpha, self.beta = C, alpha, beta

    def fit(self, X, y) -> NBSVM:
        from sklearn.svm import LinearSVC

        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(f"NBSVM is binary; got {len(self.classes_)} classes")
        positive = y == self.classes_[1]
        X = (X > 0).astype(np.float64)
        p = self.alpha + np.asarray(X[positive].sum(axis=0)).ravel()
        q = self.alpha + np.asarray(X[~positive].sum(axis=0)).ravel()
        self.r_ = np.log((p / p.sum()) / (q / q.sum()))
        svm = LinearSVC(C=self.C, max_iter=5000, random_state=0).fit(X.multiply(self.r_).tocsr(), positive)
        w = svm.coef_.ravel()
        self.w_ = (1 - self.beta) * np.abs(w).mean() + self.beta * w
        self.b_ = float(svm.intercept_[0])
        return self

    def predict(self, X) -> np.ndarray:
        X = (X > 0).astype(np.float64)
        scores = X.multiply(self.r_).tocsr() @ self.w_ + self.b_
        return self.classes_[(scores > 0).astype(int)]


def make(name: str, C: float):
    """An unfitted scikit-learn pipeline: texts -> features -> classifier."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    if name == "tfidf-lr":
        return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b|[^\w\s]"),
                             LogisticRegression(C=C, max_iter=2000))
    if name == "nbsvm-bi":
        return make_pipeline(CountVectorizer(ngram_range=(1, 2), binary=True, token_pattern=r"(?u)\b\w+\b|[^\w\s]"),
                             NBSVM(C=C))
    raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")


def accuracy(model, texts: Sequence[str], labels: Sequence[str]) -> float:
    return float(np.mean(model.predict(list(texts)) == np.asarray(labels)))


def tune(name: str, train: tuple[list[str], list[str]], dev: tuple[list[str], list[str]]):
    """(the model fitted with the C of the best dev accuracy, that C, the dev accuracy of every C)."""
    scores = {C: accuracy(make(name, C).fit(*train), *dev) for C in GRID}
    best = max(GRID, key=lambda C: (scores[C], -C))  # ties: the stronger regularisation
    return make(name, best).fit(*train), best, scores
