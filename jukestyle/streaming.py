"""Audio of any length in bounded memory: windows with crossfades, and files read and written in blocks.

Content longer than one window is processed as overlapping windows (lengths in whole
latent frames of the level); consecutive outputs are crossfaded over the overlap with
complementary sin^2/cos^2 weights, which sum to one. Only one window and one overlap
are held at a time. Styles are analysed window by window (``Method.analyse``
adds their statistics).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from jukestyle.audio.io import check_downmix, check_peak, require_audio_file, tag
from jukestyle.errors import AudioError, OutputError
from jukestyle.fileio import atomic_path, reported_write_errors

BLOCK_FRAMES = 1 << 16  # frames read from a file at a time


def window_bounds(total: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """(start, stop) of windows covering ``total`` samples; consecutive windows share ``overlap`` samples.

    Every window is ``window`` long except the last, which takes what remains: between half a
    window and one and a half (a short remainder joins the window before it), so it always
    holds whole latent frames and more than the overlap.
    """
    step, bounds, start = window - overlap, [], 0
    while total - start > window and total - (start + step) >= window // 2:
        bounds.append((start, start + window))
        start += step
    return [*bounds, (start, total)]


def crossfade(overlap: int) -> np.ndarray:
    """Fade-in weights over the overlap (the fade-out is 1 minus them)."""
    t = (np.arange(overlap) + 0.5) / overlap
    return np.sin(0.5 * np.pi * t).astype(np.float32) ** 2


class OverlapAdd:
    """Join consecutive window outputs with crossfades, yielding each sample once it is final."""

    def __init__(self, overlap: int) -> None:
        self.overlap, self.fade_in = overlap, crossfade(overlap)
        self._tail: np.ndarray | None = None

    def push(self, output: np.ndarray, last: bool) -> np.ndarray:
        output = np.asarray(output, dtype=np.float32)
        if self._tail is not None:
            head = output[: self.overlap]
            output = np.concatenate([self._tail * (1.0 - self.fade_in) + head * self.fade_in, output[self.overlap :]])
        if last:
            self._tail = None
            return output
        self._tail = output[-self.overlap :].copy()
        return output[: -self.overlap]


class AudioFileReader:
    """A file as mono float32 at ``sample_rate``, read in blocks (resampled with soxr's streaming filter)."""

    def __init__(self, path: str | os.PathLike, sample_rate: int) -> None:
        self.path = require_audio_file(path)
        try:
            info = sf.info(self.path)
        except (sf.LibsndfileError, RuntimeError) as error:
            raise AudioError(f"{self.path}: unreadable audio ({str(error).splitlines()[0]})") from None
        self.file_rate, self.sample_rate = info.samplerate, sample_rate
        self.frames = round(info.frames * sample_rate / info.samplerate)  # at the model rate (estimate)
        if info.frames == 0:
            raise AudioError(f"{self.path}: empty audio (0 samples)")
        self._checked = False  # the first complete pass warns as load_audio would (peak, downmix)

    def blocks(self) -> Iterator[np.ndarray]:
        peak, channels_energy, mono_energy = 0.0, 0.0, 0.0
        resampler = None
        if self.file_rate != self.sample_rate:
            resampler = soxr.ResampleStream(self.file_rate, self.sample_rate, 1, dtype="float32", quality="VHQ")
        with sf.SoundFile(self.path) as handle:
            while True:
                block = handle.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
                last = len(block) < BLOCK_FRAMES
                mono = block.mean(axis=1)
                if not np.isfinite(mono).all():
                    raise AudioError(f"{self.path}: contains NaN or infinite samples")
                if not self._checked and len(block):
                    peak = max(peak, float(np.abs(block).max()))
                    channels_energy += float(np.square(block, dtype=np.float64).mean(axis=1).sum())
                    mono_energy += float(np.square(mono, dtype=np.float64).sum())
                if last and not self._checked:
                    self._checked = True
                    check_peak(20 * np.log10(peak) if peak > 0 else -np.inf, str(self.path))
                    if block.shape[1] > 1:
                        check_downmix(channels_energy, mono_energy, str(self.path))
                if resampler is not None:
                    mono = resampler.resample_chunk(mono, last=last)
                if len(mono):
                    yield mono
                if last:
                    return

    def windows(self, bounds: list[tuple[int, int]]) -> Iterator[np.ndarray]:
        """The samples of each (start, stop) in ``bounds`` (increasing starts), holding at most one window."""
        buffer, offset = np.zeros(0, np.float32), 0  # buffer holds samples [offset, offset + len(buffer))
        blocks = self.blocks()
        for index, (start, stop) in enumerate(bounds):
            is_last = index == len(bounds) - 1
            while offset + len(buffer) < stop or is_last:
                block = next(blocks, None)
                if block is None:
                    break
                buffer = np.concatenate([buffer, block])
            window = buffer[start - offset : (None if is_last else stop - offset)]
            yield window
            keep = bounds[index + 1][0] if not is_last else offset + len(buffer)
            buffer, offset = buffer[keep - offset :], keep


class AudioFileWriter:
    """Write mono float32 blocks to a WAV (32-bit float) that appears under its name only when complete."""

    def __init__(self, path: str | os.PathLike, sample_rate: int, comment: str | None = None) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() != ".wav":
            raise AudioError(f"{self.path}: long outputs are written as .wav")
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            with reported_write_errors(self.path):
                self._handle = sf.SoundFile(tmp, "w", sample_rate, 1, "FLOAT", format="WAV")
                tag(self._handle, comment)
        except OutputError as error:
            self._atomic.__exit__(type(error), error, None)
            raise

    def write(self, samples: np.ndarray) -> None:
        if not np.isfinite(samples).all():
            raise AudioError(f"{self.path}: refusing to write NaN or infinite samples")
        with reported_write_errors(self.path):
            self._handle.write(np.asarray(samples, dtype=np.float32))

    def __enter__(self) -> AudioFileWriter:
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            with reported_write_errors(self.path):
                self._handle.close()  # flushes: a full disk may show here first
        except OutputError as closing:
            if error is None:
                kind, error, trace = OutputError, closing, closing.__traceback__
                self._atomic.__exit__(kind, error, trace)  # the temporary file is removed
                raise
        self._atomic.__exit__(kind, error, trace)  # renamed into place on success, removed on error
