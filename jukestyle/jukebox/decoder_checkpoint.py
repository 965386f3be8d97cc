"""Decoders trained alone on a frozen base model's codes, saved on their own.

A decoder trained with the encoder and codebook frozen (``stage=decoder``) renders the
codes of one level of one base model. Its file holds that decoder's weights only, the
level, the architecture, and ``base_sha256``: the sha256 of the base model's encoder and
codebook at that level, the weights that decide which codes the decoder receives. A base
model retrained at other levels keeps its decoders; one whose codes differ refuses them
with one line.
"""

from __future__ import annotations

import copy
import hashlib
import os

import torch
from torch import nn

from jukestyle.errors import CheckpointError
from jukestyle.fileio import atomic_path
from jukestyle.jukebox.checkpoint import load_weights, read_checkpoint
from jukestyle.jukebox.vqvae import VQVAE

DECODER_FORMAT = "jukestyle-decoder/1"


def weights_digest(*modules: nn.Module) -> str:
    """sha256 of the modules' state dicts (names and values, in name order)."""
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def codes_digest(model: VQVAE, level: int) -> str:
    """sha256 of what turns audio into a level's codes: its encoder and codebook."""
    model.hop_length(level)  # validates the level
    return weights_digest(model.encoders[level], model.bottleneck[level])


def save_decoder(path: str | os.PathLike, model: VQVAE, level: int, **extra: object) -> None:
    """Write level ``level``'s decoder of ``model`` with the digest of the codes it renders, atomically."""
    checkpoint = {
        "format": DECODER_FORMAT,
        "level": int(level),
        "hps": model.config.to_hparams(),
        "decoder": model.decoders[level].state_dict(),
        "base_sha256": codes_digest(model, level),
        "base_source": model.origin.source,
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def read_decoder(path: str | os.PathLike) -> dict:
    """A decoder checkpoint, or one line saying why the file is not one."""
    checkpoint = read_checkpoint(path)
    if checkpoint.get("format") != DECODER_FORMAT:
        raise CheckpointError(
            f"{path}: not a trained decoder (written by experiment=train_decoder); a whole VQ-VAE is model=<file>"
        )
    return checkpoint


def with_decoder(model: VQVAE, path: str | os.PathLike, checkpoint: dict | None = None) -> tuple[VQVAE, int]:
    """A copy of ``model`` whose decoder at the checkpoint's level is the trained one, and that level
    (``checkpoint``: the file's contents, if already read)."""
    checkpoint = read_decoder(path) if checkpoint is None else checkpoint
    level = int(checkpoint["level"])
    if checkpoint["hps"] != model.config.to_hparams():
        raise CheckpointError(f"{path}: a decoder of another architecture than the model {model.origin.source}")
    expected, found = checkpoint["base_sha256"], codes_digest(model, level)
    if expected != found:
        raise CheckpointError(
            f"{path}: trained on the level-{level} codes of another base model ({checkpoint.get('base_source')}, "
            f"sha256 {expected[:12]}...); {model.origin.source} makes other codes (sha256 {found[:12]}...)"
        )
    rendering = copy.deepcopy(model)
    load_weights(rendering.decoders[level], checkpoint["decoder"], path)
    return rendering.eval().requires_grad_(False), level
