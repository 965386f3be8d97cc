"""Crops for a transfer decoder: a content, a style excerpt, and the target the transfer should sound like.

Two layouts of ``root``, found by looking:

- **parallel** (``scripts/render_data.py transfer``): sub-folders, one per instrument, that hold the same
  files (the same scores played by each). An item's target is instrument B playing a crop of a score;
  its content (``input``) is the same crop played by instrument A (B itself for ``same_share`` of the
  items); its style is an excerpt of another of B's files, never the target's own excerpt.
- **self-supervised** (any folder of recordings, or a parallel corpus with ``self_supervised``: Cífka et
  al.'s scheme): the target is the content crop itself, and the style another, non-overlapping excerpt
  of the same file.

The last ``val_share`` of every file is held out for validation, as in ``corpus.py``. Items are dicts:
``audio`` (the target), ``input`` (the content), ``style`` (1, style_length), and the indices into
``TrainingCorpus.clips`` and sample starts (``clip``, ``input_clip``, ``start``, ``style_clip``,
``style_start``) from which a frozen encoder's codes are sliced. Crops start on whole top-level frames.
Training items are a pure function of (seed, epoch, index).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from jukestyle_lightning.datamodules.corpus import TrainingCorpus, _crop, _fitted, split_at, tail_cut
from torch.utils.data import DataLoader, Dataset

from jukestyle.audio.files import audio_files
from jukestyle.audio.io import load_audio
from jukestyle.errors import JukestyleError


@dataclass(frozen=True)
class TransferClips:
    """The clips of one split, ``clips[version * files + file]``: ``versions`` 1 for self-supervised data."""

    clips: list[np.ndarray]
    versions: int
    files: int

    def index(self, version: int, file: int) -> int:
        return version * self.files + file

    def length(self, file: int) -> int:
        return len(self.clips[file])  # versions of a file are fitted to one length


def parallel_layout(root: Path) -> tuple[list[str], list[Path]] | None:
    """(instrument folders, file names) when ``root``'s sub-folders hold the same audio files, else None; one
    line when they hold different ones."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and audio_files(p)) if root.is_dir() else []
    if len(folders) < 2:
        return None
    names = [path.relative_to(folders[0]) for path in audio_files(folders[0])]
    for folder in folders[1:]:
        if [path.relative_to(folder) for path in audio_files(folder)] != names:
            raise JukestyleError(
                f"{folder}: holds other files than {folders[0]}; a parallel corpus has the same files in every folder"
            )
    return [folder.name for folder in folders], names


