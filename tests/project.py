"""What the tests share: the repository root, the override that runs any config on the tiny random model, and the
settings that run each method quickly on it."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
# configs/model/tiny_random.yaml: Jukebox's architecture at a few thousand parameters, random weights, no files
TINY_MODEL = "model=tiny_random"


def method_options(name: str, level: int, decoders: dict[int, Path]) -> dict:
    """The fewest settings under which each method runs quickly on the tiny model."""
    if name == "gram":
        return {"lbfgs": {"max_iter": 2}}
    if name == "decoder":
        return {"checkpoint": str(decoders[level])}
    return {}


def script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module: the scripts install (and import) as ``jukestyle_lightning.scripts``."""
    return importlib.import_module(f"jukestyle_lightning.scripts.{name}")
