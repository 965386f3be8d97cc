"""Audio in and out, handled once for the whole project.

- ``load_audio``: any file libsndfile reads -> mono float32 at the model rate.
- ``prepare_audio``: the same checks and conversion for arrays already in memory.
- ``normalize_loudness`` / ``apply_gain``: EBU R128 loudness (pyloudnorm), with
  the gain returned so that the original loudness can be restored.
- ``save_audio``: atomic write (temporary file + rename) with a software tag.
- ``LoudnessMeter``: the same EBU R128 measurement fed block by block, for audio
  too long to hold in memory (``jukestyle.streaming``).

Every problem is an ``AudioError`` whose one-line message names the file. Input that can be used but
is probably not what was meant (a stereo downmix that cancels, samples beyond full scale, silence) gives
an ``AudioWarning`` naming the file: a Python warning for the API, a line in the run's record for the CLI.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile as sf
import soxr

import jukestyle
from jukestyle.errors import AudioError
from jukestyle.fileio import atomic_path, reported_write_errors

EBU_R128_TARGET_LUFS = -23.0
# A downmix that keeps less than this share of the channels' mean energy cancelled itself (opposite phases).
_DOWNMIX_KEPT_MIN = 0.1


class AudioWarning(UserWarning):
    """Audio that can be processed but is probably not what was meant; the message names the file."""


def warn(message: str) -> None:
    warnings.warn(AudioWarning(message), stacklevel=3)


@contextlib.contextmanager
def collected_warnings() -> Iterator[list[str]]:
    """The messages of the ``AudioWarning``s raised within, every time (for a run's records); other
    warnings are shown as usual."""
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AudioWarning)
        try:
            yield messages
        finally:
            for warning in caught:
                if issubclass(warning.category, AudioWarning):
                    messages.append(str(warning.message))
                else:
                    warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)


def peak_dbfs(audio: np.ndarray) -> float:
    peak = float(np.max(np.abs(audio))) if np.size(audio) else 0.0
    return 20 * math.log10(peak) if peak > 0 else float("-inf")


# pyloudnorm measures over 400 ms gating blocks; shorter signals are measured on a looped copy.
_GATING_BLOCK_SECONDS = 0.4


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample along the first axis with soxr's very-high-quality filter."""
    if source_rate == target_rate:
        return audio
    return soxr.resample(audio, source_rate, target_rate, quality="VHQ").astype(np.float32, copy=False)


def check_peak(peak_db: float, name: str) -> None:
    """Warn where the input goes beyond full scale (it is used as it is: the output follows its loudness)."""
    if peak_db > 0.0:
        warn(f"{name}: peak {10 ** (peak_db / 20):.3g} ({peak_db:+.1f} dBFS) is above full scale")


def check_downmix(channels_energy: float, mono_energy: float, name: str) -> None:
    """Warn where the mono downmix lost most of the channels' energy (mean squares of all channels and of mono)."""
    kept = mono_energy / channels_energy if channels_energy > 0 else 1.0
    if kept < _DOWNMIX_KEPT_MIN:
        lost = -10 * math.log10(max(kept, 1e-12))
        warn(f"{name}: the mono downmix lost {lost:.0f} dB of the channels' energy (opposite phases?)")


def prepare_audio(audio: np.ndarray, sample_rate: int, target_rate: int, name: str = "audio") -> np.ndarray:
    """Validate an array (samples,) or (samples, channels) and return mono float32 at ``target_rate``."""
    audio = np.asarray(audio)
    if audio.ndim not in (1, 2):
        raise AudioError(f"{name}: expected shape (samples,) or (samples, channels), got {audio.shape}")
    if not np.issubdtype(audio.dtype, np.number):
        raise AudioError(f"{name}: expected numeric samples, got dtype {audio.dtype}")
    if audio.size == 0:
        raise AudioError(f"{name}: empty audio (0 samples)")
    audio = audio.astype(np.float32, copy=False)
    if not np.isfinite(audio).all():
        raise AudioError(f"{name}: contains NaN or infinite samples")
    check_peak(peak_dbfs(audio), name)
    if audio.ndim == 2 and audio.shape[1] > 1:
        channels = float(np.mean(np.square(audio, dtype=np.float64)))
        audio = audio.mean(axis=1)  # downmix to mono
        check_downmix(channels, float(np.mean(np.square(audio, dtype=np.float64))), name)
    elif audio.ndim == 2:
        audio = audio[:, 0]
    return np.ascontiguousarray(resample(audio, sample_rate, target_rate), dtype=np.float32)


def require_audio_file(path: str | os.PathLike) -> Path:
    """``path``, or one line for what is there instead of an audio file (nothing, a folder, an empty file)."""
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"{path}: a folder, not an audio file")
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: an empty file (0 bytes), not audio")
    return path


def load_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Read any format libsndfile supports -> mono float32 (samples,) at ``sample_rate``."""
    path = require_audio_file(path)
    try:
        audio, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AudioError(f"{path}: unreadable audio ({reason})") from None
    return prepare_audio(audio, file_rate, sample_rate, name=str(path))


@functools.lru_cache(maxsize=8)
def _meter(sample_rate: int) -> pyloudnorm.Meter:
    return pyloudnorm.Meter(sample_rate)


def loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (EBU R128 / ITU-R BS.1770); ``-inf`` for silence."""
    audio = np.asarray(audio, dtype=np.float64)
    block = int(np.ceil(_GATING_BLOCK_SECONDS * sample_rate)) + 1
    if audio.shape[0] < block:
        # Looping a short sound keeps its loudness and gives the meter a full block.
        audio = np.tile(audio, int(np.ceil(block / max(audio.shape[0], 1))))
    if not np.any(audio):
        return float("-inf")
    return float(_meter(sample_rate).integrated_loudness(audio))


