"""Spoken digits: the Free Spoken Digit Dataset's recordings, its splits, and a seeded generator of connected-digit
utterances made from them.

FSDD names each file ``{digit}_{speaker}_{take}.wav`` (6 speakers × 10 digits × 50 takes, 8 kHz). Its official
split holds out takes 0–4 of every speaker (speaker-dependent); :func:`speaker_split` holds out whole speakers.

:func:`connected_digits` strings 2–7 isolated digits of a pool of recordings into one utterance, with a random
silence before, between and after them (50–350 ms), a random level for the utterance (−12…0 dB) and for each
digit (±6 dB), and white background noise at a random signal-to-noise ratio (15–35 dB). Everything random is
drawn from one ``numpy.random.Generator`` seeded with ``seed``: the same recordings and seed give the same
samples, bit for bit, on any machine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unrolled.audio.wav import read_wav, write_wav
from unrolled.data.readers import DataError, read_dataset

__all__ = ["ConnectedUtterance", "Recording", "connected_digits", "fsdd_recordings", "official_split",
           "read_manifest", "speaker_split", "write_connected_digits", "write_manifest"]

FSDD_RATE = 8000
OFFICIAL_TEST_TAKES = range(5)  # takes 0-4 are FSDD's official test set
_FSDD_NAME = re.compile(r"(\d)_([A-Za-z]+)_(\d+)\.wav")


@dataclass(frozen=True)
class Recording:
    path: Path
    digit: str
    speaker: str
    take: int


def fsdd_recordings(folder: str | os.PathLike[str]) -> list[Recording]:
    """Every ``{digit}_{speaker}_{take}.wav`` in ``folder``, sorted by speaker, digit and take.

    Raises ValueError for a missing or empty folder and for a ``.wav`` file named otherwise (one line naming it).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder of FSDD recordings")
    recordings = []
    for path in folder.iterdir():
        if path.suffix.lower() != ".wav":
            continue
        match = _FSDD_NAME.fullmatch(path.name)
        if match is None:
            raise ValueError(f"{path}: not named like an FSDD recording (DIGIT_SPEAKER_TAKE.wav)")
        recordings.append(Recording(path, match[1], match[2], int(match[3])))
    if not recordings:
        raise ValueError(f"{folder}: no .wav recordings")
    return sorted(recordings, key=lambda r: (r.speaker, r.digit, r.take))


def speakers(recordings: Iterable[Recording]) -> list[str]:
    return sorted({r.speaker for r in recordings})


def official_split(recordings: Sequence[Recording]) -> tuple[list[Recording], list[Recording]]:
    """(train, test): FSDD's official split, takes 0–4 of every speaker and digit held out."""
    test = [r for r in recordings if r.take in OFFICIAL_TEST_TAKES]
    return [r for r in recordings if r.take not in OFFICIAL_TEST_TAKES], test


def speaker_split(recordings: Sequence[Recording], test_speakers: Iterable[str]) -> tuple[list[Recording], list[Recording]]:
    """(train, test): the recordings of ``test_speakers`` held out, every other speaker's for training."""
    held = set(test_speakers)
    unknown = sorted(held - set(speakers(recordings)))
    if unknown:
        raise ValueError(f"test speakers: {', '.join(unknown)} not among the recordings' speakers "
                         f"({', '.join(speakers(recordings))})")
    train = [r for r in recordings if r.speaker not in held]
    if not train:
        raise ValueError("test speakers: every speaker is held out, so nothing is left to train on")
    return train, [r for r in recordings if r.speaker in held]


@dataclass(frozen=True)
class ConnectedUtterance:
    samples: np.ndarray  # (n,) float32 at the recordings' rate
    transcript: str  # the digits, e.g. "4071"
    sources: tuple[str, ...]  # the file name of each digit's recording, in order


