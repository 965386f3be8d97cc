"""The distance between two clips' spectra at the harmonics of a decoder's frame rate.

A Jukebox decoder upsamples its latent in blocks; the last block turns every frame of
``period`` samples (32 at level 2: its input runs at 1378 Hz) into a stretch of waveform.
Fine-tuned on another instrument, it learns to add the same small pattern to every
frame, a stationary comb of tones at the multiples of ``sample_rate / period``: 15-20 dB
louder than the bundled decoder's after 100 steps, loud enough to move pYIN's pitch of a
C4 by 65 cents. The multi-scale log-mel loss hardly sees it: the comb fills one band in a
few hundred at each scale. Here the whole clip is one Hann-windowed DFT whose length is a
multiple of ``period``, so every harmonic of the frame rate falls on a bin, and the log
magnitudes of output and target are compared there alone (scaled so that a full-scale sine
reads 0.5, so ``clamp`` sits about 94 dB under it, below which both count as silence).
"""

from __future__ import annotations

import torch


def frame_tone_distance(target: torch.Tensor, output: torch.Tensor, period: int, clamp: float) -> torch.Tensor:
    """Mean L1 between the log10 DFT magnitudes of (B, 1, T) ``target`` and ``output`` at the multiples of
    ``1 / period`` of the sample rate below Nyquist (the clips cut to a multiple of ``period`` samples)."""
    length = target.shape[-1] // period * period
    if length == 0:
        raise ValueError(f"frame tones need clips of at least {period} samples, got {target.shape[-1]}")
    window = torch.hann_window(length, periodic=True, device=target.device)
    bins = torch.arange(1, period // 2, device=target.device) * (length // period)
    with torch.autocast(device_type=target.device.type, enabled=False):
        spectra = [
            torch.fft.rfft(x.reshape(x.shape[0], -1)[:, :length].float() * window)[:, bins].abs()
            for x in (target, output)
        ]
    real, fake = (torch.log10((spectrum / window.sum()).clamp_min(clamp)) for spectrum in spectra)
    return (fake - real).abs().mean()
