"""What every VQ-VAE training loss offers the training module."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ReconstructionLoss(nn.Module):
    """A distance between a clip and its reconstruction; subclasses implement ``forward``.

    ``forward(target, output)`` takes (B, 1, T) audio and returns ``{"loss": total, <term>: detached value}``.
    """

    def calibrate(self, clips: list[np.ndarray]) -> None:
        """Measure what the loss needs from the training corpus, once before the first step (default: nothing)."""

    def forward(self, target: torch.Tensor, output: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError


def stft_magnitude(x: torch.Tensor, n_fft: int, hop: int, window: int) -> torch.Tensor:
    """|STFT| of (B, 1, T) or (B, T) audio, in float32 (also under autocast)."""
    x = x.reshape(x.shape[0], -1).float()
    with torch.autocast(device_type=x.device.type, enabled=False):
        spectrum = torch.stft(
            x,
            n_fft,
            hop_length=hop,
            win_length=window,
            window=torch.hann_window(window, device=x.device),
            return_complex=True,
        )
    return spectrum.abs()


def weighted_total(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """``terms`` detached for logging, plus ``loss``: the sum of the terms whose weight is not zero."""
    total = sum(weights[name] * value for name, value in terms.items() if weights.get(name, 0.0))
    if not torch.is_tensor(total):  # every weight zero
        total = next(iter(terms.values())).new_zeros(())
    return {"loss": total, **{name: value.detach() for name, value in terms.items()}}
