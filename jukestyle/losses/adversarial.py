"""A reconstruction loss plus a multi-scale STFT discriminator (EnCodec's design, small).

The discriminator sees the complex STFT (real and imaginary parts as two channels) at
several window lengths; each scale is a stack of 2-D convolutions that stride along
frequency and dilate along time, with weight normalisation and leaky ReLUs. It is trained
with the hinge loss; the decoder gets the hinge generator loss and a feature-matching
term (L1 between the discriminator's feature maps of the real and the reconstructed
clip, relative to the real one's mean magnitude), which is what pulls back the detail
that a distance between spectra averages away.

The discriminator keeps its own Adam optimiser: ``discriminator_step`` updates its
weights and nothing else, with gradients from ``torch.autograd.grad`` (so that no other
parameter's ``.grad`` is touched) averaged over the ranks of a distributed run.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from jukestyle.losses.base import ReconstructionLoss


class _ScaleDiscriminator(nn.Module):
    def __init__(self, window: int, filters: int, dilations: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__()
        self.window = window
        layers = [weight_norm(nn.Conv2d(2, filters, (3, 9), padding=(1, 4)))]
        for dilation in dilations:  # (time, frequency): dilate in time, halve the frequency axis
            layers.append(
                weight_norm(
                    nn.Conv2d(filters, filters, (3, 9), stride=(1, 2), dilation=(dilation, 1), padding=(dilation, 4))
                )
            )
        layers.append(weight_norm(nn.Conv2d(filters, filters, (3, 3), padding=(1, 1))))
        self.layers = nn.ModuleList(layers)
        self.post = weight_norm(nn.Conv2d(filters, 1, (3, 3), padding=(1, 1)))
        self.register_buffer("hann", torch.hann_window(window), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spectrum = torch.stft(
            x.reshape(x.shape[0], -1).float(),
            self.window,
            hop_length=self.window // 4,
            window=self.hann,
            normalized=True,
            return_complex=True,
        )
        h = torch.view_as_real(spectrum).permute(0, 3, 2, 1)  # (B, 2, frames, bins)
        features = []
        for layer in self.layers:
            h = F.leaky_relu(layer(h), 0.2)
            features.append(h)
        return self.post(h), features


class STFTDiscriminator(nn.Module):
    """One small 2-D convolutional discriminator per STFT window length."""

    def __init__(self, windows: tuple[int, ...] = (2048, 1024, 512), filters: int = 32) -> None:
        super().__init__()
        self.scales = nn.ModuleList(_ScaleDiscriminator(int(window), int(filters)) for window in windows)

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        """(logits, feature maps) of each scale for (B, 1, T) audio."""
        return [scale(x) for scale in self.scales]


def hinge_discriminator_loss(real: list, fake: list) -> torch.Tensor:
    return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for (r, _), (f, _) in zip(real, fake, strict=True)) / len(
        real
    )


def hinge_generator_loss(fake: list) -> torch.Tensor:
    return sum(F.relu(1 - f).mean() for f, _ in fake) / len(fake)


def feature_matching_loss(real: list, fake: list) -> torch.Tensor:
    """Mean over scales and layers of L1(fake, real) / mean |real| (EnCodec's relative feature loss)."""
    distances = [
        F.l1_loss(f, r.detach()) / r.detach().abs().mean().clamp_min(1e-8)
        for (_, real_maps), (_, fake_maps) in zip(real, fake, strict=True)
        for r, f in zip(real_maps, fake_maps, strict=True)
    ]
    return sum(distances) / len(distances)


class AdversarialLoss(ReconstructionLoss):
    """``reconstruction`` plus ``adversarial`` x hinge and ``feature_matching`` x feature loss.

    The generator's terms join after ``start_step`` steps (``step`` is set by the training module),
    so that a fine-tune lets the discriminator learn before it steers the decoder. The discriminator
    is updated every ``update_every`` steps with its own learning rate.
    """

    def __init__(
        self,
        reconstruction: ReconstructionLoss,
        discriminator: STFTDiscriminator,
        adversarial: float = 1.0,
        feature_matching: float = 2.0,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.5, 0.9),
        update_every: int = 1,
        start_step: int = 0,
    ) -> None:
        super().__init__()
        if update_every < 1:
            raise ValueError(f"update_every must be at least 1, got {update_every}")
        self.reconstruction, self.discriminator = reconstruction, discriminator
        self.adversarial_weight, self.feature_weight = adversarial, feature_matching
        self.lr, self.betas, self.update_every, self.start_step = lr, tuple(betas), update_every, start_step
        self.step = 0
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=self.betas)

    def calibrate(self, clips: list[np.ndarray]) -> None:
        self.reconstruction.calibrate(clips)

    def forward(self, target: torch.Tensor, output: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = self.reconstruction(target, output)
        if self.step < self.start_step:
            return terms
        fake = self.discriminator(output)
        with torch.no_grad():
            real = self.discriminator(target)
        adversarial, features = hinge_generator_loss(fake), feature_matching_loss(real, fake)
        terms["loss"] = terms["loss"] + self.adversarial_weight * adversarial + self.feature_weight * features
        terms.update(adversarial=adversarial.detach(), feature_matching=features.detach())
        return terms

    def discriminator_step(self, target: torch.Tensor, output: torch.Tensor) -> dict[str, torch.Tensor]:
        """One hinge-loss update of the discriminator on real ``target`` and reconstructed ``output``
        (detached); returns the logged terms. Skipped (empty dict) on steps that are not a multiple
        of ``update_every``."""
        if self.step % self.update_every:
            return {}
        real, fake = self.discriminator(target.detach()), self.discriminator(output.detach())
        loss = hinge_discriminator_loss(real, fake)
        parameters = list(self.discriminator.parameters())
        gradients = torch.autograd.grad(loss, parameters)
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        for parameter, gradient in zip(parameters, gradients, strict=True):
            if world > 1:
                dist.all_reduce(gradient)
                gradient /= world
            parameter.grad = gradient
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            accuracy = sum(
                ((r > 0).float().mean() + (f < 0).float().mean()) / 2 for (r, _), (f, _) in zip(real, fake, strict=True)
            )
        return {"discriminator": loss.detach(), "discriminator_accuracy": accuracy / len(real)}
