"""Multi-scale log-mel distance (DAC's reconstruction loss), optionally with log and linear STFT
magnitudes at each scale (RAVE's) and a waveform L1 term.

Jukebox's spectral loss compares *linear* magnitudes, so the loud low partials dominate it
and the quiet upper harmonics, which tell a trumpet from a flute, cost almost nothing. On a
log scale every partial counts by its ratio, whatever its level. At each window length
``w`` (hop ``w / 4``, Hann window) the log10 of the mel energies, clamped at ``clamp``,
are compared with an L1 distance; the scales are summed, as DAC does.

``frame_tones`` adds the distance of the spectra at the harmonics of a decoder's frame rates
(``frame_tones.py``), where a fine-tuned decoder leaks combs of tones: one rate per entry of
``frame_periods`` (samples per frame), the term the mean of their distances.

A waveform term makes a decoder that is unsure of the phase average it away, and the
upper harmonics cancel first: it is off by default.
"""

from __future__ import annotations

from collections.abc import Sequence

import librosa
import torch
import torch.nn.functional as F

from jukestyle.losses.base import ReconstructionLoss, stft_magnitude, weighted_total
from jukestyle.losses.frame_tones import frame_tone_distance

# DAC's scales: window lengths and mel bands per window.
WINDOWS = (32, 64, 128, 256, 512, 1024, 2048)
MEL_BANDS = (5, 10, 20, 40, 80, 160, 320)


class MelLoss(ReconstructionLoss):
    """``mel * sum over scales of L1(log10 mel(x), log10 mel(x_hat))`` plus optional STFT and waveform terms."""

    def __init__(
        self,
        sample_rate: int = 44100,
        windows: tuple[int, ...] = WINDOWS,
        mel_bands: tuple[int, ...] = MEL_BANDS,
        mel: float = 15.0,
        log_magnitude: float = 0.0,
        linear_magnitude: float = 0.0,
        waveform: float = 0.0,
        frame_tones: float = 0.0,
        frame_periods: Sequence[int] = (32,),
        clamp: float = 1e-5,
    ) -> None:
        super().__init__()
        if len(windows) != len(mel_bands):
            raise ValueError(f"one mel band count per window: {len(windows)} windows, {len(mel_bands)} band counts")
        self.windows = [int(w) for w in windows]
        self.clamp = float(clamp)
        self.weights = {"mel": mel, "log_magnitude": log_magnitude, "linear_magnitude": linear_magnitude}
        self.weights["waveform"] = waveform
        self.weights["frame_tones"] = frame_tones
        self.frame_periods = [int(period) for period in frame_periods]
        if not self.frame_periods:
            raise ValueError("loss.frame_periods needs at least one period (samples per decoder frame), e.g. [32]")
        for window, bands in zip(self.windows, mel_bands, strict=True):
            # Slaney mel filters from 0 Hz to Nyquist; not persistent: they are rebuilt, not checkpointed.
            filters = librosa.filters.mel(sr=sample_rate, n_fft=window, n_mels=int(bands), fmin=0.0, fmax=None)
            self.register_buffer(f"filters_{window}", torch.from_numpy(filters).float(), persistent=False)

    def _log(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log10(x.clamp_min(self.clamp))

    def forward(self, target: torch.Tensor, output: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = dict.fromkeys(("mel", "log_magnitude", "linear_magnitude"), output.new_zeros((), dtype=torch.float32))
        stft_terms = bool(self.weights["log_magnitude"] or self.weights["linear_magnitude"])
        for window in self.windows:
            real, fake = (stft_magnitude(x, window, window // 4, window) for x in (target, output))
            filters = getattr(self, f"filters_{window}")
            terms["mel"] = terms["mel"] + F.l1_loss(self._log(filters @ fake), self._log(filters @ real))
            if stft_terms:
                terms["log_magnitude"] = terms["log_magnitude"] + F.l1_loss(self._log(fake), self._log(real))
                terms["linear_magnitude"] = terms["linear_magnitude"] + F.l1_loss(fake, real)
        terms["waveform"] = F.l1_loss(output.float(), target.float())
        if self.weights["frame_tones"]:
            distances = [frame_tone_distance(target, output, period, self.clamp) for period in self.frame_periods]
            terms["frame_tones"] = sum(distances) / len(distances)
        return weighted_total(terms, self.weights)
