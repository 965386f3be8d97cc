"""One content + one style -> one output: the path shared by the CLI and ``jukestyle.transfer``.

1. content and style (mono float32 at the model rate) are checked and loudness-normalised
   (EBU R128, ``input_lufs``), so the frozen model sees every input at one level;
2. the style is analysed once by the method and cached, keyed by its audio's hash;
3. the method transforms the content; the output gets the content's original loudness back.

Audio longer than ``window_seconds`` goes through the model in overlapping windows joined
by crossfades, and styles are analysed window by window (``jukestyle.streaming``), so the
model's memory does not grow with duration. ``transfer_file`` also reads and writes the
audio in blocks, so that nothing of a file is held whole: hours of audio fit in the memory
of a few seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from jukestyle.audio import io as audio_io
from jukestyle.errors import AudioError, ConfigError
from jukestyle.fileio import prepare_output, sha256_file
from jukestyle.jukebox import VQVAE
from jukestyle.methods import Method, require_gradients
from jukestyle.streaming import AudioFileReader, AudioFileWriter, OverlapAdd, window_bounds

# bf16: the model's convolutions and matrix products run under bf16 autocast (AMX on recent CPUs);
# feature transforms still compute in float32/float64 (see methods._FeatureTransfer).
PRECISIONS = ("fp32", "bf16")


@dataclass
class TransferResult:
    audio: np.ndarray  # mono float32 at the model rate
    sample_rate: int
    seconds: dict[str, float] = field(default_factory=dict)  # timings: analyse, apply, total
    info: dict = field(default_factory=dict)


def _warn_silent(name: str, role: str) -> None:
    consequence = "the output is silence" if role == "content" else "its statistics are those of silence"
    audio_io.warn(f"{name}: silent (below -70 LUFS): not loudness-normalised; {consequence}")


def audio_hash(samples: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(samples, dtype=np.float32).tobytes()).hexdigest()


class StyleTransfer:
    """Apply ``method`` with a frozen ``model``; styles are analysed once (LRU cache of ``cache_size``)."""

    def __init__(
        self,
        model: VQVAE,
        method: Method,
        input_lufs: float | None = -20.0,
        cache_size: int = 8,
        window_seconds: float | None = 10.0,
        overlap_seconds: float = 0.5,
        precision: str = "fp32",
    ) -> None:
        method.validate(model)
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        self.model = model.eval().requires_grad_(False)
        self.method, self.input_lufs, self.cache_size = method, input_lufs, cache_size
        self._styles: OrderedDict[str, object] = OrderedDict()
        # Window and overlap in whole latent frames of the level, so every window has the same frame grid.
        hop, rate = model.hop_length(method.level), model.sample_rate
        self.window = max(2 * hop, round(window_seconds * rate / hop) * hop) if window_seconds else None
        self.overlap = max(hop, round(overlap_seconds * rate / hop) * hop)
        if self.window is not None and 2 * self.overlap > self.window:
            raise ConfigError(f"overlap_seconds={overlap_seconds} is more than half of window_seconds={window_seconds}")

    def _bounds(self, total: int, overlap: bool = True) -> list[tuple[int, int]]:
        if self.window is None:
            return [(0, total)]
        return window_bounds(total, self.window, self.overlap if overlap else 0)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _check(self, samples: np.ndarray, name: str) -> None:
        hop = self.model.hop_length(self.method.level)
        if len(samples) < hop:
            raise AudioError(
                f"{name}: {len(samples)} samples is shorter than one latent frame at level {self.method.level} ({hop})"
            )

    def _silent(self, samples: np.ndarray, name: str, role: str) -> bool:
        """True (with a warning) for audio below the loudness meter's gate: nothing to normalise or transfer."""
        if np.isfinite(audio_io.loudness(samples - samples.mean(), self.model.sample_rate)):
            return False
        _warn_silent(name, role)
        return True

    @staticmethod
    def _playable(samples: np.ndarray) -> np.ndarray:
        """The output scaled down to full scale (peak 1) if it goes beyond, with a warning: a float WAV holds
        such samples, but players clip them."""
        peak_db = audio_io.peak_dbfs(samples)
        if peak_db <= 0.0:
            return samples
        audio_io.warn(f"output: peak {peak_db:+.1f} dBFS is above full scale; scaled down by {peak_db:.1f} dB")
        return audio_io.apply_gain(samples, -peak_db)

    def _normalise(self, samples: np.ndarray) -> tuple[np.ndarray, float]:
        samples = samples - samples.mean()  # a DC offset carries no timbre and would skew the loudness
        if self.input_lufs is None:
            return samples.astype(np.float32), 0.0
        return audio_io.normalize_loudness(samples, self.model.sample_rate, self.input_lufs)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _tensor(self, samples: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).view(1, 1, -1).to(self.device)

    def _grad_mode(self) -> contextlib.AbstractContextManager:
        """Inference mode (no autograd bookkeeping at all) unless the method optimises with gradients."""
        stack = contextlib.ExitStack()
        stack.enter_context(self._autocast())
        if not self.method.needs_grad:
            stack.enter_context(torch.inference_mode())
            return stack
        require_gradients([self.method])
        stack.enter_context(torch.enable_grad())
        return stack

    def _cached(self, key: str, analyse) -> tuple[object, bool]:
        if key in self._styles:
            self._styles.move_to_end(key)
            return self._styles[key], True
        # no_grad, not inference mode: gram's style Gram matrices later enter a graph that needs gradients
        with torch.no_grad(), self._autocast():
            analysis = analyse()
        self._styles[key] = analysis
        if len(self._styles) > self.cache_size:
            self._styles.popitem(last=False)
        return analysis, False

    def analyse_style(self, style: np.ndarray, style_name: str = "style") -> tuple[object, bool]:
        """The method's analysis of a (normalised) style, window by window; True if it came from the cache."""
        windows = (self._tensor(style[start:stop]) for start, stop in self._bounds(len(style), overlap=False))
        key = f"{audio_hash(style)}:{self.method.style_key(style_name)}"
        return self._cached(key, lambda: self.method.analyse(self.model, windows, style_name))

    def _apply(self, content: np.ndarray, analysis: object) -> tuple[np.ndarray, dict]:
        """One window of normalised content through the method."""
        with self._grad_mode():
            output = self.method.apply(self.model, self._tensor(content), analysis)
        samples = output.audio.detach().reshape(-1).float().cpu().numpy()[: len(content)]
        if not np.isfinite(samples).all():
            raise AudioError(f"method {self.method.name!r} produced NaN or infinite samples")
        return samples, output.info

    def _transfer_windows(self, windows, bounds: list[tuple[int, int]], analysis: object, info: dict):
        """Outputs of consecutive windows, crossfaded; each yielded sample is final."""
        joined = OverlapAdd(self.overlap)
        for index, window in enumerate(windows):
            samples, window_info = self._apply(window, analysis)
            if index == 0:  # the first window's details (e.g. gram's loss curve) stand for the rest
                info.update(window_info)
            yield joined.push(samples, last=index == len(bounds) - 1)

    def __call__(
        self, content: np.ndarray, style: np.ndarray, content_name: str = "content", style_name: str = "style"
    ) -> TransferResult:
        """``content_name`` and ``style_name`` (e.g. their files) name them in errors and warnings."""
        started = time.perf_counter()
        self._check(content, content_name)
        self._check(style, style_name)
        self._silent(style, style_name, "style")
        if self._silent(content, content_name, "content"):
            seconds = dict.fromkeys(("analyse", "apply", "total"), time.perf_counter() - started)
            info = {"style_cached": False, "input_gain_db": 0.0, "windows": 0, "silent_content": True}
            return TransferResult(np.zeros_like(content, dtype=np.float32), self.model.sample_rate, seconds, info)
        content_in, gain_db = self._normalise(content)
        style_in, _ = self._normalise(style)
        analysis, cached = self.analyse_style(style_in, style_name)
        analysed = time.perf_counter()
        bounds, info = self._bounds(len(content_in)), {}
        windows = (content_in[start:stop] for start, stop in bounds)
        samples = np.concatenate(list(self._transfer_windows(windows, bounds, analysis, info)))
        samples = self._playable(audio_io.apply_gain(samples, -gain_db))  # back to the content's loudness
        done = time.perf_counter()
        seconds = {"analyse": analysed - started, "apply": done - analysed, "total": done - started}
        info.update(style_cached=cached, input_gain_db=gain_db, windows=len(bounds))
        return TransferResult(samples, self.model.sample_rate, seconds, info)

    # -- files of any length, in bounded memory ---------------------------------------------
    def _file_level(self, reader: AudioFileReader, name: str, role: str) -> tuple[float, float, bool]:
        """A file's mean (DC offset), the gain in dB that brings it to ``input_lufs``, and whether it is silent
        (below the meter's gate, with a warning, as in memory).

        Two passes over the file, as the in-memory path does: the loudness is that of the audio
        without its DC offset, which is known only after the first. Only sums are kept."""
        meter, total, count = audio_io.LoudnessMeter(reader.sample_rate), 0.0, 0
        for block in reader.blocks():
            total, count = total + float(block.sum(dtype=np.float64)), count + len(block)
        mean = total / max(count, 1)
        for block in reader.blocks():
            meter.update(block - mean)
        measured = meter.integrated()
        if not np.isfinite(measured):
            _warn_silent(name, role)
            return mean, 0.0, True
        if self.input_lufs is None:
            return mean, 0.0, False
        return mean, self.input_lufs - measured, False

    def _reader(self, path, role: str) -> AudioFileReader:
        reader = AudioFileReader(path, self.model.sample_rate)
        hop = self.model.hop_length(self.method.level)
        if reader.frames < hop:
            raise AudioError(f"{path}: {role} is shorter than one latent frame at level {self.method.level} ({hop})")
        return reader

    def transfer_file(
        self, content, style, output, comment: str | None = None, progress: Callable[[int, int], None] | None = None
    ) -> TransferResult:
        """Content and style files of any length -> ``output`` (.wav), holding one window at a time.

        Returns the timings and information; ``audio`` is left empty (the output is on disk). ``progress`` is
        called with (windows done, windows in all) after each window of the content.
        """
        started = time.perf_counter()
        prepare_output(output)  # before the work: a folder that cannot be written, and leftovers of a killed run
        content_reader, style_reader = self._reader(content, "content"), self._reader(style, "style")

        def style_windows():
            mean, gain_db, _ = self._file_level(style_reader, str(style), "style")
            bounds = self._bounds(style_reader.frames, overlap=False)
            for window in style_reader.windows(bounds):
                yield self._tensor(audio_io.apply_gain(window - mean, gain_db))

        key = f"file:{sha256_file(style)}:{self.input_lufs}:{self.method.style_key(str(style))}"
        analysis, cached = self._cached(key, lambda: self.method.analyse(self.model, style_windows(), str(style)))
        analysed = time.perf_counter()
        mean, gain_db, silent = self._file_level(content_reader, str(content), "content")
        bounds, info, limited = self._bounds(content_reader.frames), {}, 0
        windows = (audio_io.apply_gain(window - mean, gain_db) for window in content_reader.windows(bounds))
        with AudioFileWriter(output, self.model.sample_rate, comment) as writer:
            if silent:
                for start, stop in self._bounds(content_reader.frames, overlap=False):
                    writer.write(np.zeros(stop - start, np.float32))
            else:
                for done, samples in enumerate(self._transfer_windows(windows, bounds, analysis, info), 1):
                    # written block by block: samples beyond full scale are limited here, not scaled afterwards
                    samples = audio_io.apply_gain(samples, -gain_db)
                    limited += int(np.count_nonzero(np.abs(samples) > 1.0))
                    writer.write(np.clip(samples, -1.0, 1.0))
                    if progress is not None:
                        progress(done, len(bounds))
        if limited:
            audio_io.warn(f"{output}: {limited} samples beyond full scale were limited to +-1")
        done = time.perf_counter()
        seconds = {"analyse": analysed - started, "apply": done - analysed, "total": done - started}
        info.update(style_cached=cached, input_gain_db=gain_db, windows=len(bounds))
        return TransferResult(np.zeros(0, np.float32), self.model.sample_rate, seconds, info)
