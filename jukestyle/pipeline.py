"""One content + one style -> one output: the path shared by the CLI and ``jukestyle.transfer``.

1. content and style (mono float32 at the model rate) are checked and loudness-normalised
   (EBU R128, ``input_lufs``), so the frozen model sees every input at one level;
2. the style is analysed once by the method and cached, keyed by its audio's hash;
3. the method transforms the content; the output gets the content's original loudness back.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

from jukestyle import audio as audio_io
from jukestyle.errors import AudioError
from jukestyle.jukebox import VQVAE
from jukestyle.methods import Method


@dataclass
class TransferResult:
    audio: np.ndarray  # mono float32 at the model rate
    sample_rate: int
    seconds: dict[str, float] = field(default_factory=dict)  # timings: analyse, apply, total
    info: dict = field(default_factory=dict)


def audio_hash(samples: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(samples, dtype=np.float32).tobytes()).hexdigest()


class StyleTransfer:
    """Apply ``method`` with a frozen ``model``; styles are analysed once (LRU cache of ``cache_size``)."""

    def __init__(self, model: VQVAE, method: Method, input_lufs: float | None = -20.0, cache_size: int = 8) -> None:
        method.validate(model)
        self.model = model.eval().requires_grad_(False)
        self.method, self.input_lufs, self.cache_size = method, input_lufs, cache_size
        self._styles: OrderedDict[str, object] = OrderedDict()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _check(self, samples: np.ndarray, role: str) -> None:
        hop = self.model.hop_length(self.method.level)
        if len(samples) < hop:
            raise AudioError(
                f"{role}: {len(samples)} samples is shorter than one latent frame at level {self.method.level} ({hop})"
            )

    def _normalise(self, samples: np.ndarray) -> tuple[np.ndarray, float]:
        samples = samples - samples.mean()  # a DC offset carries no timbre and would skew the loudness
        if self.input_lufs is None:
            return samples.astype(np.float32), 0.0
        return audio_io.normalize_loudness(samples, self.model.sample_rate, self.input_lufs)

    def _tensor(self, samples: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).view(1, 1, -1).to(self.device)

    def _grad_mode(self) -> contextlib.AbstractContextManager:
        if not self.method.needs_grad:
            return torch.no_grad()
        if torch.is_inference_mode_enabled():
            raise RuntimeError(
                f"method {self.method.name!r} optimises with gradients: set trainer.inference_mode=false"
            )
        return torch.enable_grad()

    def analyse_style(self, style: np.ndarray) -> tuple[object, bool]:
        """The method's analysis of a (normalised) style; True if it came from the cache."""
        key = audio_hash(style)
        if key in self._styles:
            self._styles.move_to_end(key)
            return self._styles[key], True
        with torch.no_grad():
            analysis = self.method.analyse(self.model, self._tensor(style))
        self._styles[key] = analysis
        if len(self._styles) > self.cache_size:
            self._styles.popitem(last=False)
        return analysis, False

    def __call__(self, content: np.ndarray, style: np.ndarray) -> TransferResult:
        started = time.perf_counter()
        self._check(content, "content")
        self._check(style, "style")
        content_in, gain_db = self._normalise(content)
        style_in, _ = self._normalise(style)
        analysis, cached = self.analyse_style(style_in)
        analysed = time.perf_counter()
        with self._grad_mode():
            output = self.method.apply(self.model, self._tensor(content_in), analysis)
        samples = output.audio.detach().reshape(-1).float().cpu().numpy()
        if not np.isfinite(samples).all():
            raise AudioError(f"method {self.method.name!r} produced NaN or infinite samples")
        samples = audio_io.apply_gain(samples, -gain_db)  # back to the content's loudness
        done = time.perf_counter()
        seconds = {"analyse": analysed - started, "apply": done - analysed, "total": done - started}
        info = {**output.info, "style_cached": cached, "input_gain_db": gain_db}
        return TransferResult(samples, self.model.sample_rate, seconds, info)
