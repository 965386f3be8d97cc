"""Jukebox's VQ-VAE training losses (pure PyTorch).

Per level, the loss is
    reconstruction  = l2 / bw_l2 + linf_weight * linf / bw_l2      (Jukebox's "lmix")
  + multispectral   = mean over STFT resolutions of ||S(x) - S(x_hat)||_2 / bw_spec
where ``linf`` is the mean of the k largest squared errors of each clip and the
bandwidths (``bw_l2``: mean squared amplitude, ``bw_spec``: mean spectral norm)
are measured on the training corpus, so that the terms have comparable scales
whatever the data's loudness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from jukestyle.losses.base import ReconstructionLoss, stft_magnitude, weighted_total

# (n_fft, hop, window) of Jukebox's multi-resolution spectral loss.
MULTISPECTRAL_RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((2048, 240, 1200), (1024, 120, 600), (512, 50, 240))
# Resolution used to measure the spectral bandwidth (Jukebox's n_fft, hop_length, window_size).
BANDWIDTH_RESOLUTION = (1024, 256, 1024)


@dataclass(frozen=True)
class Bandwidth:
    l2: float
    spec: float


def _clip_norm(x: torch.Tensor) -> torch.Tensor:
    """L2 norm of each clip (over all non-batch dimensions)."""
    return torch.linalg.vector_norm(x.reshape(x.shape[0], -1), dim=-1)


def multispectral_loss(target: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """Per-clip spectral distance averaged over ``MULTISPECTRAL_RESOLUTIONS``, shape (B,)."""
    losses = [
        _clip_norm(stft_magnitude(target, *resolution) - stft_magnitude(output, *resolution))
        for resolution in MULTISPECTRAL_RESOLUTIONS
    ]
    return torch.stack(losses).mean(dim=0)


def linf_loss(target: torch.Tensor, output: torch.Tensor, k: int = 2048) -> torch.Tensor:
    """Mean of the ``k`` largest squared errors of each clip (punishes clicks and peaks)."""
    residual = ((output.float() - target.float()) ** 2).reshape(target.shape[0], -1)
    return torch.topk(residual, min(k, residual.shape[1]), dim=1).values.mean()


@torch.no_grad()
def measure_bandwidth(clips: list[torch.Tensor]) -> Bandwidth:
    """Mean squared amplitude and mean spectral norm over clips of shape (T,)."""
    squares, count, spectral_norms = 0.0, 0, []
    for clip in clips:
        clip = clip.float().reshape(1, -1)
        squares += float((clip**2).sum())
        count += clip.numel()
        spectral_norms.append(float(_clip_norm(stft_magnitude(clip, *BANDWIDTH_RESOLUTION))))
    if count == 0:
        raise ValueError("cannot measure the bandwidth of an empty corpus")
    l2 = squares / count
    spec = sum(spectral_norms) / len(spectral_norms)
    if l2 <= 0 or spec <= 0:
        raise ValueError("cannot measure the bandwidth of a silent corpus")
    return Bandwidth(l2=l2, spec=spec)


class JukeboxLoss(ReconstructionLoss):
    """Jukebox's loss: ``l2 / bw_l2 + linf * linf_k / bw_l2 + multispectral * spectral / bw_spec``.

    The bandwidths are measured on the corpus by ``calibrate`` and kept as a buffer, so that a
    resumed run continues with the same scales.
    """

    def __init__(self, linf: float = 0.02, multispectral: float = 1.0, linf_k: int = 2048) -> None:
        super().__init__()
        self.linf_weight, self.multispectral_weight, self.linf_k = linf, multispectral, linf_k
        self.register_buffer("bandwidth", torch.zeros(2))  # (l2, spec)

    def calibrate(self, clips: list[np.ndarray]) -> None:
        if not bool(self.bandwidth.any()):
            measured = measure_bandwidth([torch.from_numpy(np.asarray(clip)) for clip in clips])
            self.bandwidth.copy_(torch.tensor([measured.l2, measured.spec]))

    def forward(self, target: torch.Tensor, output: torch.Tensor) -> dict[str, torch.Tensor]:
        if not bool(self.bandwidth.any()):
            raise RuntimeError("JukeboxLoss: call calibrate(clips) before the first step")
        bw_l2, bw_spec = float(self.bandwidth[0]), float(self.bandwidth[1])
        l2 = torch.mean((output.float() - target.float()) ** 2)
        linf = linf_loss(target, output, self.linf_k)
        reconstruction = l2 / bw_l2 + self.linf_weight * linf / bw_l2
        spectral = multispectral_loss(target, output).mean() / bw_spec
        terms = {"reconstruction": reconstruction, "multispectral": spectral, "l2": l2, "linf": linf}
        return weighted_total(terms, {"reconstruction": 1.0, "multispectral": self.multispectral_weight})
