"""Random crops of an audio corpus for self-supervised VQ-VAE training.

The corpus is a folder with a ``manifest.csv`` (columns ``file`` and ``split``,
as written by ``scripts/render_data.py corpus``) or, for a corpus of one's own,
``train/`` and ``val/`` sub-folders of audio files in any format libsndfile
reads, or just audio files (e.g. an instrument's recordings, to train a decoder
on): then the last ``val_share`` of every file is the validation split, so that
even a single recording is validated on music it was not trained on.
Everything is decoded once into memory at the model's sample rate.

Training crops are a pure function of (seed, epoch, index): different every
epoch, different on every DDP rank (each rank sees other indices), and the same
when a run is repeated. They start on whole top-level latent frames, so that a
frozen encoder's codes can be sliced from codes computed once per clip. Validation
uses fixed, evenly spaced crops. Items are dicts: ``audio`` (1, length), and the
``clip`` index and ``start`` sample they were cut from.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from jukestyle.audio.io import load_audio
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


def split_tails(clips: list[np.ndarray], share: float, minimum: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Training and validation clips: the last ``share`` of every clip (at least ``minimum`` samples, where the
    clip is long enough to keep as much for training) is validation."""
    train, val = [], []
    for clip in clips:
        cut = len(clip) - max(int(len(clip) * share), minimum)
        if cut < minimum:  # too short to split: training only
            train.append(clip)
            continue
        train.append(clip[:cut])
        val.append(clip[cut:])
    return train, val


class RandomCrops(Dataset):
    """``size`` random crops of ``length`` samples per epoch, drawn in proportion to clip length, starting on
    multiples of ``align`` samples."""

    def __init__(self, clips: list[np.ndarray], length: int, size: int, seed: int = 0, align: int = 1) -> None:
        self.clips, self.length, self.size, self.seed, self.align = clips, length, size, seed, align
        lengths = np.array([len(clip) for clip in clips], dtype=np.float64)
        self.weights = lengths / lengths.sum()
        self.epoch = 0

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        clip = int(rng.choice(len(self.clips), p=self.weights))
        start = int(rng.integers(0, max(len(self.clips[clip]) - self.length, 0) // self.align + 1)) * self.align
        return _item(self.clips, clip, start, self.length)


class FixedCrops(Dataset):
    """Crops at fixed places: up to ``per_clip`` evenly spaced crops of every clip."""

    def __init__(self, clips: list[np.ndarray], length: int, per_clip: int = 1) -> None:
        self.items = []
        for index, clip in enumerate(clips):
            starts = np.linspace(0, max(len(clip) - length, 0), num=per_clip).astype(int)
            self.items += [(index, int(start)) for start in dict.fromkeys(starts)]
        self.clips, self.length = clips, length

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        clip, start = self.items[index]
        return _item(self.clips, clip, start, self.length)


def _item(clips: list[np.ndarray], clip: int, start: int, length: int) -> dict:
    return {"audio": torch.from_numpy(_crop(clips[clip], start, length)), "clip": clip, "start": start}


def _crop(clip: np.ndarray, start: int, length: int) -> np.ndarray:
    """(1, length) float32; clips shorter than ``length`` are zero-padded at the end."""
    piece = clip[start : start + length]
    if len(piece) < length:
        piece = np.pad(piece, (0, length - len(piece)))
    return piece.reshape(1, length).astype(np.float32, copy=False)


@dataclass(frozen=True)
class TrainingCorpus:
    """What pre-training needs to know of its data: the training clips (mono float32), how crops are cut and
    batched, and where they come from (for the model's record of its training)."""

    clips: list[np.ndarray]
    crop_length: int  # samples per crop
    crop_multiple: int  # crops start and end on whole multiples of this many samples (a latent frame)
    batch_size: int
    root: str
    seed: int


class CorpusDataModule(pl.LightningDataModule):
    def __init__(
        self,
        root: str | None = "data/corpus",
        sample_rate: int = 44100,
        crop_seconds: float = 1.0,
        crop_multiple: int = 128,
        batch_size: int = 8,
        crops_per_epoch: int = 2000,
        val_crops_per_clip: int = 2,
        val_share: float = 0.1,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        """``val_share``: for a folder of audio files without splits, the share of each file kept for validation."""
        super().__init__()
        if root is None:
            raise JukestyleError("data.root is not set: give the folder of audio to train on (data.root=<folder>)")
        if not 0 < val_share < 1:
            raise JukestyleError(f"data.val_share must be between 0 and 1, got {val_share}")
        self.val_share = val_share
        self.root = Path(root)
        self.sample_rate, self.batch_size, self.num_workers, self.seed = sample_rate, batch_size, num_workers, seed
        # Crops are a whole number of top-level latent frames, so every level sees whole frames.
        self.crop_multiple = crop_multiple
        self.crop_length = max(crop_multiple, int(crop_seconds * sample_rate) // crop_multiple * crop_multiple)
        self.crops_per_epoch, self.val_crops_per_clip = crops_per_epoch, val_crops_per_clip
        self.train_clips: list[np.ndarray] = []
        self.val_clips: list[np.ndarray] = []

    def setup(self, stage: str | None = None) -> None:
        if not self.train_clips:
            self.train_clips, self.val_clips = self._read()
        self.train_set = RandomCrops(
            self.train_clips, self.crop_length, self.crops_per_epoch, self.seed, align=self.crop_multiple
        )
        self.val_set = FixedCrops(self.val_clips, self.crop_length, self.val_crops_per_clip)

    def _read(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if has_splits(self.root):
            return tuple(
                [load_audio(path, self.sample_rate) for path in corpus_files(self.root, split)]
                for split in ("train", "val")
            )
        files = audio_files(self.root)
        if not files:
            raise JukestyleError(
                f"{self.root}: no audio (expected audio files, manifest.csv, or train/ and val/ folders of audio)"
            )
        train, val = split_tails(
            [load_audio(path, self.sample_rate) for path in files], self.val_share, self.crop_length
        )
        if not val:
            seconds = 2 * self.crop_length / self.sample_rate
            raise JukestyleError(
                f"{self.root}: no file is long enough to hold out validation audio (at least {seconds:.1f} s)"
            )
        return train, val

    def training_corpus(self) -> TrainingCorpus:
        """The training split as pre-training sees it (after ``setup``)."""
        return TrainingCorpus(
            self.train_clips, self.crop_length, self.crop_multiple, self.batch_size, str(self.root), self.seed
        )

    def set_epoch(self, epoch: int) -> None:
        """Called at the start of every training epoch, before its data loader is iterated."""
        self.train_set.epoch = epoch

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set, batch_size=self.batch_size, shuffle=False, drop_last=True, num_workers=self.num_workers
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers)
