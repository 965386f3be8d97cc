"""Jukebox's VQ-VAE training losses (pure PyTorch).

Per level, the loss is
    reconstruction  = l2 / bw_l2 + linf_weight * linf / bw_l2      (Jukebox's "lmix")
  + multispectral   = mean over STFT resolutions of ||S(x) - S(x_hat)||_2 / bw_spec
  + commit          = commit_weight * ||z - sg(e)||^2 / numel      (from the bottleneck)
where ``linf`` is the mean of the k largest squared errors of each clip and the
bandwidths (``bw_l2``: mean squared amplitude, ``bw_spec``: mean spectral norm)
are measured on the training corpus, so that the terms have comparable scales
whatever the data's loudness.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# (n_fft, hop, window) of Jukebox's multi-resolution spectral loss.
MULTISPECTRAL_RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((2048, 240, 1200), (1024, 120, 600), (512, 50, 240))
# Resolution used to measure the spectral bandwidth (Jukebox's n_fft, hop_length, window_size).
BANDWIDTH_RESOLUTION = (1024, 256, 1024)


@dataclass(frozen=True)
class Bandwidth:
    l2: float
    spec: float


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


@dataclass(frozen=True)
class LossWeights:
    linf: float = 0.02  # Jukebox's lmix_linf
    multispectral: float = 1.0
    commit: float = 0.02
    linf_k: int = 2048


def level_loss(
    target: torch.Tensor,
    output: torch.Tensor,
    commit_loss: torch.Tensor,
    bandwidth: Bandwidth,
    weights: LossWeights = LossWeights(),
) -> dict[str, torch.Tensor]:
    """All loss terms of one level; ``loss`` is the weighted total to optimise."""
    l2 = torch.mean((output.float() - target.float()) ** 2)
    linf = linf_loss(target, output, weights.linf_k)
    reconstruction = l2 / bandwidth.l2 + weights.linf * linf / bandwidth.l2
    spectral = multispectral_loss(target, output).mean() / bandwidth.spec
    loss = reconstruction + weights.multispectral * spectral + weights.commit * commit_loss
    return {
        "loss": loss,
        "reconstruction": reconstruction.detach(),
        "multispectral": spectral.detach(),
        "commit": commit_loss.detach(),
        "l2": l2.detach(),
        "linf": linf.detach(),
    }
