"""Build a VQ-VAE from a preset, or load one from a preset name, a file or a URL."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from jukestyle.errors import CheckpointError, ConfigError
from jukestyle.fileio import sha256_file
from jukestyle.jukebox.checkpoint import config_of, load_weights, read_checkpoint, state_dict_of, training_stages
from jukestyle.jukebox.config import PRESETS, VQVAEConfig
from jukestyle.jukebox.download import OFFICIAL_CHECKPOINTS, fetch, fetch_url, is_url
from jukestyle.jukebox.vqvae import VQVAE, ModelOrigin

# What the project ships (the bundled model, its decoders, the transfer decoder, the timbre metric): the clone's
# checkpoints/ folder, which a non-editable install copies into the package (setup.cfg: jukestyle.checkpoints).
_PACKAGE = Path(__file__).resolve().parents[1]
SHIPPED = _PACKAGE / "checkpoints" if (_PACKAGE / "checkpoints").is_dir() else _PACKAGE.parent / "checkpoints"
BUNDLED_CHECKPOINT = SHIPPED / "jukestyle_gm.pth.tar"
# Checked on every load: a damaged or replaced file is named, not loaded. A new bundled model updates it.
BUNDLED_SHA256 = "752574f2e3b4583ba4cd50eb1a7995d8147dfc5ef8dd5addddfda2440887252d"
# The level each pre-trained model serves the style-transfer methods best at (configs/model/<name>.yaml say the
# same): the paper chose level 2 for Jukebox's weights; the bundled model keeps pitch and moves timbre more at
# level 1 (README, "Which level"). Other checkpoints: the paper's 2 unless told.
TRANSFER_LEVELS = {"jukebox_5b": 2, "bundled": 1}


def _preset(name: str) -> VQVAEConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown VQ-VAE preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def build_vqvae(preset: str | VQVAEConfig = "jukebox_5b", seed: int | None = None, transfer_level: int = 2) -> VQVAE:
    """A randomly initialised VQ-VAE (codebooks initialised from its own latents of noise)."""
    config = preset if isinstance(preset, VQVAEConfig) else _preset(preset)
    generator = None
    if seed is not None:
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
    origin = ModelOrigin(source=f"random:{preset if isinstance(preset, str) else 'custom'}:seed={seed}")
    model = VQVAE(config, origin, transfer_level)
    model.initialise_codebooks(generator)
    return model.eval()


def _resolve(source: str | os.PathLike) -> tuple[Path, VQVAEConfig]:
    """Checkpoint path and the config to assume where its ``hps`` say nothing."""
    default = PRESETS["jukebox_5b"]
    text = str(source)
    if text in OFFICIAL_CHECKPOINTS:
        return fetch(text), PRESETS[text]
    if text == "bundled":
        if not BUNDLED_CHECKPOINT.is_file():
            raise CheckpointError(f"the bundled checkpoint {BUNDLED_CHECKPOINT} is missing from this installation")
        found = sha256_file(BUNDLED_CHECKPOINT)
        if found != BUNDLED_SHA256:
            raise CheckpointError(
                f"{BUNDLED_CHECKPOINT}: sha256 {found[:16]}... is not the bundled model's ({BUNDLED_SHA256[:16]}...); "
                "restore it with `git checkout -- checkpoints/`"
            )
        return BUNDLED_CHECKPOINT, default
    if is_url(text):
        return fetch_url(text), default
    path = Path(text).expanduser()
    if path.exists():
        return path, default
    if text in PRESETS:
        raise CheckpointError(f"preset {text!r} has no pre-trained weights; build_vqvae({text!r}) gives a random model")
    known = ", ".join([*OFFICIAL_CHECKPOINTS, "bundled"])
    raise CheckpointError(f"{text}: no such checkpoint file, URL or pre-trained model name ({known})")


def load_vqvae(source: str | os.PathLike = "jukebox_5b", transfer_level: int | None = None) -> VQVAE:
    """A pre-trained VQ-VAE from a name (``jukebox_5b``, ``bundled``), a local path or a URL, in eval mode.
    ``transfer_level``: the level its methods default to (None: ``TRANSFER_LEVELS``' for a named model, else 2)."""
    path, default = _resolve(source)
    checkpoint = read_checkpoint(path)
    origin = ModelOrigin(
        source=str(source),
        step=int(checkpoint.get("step", 0) or 0),
        lineage=tuple(training_stages(checkpoint)),
        trained_levels=tuple(int(level) for level in checkpoint.get("trained_levels", [])),
    )
    level = TRANSFER_LEVELS.get(str(source), 2) if transfer_level is None else int(transfer_level)
    model = VQVAE(config_of(checkpoint, default), origin, level)
    model.hop_length(level)  # a level the model has
    load_weights(model, state_dict_of(checkpoint, path), path)
    return model.eval()
