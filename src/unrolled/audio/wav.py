"""WAV files in and out, in NumPy: RIFF chunks parsed here, so every sample format is read the same way.

Read: PCM 8-bit (unsigned), 16-, 24- and 32-bit (signed), IEEE float 32- and 64-bit, plain or
WAVE_FORMAT_EXTENSIBLE, any number of channels (averaged to mono). Samples come back as float32 in [-1, 1)
(PCM divided by 2^(bits-1)); a file at another rate than the one asked for is resampled with soxr (the
``speech`` extra). Every problem is one :class:`AudioError` line naming the file.

Write: 16-bit PCM mono (what the connected-digits generator writes).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

__all__ = ["AudioError", "decode_wav", "read_wav", "resample", "write_wav"]

_PCM, _FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # what streaming writers leave in a data chunk's size field


class AudioError(ValueError):
    """An audio file that cannot be read (not a WAV, unsupported format, empty, truncated): one line."""


def read_wav(path: str | os.PathLike[str], sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """The samples of a WAV file as mono float32 (n,) and their rate.

    With ``sample_rate`` the samples are resampled to it when the file has another rate (and that rate is
    returned). Raises :class:`AudioError` naming the file for anything that is not a readable, non-empty WAV.
    """
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():  # reading a FIFO or /dev/zero never ends
        raise AudioError(f"{path}: is not a regular file (a FIFO or a device); only regular files are read")
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise AudioError(f"{path}: is a folder, not a WAV file") from None
    except OSError as error:
        raise AudioError(f"{path}: cannot read ({error.strerror or error})") from None
    return decode_wav(data, path, sample_rate)


def decode_wav(data: bytes, name: str | os.PathLike[str] = "audio", sample_rate: int | None = None
               ) -> tuple[np.ndarray, int]:
    """:func:`read_wav` on the bytes of a WAV file (an upload, say); ``name`` is what the errors call it."""
    path = Path(name)
    samples, rate = _parse(data, path)
    if sample_rate is not None and rate != sample_rate:
        samples, rate = resample(samples, rate, sample_rate, source=str(path)), sample_rate
    return samples, rate


def _parse(data: bytes, path: Path) -> tuple[np.ndarray, int]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        kind = "an empty file" if not data else "not a WAV file (no RIFF/WAVE header)"
        raise AudioError(f"{path}: {kind}")
    fmt = None
    samples_bytes = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = offset + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + size > len(data):
                raise AudioError(f"{path}: fmt chunk is {size} bytes, too short or past the end of the file")
            fmt = data[body : body + size]
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioError(f"{path}: data chunk before the fmt chunk")
            available = len(data) - body
            if size in _UNKNOWN_SIZES and available > 0:
                size = available
            elif size > available:
                raise AudioError(f"{path}: truncated: the data chunk declares {size} bytes, the file holds "
                                 f"{available}")
            samples_bytes = data[body : body + size]
            break
        offset = body + size + (size & 1)  # chunks are padded to an even length
    if fmt is None:
        raise AudioError(f"{path}: no fmt chunk: not a WAV file")
    if samples_bytes is None:
        raise AudioError(f"{path}: no data chunk: no audio")
    return _decode(fmt, samples_bytes, path)


def _decode(fmt: bytes, raw: bytes, path: Path) -> tuple[np.ndarray, int]:
    tag, channels, rate, _, block, bits = struct.unpack_from("<HHIIHH", fmt, 0)
    if tag == _EXTENSIBLE:
        if len(fmt) < 40:
            raise AudioError(f"{path}: WAVE_FORMAT_EXTENSIBLE fmt chunk is {len(fmt)} bytes, expected 40")
        tag = struct.unpack_from("<H", fmt, 24)[0]  # the first two bytes of the subformat GUID
    if channels < 1 or rate < 1:
        raise AudioError(f"{path}: {channels} channels at {rate} Hz in the fmt chunk")
    width = bits // 8
    if tag == _PCM and bits in (8, 16, 24, 32):
        kind = "int"
    elif tag == _FLOAT and bits in (32, 64):
        kind = "float"
    else:
        name = {_PCM: "PCM", _FLOAT: "float"}.get(tag, f"format tag 0x{tag:04x}")
        raise AudioError(f"{path}: unsupported sample format ({name}, {bits}-bit); readable: PCM 8/16/24/32-bit "
                         "and float 32/64-bit")
    if block != width * channels:
        raise AudioError(f"{path}: block align {block} does not match {channels} channels of {bits}-bit samples")
    frames = len(raw) // block
    if frames == 0:
        raise AudioError(f"{path}: no samples (the data chunk is empty)")
    raw = raw[: frames * block]
    if kind == "float":
        values = np.frombuffer(raw, dtype=f"<f{width}").astype(np.float32)
        if not np.isfinite(values).all():
            raise AudioError(f"{path}: float samples include NaN or infinity")
    elif bits == 8:  # 8-bit WAV is unsigned, centred on 128
        values = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif bits == 24:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        values = ints.astype(np.float32) / float(1 << 23)
    else:
        values = np.frombuffer(raw, dtype=f"<i{width}").astype(np.float32) / float(1 << (bits - 1))
    samples = values.reshape(frames, channels).mean(axis=1, dtype=np.float32) if channels > 1 else values
    return np.ascontiguousarray(samples, dtype=np.float32), rate


def resample(samples: np.ndarray, rate: int, target_rate: int, *, source: str = "audio") -> np.ndarray:
    """(n,) samples at ``rate`` -> float32 samples at ``target_rate``, with soxr (high quality)."""
    if rate == target_rate:
        return samples
    try:
        import soxr
    except ImportError:
        raise AudioError(f"{source}: {rate} Hz audio needs resampling to {target_rate} Hz, which needs soxr: "
                         "pip install 'unrolled[speech]'") from None
    return np.asarray(soxr.resample(np.asarray(samples, dtype=np.float32), rate, target_rate), dtype=np.float32)


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int) -> Path:
    """Write (n,) samples in [-1, 1] as 16-bit PCM mono (values beyond are clipped)."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 1 or len(samples) == 0:
        raise ValueError(f"samples: expected a non-empty (n,) array, got shape {samples.shape}")
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, _PCM, 1, sample_rate, sample_rate * 2, 2, 16)
    header += b"data" + struct.pack("<I", len(pcm))
    path = Path(path)
    path.write_bytes(header + pcm)
    return path
