"""Audio for speech recognition: WAV files (:mod:`.wav`), features (:mod:`.features`) and spoken digits
(:mod:`.digits`: FSDD's recordings and splits, the connected-digits generator)."""

from unrolled.audio.wav import AudioError, read_wav, write_wav

__all__ = ["AudioError", "read_wav", "write_wav"]
