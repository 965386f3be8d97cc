"""Jukebox's hierarchical VQ-VAE, implemented from its published architecture.

Public API: ``build_vqvae`` (random weights), ``load_vqvae`` (pre-trained
weights from a name, path or URL) and the ``VQVAE`` module.
"""

from jukestyle.jukebox.checkpoint import read_checkpoint, save_checkpoint
from jukestyle.jukebox.config import PRESETS, VQVAEConfig
from jukestyle.jukebox.factory import BUNDLED_CHECKPOINT, build_vqvae, load_vqvae
from jukestyle.jukebox.vqvae import VQVAE, LevelOutput, ModelOrigin

__all__ = [
    "BUNDLED_CHECKPOINT",
    "PRESETS",
    "VQVAE",
    "LevelOutput",
    "ModelOrigin",
    "VQVAEConfig",
    "build_vqvae",
    "load_vqvae",
    "read_checkpoint",
    "save_checkpoint",
]