class TransferCrops(Dataset):
    """``size`` random training items per epoch (see the module's docstring)."""

    def __init__(
        self,
        split: TransferClips,
        length: int,
        style_length: int,
        size: int,
        seed: int = 0,
        align: int = 1,
        same_share: float = 0.0,
    ) -> None:
        self.split, self.length, self.style_length, self.size = split, length, style_length, size
        self.seed, self.align, self.same_share = seed, align, float(same_share)
        lengths = np.array([split.length(file) for file in range(split.files)], dtype=np.float64)
        if split.versions == 1:  # the style comes from the same file, beside the crop: both must fit
            lengths[lengths < length + style_length] = 0.0
        if lengths.sum() == 0:
            raise JukestyleError(f"no file holds a crop and a style excerpt ({length + style_length} samples)")
        self.weights = lengths / lengths.sum()
        self.epoch = 0

    def __len__(self) -> int:
        return self.size

    def _start(self, rng: np.random.Generator, clip_length: int, length: int) -> int:
        return int(rng.integers(0, max(clip_length - length, 0) // self.align + 1)) * self.align

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        split = self.split
        file = int(rng.choice(split.files, p=self.weights))
        start = self._start(rng, split.length(file), self.length)
        target = int(rng.integers(split.versions))
        if split.versions == 1:
            content, style_file, style_start = target, file, self._beside(rng, split.length(file), start)
        else:
            others = [v for v in range(split.versions) if v != target]
            content = target if rng.random() < self.same_share else int(rng.choice(others))
            style_file = int(rng.choice([f for f in range(split.files) if f != file])) if split.files > 1 else file
            style_start = self._start(rng, split.length(style_file), self.style_length)
            if style_file == file:  # one file only: the style excerpt must not be the target's
                style_start = self._beside(rng, split.length(file), start)
        return transfer_item(
            split, self.length, self.style_length, file, start, target, content, style_file, style_start
        )

    def _beside(self, rng: np.random.Generator, clip_length: int, start: int) -> int:
        """A style start whose excerpt does not overlap the crop at ``start``."""
        before = max(start - self.style_length, -1) // self.align + 1 if start >= self.style_length else 0
        after_first = -(-(start + self.length) // self.align)
        after = max(clip_length - self.style_length, -1) // self.align - after_first + 1
        slots = [s * self.align for s in range(before)] + [(after_first + s) * self.align for s in range(max(after, 0))]
        if not slots:  # TransferCrops only draws files that hold both
            raise JukestyleError(f"a clip of {clip_length} samples holds no style excerpt beside its crop")
        return int(slots[int(rng.integers(len(slots)))])


class FixedTransferCrops(Dataset):
    """Validation items at fixed places: up to ``count`` items spread over files and versions, the contents taken
    from the versions in turn (parallel data: one item in ``versions`` has the target's own), each style from the
    next file (or beside the crop)."""

    def __init__(self, split: TransferClips, length: int, style_length: int, count: int, align: int = 1) -> None:
        self.split, self.length, self.style_length, self.align = split, length, style_length, align
        self.items = []
        pairs = [(version, file) for file in range(split.files) for version in range(split.versions)]
        for number in np.linspace(0, len(pairs) - 1, num=min(count, len(pairs))).astype(int):
            self.items.append(pairs[number])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        target, file = self.items[index]
        split = self.split
        content = (target + 1 + index) % split.versions if split.versions > 1 else target
        style_file = (file + 1) % split.files if split.versions > 1 else file
        start, style_start = 0, 0
        if style_file == file:  # the style after the crop, or from the start when the clip is too short
            style_start = -(-self.length // self.align) * self.align
            if style_start + self.style_length > split.length(file):
                style_start = 0
        return transfer_item(
            split, self.length, self.style_length, file, start, target, content, style_file, style_start
        )


def transfer_item(
    split: TransferClips,
    length: int,
    style_length: int,
    file: int,
    start: int,
    target: int,
    content: int,
    style_file: int,
    style_start: int,
) -> dict:
    clips = split.clips
    target_clip, content_clip = split.index(target, file), split.index(content, file)
    style_clip = split.index(target, style_file)
    return {
        "audio": torch.from_numpy(_crop(clips[target_clip], start, length)),
        "input": torch.from_numpy(_crop(clips[content_clip], start, length)),
        "style": torch.from_numpy(_crop(clips[style_clip], style_start, style_length)),
        "clip": target_clip,
        "input_clip": content_clip,
        "start": start,
        "style_clip": style_clip,
        "style_start": style_start,
    }


class TransferCorpusDataModule(pl.LightningDataModule):
    def __init__(
        self,
        root: str | None = None,
        sample_rate: int = 44100,
        crop_seconds: float = 0.5,
        style_seconds: float = 0.5,
        crop_multiple: int = 128,
        batch_size: int = 8,
        crops_per_epoch: int = 2000,
        val_items: int = 48,
        val_share: float = 0.1,
        same_share: float = 0.1,
        instruments: list[str] | None = None,
        self_supervised: bool = False,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        """``same_share``: in parallel data, the share of items whose content is the target's own version (so that a
        style equal to the content keeps it as it is). ``instruments``: the sub-folders to use (default: all).
        ``self_supervised``: treat a parallel corpus as plain recordings (no version is another's target)."""
        super().__init__()
        if root is None:
            raise JukestyleError("data.root is not set: give a parallel corpus or a folder of recordings")
        if not 0 < val_share < 1:
            raise JukestyleError(f"data.val_share must be between 0 and 1, got {val_share}")
        if not 0 <= same_share <= 1:
            raise JukestyleError(f"data.same_share must be between 0 and 1, got {same_share}")
        self.root, self.sample_rate, self.val_share, self.same_share = Path(root), sample_rate, val_share, same_share
        self.instruments = None if instruments is None else list(instruments)
        self.self_supervised = bool(self_supervised)
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.crop_multiple = crop_multiple

        def frames(seconds: float) -> int:
            return max(crop_multiple, int(seconds * sample_rate) // crop_multiple * crop_multiple)

        self.crop_length, self.style_length = frames(crop_seconds), frames(style_seconds)
        self.crops_per_epoch, self.val_items = crops_per_epoch, val_items
        self.train_split: TransferClips | None = None
        self.val_split: TransferClips | None = None
        self.versions: list[str] = []

    @property
    def parallel(self) -> bool:
        return len(self.versions) > 1

    def _read(self) -> tuple[TransferClips, TransferClips]:
        layout = parallel_layout(self.root)
        if layout is None:
            groups, self.versions = [audio_files(self.root)], [self.root.name]
            if not groups[0]:
                raise JukestyleError(f"{self.root}: no audio (a parallel corpus, or a folder of recordings)")
        else:
            folders, names = layout
            if self.instruments is not None:
                unknown = sorted(set(self.instruments) - set(folders))
                if unknown:
                    raise JukestyleError(f"{self.root}: no folder {unknown[0]!r} (data.instruments)")
                folders = [folder for folder in folders if folder in self.instruments]
            self.versions = folders
            groups = [[self.root / folder / name for name in names] for folder in folders]
            if self.self_supervised:  # every file a recording of its own
                groups, self.versions = [[path for group in groups for path in group]], [self.root.name]
        rate = self.sample_rate
        first = [load_audio(path, rate) for path in groups[0]]
        cuts = [tail_cut(len(clip), self.val_share, self.crop_length) for clip in first]
        if all(cut is None for cut in cuts):
            seconds = 2 * self.crop_length / rate
            raise JukestyleError(f"{self.root}: no file is long enough to hold out validation audio ({seconds:.1f} s)")
        kept = [index for index, cut in enumerate(cuts) if cut is not None]
        train, val = [], []
        for number, paths in enumerate(groups):
            if number == 0:
                clips = first
            else:  # versions of a score end a little apart: each is fitted to the first's length
                clips = [_fitted(load_audio(path, rate), len(clip)) for path, clip in zip(paths, first, strict=True)]
            version_train, version_val = split_at([clips[i] for i in kept], [cuts[i] for i in kept])
            train += version_train
            val += version_val
        return TransferClips(train, len(groups), len(kept)), TransferClips(val, len(groups), len(kept))

    def setup(self, stage: str | None = None) -> None:
        if self.train_split is None:
            self.train_split, self.val_split = self._read()
        self.train_set = TransferCrops(
            self.train_split,
            self.crop_length,
            self.style_length,
            self.crops_per_epoch,
            self.seed,
            self.crop_multiple,
            self.same_share if self.parallel else 1.0,
        )
        self.val_set = FixedTransferCrops(
            self.val_split, self.crop_length, self.style_length, self.val_items, self.crop_multiple
        )

    @property
    def val_clips(self) -> list[np.ndarray]:
        return self.val_split.clips if self.val_split else []

    def training_corpus(self) -> TrainingCorpus:
        return TrainingCorpus(
            self.train_split.clips,
            self.crop_length,
            self.crop_multiple,
            self.batch_size,
            str(self.root),
            self.seed,
            style_length=self.style_length,
        )

    def set_epoch(self, epoch: int) -> None:
        self.train_set.epoch = epoch

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set, batch_size=self.batch_size, shuffle=False, drop_last=True, num_workers=self.num_workers
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers)