def connected_digits(
    recordings: Sequence[Recording],
    count: int,
    *,
    seed: int = 0,
    min_digits: int = 2,
    max_digits: int = 7,
    sample_rate: int = FSDD_RATE,
) -> list[ConnectedUtterance]:
    """``count`` utterances of ``min_digits``–``max_digits`` digits drawn from ``recordings`` (see the module
    docstring for the gaps, levels and noise). Recordings of one speaker are never mixed with another's, so a
    pool of held-out speakers gives utterances of those speakers only."""
    if count < 1 or not 1 <= min_digits <= max_digits:
        raise ValueError(f"count, min_digits, max_digits: expected count >= 1 and 1 <= min <= max, got {count}, "
                         f"{min_digits}, {max_digits}")
    if not recordings:
        raise ValueError("recordings: none to draw digits from")
    by_speaker: dict[str, list[Recording]] = {}
    for recording in recordings:
        by_speaker.setdefault(recording.speaker, []).append(recording)
    names = sorted(by_speaker)
    rng = np.random.default_rng(seed)
    loaded: dict[Path, np.ndarray] = {}

    def audio(recording: Recording) -> np.ndarray:
        if recording.path not in loaded:
            loaded[recording.path] = read_wav(recording.path, sample_rate)[0]
        return loaded[recording.path]

    def silence() -> np.ndarray:
        return np.zeros(int(rng.uniform(0.05, 0.35) * sample_rate), dtype=np.float64)

    utterances = []
    for _ in range(count):
        pool = by_speaker[names[int(rng.integers(len(names)))]]
        picks = [pool[int(i)] for i in rng.integers(len(pool), size=int(rng.integers(min_digits, max_digits + 1)))]
        pieces, spoken = [silence()], []
        for recording in picks:
            spoken.append(audio(recording) * 10 ** (rng.uniform(-6, 6) / 20))
            pieces += [spoken[-1], silence()]
        gain = 10 ** (rng.uniform(-12, 0) / 20)
        samples = np.concatenate(pieces) * gain
        speech_power = np.mean(np.concatenate(spoken) ** 2) * gain**2
        snr_db = rng.uniform(15, 35)
        samples = samples + rng.standard_normal(len(samples)) * np.sqrt(speech_power / 10 ** (snr_db / 10))
        peak = np.max(np.abs(samples))
        if peak > 0.99:  # keep it within 16-bit range when written
            samples *= 0.99 / peak
        utterances.append(ConnectedUtterance(samples.astype(np.float32), "".join(r.digit for r in picks),
                                             tuple(r.path.name for r in picks)))
    return utterances


def write_manifest(path: str | os.PathLike[str], rows: Iterable[tuple[str, str]]) -> Path:
    """A TSV with the header ``path<TAB>transcript`` (paths relative to the manifest's folder)."""
    path = Path(path)
    with open(path, "w", encoding="utf-8", newline="") as file:
        file.write("path\ttranscript\n")
        for audio_path, transcript in rows:
            file.write(f"{audio_path}\t{transcript}\n")
    return path


def read_manifest(path: str | os.PathLike[str]) -> tuple[list[Path], list[str]]:
    """(audio paths, transcripts) of a manifest with the columns ``path`` and ``transcript`` (TSV, CSV or JSONL,
    optionally gzip-compressed: :func:`unrolled.data.readers.read_dataset` reads it); relative paths are
    taken from the manifest's folder.

    Raises :class:`unrolled.data.readers.DataError` naming the file and line for a missing column, a
    malformed or empty row, or an audio file that does not exist.
    """
    rows = read_dataset(path, text_column="path", label_column="transcript")
    folder = Path(path).parent
    paths = []
    for text, line in zip(rows.texts, rows.lines):
        audio = Path(text.strip())
        audio = audio if audio.is_absolute() else folder / audio
        if not audio.is_file():
            problem = "is not a regular file" if audio.exists() else "does not exist"
            raise DataError(rows.path, f"{audio} {problem}", line=line, field="path")
        paths.append(audio)
    return paths, list(rows.labels)


