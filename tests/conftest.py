from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from project import REPO
from signals import harmonic_tone

from jukestyle.jukebox import build_vqvae

sys.path.insert(0, str(REPO / "scripts"))  # the scripts are importable as modules in tests


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
