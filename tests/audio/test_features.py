"""Features against librosa (the reference implementation, in the dev extras), and their own properties."""

import numpy as np
import pytest

from unrolled.audio.features import (
    FeatureConfig,
    change_speed,
    compute_features,
    deltas,
    log_mel,
    mel_filterbank,
    mfcc,
    power_spectrum,
    spec_augment,
)


def _signal(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8000
    return 0.3 * np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 3 * t) + 0.05 * rng.standard_normal(n)


def test_mel_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    for sr, n_fft, n_mels, fmin, fmax in [(8000, 256, 40, 20.0, 4000.0), (16000, 512, 80, 0.0, 7600.0)]:
        expected = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        np.testing.assert_allclose(mel_filterbank(sr, n_fft, n_mels, fmin, fmax), expected, rtol=1e-5, atol=1e-9)


def test_power_spectrum_log_mel_and_mfcc_match_librosa():
    librosa = pytest.importorskip("librosa")
    config = FeatureConfig(window_ms=32, hop_ms=10, n_mels=40, fmin=20.0, preemphasis=0.0)  # window = n_fft = 256
    y = _signal()
    power = power_spectrum(y, config.window_length, config.hop_length, config.fft_size)
    stft = librosa.stft(y, n_fft=256, hop_length=80, win_length=256, window="hann", center=False)
    np.testing.assert_allclose(power, (np.abs(stft) ** 2).T, rtol=1e-7, atol=1e-10)
    mel = librosa.feature.melspectrogram(S=np.abs(stft) ** 2, sr=8000, n_mels=40, fmin=20.0)
    ours = log_mel(power, config)
    np.testing.assert_allclose(ours, librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).T, atol=1e-6)
    expected_mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None), n_mfcc=13)
    np.testing.assert_allclose(mfcc(ours, 13), expected_mfcc.T, atol=1e-6)


def test_deltas_match_librosa():
    librosa = pytest.importorskip("librosa")
    c = np.random.default_rng(1).standard_normal((30, 5))
    d1 = librosa.feature.delta(c.T, width=5, order=1, mode="nearest").T
    np.testing.assert_allclose(deltas(c), d1, atol=1e-12)
    d2 = librosa.feature.delta(d1.T, width=5, order=1, mode="nearest").T
    np.testing.assert_allclose(deltas(deltas(c)), d2, atol=1e-12)


def test_deltas_of_a_ramp_are_its_slope():
    ramp = np.arange(20.0)[:, None] * 3.0
    np.testing.assert_allclose(deltas(ramp)[2:-2], 3.0)


def test_compute_features_shapes_normalisation_and_stacking():
    y = _signal(8000)
    config = FeatureConfig(kind="mfcc", deltas=2)
    f = compute_features(y, config)
    assert f.dtype == np.float32 and f.shape == (1 + (8000 - 200) // 80, 39) and config.size == 39
    np.testing.assert_allclose(f.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(f.std(axis=0), 1, atol=1e-4)
    stacked = compute_features(y, FeatureConfig(kind="mfcc", deltas=2, stack=3))
    assert stacked.shape == (-(-len(f) // 3), 117)
    np.testing.assert_array_equal(stacked[0], f[:3].reshape(-1))
    short = compute_features(np.ones(50) * 0.1, FeatureConfig())  # shorter than one window: one frame
    assert short.shape == (1, 40)


def test_compute_features_is_gain_invariant_after_normalisation():
    y = _signal()
    np.testing.assert_allclose(compute_features(y, FeatureConfig()), compute_features(0.1 * y, FeatureConfig()),
                               atol=1e-3)


def test_warp_moves_a_tone_to_another_filter():
    t = np.arange(4000) / 8000
    tone = np.sin(2 * np.pi * 1000 * t)
    config = FeatureConfig(normalize=False, preemphasis=0.0)
    plain = compute_features(tone, config).mean(axis=0).argmax()
    warped = compute_features(tone, config, warp=1.2).mean(axis=0).argmax()
    assert warped > plain  # the spectrum read stretched: the tone lands in a higher filter


def test_change_speed_changes_the_length_and_the_pitch():
    t = np.arange(8000) / 8000
    faster = change_speed(np.sin(2 * np.pi * 400 * t), 1.25)
    assert abs(len(faster) - 6400) <= 1
    assert abs(np.argmax(np.abs(np.fft.rfft(faster))) * 8000 / len(faster) - 500) < 3


def test_spec_augment_masks_bands_and_keeps_the_rest():
    f = np.ones((50, 12), dtype=np.float32)
    out = spec_augment(f, np.random.default_rng(0), time_masks=2, time_width=5, feature_masks=2, feature_width=3)
    assert out.shape == f.shape and f.min() == 1.0  # a copy
    assert 0 < (out == 0).mean() < 0.6
    stacked = spec_augment(np.ones((20, 8)), np.random.default_rng(4), time_masks=0, feature_masks=1,
                           feature_width=2, base_size=4)
    np.testing.assert_array_equal(stacked[:, :4], stacked[:, 4:])  # the same filters in every stacked copy


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="spectrogram"), "kind: expected one of"),
    (dict(n_fft=64), "n_fft: 64 is shorter than the window"),
    (dict(kind="mfcc", n_mfcc=50), "n_mfcc: 50 is more than n_mels"),
    (dict(fmax=5000.0), "fmin, fmax"),
    (dict(deltas=3), "deltas: expected 0, 1 or 2"),
    (dict(hop_ms=0), "hop_ms: expected a positive number"),
])
def test_bad_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeatureConfig(**kwargs)


def test_bad_samples():
    with pytest.raises(ValueError, match="non-empty"):
        compute_features(np.zeros(0), FeatureConfig())
    with pytest.raises(ValueError, match="NaN"):
        compute_features(np.array([0.0, np.nan]), FeatureConfig())
