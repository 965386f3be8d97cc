"""Hyperparameters of the hierarchical VQ-VAE and the named presets.

The field names follow Jukebox's own hyperparameter names where one exists
(``downs_t``, ``strides_t``, ``l_bins``, ...), so that the ``hps`` dictionary
stored in an official-format checkpoint maps onto a config by name
(``from_hparams``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from jukestyle.errors import CheckpointError

# Every preset runs at 44.1 kHz (Jukebox's rate); the command and the app read and write audio at it.
MODEL_SAMPLE_RATE = 44100


@dataclass(frozen=True)
class VQVAEConfig:
    levels: int = 3
    downs_t: tuple[int, ...] = (3, 2, 2)  # downsampling steps per level block
    strides_t: tuple[int, ...] = (2, 2, 2)  # stride of each step
    emb_width: int = 64  # latent channels
    l_bins: int = 2048  # codebook size
    width: int = 32  # residual channels, before the per-level multiplier
    depth: int = 4  # residual blocks per resnet, before the per-level multiplier
    m_conv: float = 1.0  # residual bottleneck width ratio
    dilation_growth_rate: int = 3
    dilation_cycle: int | None = None
    multipliers: tuple[int, ...] = (2, 1, 1)  # Jukebox's hvqvae_multipliers, applied to width and depth
    reverse_decoder_dilation: bool = True  # decoders run their dilations from large to small
    sample_rate: int = MODEL_SAMPLE_RATE
    # Training-only settings (the encoder/decoder do not depend on them).
    codebook_mu: float = 0.99  # EMA decay of the codebook (Jukebox's l_mu)
    commit: float = 0.02  # weight of the commitment loss
    codebook_threshold: float = 1.0  # EMA usage below which a code counts as dead and is restarted

    def __post_init__(self) -> None:
        for name in ("downs_t", "strides_t", "multipliers"):
            if len(getattr(self, name)) != self.levels:
                raise ValueError(
                    f"VQVAEConfig.{name} needs one entry per level ({self.levels}), got {getattr(self, name)}"
                )

    def level_width(self, level: int) -> int:
        return self.width * self.multipliers[level]

    def level_depth(self, level: int) -> int:
        return self.depth * self.multipliers[level]

    def hop_length(self, level: int) -> int:
        """Audio samples per latent frame at ``level`` (8, 32, 128 for Jukebox)."""
        return math.prod(
            stride**down for stride, down in zip(self.strides_t[: level + 1], self.downs_t[: level + 1], strict=True)
        )

    def to_hparams(self) -> dict:
        """This config under Jukebox's hyperparameter names (stored as ``hps`` in checkpoints)."""
        hps = dataclasses.asdict(self)
        for ours, theirs in _RENAMED.items():
            hps[theirs] = hps.pop(ours)
        hps["vqvae_reverse_decoder_dilation"] = int(hps["vqvae_reverse_decoder_dilation"])
        return hps

    @classmethod
    def from_hparams(cls, hps: dict, fallback: VQVAEConfig | None = None) -> VQVAEConfig:
        """Build a config from a checkpoint's ``hps``; keys it lacks come from ``fallback``."""
        base = dataclasses.asdict(fallback or cls())
        names = {f.name for f in dataclasses.fields(cls)}
        theirs_to_ours = {theirs: ours for ours, theirs in _RENAMED.items()}
        for key, value in hps.items():
            key = theirs_to_ours.get(key, key)
            if key in names and (value is not None or key in _NULLABLE):
                base[key] = value
        for key in ("downs_t", "strides_t", "multipliers"):
            base[key] = tuple(int(v) for v in base[key])
        base["reverse_decoder_dilation"] = bool(base["reverse_decoder_dilation"])
        try:
            return cls(**base)
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"checkpoint hyperparameters do not describe a VQ-VAE: {error}") from None


# Our field name -> Jukebox's hyperparameter name, where they differ.
_RENAMED = {
    "multipliers": "hvqvae_multipliers",
    "reverse_decoder_dilation": "vqvae_reverse_decoder_dilation",
    "sample_rate": "sr",
    "codebook_mu": "l_mu",
}

_NULLABLE = {"dilation_cycle"}

PRESETS: dict[str, VQVAEConfig] = {
    # The VQ-VAE shared by Jukebox's 5b, 5b_lyrics and 1b_lyrics models.
    "jukebox_5b": VQVAEConfig(),
    # Same topology (3 levels, hops 8/32/128) at a tiny width, for fast tests.
    "tiny": VQVAEConfig(emb_width=8, l_bins=32, width=4, depth=1, multipliers=(1, 1, 1)),
}
