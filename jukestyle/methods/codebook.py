"""Codebook restriction (the paper's section II-B): quantise the content with only the codes the style uses."""

from __future__ import annotations

import torch

from jukestyle.jukebox import VQVAE
from jukestyle.methods.base import Method, MethodOutput, StyleAudio, style_windows

# Latent frames per distance matrix in codebook_restrict (4096 x 2048 floats = 32 MiB per batch element).
_RESTRICT_CHUNK = 4096


def codebook_restrict(latent: torch.Tensor, codebook: torch.Tensor, style_codes: torch.Tensor) -> torch.Tensor:
    """Quantise a content latent (B, C, T) using only the codes that the style uses.

    ``style_codes`` (B, T') are the style's codes under the full codebook (K, C); each
    batch element is restricted to its own style's codes. Vectorised: one masked
    distance matrix per batch, no loop over codes.
    """
    batch = latent.shape[0]
    allowed = torch.zeros(batch, codebook.shape[0], dtype=torch.bool, device=latent.device)
    allowed.scatter_(1, style_codes.reshape(batch, -1), True)
    forbidden = ~allowed[:, None, :]
    k = codebook.float()
    k_norm = (k**2).sum(-1)[None, None, :]
    codes = []
    for chunk in latent.float().transpose(1, 2).split(_RESTRICT_CHUNK, dim=1):  # (B, t, C): bounded memory
        distance = (chunk**2).sum(-1, keepdim=True) - 2 * chunk @ k.t() + k_norm  # (B, t, K)
        codes.append(distance.masked_fill(forbidden, float("inf")).argmin(dim=-1))
    return torch.cat(codes, dim=1)


class CodebookRestriction(Method):
    """Quantise the content's latents with only the codes the style uses (section II-B)."""

    name = "codebook"

    def analyse(self, model: VQVAE, style: StyleAudio, style_name: str = "style") -> torch.Tensor:
        """Every code that the style uses in any window, (1, U)."""
        codes = torch.cat([model.encode(window, self.level).reshape(-1) for window in style_windows(style)])
        return codes.unique()[None]

    def apply(self, model: VQVAE, content: torch.Tensor, analysis: torch.Tensor) -> MethodOutput:
        latent = model.encode_latent(content, self.level)
        codes = codebook_restrict(latent, model.bottleneck[self.level].k, analysis.expand(content.shape[0], -1))
        return MethodOutput(model.decode(codes, self.level), {"style_codes": int(analysis.unique().numel())})
