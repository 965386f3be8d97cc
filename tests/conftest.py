from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from signals import harmonic_tone

from jukestyle.jukebox import build_vqvae


@pytest.fixture
def tone() -> np.ndarray:
    return harmonic_tone()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's checkpoint cache."""
    monkeypatch.setenv("JUKESTYLE_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def tiny_model():
    torch.manual_seed(0)
    return build_vqvae("tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_decoders(tiny_model, tmp_path_factory) -> dict[int, Path]:
    """A decoder file per level of the tiny model: its own decoders with the output layer's bias moved (a
    decoder other than the base's, so that a transfer through it differs from the reconstruction)."""
    from jukestyle.jukebox.decoder_checkpoint import save_decoder

    folder = tmp_path_factory.mktemp("decoders")
    paths = {}
    for level in range(tiny_model.levels):
        trained = copy.deepcopy(tiny_model)
        with torch.no_grad():
            trained.decoders[level].out.bias += 0.05
        paths[level] = folder / f"level{level}.pth.tar"
        save_decoder(paths[level], trained, level, step=1)
    return paths