def normalize_loudness(
    audio: np.ndarray, sample_rate: int, target_lufs: float = EBU_R128_TARGET_LUFS
) -> tuple[np.ndarray, float]:
    """Scale ``audio`` to ``target_lufs``; return it with the gain in dB (0 for silence).

    ``apply_gain(normalized, -gain_db)`` restores the original loudness.
    """
    measured = loudness(audio, sample_rate)
    if not np.isfinite(measured):  # silence, or below the meter's absolute gate
        return np.asarray(audio, dtype=np.float32), 0.0
    gain_db = target_lufs - measured
    return apply_gain(audio, gain_db), float(gain_db)


class LoudnessMeter:
    """Integrated loudness (ITU-R BS.1770 gating, as pyloudnorm measures it) of mono audio fed in blocks.

    The K-weighting filters run with their state carried across blocks; only one sum of
    squares per 100 ms is kept, so memory does not grow with the length of the audio.
    """

    _STEP_SECONDS = 0.1  # gating blocks of 400 ms overlap by 75%: four 100 ms steps each

    def __init__(self, sample_rate: int) -> None:
        from scipy.signal import lfilter_zi

        self.sample_rate = sample_rate
        self._filters = [(stage.b, stage.a) for stage in _meter(sample_rate)._filters.values()]
        self._states = [lfilter_zi(b, a) * 0.0 for b, a in self._filters]
        self._steps: list[float] = []  # sum of squares of the filtered signal per 100 ms step
        self._samples = 0  # samples seen
        self._partial = 0.0  # sum of squares of the step in progress
        # The raw samples until one gating block is full: a sound shorter than that is measured as `loudness`
        # measures it (looped), so that a file and the same audio in memory get the same gain.
        self._block = int(np.ceil(_GATING_BLOCK_SECONDS * sample_rate)) + 1
        self._head: list[np.ndarray] = []

    def _step_end(self, index: int) -> int:
        return int(self._STEP_SECONDS * index * self.sample_rate)

    def update(self, samples: np.ndarray) -> None:
        from scipy.signal import lfilter

        filtered = np.asarray(samples, dtype=np.float64).reshape(-1)
        if self._samples < self._block:
            self._head.append(filtered[: self._block - self._samples].copy())
        for i, (b, a) in enumerate(self._filters):
            filtered, self._states[i] = lfilter(b, a, filtered, zi=self._states[i])
        position, end = self._samples, self._samples + len(filtered)
        while position < end:
            boundary = min(self._step_end(len(self._steps) + 1), end)
            chunk = filtered[position - self._samples : boundary - self._samples]
            self._partial += float(np.dot(chunk, chunk))
            position = boundary
            if boundary == self._step_end(len(self._steps) + 1):
                self._steps.append(self._partial)
                self._partial = 0.0
        self._samples = end

    def integrated(self) -> float:
        """LUFS of everything fed so far (as ``loudness`` measures it); ``-inf`` for silence."""
        if self._samples < self._block:
            return loudness(np.concatenate(self._head) if self._head else np.zeros(0), self.sample_rate)
        steps = np.array([*self._steps, self._partial])
        count = int(np.round((self._samples / self.sample_rate - 0.4) / self._STEP_SECONDS)) + 1  # >= 1: a full block
        padded = np.concatenate([steps, np.zeros(max(0, count + 3 - len(steps)))])
        energy = np.array([padded[j : j + 4].sum() for j in range(count)]) / (0.4 * self.sample_rate)
        with np.errstate(divide="ignore"):
            block = -0.691 + 10.0 * np.log10(energy)
        gated = energy[block >= -70.0]  # absolute gate
        if gated.size == 0:
            return float("-inf")
        relative = -0.691 + 10.0 * np.log10(gated.mean()) - 10.0
        gated = energy[(block >= -70.0) & (block > relative)]
        return float(-0.691 + 10.0 * np.log10(gated.mean())) if gated.size else float("-inf")


def apply_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    return (np.asarray(audio, dtype=np.float32) * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)


# Formats written as float keep any value; integer formats (FLAC) must not clip.
_DEFAULT_SUBTYPES = {".wav": "FLOAT", ".flac": "PCM_24", ".ogg": "VORBIS"}


def tag(handle: sf.SoundFile, comment: str | None = None) -> None:
    """Mark a file being written as jukestyle's, with an optional comment (what it is)."""
    handle.software = f"jukestyle {jukestyle.__version__}"
    if comment:
        handle.comment = comment


def save_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, comment: str | None = None) -> Path:
    """Write mono ``audio`` atomically; WAV as 32-bit float, FLAC as 24-bit (which must not clip)."""
    path = Path(path)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    subtype = _DEFAULT_SUBTYPES.get(path.suffix.lower())
    if subtype is None:
        raise AudioError(f"{path}: cannot write {path.suffix or 'extension-less'} files; use .wav, .flac or .ogg")
    if not np.isfinite(audio).all():
        raise AudioError(f"{path}: refusing to write NaN or infinite samples")
    peak = float(np.abs(audio).max(initial=0.0))
    if subtype.startswith("PCM") and peak > 1.0:
        raise AudioError(f"{path}: peak {peak:.3f} would clip in {subtype}; normalise it or write a .wav")
    file_format = path.suffix[1:].upper()
    with (
        reported_write_errors(path),
        atomic_path(path) as tmp,
        sf.SoundFile(tmp, "w", sample_rate, 1, subtype, format=file_format) as handle,
    ):
        tag(handle, comment)
        handle.write(audio)
    return path
