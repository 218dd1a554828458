"""Speech features in NumPy: log-mel filterbank energies and MFCC, with deltas and per-utterance normalisation.

    frames      x[t·hop : t·hop + win] · hann(win), zero-padded to n_fft        (T, n_fft), T = 1 + (n - win) // hop
    power       |rfft(frame)|²                                                   (T, n_fft/2 + 1)
    mel         power @ Mᵀ, M the Slaney mel filterbank (librosa's default)      (T, n_mels)
    log-mel     10 log10(max(mel, 1e-10))  (dB, librosa.power_to_db(ref=1, top_db=None))
    MFCC        DCT-II (orthonormal) of log-mel, first n_mfcc                    (T, n_mfcc)
    deltas      d_t = Σ_{k=1..2} k (c_{t+k} - c_{t-k}) / (2 Σ k²), edges repeated (HTK), order 1 or 2
    normalise   each column to zero mean, unit variance over the utterance (cepstral mean and variance
                normalisation, per utterance: no statistics of the training set to carry around)

A signal shorter than one window is zero-padded to one frame. Pre-emphasis (x_t - 0.97 x_{t-1}) is applied
first when ``preemphasis`` > 0. SpecAugment-style masking (:func:`spec_augment`) zeroes random time and
feature bands of normalised features in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from unrolled.nn._validation import check_choice, check_nonnegative_int, check_positive_int, check_probability

__all__ = ["FEATURE_KINDS", "FeatureConfig", "change_speed", "compute_features", "deltas", "log_mel", "mel_filterbank", "mfcc",
           "power_spectrum", "spec_augment"]

FEATURE_KINDS = ("logmel", "mfcc")


@dataclass(frozen=True)
class FeatureConfig:
    """How samples become feature frames (all in the checkpoint, so a model reads audio as it was trained)."""

    sample_rate: int = 8000
    kind: str = "logmel"  # logmel | mfcc
    window_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int | None = None  # default: the next power of two >= the window
    n_mels: int = 40
    n_mfcc: int = 13  # mfcc only
    fmin: float = 20.0
    fmax: float | None = None  # default: sample_rate / 2
    deltas: int = 0  # 0, 1 (+ deltas) or 2 (+ deltas and delta-deltas)
    preemphasis: float = 0.97
    normalize: bool = True  # per-utterance mean and variance normalisation
    stack: int = 1  # concatenate this many consecutive frames into one (T/stack frames of stack·F features)

    def __post_init__(self) -> None:
        check_positive_int("sample_rate", self.sample_rate)
        check_choice("kind", self.kind, FEATURE_KINDS)
        for name in ("window_ms", "hop_ms"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{name}: expected a positive number, got {value!r}")
        if self.n_fft is not None:
            check_positive_int("n_fft", self.n_fft)
            if self.n_fft < self.window_length:
                raise ValueError(f"n_fft: {self.n_fft} is shorter than the window ({self.window_length} samples)")
        check_positive_int("n_mels", self.n_mels)
        check_positive_int("n_mfcc", self.n_mfcc)
        if self.kind == "mfcc" and self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc: {self.n_mfcc} is more than n_mels ({self.n_mels})")
        top = self.sample_rate / 2 if self.fmax is None else self.fmax
        if not 0 <= self.fmin < top <= self.sample_rate / 2:
            raise ValueError(f"fmin, fmax: expected 0 <= fmin < fmax <= {self.sample_rate / 2:g} (half the sample "
                             f"rate), got {self.fmin}, {self.fmax}")
        check_nonnegative_int("deltas", self.deltas)
        if self.deltas > 2:
            raise ValueError(f"deltas: expected 0, 1 or 2, got {self.deltas}")
        check_probability("preemphasis", self.preemphasis, noun="a number")
        check_positive_int("stack", self.stack)
        if self.hop_length < 1:
            raise ValueError(f"hop_ms: {self.hop_ms} ms is less than one sample at {self.sample_rate} Hz")

    @property
    def window_length(self) -> int:
        return max(1, int(round(self.window_ms * self.sample_rate / 1000)))

    @property
    def hop_length(self) -> int:
        return int(round(self.hop_ms * self.sample_rate / 1000))

    @property
    def fft_size(self) -> int:
        return self.n_fft if self.n_fft is not None else 1 << (self.window_length - 1).bit_length()

    @property
    def base_size(self) -> int:
        """Features per frame before stacking: n_mels or n_mfcc, times (1 + deltas)."""
        return (self.n_mels if self.kind == "logmel" else self.n_mfcc) * (1 + self.deltas)

    @property
    def size(self) -> int:
        """F, the features per (stacked) frame."""
        return self.base_size * self.stack

    @property
    def frame_seconds(self) -> float:
        """The time between two (stacked) frames."""
        return self.hop_length * self.stack / self.sample_rate


def power_spectrum(samples: np.ndarray, window_length: int, hop_length: int, n_fft: int) -> np.ndarray:
    """(n,) samples -> (T, n_fft/2 + 1) power spectra of Hann-windowed frames (no centring, as center=False)."""
    samples = np.asarray(samples, dtype=np.float64)
    if len(samples) < window_length:
        samples = np.pad(samples, (0, window_length - len(samples)))
    count = 1 + (len(samples) - window_length) // hop_length
    frames = np.lib.stride_tricks.sliding_window_view(samples, window_length)[::hop_length][:count]
    spectrum = np.fft.rfft(frames * _hann(window_length), n=n_fft, axis=1)
    return spectrum.real**2 + spectrum.imag**2


@lru_cache(maxsize=8)
def _hann(length: int) -> np.ndarray:
    """The periodic Hann window (scipy.signal.get_window('hann'), librosa's)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa with htk=False)."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, hz / f_sp)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


@lru_cache(maxsize=64)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float,
                   warp: float = 1.0) -> np.ndarray:
    """(n_mels, n_fft/2 + 1) triangular filters equally spaced on the Slaney mel scale, each scaled to unit
    area (norm='slaney'): ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)``.

    ``warp`` α ≠ 1 reads the spectrum with its frequency axis scaled by α (a filter centred at f takes the
    energy at f / α): vocal tract length perturbation (Jaitly and Hinton 2013), a training augmentation."""
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1) * warp
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    weights.setflags(write=False)
    return weights


