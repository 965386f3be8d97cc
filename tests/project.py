"""What the tests share: the repository root, and the override that runs any config on the tiny random model."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# configs/model/tiny_random.yaml: Jukebox's architecture at a few thousand parameters, random weights, no files
TINY_MODEL = "model=tiny_random"
