"""FSDD recordings, splits, manifests and the connected-digits generator (on small synthetic recordings)."""

import numpy as np
import pytest

from unrolled.audio.digits import (
    connected_digits,
    fsdd_recordings,
    official_split,
    read_manifest,
    speaker_split,
    speech_split,
    write_connected_digits,
)
from unrolled.audio.wav import read_wav, write_wav


def make_fsdd(folder, speakers=("ann", "bob", "cy"), digits="0123", takes=range(7), seconds=0.3):
    """Tiny FSDD-like recordings: digit d is a tone of 300 + 150 d Hz, each speaker a little higher."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 8000)) / 8000
    for s, speaker in enumerate(speakers):
        for digit in digits:
            for take in takes:
                f = (300 + 150 * int(digit)) * (1 + 0.05 * s)
                tone = 0.4 * np.sin(2 * np.pi * f * t) * np.hanning(len(t)) + 0.01 * rng.standard_normal(len(t))
                write_wav(folder / f"{digit}_{speaker}_{take}.wav", tone, 8000)
    return folder


def test_recordings_and_splits(tmp_path):
    recordings = fsdd_recordings(make_fsdd(tmp_path / "rec"))
    assert len(recordings) == 3 * 4 * 7 and recordings[0].speaker == "ann"
    train, test = official_split(recordings)
    assert {r.take for r in test} == set(range(5)) and len(train) == 3 * 4 * 2
    train, test = speaker_split(recordings, ["bob"])
    assert {r.speaker for r in test} == {"bob"} and "bob" not in {r.speaker for r in train}
    with pytest.raises(ValueError, match="zed not among the recordings' speakers"):
        speaker_split(recordings, ["zed"])
    with pytest.raises(ValueError, match="every speaker is held out"):
        speaker_split(recordings, ["ann", "bob", "cy"])


def test_badly_named_recordings_are_named(tmp_path):
    folder = make_fsdd(tmp_path / "rec", speakers=("ann",), digits="0", takes=range(1))
    (folder / "notes.txt").write_text("ignored")
    write_wav(folder / "seven.wav", np.zeros(10), 8000)
    with pytest.raises(ValueError, match="seven.wav: not named like an FSDD recording"):
        fsdd_recordings(folder)
    with pytest.raises(ValueError, match="not a folder"):
        fsdd_recordings(tmp_path / "missing")


def test_connected_digits_are_deterministic_and_speaker_pure(tmp_path):
    recordings = fsdd_recordings(make_fsdd(tmp_path / "rec"))
    first = connected_digits(recordings, 12, seed=3)
    again = connected_digits(recordings, 12, seed=3)
    other = connected_digits(recordings, 12, seed=4)
    assert [u.transcript for u in first] == [u.transcript for u in again]
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(first, again))
    assert [u.transcript for u in first] != [u.transcript for u in other]
    for u in first:
        assert 2 <= len(u.transcript) <= 7 and len(u.sources) == len(u.transcript)
        assert len({name.split("_")[1] for name in u.sources}) == 1  # one speaker per utterance
        assert [name[0] for name in u.sources] == list(u.transcript)
        assert np.abs(u.samples).max() <= 0.99
        # the digits plus at least 50 ms of silence around each one
        assert len(u.samples) >= len(u.transcript) * 0.3 * 8000 + (len(u.transcript) + 1) * 400


def test_written_sets_read_back(tmp_path):
    recordings = fsdd_recordings(make_fsdd(tmp_path / "rec"))
    utterances = connected_digits(recordings, 4, seed=1)
    manifest = write_connected_digits(tmp_path / "set", utterances)
    paths, texts = read_manifest(manifest)
    assert texts == [u.transcript for u in utterances]
    samples, _ = read_wav(paths[0])
    np.testing.assert_allclose(samples, utterances[0].samples, atol=1 / 32768)


def test_manifest_errors_name_the_line(tmp_path):
    manifest = tmp_path / "m.tsv"
    manifest.write_text("file\ttext\n")
    with pytest.raises(ValueError, match=r"m.tsv:1: field 'path': missing column \(columns: 'file', 'text'\)"):
        read_manifest(manifest)
    manifest.write_text("path\ttranscript\nmissing.wav\t12\n")
    with pytest.raises(ValueError, match="m.tsv:2: field 'path': .*missing.wav does not exist"):
        read_manifest(manifest)
    write_wav(tmp_path / "a.wav", np.zeros(100), 8000)
    manifest.write_text("path\ttranscript\na.wav\t1\ta.wav\n")
    with pytest.raises(ValueError, match="m.tsv:2: expected 2 tab-separated fields"):
        read_manifest(manifest)
    manifest.write_text("path\ttranscript\na.wav\t \n")
    with pytest.raises(ValueError, match="m.tsv:2: field 'transcript': empty value"):
        read_manifest(manifest)


def test_speech_split(tmp_path):
    folder = make_fsdd(tmp_path / "rec")
    split = speech_split(folder, "speakers=cy", connected=8, connected_test=3, seed=2)
    assert len(split.train_texts) == 8 and len(split.test_texts) == 3 and split.test_speakers == ("cy",)
    assert "cy held out" in split.description
    with pytest.raises(ValueError, match="split: expected"):
        speech_split(folder, "random")
    manifest = write_connected_digits(tmp_path / "set", connected_digits(fsdd_recordings(folder), 2))
    with pytest.raises(ValueError, match="use --split all"):
        speech_split(manifest, "official")
    assert len(speech_split(manifest, "all").train_texts) == 2
