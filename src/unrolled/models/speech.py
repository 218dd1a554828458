"""``RNNSpeechRecognizer``: speech recognition with a recurrent network, in scikit-learn's style.

    WAV file or samples -> mono, the model's rate -> features (log-mel or MFCC, per-utterance normalised;
    unrolled.audio.features) -> [SpecAugment masks, training only] -> recurrent layer (unrolled.models.speech_net)
    -> objective "classify": one transcript per utterance (isolated words: each distinct transcript a class)
       objective "ctc": per-frame symbol distributions, CTC loss; prefix beam search to transcribe (connected
       words: each distinct character of the transcripts a symbol, whitespace ignored, the blank added at 0)

Training: length-bucketed batches, Adam, gradient clipping; after each epoch the dev accuracy ("classify") or
1 − symbol error rate of greedy decoding ("ctc") is measured, ties broken by the dev loss, and the best epoch's
weights are kept. The dev set
is ``validation`` when given, else ``validation_fraction`` of the training utterances (stratified by transcript
for "classify"). ``__init__`` only stores its arguments; learned attributes end in ``_``. The library never
prints.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from unrolled.audio.features import FeatureConfig, change_speed, compute_features, spec_augment
from unrolled.audio.wav import read_wav
from unrolled.checkpoint import Checkpoint
from unrolled.data.batching import length_bucketed_batches
from unrolled.data.splits import split_dev
from unrolled.memory import check_training_memory
from unrolled.metrics import ClassificationReport, classification_report, symbol_error_rate
from unrolled.models import _restore as restore
from unrolled.models._estimator import Estimator, NotFittedError
from unrolled.models.ctc_decoding import best_alignment, greedy_decode, prefix_beam_search
from unrolled.models.speech_net import BLANK, SpeechNetConfig, init_speech_params, speech_backward, speech_forward
from unrolled.nn._validation import check_nonnegative_int, check_positive_int, check_probability
from unrolled.nn.ctc import ctc_forward, ctc_min_frames
from unrolled.nn.losses import log_softmax, softmax
from unrolled.train import TorchTask, TrainConfig, TrainHistory, check_engine

__all__ = ["RNNSpeechRecognizer", "NotFittedError", "SpeechExplanation", "SpeechScores", "Transcription"]

KIND = "speech_recognizer"
BLANK_SYMBOL = "<blank>"
Audio = str | os.PathLike | np.ndarray


@dataclass(frozen=True)
class Transcription:
    text: str
    probability: float  # classify: the class's softmax probability; ctc: p(text | audio), summed over alignments


@dataclass(frozen=True)
class SpeechScores:
    n: int
    accuracy: float  # whole transcripts right
    symbol_error_rate: float  # edit distance over the transcripts' symbols (digits), / their count
    report: ClassificationReport | None  # classify: per-class metrics and the confusion matrix

    def to_json(self) -> dict[str, Any]:
        out = {"n": self.n, "accuracy": self.accuracy, "symbol_error_rate": self.symbol_error_rate}
        if self.report is not None:
            out["classes"] = self.report.to_json()
        return out


@dataclass(frozen=True)
class SpeechExplanation:
    """One utterance traced through the model."""

    transcript: str
    probability: float
    features: np.ndarray  # (T, F) the network's input frames
    frame_seconds: float  # time between frames
    outputs: tuple[str, ...]  # the C columns of posteriors (classes, or the blank then the symbols)
    posteriors: np.ndarray  # (T, C) ctc: each frame's symbol distribution; classify: the class distribution of
    #                         the pooled states up to that frame (what the model would say if the audio ended there)
    alignment: tuple[str, ...] | None  # ctc: the best frame path of the transcript (one output per frame)
    alignment_log_prob: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "transcript": self.transcript, "probability": self.probability, "frames": len(self.features),
            "frame_seconds": self.frame_seconds, "outputs": list(self.outputs),
            "posteriors": [[round(float(p), 6) for p in row] for row in self.posteriors],
            "alignment": None if self.alignment is None else list(self.alignment),
            "alignment_log_prob": self.alignment_log_prob,
            "features": [[round(float(v), 4) for v in row] for row in self.features],
        }


def _clean(transcript: object, index: int, objective: str) -> str:
    if not isinstance(transcript, str):
        raise ValueError(f"y[{index}]: expected a transcript string, got {type(transcript).__name__}")
    text = "".join(transcript.split()) if objective == "ctc" else transcript.strip()
    if not text:
        raise ValueError(f"y[{index}]: empty transcript")
    return text


class RNNSpeechRecognizer(Estimator):
    """A recurrent speech recognizer: isolated words (``objective="classify"``) or connected ones with CTC.

    Parameters
    ----------
    objective : "classify" (one transcript per utterance, a class each) or "ctc" (a symbol per character)
    features, n_mels, n_mfcc, deltas, window_ms, hop_ms, stack, sample_rate : the features (see
        :class:`unrolled.audio.features.FeatureConfig`; ``features`` is its ``kind``)
    speed_perturb : in training, play each utterance at a random speed in [1 − s, 1 + s] (0 = off)
    vtlp : in training, warp each utterance's filterbank by a random factor in [1 − v, 1 + v] (vocal tract
        length perturbation; 0 = off). With either, features are computed anew for every batch.
    time_masks, time_width, feature_masks, feature_width : SpecAugment in training (0 masks = off)
    cell, hidden_size, num_layers, bidirectional, dropout, pooling : the network (:class:`SpeechNetConfig`)
    epochs, batch_size, lr, clip_norm, patience : training (:class:`unrolled.train.TrainConfig`)
    validation_fraction : the share of the training utterances held out as the dev set when ``fit`` gets no
        ``validation`` (0 = none: the last epoch's weights are kept)
    beam_size : prefix beam search width of :meth:`transcribe` for "ctc" (1 = greedy)
    random_state : int seed; the same seed and data give identical weights
    """

    def __init__(
        self,
        *,
        objective: str = "classify",
        features: str = "mfcc",
        n_mels: int = 40,
        n_mfcc: int = 13,
        deltas: int = 2,
        window_ms: float = 25.0,
        hop_ms: float = 10.0,
        stack: int = 1,
        sample_rate: int = 8000,
        speed_perturb: float = 0.0,
        vtlp: float = 0.12,
        time_masks: int = 2,
        time_width: int = 8,
        feature_masks: int = 2,
        feature_width: int = 6,
        cell: str = "gru",
        hidden_size: int = 128,
        num_layers: int = 2,
        bidirectional: bool = True,
        dropout: float = 0.2,
        pooling: str = "mean",
        epochs: int = 40,
        batch_size: int = 32,
        lr: float = 2e-3,
        clip_norm: float | None = 5.0,
        patience: int | None = 10,
        validation_fraction: float = 0.1,
        beam_size: int = 8,
        random_state: int = 0,
    ) -> None:
        self.objective = objective
        self.features = features
        self.n_mels = n_mels
        self.n_mfcc = n_mfcc
        self.deltas = deltas
        self.window_ms = window_ms
        self.hop_ms = hop_ms
        self.stack = stack
        self.sample_rate = sample_rate
        self.speed_perturb = speed_perturb
        self.vtlp = vtlp
        self.time_masks = time_masks
        self.time_width = time_width
        self.feature_masks = feature_masks
        self.feature_width = feature_width
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.pooling = pooling
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.clip_norm = clip_norm
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.beam_size = beam_size
        self.random_state = random_state

    KIND = KIND
    _BEST_METRIC = "dev_metric_"
    _CONFIG_NAME = "speech recognizer"
    _FIT_CALL = "fit(audio, transcripts)"
    _estimator_type = "classifier"
    _SKLEARN_TARGET_REQUIRED = True

    # --- audio -> features ---------------------------------------------------------------------------

    def _feature_config(self) -> FeatureConfig:
        return FeatureConfig(
            sample_rate=self.sample_rate, kind=self.features, window_ms=self.window_ms, hop_ms=self.hop_ms,
            n_mels=self.n_mels, n_mfcc=self.n_mfcc, deltas=self.deltas, stack=self.stack,
        )

    def _features(self, audio: Sequence[Audio], name: str = "audio") -> list[np.ndarray]:
        """Each item, a WAV path or (n,) samples at the model's rate -> (T, F) float32 features."""
        return [compute_features(samples, self.feature_config_) for samples, _ in self._samples(audio, name)]

    def _samples(self, audio: Sequence[Audio], name: str = "audio") -> list[tuple[np.ndarray, str]]:
        """Each item, a WAV path or (n,) samples -> ((n,) samples at the model's rate, where it came from).

        The samples are checked here (1-D, non-empty, finite), so ``compute_features`` accepts every one."""
        one_item = isinstance(audio, (str, os.PathLike)) or (isinstance(audio, np.ndarray) and audio.ndim != 2)
        if one_item:  # a single path or array, not a list of them
            raise ValueError(f"{name}: expected a list of WAV paths or of sample arrays, got one "
                             f"{type(audio).__name__}")
        out = []
        for index, item in enumerate(audio):
            if isinstance(item, (str, os.PathLike)):
                samples, _ = read_wav(item, self.feature_config_.sample_rate)
                where = str(item)
            else:
                samples = np.asarray(item)
                if samples.ndim != 1 or samples.size == 0 or not np.issubdtype(samples.dtype, np.number):
                    raise ValueError(f"{name}[{index}]: expected a WAV path or a non-empty (n,) array of samples, "
                                     f"got {type(item).__name__} of shape {getattr(samples, 'shape', None)}")
                where = f"{name}[{index}]"
            if not np.isfinite(samples).all():
                raise ValueError(f"{where}: samples include NaN or infinity")
            out.append((samples, where))
        if not out:
            raise ValueError(f"{name}: no utterances")
        return out

    def _batch(self, feats: Sequence[np.ndarray], rng: np.random.Generator | None = None):
        """Right-pad (T_i, F) features into x (N, T, F) and mask (N, T); SpecAugment when ``rng`` is given."""
        t_len = max(len(f) for f in feats)
        params = getattr(self, "params_", None)  # the network computes in its parameters' dtype (a float64 checkpoint)
        dtype = next(iter(params.values())).dtype if params else np.float32
        x = np.zeros((len(feats), t_len, feats[0].shape[1]), dtype=dtype)
        mask = np.zeros((len(feats), t_len), dtype=bool)
        for i, f in enumerate(feats):
            if rng is not None and (self.time_masks or self.feature_masks):
                f = spec_augment(f, rng, time_masks=self.time_masks, time_width=self.time_width,
                                 feature_masks=self.feature_masks, feature_width=self.feature_width,
                                 base_size=self.feature_config_.base_size)
            x[i, : len(f)] = f
            mask[i, : len(f)] = True
        return x, mask

    # --- training ------------------------------------------------------------------------------------

    def _encode(self, transcripts: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """Targets: class indices (N,), or padded symbol indices (N, S) and their lengths (N,) for ctc."""
        index = {s: i for i, s in enumerate(self.symbols_)}
        if self.objective == "classify":
            return np.array([index[t] for t in transcripts], dtype=np.int64), None
        lengths = np.array([len(t) for t in transcripts], dtype=np.int64)
        targets = np.zeros((len(transcripts), max(1, int(lengths.max()))), dtype=np.int64)
        for i, t in enumerate(transcripts):
            targets[i, : len(t)] = [index[ch] for ch in t]
        return targets, lengths

    def fit(
        self,
        audio: Sequence[Audio],
        transcripts: Sequence[str],
        *,
        validation: tuple[Sequence[Audio], Sequence[str]] | None = None,
        callbacks: Sequence[object] = (),
        engine: str = "numpy",
        device: str | None = None,
        distributed=None,
    ) -> RNNSpeechRecognizer:
        """Train on utterances (WAV paths or sample arrays at ``sample_rate``) and their transcripts.

        ``validation``: (audio, transcripts) of a dev set (default: ``validation_fraction`` of the training
        utterances). Returns self. ``engine``, ``device``, ``distributed``: the torch engine and data-parallel
        training, as :meth:`unrolled.RNNClassifier.fit`.
        """
        started = time.perf_counter()
        check_engine(engine, device)
        if self.objective not in ("classify", "ctc"):
            raise ValueError(f"objective: expected classify or ctc, got {self.objective!r}")
        check_probability("validation_fraction", self.validation_fraction, noun="a number")
        check_positive_int("beam_size", self.beam_size)
        for name in ("time_masks", "time_width", "feature_masks", "feature_width"):
            check_nonnegative_int(name, getattr(self, name))
        audio = list(audio)
        texts = [_clean(t, i, self.objective) for i, t in enumerate(transcripts)]
        if len(texts) != len(audio):
            raise ValueError(f"transcripts: expected {len(audio)} (one per utterance), got {len(texts)}")
        for name in ("speed_perturb", "vtlp"):
            check_probability(name, getattr(self, name), noun="a number")
        self.feature_config_ = self._feature_config()
        augment = self.speed_perturb > 0 or self.vtlp > 0
        loaded = self._samples(audio)
        feats = [compute_features(samples, self.feature_config_) for samples, _ in loaded]
        raw = [samples for samples, _ in loaded] if augment else None
        sources = [where for _, where in loaded]  # each utterance's file or audio[i], for error messages
        if validation is not None:
            dev_audio = list(validation[0])
            dev_texts = [_clean(t, i, self.objective) for i, t in enumerate(validation[1])]
            if len(dev_texts) != len(dev_audio):
                raise ValueError(f"validation: {len(dev_audio)} utterances but {len(dev_texts)} transcripts")
            dev_feats = self._features(dev_audio, "validation audio")
        elif self.validation_fraction > 0:
            order = np.arange(len(feats))
            if self.objective == "classify":
                train_idx, _, dev_idx, _ = split_dev(list(order), texts, fraction=self.validation_fraction,
                                                     seed=self.random_state)
            else:
                shuffled = np.random.default_rng([self.random_state, 2]).permutation(len(feats))
                n_dev = int(round(self.validation_fraction * len(feats)))
                if not 1 <= n_dev < len(feats):
                    raise ValueError(f"validation_fraction: {self.validation_fraction} of {len(feats)} utterances "
                                     "leaves no training or no dev utterance")
                dev_idx, train_idx = sorted(shuffled[:n_dev]), sorted(shuffled[n_dev:])
            if not len(dev_idx) or not len(train_idx):
                raise ValueError(f"validation_fraction: {self.validation_fraction} of {len(feats)} utterances "
                                 "leaves no training or no dev utterance; give more recordings or change "
                                 "validation_fraction")
            dev_feats, dev_texts = [feats[i] for i in dev_idx], [texts[i] for i in dev_idx]
            feats, texts = [feats[i] for i in train_idx], [texts[i] for i in train_idx]
            sources = [sources[i] for i in train_idx]
            if raw is not None:
                raw = [raw[i] for i in train_idx]
        else:
            dev_feats, dev_texts = None, None

        if self.objective == "classify":
            self.symbols_ = tuple(sorted(set(texts)))
            if len(self.symbols_) < 2:
                raise ValueError(f"transcripts: only one distinct transcript ({self.symbols_[0]!r}); a classifier "
                                 "needs at least 2")
        else:
            self.symbols_ = (BLANK_SYMBOL,) + tuple(sorted({ch for t in texts for ch in t}))
        if dev_texts is not None:
            known = set(self.symbols_) if self.objective == "classify" else set(self.symbols_[1:])
            for i, t in enumerate(dev_texts):
                missing = ([t] if t not in known else []) if self.objective == "classify" else sorted(set(t) - known)
                if missing:
                    raise ValueError(f"validation transcripts[{i}]: {missing[0]!r} never occurs in the training "
                                     "transcripts")
        targets, target_lengths = self._encode(texts)
        min_frames = [1] * len(feats)
        if self.objective == "ctc":
            for i, (f, t) in enumerate(zip(feats, texts)):
                need = min_frames[i] = ctc_min_frames(targets[i, : len(t)])
                if len(f) < need:
                    where = sources[i]
                    raise ValueError(f"{where}: {len(f)} frames cannot carry the {len(t)} symbols of {t!r} (CTC "
                                     f"needs {need}): use a smaller stack or hop")

        self.net_config_ = SpeechNetConfig(
            input_size=self.feature_config_.size, hidden_size=self.hidden_size, num_outputs=len(self.symbols_),
            objective=self.objective, cell=self.cell, num_layers=self.num_layers, bidirectional=self.bidirectional,
            dropout=self.dropout, pooling=self.pooling,
        )
        longest = max(len(f) for f in feats)
        check_training_memory(self.net_config_, batch_size=min(self.batch_size, len(feats)), steps=longest,
                              device=device, length=(f"the longest utterance ({longest:,} frames)",
                                                     "raise stack or hop_ms"))
        train_config = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                                   clip_norm=self.clip_norm, patience=self.patience, seed=self.random_state)
        self.params_ = init_speech_params(self.net_config_, np.random.default_rng([self.random_state, 1]))
        lengths = [len(f) for f in feats]
        if distributed is not None:
            distributed.check_size(len(feats), "training utterances")

        def make_batches(rng: np.random.Generator) -> list[np.ndarray]:
            return length_bucketed_batches(lengths, train_config.batch_size, shuffle=True, rng=rng)

        def batch_feats(batch: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
            if raw is None:
                return [feats[i] for i in batch]
            out = []
            for i in batch:
                samples = raw[i]
                if self.speed_perturb > 0:
                    samples = change_speed(samples, 1.0 + rng.uniform(-self.speed_perturb, self.speed_perturb))
                warp = 1.0 + round(rng.uniform(-self.vtlp, self.vtlp), 2) if self.vtlp > 0 else 1.0
                f = compute_features(samples, self.feature_config_, warp=warp)
                if len(f) < min_frames[i]:  # a faster copy must still have frames for all its labels
                    f = feats[i]
                out.append(f)
            return out

        def batch_inputs(batch: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
            x, mask = self._batch(batch_feats(batch, rng), rng)
            if self.objective == "classify":
                return {"x": x, "mask": mask, "targets": targets[batch]}
            width = max(1, int(target_lengths[batch].max()))
            return {"x": x, "mask": mask, "targets": targets[batch, :width], "target_lengths": target_lengths[batch]}

        def batch_loss(batch: np.ndarray, rng: np.random.Generator):
            b = batch_inputs(batch, rng)
            _, loss, cache = speech_forward(self.params_, self.net_config_, b["x"], b["mask"], targets=b["targets"],
                                            target_lengths=b.get("target_lengths"), training=True, rng=rng)
            return loss, speech_backward(cache)

        evaluate = None
        if dev_feats is not None:
            dev_targets, dev_lengths = self._encode(dev_texts)
            evaluate = partial(self._dev_score, dev_feats, dev_texts, dev_targets, dev_lengths)

        self.history_: TrainHistory = self._train_loop(
            make_batches, batch_loss, train_config, evaluate=evaluate, callbacks=callbacks, engine=engine,
            device=device, distributed=distributed, torch_task=TorchTask(self.net_config_, batch_inputs, "speech"))
        self.dev_metric_ = self.history_.best_metric
        self.training_seconds_ = time.perf_counter() - started + self.seconds_before_resume_
        return self

    def _dev_score(self, feats, texts, targets, lengths) -> float:
        """The dev metric: accuracy ("classify") or 1 − symbol error rate of greedy decoding ("ctc"), minus
        a tie-break smaller than one utterance's (one symbol's) worth of it: min(dev loss, 1) · 0.5 / units.
        A small dev set saturates (99 % is 2 utterances of 270 wrong); among epochs with the same score the
        one with the lower loss then wins."""
        all_logits = self._logits(feats)
        if self.objective == "classify":
            log_p = log_softmax(np.stack(all_logits).astype(np.float64))
            loss = float(-np.mean(log_p[np.arange(len(log_p)), targets]))
            hypotheses = [self.symbols_[i] for i in np.argmax(log_p, axis=1)]
            score, units = float(np.mean([h == r for h, r in zip(hypotheses, texts)])), len(texts)
        else:
            hypotheses = [t.text for t in self._transcribe_logits(all_logits, beam_size=1, exact=False)]
            losses = _ctc_losses(all_logits, [targets[i, : int(n)] for i, n in enumerate(lengths)])
            # an impossible or hopeless labelling counts as p = 1e-300, per label as torch's "mean" divides
            loss = float(np.mean(np.minimum(losses, -np.log(1e-300)) / np.maximum(lengths, 1)))
            score, units = 1.0 - symbol_error_rate(texts, hypotheses), int(lengths.sum())
        return score - min(loss, 1.0) * 0.5 / max(units, 1)

    # --- inference -----------------------------------------------------------------------------------

    def _logits(self, feats: Sequence[np.ndarray], batch_size: int = 64) -> list[np.ndarray]:
        """Per utterance: (C,) class logits, or (T_i, C) frame logits for ctc; in batches of similar lengths."""
        out: list[np.ndarray | None] = [None] * len(feats)
        for batch in length_bucketed_batches([len(f) for f in feats], batch_size, shuffle=False):
            x, mask = self._batch([feats[i] for i in batch])
            logits, _, _ = speech_forward(self.params_, self.net_config_, x, mask)
            for row, i in enumerate(batch):
                out[i] = logits[row] if self.objective == "classify" else logits[row, : len(feats[i])]
        return out

    def _transcribe_features(self, feats: Sequence[np.ndarray], beam_size: int | None = None,
                             exact: bool = True) -> list[Transcription]:
        return self._transcribe_logits(self._logits(feats), beam_size, exact)

    def _transcribe_logits(self, all_logits: Sequence[np.ndarray], beam_size: int | None = None,
                           exact: bool = True) -> list[Transcription]:
        """:meth:`_logits`' output -> transcripts; ctc: decoded with ``beam_size`` (1 = greedy) and, with
        ``exact``, p(transcript | audio) from the CTC forward (NaN otherwise: evaluation needs only the text)."""
        beam = self.beam_size if beam_size is None else beam_size
        check_positive_int("beam_size", beam)
        if self.objective == "classify":
            results = []
            for logits in all_logits:
                p = softmax(logits.astype(np.float64))
                best = int(np.argmax(p))
                results.append(Transcription(self.symbols_[best], float(p[best])))
            return results
        labellings = []
        for logits in all_logits:
            log_probs = log_softmax(logits.astype(np.float64))
            labellings.append(greedy_decode(log_probs, BLANK) if beam == 1
                              else prefix_beam_search(log_probs, beam, BLANK)[0][0])
        probabilities = np.exp(-_ctc_losses(all_logits, labellings)) if exact else [float("nan")] * len(labellings)
        return [Transcription("".join(self.symbols_[s] for s in labels), float(p))
                for labels, p in zip(labellings, probabilities)]

    def transcribe(self, audio: Sequence[Audio], *, beam_size: int | None = None) -> list[Transcription]:
        """The transcript of each utterance and its probability (ctc: prefix beam search of ``beam_size``,
        default the model's; the probability is p(transcript | audio), summed over every alignment)."""
        self._check_fitted()
        return self._transcribe_features(self._features(audio), beam_size)

    def predict(self, audio: Sequence[Audio]) -> list[str]:
        """The transcript of each utterance."""
        return [t.text for t in self.transcribe(audio)]

    def predict_proba(self, audio: Sequence[Audio]) -> np.ndarray:
        """(N, C) class probabilities, in the order of ``classes_`` ("classify" only)."""
        self._check_fitted()
        if self.objective != "classify":
            raise ValueError("predict_proba: a ctc model has no fixed classes; use transcribe")
        return np.stack([softmax(z.astype(np.float64)) for z in self._logits(self._features(audio))])

    @property
    def classes_(self) -> np.ndarray:
        self._check_fitted()
        return np.array(self.symbols_ if self.objective == "classify" else self.symbols_[1:])

    def evaluate(self, audio: Sequence[Audio], transcripts: Sequence[str], *,
                 beam_size: int | None = None) -> SpeechScores:
        """Accuracy (whole transcripts), symbol error rate and, for "classify", per-class metrics."""
        self._check_fitted()
        refs = [_clean(t, i, self.objective) for i, t in enumerate(transcripts)]
        feats = self._features(audio)
        if len(refs) != len(feats):
            raise ValueError(f"transcripts: expected {len(feats)} (one per utterance), got {len(refs)}")
        hyps = [t.text for t in self._transcribe_features(feats, beam_size, exact=False)]
        accuracy = float(np.mean([h == r for h, r in zip(hyps, refs)]))
        report = None
        if self.objective == "classify":
            index = {s: i for i, s in enumerate(self.symbols_)}
            if all(r in index for r in refs):
                report = classification_report(np.array([index[r] for r in refs]),
                                               np.array([index[h] for h in hyps]), self.symbols_)
        return SpeechScores(len(refs), accuracy, symbol_error_rate(refs, hyps), report)

    def score(self, audio: Sequence[Audio], transcripts: Sequence[str]) -> float:
        """The share of utterances transcribed exactly right (accuracy)."""
        return self.evaluate(audio, transcripts).accuracy

    def explain(self, audio: Audio, *, beam_size: int | None = None) -> SpeechExplanation:
        """One utterance: its features, per-frame posteriors and (ctc) the best alignment of its transcript."""
        self._check_fitted()
        (feats,) = self._features([audio])
        if self.objective == "ctc":
            (logits,) = self._logits([feats])
            (result,) = self._transcribe_logits([logits], beam_size)
            log_probs = log_softmax(logits.astype(np.float64))
            labels = [self.symbols_.index(ch) for ch in result.text]
            path, path_log_prob = best_alignment(log_probs, labels, BLANK)
            posteriors, alignment = np.exp(log_probs), tuple(self.symbols_[s] for s in path)
        else:
            (result,) = self._transcribe_features([feats], beam_size)
            posteriors = self._running_class_posteriors(*self._batch([feats]))
            alignment, path_log_prob = None, None
        return SpeechExplanation(result.text, result.probability, feats, self.feature_config_.frame_seconds,
                                 self.symbols_, posteriors, alignment, path_log_prob)

    def _running_class_posteriors(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(T, C): the head's class distribution for the states pooled over frames 1..t, for every t."""
        from unrolled.nn.recurrent_layer import recurrent_forward

        out, _, _ = recurrent_forward(x, self.params_, self.net_config_.recurrent, mask=mask, prefix="rnn.")
        out = out[0].astype(np.float64)  # (T, dirs·H)
        if self.pooling == "mean":
            pooled = np.cumsum(out, axis=0) / np.arange(1, len(out) + 1)[:, None]
        else:
            pooled = np.maximum.accumulate(out, axis=0)
        logits = pooled @ self.params_["head.weight"].T.astype(np.float64) + self.params_["head.bias"]
        return softmax(logits)

    # --- checkpoints (save and load: Estimator) -------------------------------------------------------

    def _config_fields(self) -> dict[str, Any]:
        return {"features": asdict(self.feature_config_), "symbols": list(self.symbols_)}

    def _training_record(self) -> dict[str, Any]:
        return {**super()._training_record(), "dev_metric": self.dev_metric_}

    def _restore_config(self, config: dict[str, Any]) -> None:
        self.net_config_ = restore.net_config(SpeechNetConfig, config)
        if self.objective not in ("classify", "ctc"):
            raise ValueError(f"estimator.objective: expected classify or ctc, got {self.objective!r}")
        check_positive_int("estimator.beam_size", self.beam_size)
        self.feature_config_ = restore.dataclass_from_json(FeatureConfig, restore.field(config, "features"),
                                                           "features")
        symbols = restore.field(config, "symbols")
        if not isinstance(symbols, list) or not all(isinstance(s, str) and s for s in symbols):
            raise ValueError(f"symbols: expected an array of non-empty strings, got {restore.json_value(symbols)}")
        duplicate = next((s for i, s in enumerate(symbols) if s in symbols[:i]), None)
        if duplicate is not None:
            raise ValueError(f"symbols: {duplicate!r} appears twice")
        if self.objective == "ctc" and symbols[:1] != [BLANK_SYMBOL]:
            raise ValueError(f"symbols: a ctc model's first symbol is {BLANK_SYMBOL!r}, got "
                             f"{restore.json_value(symbols[:1])}")
        self.symbols_ = tuple(symbols)
        self.dev_metric_ = config["training"].get("dev_metric")

    def _restore_checkpoint(self, checkpoint: Checkpoint, path: Path) -> None:
        source = path / "config.json"
        if len(self.symbols_) != self.net_config_.num_outputs:
            raise ValueError(f"{source}: {len(self.symbols_)} symbols for a network of "
                             f"{self.net_config_.num_outputs} outputs (model.num_outputs)")
        if self.feature_config_.size != self.net_config_.input_size:
            raise ValueError(f"{source}: the features have {self.feature_config_.size} values a frame, the network "
                             f"reads {self.net_config_.input_size} (model.input_size)")
        if self.net_config_.objective != self.objective:
            raise ValueError(f"{source}: estimator.objective {self.objective!r} but model.objective "
                             f"{self.net_config_.objective!r}")


def _ctc_losses(all_logits: Sequence[np.ndarray], labellings: Sequence[Sequence[int]], chunk: int = 64) -> np.ndarray:
    """−log p(labels_i | frames_i) under CTC for every utterance, (N,) float64 (+inf where the labels cannot fit):
    (T_i, C) logits padded into batches of ``chunk`` utterances, one CTC forward each."""
    out = []
    for start in range(0, len(all_logits), chunk):
        logits, labels = all_logits[start : start + chunk], labellings[start : start + chunk]
        frames = np.array([len(z) for z in logits], dtype=np.int64)
        batch = np.zeros((len(logits), int(frames.max()), logits[0].shape[1]))
        for i, z in enumerate(logits):
            batch[i, : len(z)] = z
        lengths = np.array([len(l) for l in labels], dtype=np.int64)
        targets = np.ones((len(labels), max(1, int(lengths.max()))), dtype=np.int64)  # 1: padding, never read
        for i, l in enumerate(labels):
            targets[i, : len(l)] = l
        losses, _ = ctc_forward(batch, frames, targets, lengths, blank=BLANK, reduction="none")
        out.append(losses)
    return np.concatenate(out)