def write_connected_digits(folder: str | os.PathLike[str], utterances: Sequence[ConnectedUtterance],
                           sample_rate: int = FSDD_RATE) -> Path:
    """Write each utterance as ``{index:05d}.wav`` and a ``manifest.tsv`` (and ``sources.tsv``: which
    recordings made each); returns the manifest's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows, sources = [], []
    for index, utterance in enumerate(utterances):
        name = f"{index:05d}.wav"
        write_wav(folder / name, utterance.samples, sample_rate)
        rows.append((name, utterance.transcript))
        sources.append((name, " ".join(utterance.sources)))
    with open(folder / "sources.tsv", "w", encoding="utf-8") as file:
        file.write("path\trecordings\n" + "".join(f"{a}\t{b}\n" for a, b in sources))
    return write_manifest(folder / "manifest.tsv", rows)


SPLITS_HELP = "official (FSDD's takes 0-4 held out), speakers=NAME[,NAME] (those speakers held out), or all"


@dataclass(frozen=True)
class SpeechSplit:
    """Training and test utterances (WAV paths or sample arrays) with their transcripts."""

    train_audio: list
    train_texts: list[str]
    test_audio: list
    test_texts: list[str]
    description: str  # e.g. "FSDD official split (takes 0-4 held out)"
    test_speakers: tuple[str, ...] = ()


def speech_split(data: str | os.PathLike[str], split: str = "official", *, connected: int = 0,
                 connected_test: int | None = None, seed: int = 0) -> SpeechSplit:
    """The utterances of ``data`` split for training and testing.

    ``data``: a folder of FSDD recordings (transcripts from the file names) or a ``path<TAB>transcript``
    manifest (``split`` must then be "all": no test part). ``split``: see :data:`SPLITS_HELP`.
    ``connected`` > 0: instead of the isolated recordings, that many connected-digit utterances generated
    from the training part (seed ``seed``) and ``connected_test`` (default a quarter as many) from the test
    part (seed ``seed + 1``): speaker-disjoint when the split holds out speakers.
    """
    data = Path(data)
    if data.is_file():
        if split != "all" or connected:
            raise ValueError(f"{data}: a manifest has no speakers or takes to split or draw digits from; "
                             "use --split all (and no --connected), or a folder of FSDD recordings")
        audio, texts = read_manifest(data)
        return SpeechSplit(list(audio), texts, [], [], f"{data} (all {len(audio)} utterances)")
    recordings = fsdd_recordings(data)
    held: tuple[str, ...] = ()
    if split == "official":
        train, test = official_split(recordings)
        description = "FSDD official split (takes 0-4 of every speaker held out)"
    elif split.startswith("speakers="):
        held = tuple(name.strip() for name in split[len("speakers="):].split(",") if name.strip())
        if not held:
            raise ValueError("split: speakers= needs at least one speaker name")
        train, test = speaker_split(recordings, held)
        description = f"FSDD with speaker{'s' if len(held) > 1 else ''} {', '.join(held)} held out"
    elif split == "all":
        train, test = list(recordings), []
        description = "all FSDD recordings (no test part)"
    else:
        raise ValueError(f"split: expected {SPLITS_HELP}; got {split!r}")
    if not connected:
        return SpeechSplit([r.path for r in train], [r.digit for r in train], [r.path for r in test],
                           [r.digit for r in test], description, held)
    n_test = max(1, connected // 4) if connected_test is None else connected_test
    train_utts = connected_digits(train, connected, seed=seed)
    test_utts = connected_digits(test, n_test, seed=seed + 1) if test else []
    return SpeechSplit([u.samples for u in train_utts], [u.transcript for u in train_utts],
                       [u.samples for u in test_utts], [u.transcript for u in test_utts],
                       f"{connected} connected-digit utterances (seed {seed}) from {description}; "
                       f"{len(test_utts)} for testing (seed {seed + 1})", held)
