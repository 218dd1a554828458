"""WAV reading: every sample format against known values, channels averaged, resampling, and one-line errors."""

import struct

import numpy as np
import pytest

from unrolled.audio.wav import AudioError, read_wav, write_wav


def _wav(path, payload: bytes, *, tag=1, channels=1, rate=8000, bits=16, extensible=False, data_size=None):
    block = channels * bits // 8
    if extensible:
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits, 0)
        fmt += struct.pack("<H", tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # an odd-sized chunk to skip, with its pad byte
    chunks += b"data" + struct.pack("<I", len(payload) if data_size is None else data_size) + payload
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)
    return path


VALUES = np.array([0.0, 0.5, -0.5, -1.0])


@pytest.mark.parametrize("bits, tag, payload", [
    (8, 1, bytes([128, 192, 64, 0])),
    (16, 1, np.array([0, 16384, -16384, -32768], "<i2").tobytes()),
    (24, 1, b"".join(int(v).to_bytes(3, "little", signed=True) for v in (0, 1 << 22, -(1 << 22), -(1 << 23)))),
    (32, 1, np.array([0, 1 << 30, -(1 << 30), -(1 << 31)], "<i4").tobytes()),
    (32, 3, VALUES.astype("<f4").tobytes()),
    (64, 3, VALUES.astype("<f8").tobytes()),
])
@pytest.mark.parametrize("extensible", [False, True])
def test_every_sample_format(tmp_path, bits, tag, payload, extensible):
    path = _wav(tmp_path / "a.wav", payload, tag=tag, bits=bits, extensible=extensible)
    samples, rate = read_wav(path)
    assert rate == 8000 and samples.dtype == np.float32
    np.testing.assert_array_equal(samples, VALUES.astype(np.float32))


def test_stereo_is_averaged_to_mono(tmp_path):
    payload = np.array([16384, 0, -16384, -16384], "<i2").tobytes()
    samples, _ = read_wav(_wav(tmp_path / "s.wav", payload, channels=2))
    np.testing.assert_array_equal(samples, [0.25, -0.5])


def test_write_then_read_round_trips(tmp_path):
    samples = np.sin(np.linspace(0, 20, 800)) * 0.5
    back, rate = read_wav(write_wav(tmp_path / "w.wav", samples, 8000))
    assert rate == 8000
    np.testing.assert_allclose(back, samples, atol=1 / 32768)


def test_other_rates_are_resampled(tmp_path):
    pytest.importorskip("soxr")
    t = np.arange(16000) / 16000
    path = write_wav(tmp_path / "hi.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 16000)
    samples, rate = read_wav(path, sample_rate=8000)
    assert rate == 8000 and abs(len(samples) - 8000) <= 1
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * 8000 / len(samples) - 440) < 2  # still a 440 Hz tone


@pytest.mark.parametrize("content, message", [
    (b"", "an empty file"),
    (b"hello, not audio at all", "not a WAV file"),
    (b"RIFF\x04\x00\x00\x00WAVE", "no fmt chunk"),
])
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=message) as error:
        read_wav(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_format_problems_name_the_file(tmp_path):
    with pytest.raises(AudioError, match="bad.wav: no samples"):
        read_wav(_wav(tmp_path / "bad.wav", b""))
    with pytest.raises(AudioError, match="truncated: the data chunk declares 100 bytes"):
        read_wav(_wav(tmp_path / "cut.wav", b"\x00\x00" * 4, data_size=100))
    with pytest.raises(AudioError, match="unsupported sample format"):
        read_wav(_wav(tmp_path / "alaw.wav", b"\x00" * 4, tag=6, bits=8))
    with pytest.raises(AudioError, match="NaN"):
        read_wav(_wav(tmp_path / "nan.wav", np.array([np.nan], "<f4").tobytes(), tag=3, bits=32))
    with pytest.raises(AudioError, match="cannot read"):
        read_wav(tmp_path / "missing.wav")
    with pytest.raises(AudioError, match="is a folder"):
        read_wav(tmp_path)
    # a streaming writer's unknown size (0xFFFFFFFF): the rest of the file is the data
    samples, _ = read_wav(_wav(tmp_path / "stream.wav", np.array([16384], "<i2").tobytes(), data_size=0xFFFFFFFF))
    np.testing.assert_array_equal(samples, [0.5])
