"""Vector quantisation with EMA codebooks, one codebook per level.

Inference needs only ``quantise`` (nearest code) and ``dequantise`` (code ->
vector). Training (issue #5) follows Jukebox: the codebook is not learnt by
gradient descent but is an exponential moving average of the encoder outputs
assigned to each code; codes whose average usage falls below a threshold are
"dead" and restarted at random encoder outputs of the current batch; the
encoder is pulled towards its codes by a commitment loss, and gradients pass
the quantiser straight through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

# Rows of the (frames x codes) distance matrix computed at once: 8192 x 2048
# floats is 64 MiB, so memory stays bounded however long the audio is.
QUANTISE_CHUNK = 8192


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


@dataclass
class QuantiserOutput:
    codes: torch.Tensor  # (B, T) long
    quantised: torch.Tensor  # (B, C, T); gradients pass straight through to the latent
    commit_loss: torch.Tensor  # scalar
    metrics: dict[str, torch.Tensor]


class Codebook(nn.Module):
    """One level's codebook ``k`` (l_bins x emb_width) and its EMA training state."""

    def __init__(self, size: int, width: int, mu: float = 0.99, threshold: float = 1.0) -> None:
        super().__init__()
        self.size, self.width, self.mu, self.threshold = size, width, mu, threshold
        self.register_buffer("k", torch.zeros(size, width))
        # EMA state: not part of the official checkpoint format, so not persistent;
        # trainers save it themselves (see ``ema_state``).
        self.register_buffer("k_sum", torch.zeros(size, width), persistent=False)
        self.register_buffer("k_elem", torch.zeros(size), persistent=False)
        self.register_buffer("initialised", torch.tensor(False), persistent=False)

    # -- inference ---------------------------------------------------------
    def quantise(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest code for each row of ``x`` (N, width) -> (codes (N,), mean squared distance)."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            k_t = self.k.float().t()
            k_norm = torch.sum(k_t**2, dim=0, keepdim=True)
            codes = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
            fit = x.new_zeros(())
            for start in range(0, x.shape[0], QUANTISE_CHUNK):
                rows = x[start : start + QUANTISE_CHUNK]
                distance = torch.sum(rows**2, dim=-1, keepdim=True) - 2 * torch.matmul(rows, k_t) + k_norm
                min_distance, nearest = torch.min(distance, dim=-1)
                codes[start : start + rows.shape[0]] = nearest
                fit = fit + min_distance.sum()
        return codes, fit / max(x.shape[0], 1)

    def dequantise(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.k)

    # -- training ----------------------------------------------------------
    def forward(self, latent: torch.Tensor, update: bool) -> QuantiserOutput:
        """Quantise a latent (B, C, T); with ``update`` also move the codebook (EMA) and restart dead codes."""
        batch, width, frames = latent.shape
        x = latent.permute(0, 2, 1).reshape(-1, width).float()
        if update and not bool(self.initialised):
            self.initialise(x)
        codes, fit = self.quantise(x)
        quantised = self.dequantise(codes)
        metrics = {
            "fit": fit.detach(),
            "prenorm": (torch.linalg.vector_norm(x - x.mean()) / math.sqrt(x.numel())).detach(),
        }
        if update:
            metrics.update(self.ema_update(x, codes))
        commit_loss = torch.linalg.vector_norm(quantised.detach() - x) ** 2 / x.numel()
        quantised = x + (quantised - x).detach()  # straight-through estimator
        quantised = quantised.reshape(batch, frames, width).permute(0, 2, 1).to(latent.dtype)
        return QuantiserOutput(codes.reshape(batch, frames), quantised, commit_loss, metrics)

    def _random_rows(self, x: torch.Tensor) -> torch.Tensor:
        """``size`` random rows of x (tiled with a little noise when x has fewer rows), same on every rank."""
        rows, width = x.shape
        if rows < self.size:
            x = x.repeat((self.size + rows - 1) // rows, 1)
            x = x + torch.randn_like(x) * (0.01 / math.sqrt(width))
        picked = x[torch.randperm(x.shape[0], device=x.device)[: self.size]].contiguous()
        if _distributed():
            dist.broadcast(picked, 0)
        return picked

    @torch.no_grad()
    def initialise(self, x: torch.Tensor) -> None:
        """Set the codebook to random encoder outputs (Jukebox's init_k)."""
        self.k.copy_(self._random_rows(x))
        self.k_sum.copy_(self.k)
        self.k_elem.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def resume_ema(self, expected_frames_per_batch: int | None = None) -> None:
        """Start EMA training from the current (e.g. pre-trained) codebook (Jukebox's restore_k)."""
        usage = 1.0 if expected_frames_per_batch is None else expected_frames_per_batch / self.size
        self.k_sum.copy_(self.k * usage)
        self.k_elem.fill_(usage)
        self.initialised.fill_(True)

    @torch.no_grad()
    def ema_update(self, x: torch.Tensor, codes: torch.Tensor) -> dict[str, torch.Tensor]:
        onehot = torch.zeros(self.size, x.shape[0], device=x.device)
        onehot.scatter_(0, codes.view(1, -1), 1.0)
        batch_sum = onehot @ x  # (size, width): sum of the vectors assigned to each code
        batch_count = onehot.sum(dim=-1)  # (size,)
        random_rows = self._random_rows(x)
        if _distributed():
            dist.all_reduce(batch_sum)
            dist.all_reduce(batch_count)
        old_k = self.k.clone()
        self.k_sum.copy_(self.mu * self.k_sum + (1.0 - self.mu) * batch_sum)
        self.k_elem.copy_(self.mu * self.k_elem + (1.0 - self.mu) * batch_count)
        alive = (self.k_elem >= self.threshold).float().unsqueeze(1)
        # Dead codes (average usage below the threshold) restart at random encoder outputs.
        self.k.copy_(alive * (self.k_sum / self.k_elem.clamp_min(1e-12).unsqueeze(1)) + (1.0 - alive) * random_rows)
        probability = batch_count / batch_count.sum()
        entropy = -torch.sum(probability * torch.log(probability + 1e-8))
        return {
            "entropy": entropy,
            "perplexity": entropy.exp(),
            "used_curr": (batch_count >= self.threshold).sum().float(),
            "usage": alive.sum(),
            "dk": torch.linalg.vector_norm(self.k - old_k) / math.sqrt(old_k.numel()),
        }

    def ema_state(self) -> dict[str, torch.Tensor]:
        return {"k_sum": self.k_sum.clone(), "k_elem": self.k_elem.clone(), "initialised": self.initialised.clone()}

    def load_ema_state(self, state: dict[str, torch.Tensor]) -> None:
        for name, value in state.items():
            getattr(self, name).copy_(value)


class Bottleneck(nn.Module):
    """One ``Codebook`` per level, stored as ``bottleneck.level_blocks.<level>.k``."""

    def __init__(self, levels: int, size: int, width: int, mu: float = 0.99, threshold: float = 1.0) -> None:
        super().__init__()
        self.level_blocks = nn.ModuleList(Codebook(size, width, mu, threshold) for _ in range(levels))

    def __getitem__(self, level: int) -> Codebook:
        return self.level_blocks[level]
