"""Jukebox's hierarchical VQ-VAE: three independent encoder/decoder pairs that
compress 44.1 kHz audio by 8x, 32x and 128x, each with its own codebook.

Each level is a separate autoencoder; encoding or decoding at one level runs
only that level's networks. The module tree (``encoders``, ``decoders``,
``bottleneck``) matches the official checkpoint, so its state dict loads as is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from jukestyle.errors import AudioError, ConfigError
from jukestyle.jukebox.bottleneck import Bottleneck, QuantiserOutput
from jukestyle.jukebox.config import VQVAEConfig
from jukestyle.jukebox.hooks import select_names
from jukestyle.jukebox.layers import Decoder, Encoder, named_blocks

# Latent frames of random input used to initialise the codebooks of a randomly
# initialised model (so that its codes are spread like a trained model's).
_RANDOM_INIT_FRAMES = 512


@dataclass
class LevelOutput:
    """One level's training pass: reconstruction, codes, commitment loss and codebook metrics."""

    reconstruction: torch.Tensor  # (B, 1, T)
    codes: torch.Tensor  # (B, T // hop)
    commit_loss: torch.Tensor
    metrics: dict[str, torch.Tensor]


@dataclass(frozen=True)
class ModelOrigin:
    """Where a model's weights come from: what a run records of it, and what a fine-tune of it carries on."""

    source: str = "unknown"  # how it was asked for (a name, path or URL), or how it was built
    step: int = 0  # the training step of its checkpoint
    lineage: tuple[dict, ...] = ()  # the training stages that made it, oldest first
    trained_levels: tuple[int, ...] = ()  # the levels whose weights were trained (the others are random)