def log_mel(power: np.ndarray, config: FeatureConfig, warp: float = 1.0) -> np.ndarray:
    """(T, n_fft/2 + 1) power spectra -> (T, n_mels) log-mel energies in dB (``warp``: see mel_filterbank)."""
    fmax = config.sample_rate / 2 if config.fmax is None else config.fmax
    bank = mel_filterbank(config.sample_rate, config.fft_size, config.n_mels, float(config.fmin), float(fmax),
                          float(warp))
    return 10.0 * np.log10(np.maximum(power @ bank.T, 1e-10))


@lru_cache(maxsize=8)
def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_in, n_out) orthonormal DCT-II (scipy.fft.dct(type=2, norm='ortho'), first n_out coefficients)."""
    k = np.arange(n_out)[None, :]
    n = np.arange(n_in)[:, None]
    matrix = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    matrix[:, 0] /= np.sqrt(2.0)
    matrix.setflags(write=False)
    return matrix


def mfcc(log_mel_energies: np.ndarray, n_mfcc: int) -> np.ndarray:
    """(T, n_mels) log-mel energies (dB) -> (T, n_mfcc) cepstral coefficients (librosa.feature.mfcc's)."""
    return log_mel_energies @ _dct_matrix(log_mel_energies.shape[1], n_mfcc)


def deltas(features: np.ndarray, width: int = 2) -> np.ndarray:
    """(T, F) -> (T, F) regression deltas over ±``width`` frames, the edge frames repeated (HTK's formula)."""
    padded = np.pad(features, ((width, width), (0, 0)), mode="edge")
    t_len = len(features)
    out = np.zeros_like(features, dtype=np.float64)
    for k in range(1, width + 1):
        out += k * (padded[width + k : width + k + t_len] - padded[width - k : width - k + t_len])
    return out / (2 * sum(k * k for k in range(1, width + 1)))


def compute_features(samples: np.ndarray, config: FeatureConfig, *, warp: float = 1.0) -> np.ndarray:
    """(n,) samples at ``config.sample_rate`` -> (T, F) float32 features (see the module docstring).

    ``warp``: the filterbank's frequency warp (1 = none; training augmentation, see :func:`mel_filterbank`)."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 1 or len(samples) == 0:
        raise ValueError(f"samples: expected a non-empty (n,) array, got shape {samples.shape}")
    if not np.isfinite(samples).all():
        raise ValueError("samples: include NaN or infinity")
    if config.preemphasis > 0:
        samples = np.concatenate([samples[:1], samples[1:] - config.preemphasis * samples[:-1]])
    power = power_spectrum(samples, config.window_length, config.hop_length, config.fft_size)
    base = log_mel(power, config, warp)
    if config.kind == "mfcc":
        base = mfcc(base, config.n_mfcc)
    parts = [base]
    for _ in range(config.deltas):
        parts.append(deltas(parts[-1]))
    features = np.concatenate(parts, axis=1) if len(parts) > 1 else base
    if config.normalize:
        features = (features - features.mean(axis=0)) / np.maximum(features.std(axis=0), 1e-5)
    if config.stack > 1:
        t_len = -(-len(features) // config.stack)
        features = np.pad(features, ((0, t_len * config.stack - len(features)), (0, 0)), mode="edge")
        features = features.reshape(t_len, config.stack * features.shape[1])
    return features.astype(np.float32)


def change_speed(samples: np.ndarray, factor: float) -> np.ndarray:
    """Play (n,) samples ``factor`` times as fast (tempo and pitch together, like a tape): linear interpolation
    at every ``factor``-th sample, about n / factor samples (speed perturbation, Ko et al. 2015)."""
    positions = np.arange(0.0, len(samples) - 1, factor)
    if len(positions) < 2:
        return np.asarray(samples, dtype=np.float32)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def spec_augment(
    features: np.ndarray, rng: np.random.Generator, *, time_masks: int = 2, time_width: int = 8,
    feature_masks: int = 2, feature_width: int = 6, base_size: int | None = None,
) -> np.ndarray:
    """A copy of (T, F) normalised features with random bands set to 0 (the mean): ``time_masks`` bands of up
    to ``time_width`` frames (at most a fifth of the utterance each) and ``feature_masks`` bands of up to
    ``feature_width`` features (Park et al. 2019, without time warping). With stacked frames, ``base_size``
    (the features of one unstacked frame) makes a feature band mask the same filters in every stacked copy."""
    out = features.copy()
    t_len, size = out.shape
    base = base_size or size
    copies = size // base
    for _ in range(time_masks):
        width = int(rng.integers(0, min(time_width, max(1, t_len // 5)) + 1))
        if width:
            start = int(rng.integers(0, t_len - width + 1))
            out[start : start + width] = 0.0
    for _ in range(feature_masks):
        width = int(rng.integers(0, min(feature_width, base) + 1))
        if width:
            start = int(rng.integers(0, base - width + 1))
            for copy in range(copies):
                out[:, copy * base + start : copy * base + start + width] = 0.0
    return out
