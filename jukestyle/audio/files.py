"""Audio files of a folder, and of a corpus's split (``manifest.csv`` or ``train/`` and ``val/`` folders)."""

from __future__ import annotations

import csv
from pathlib import Path

from jukestyle.errors import JukestyleError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3"}


def audio_files(folder: Path) -> list[Path]:
    """The audio files under ``folder`` (recursively), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES) if folder.is_dir() else []


def has_splits(root: Path) -> bool:
    """Whether ``root`` names its splits (``manifest.csv``, or ``train/`` and ``val/`` folders)."""
    return (root / "manifest.csv").is_file() or (root / "train").is_dir()


def corpus_files(root: Path, split: str) -> list[Path]:
    """Audio files of one split: from ``manifest.csv`` if present, else from the ``<split>/`` folder."""
    manifest = root / "manifest.csv"
    if manifest.is_file():
        with open(manifest, newline="") as handle:
            files = [root / row["file"] for row in csv.DictReader(handle) if row["split"] == split]
    else:
        files = audio_files(root / split)
    if not files:
        raise JukestyleError(f"{root}: no {split} audio (expected manifest.csv or a {split}/ folder of audio files)")
    return files