class VQVAE(nn.Module):
    def __init__(self, config: VQVAEConfig, origin: ModelOrigin | None = None, transfer_level: int = 2) -> None:
        """``transfer_level``: the level the style-transfer methods serve best with this model's weights (the
        paper's 2 for Jukebox's; measured per model: README, "Which level")."""
        super().__init__()
        self.config = config
        self.origin = origin or ModelOrigin()
        self.transfer_level = int(transfer_level)
        self.encoders = nn.ModuleList(Encoder(config, level) for level in range(config.levels))
        self.decoders = nn.ModuleList(Decoder(config, level) for level in range(config.levels))
        self.bottleneck = Bottleneck(
            config.levels, config.l_bins, config.emb_width, config.codebook_mu, config.codebook_threshold
        )

    # -- shape and naming ----------------------------------------------------
    @property
    def levels(self) -> int:
        return self.config.levels

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def hop_length(self, level: int) -> int:
        return self.config.hop_length(self._check_level(level))

    def _check_level(self, level: int) -> int:
        if not isinstance(level, int) or not 0 <= level < self.levels:
            raise ConfigError(f"level must be one of {list(range(self.levels))}, got {level!r}")
        return level

    def _check_audio(self, x: torch.Tensor, level: int) -> None:
        if x.dim() != 3 or x.shape[1] != 1:
            raise AudioError(f"audio must have shape (batch, 1, samples), got {tuple(x.shape)}")
        hop = self.hop_length(level)
        if x.shape[-1] < hop:
            raise AudioError(
                f"audio of {x.shape[-1]} samples is shorter than one latent frame at level {level} ({hop} samples)"
            )

    def encoder(self, level: int) -> nn.Module:
        """Level ``level``'s encoder stack (audio -> latent)."""
        return self.encoders[self._check_level(level)]

    def encoder_blocks(self, level: int) -> list[str]:
        """Names of level ``level``'s encoder blocks in execution order (relative to ``encoders.<level>``)."""
        return named_blocks(self.encoders[self._check_level(level)])

    def decoder_blocks(self, level: int) -> list[str]:
        """Names of level ``level``'s decoder blocks in execution order: the hook points F_1..F_{N-1}."""
        return named_blocks(self.decoders[self._check_level(level)])

    def encoder_block(self, level: int, name: str) -> nn.Module:
        return self._block(self.encoders[self._check_level(level)], self.encoder_blocks(level), name, "encoder", level)

    def decoder_block(self, level: int, name: str) -> nn.Module:
        return self._block(self.decoders[self._check_level(level)], self.decoder_blocks(level), name, "decoder", level)

    @staticmethod
    def _block(stack: nn.Module, valid: list[str], name: str, kind: str, level: int) -> nn.Module:
        select_names([name], valid, f"{kind} block {{!r}} at level {level}")
        return stack.get_submodule(name)

    # -- inference -----------------------------------------------------------
    def encode_latent(self, x: torch.Tensor, level: int) -> torch.Tensor:
        """Audio (B, 1, T) in [-1, 1] -> continuous latent (B, emb_width, T // hop), before quantisation."""
        self._check_audio(x, level)
        return self.encoders[level](x)

    def quantise(self, latent: torch.Tensor, level: int) -> torch.Tensor:
        """Latent (B, emb_width, T') -> codes (B, T') with the level's full codebook."""
        batch, width, frames = latent.shape
        codes, _ = self.bottleneck[self._check_level(level)].quantise(latent.permute(0, 2, 1).reshape(-1, width))
        return codes.reshape(batch, frames)

    def dequantise(self, codes: torch.Tensor, level: int) -> torch.Tensor:
        """Codes (B, T') -> codebook vectors (B, emb_width, T')."""
        return self.bottleneck[self._check_level(level)].dequantise(codes).permute(0, 2, 1)

    def decode_latent(self, latent: torch.Tensor, level: int) -> torch.Tensor:
        """Latent (B, emb_width, T') -> audio (B, 1, T' * hop)."""
        return self.decoders[self._check_level(level)](latent)

    def decode_features(self, latent: torch.Tensor, level: int) -> torch.Tensor:
        """Latent (B, emb_width, T') -> the last decoder block's features (B, emb_width, T' * hop), which
        ``decoders[level].out`` projects to the waveform."""
        return self.decoders[self._check_level(level)].features(latent)

    def encode(self, x: torch.Tensor, level: int) -> torch.Tensor:
        """Audio (B, 1, T) in [-1, 1] -> codes (B, T // hop), running only this level's encoder."""
        return self.quantise(self.encode_latent(x, level), level)

    def decode(self, codes: torch.Tensor, level: int) -> torch.Tensor:
        """Codes (B, T') -> audio (B, 1, T' * hop), running only this level's decoder."""
        return self.decode_latent(self.dequantise(codes, level), level)

    def reconstruct(self, x: torch.Tensor, level: int) -> torch.Tensor:
        """Encode, quantise and decode: the plain reconstruction at ``level``."""
        return self.decode(self.encode(x, level), level)

    # -- training ------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        levels: list[int] | None = None,
        update_codebook: bool | None = None,
        train_encoder: bool = True,
    ) -> dict[int, LevelOutput]:
        """Training pass over the chosen levels (default: all), each an independent autoencoder.

        ``update_codebook`` (default: ``self.training``) moves the EMA codebooks and restarts dead codes.
        ``train_encoder=False`` runs the encoder and the bottleneck without autograd (a decoder-only stage).
        """
        update = self.training if update_codebook is None else update_codebook
        outputs: dict[int, LevelOutput] = {}
        for level in range(self.levels) if levels is None else levels:
            with torch.set_grad_enabled(train_encoder and torch.is_grad_enabled()):
                latent = self.encode_latent(x, level)
                quantised: QuantiserOutput = self.bottleneck[level](latent, update=update)
            outputs[level] = LevelOutput(
                reconstruction=self.decoders[level](quantised.quantised),
                codes=quantised.codes,
                commit_loss=quantised.commit_loss,
                metrics=quantised.metrics,
            )
        return outputs

    @torch.no_grad()
    def initialise_codebooks(self, generator: torch.Generator | None = None) -> None:
        """Initialise every codebook from this model's own latents of white noise (for random models)."""
        device = next(self.parameters()).device
        for level in range(self.levels):
            samples = _RANDOM_INIT_FRAMES * self.hop_length(level)
            noise = torch.rand(1, 1, samples, generator=generator, device=device) * 2 - 1
            latent = self.encode_latent(noise, level)
            self.bottleneck[level].initialise(latent.permute(0, 2, 1).reshape(-1, self.config.emb_width))

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
