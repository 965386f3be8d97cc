"""Random crops of an audio corpus for self-supervised VQ-VAE training.

The corpus is a folder with a ``manifest.csv`` (columns ``file`` and ``split``,
as written by ``scripts/render_data.py corpus``) or, for a corpus of one's own,
``train/`` and ``val/`` sub-folders of audio files in any format libsndfile
reads, or just audio files (e.g. an instrument's recordings, to train a decoder
on): then the last ``val_share`` of every file is the validation split, so that
even a single recording is validated on music it was not trained on.
Everything is decoded once into memory at the model's sample rate.

With ``inputs`` (a folder of sub-folders that hold the same music, file for file, played by
other instruments: ``scripts/render_data.py targets``), a crop's ``input`` is the same crop of
one of those versions and its ``audio`` the target's: a decoder then learns to render any
instrument's codes as the target instrument. Without it the input is the target itself.

Training crops are a pure function of (seed, epoch, index): different every
epoch, different on every DDP rank (each rank sees other indices), and the same
when a run is repeated. They start on whole top-level latent frames, so that a
frozen encoder's codes can be sliced from codes computed once per clip. Validation
uses fixed, evenly spaced crops. Items are dicts: ``audio`` (1, length), and the
``clip`` index and ``start`` sample they were cut from; with ``inputs`` also ``input``
(1, length) and ``input_clip``, its index in ``TrainingCorpus.inputs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from jukestyle.audio.files import audio_files, corpus_files, has_splits
from jukestyle.audio.io import load_audio, resample
from jukestyle.errors import JukestyleError


def tail_cut(length: int, share: float, minimum: int) -> int | None:
    """Where a clip of ``length`` samples splits into training and validation: its last ``share`` (at least
    ``minimum`` samples) is validation; None when the clip is too short to keep as much for training."""
    cut = length - max(int(length * share), minimum)
    return cut if cut >= minimum else None


def split_at(clips: list[np.ndarray], cuts: list[int | None]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Training and validation clips at ``cuts`` (``tail_cut``'s); a clip without a cut is training only."""
    train = [clip if cut is None else clip[:cut] for clip, cut in zip(clips, cuts, strict=True)]
    val = [clip[cut:] for clip, cut in zip(clips, cuts, strict=True) if cut is not None]
    return train, val


def parallel_versions(root: Path, files: list[Path], inputs: Path) -> list[list[Path]]:
    """For every sub-folder of ``inputs`` that holds the same file names as ``files`` (under ``root``), those
    files in that order: the same music played by another instrument. One line when a version is partial."""
    names = [path.relative_to(root) for path in files]
    versions = []
    for folder in sorted(p for p in inputs.iterdir() if p.is_dir()) if inputs.is_dir() else []:
        present = [(folder / name).is_file() for name in names]
        if all(present):
            versions.append([folder / name for name in names])
        elif any(present):
            missing = names[present.index(False)]
            raise JukestyleError(f"{folder / missing}: missing; data.inputs' versions must hold every file of {root}")
    if not versions:
        raise JukestyleError(f"{inputs}: no sub-folder holds the files of {root} (data.inputs)")
    return versions


def _fitted(clip: np.ndarray, length: int) -> np.ndarray:
    """``clip`` cut or zero-padded to ``length`` samples (versions of a score end a little apart)."""
    return clip[:length] if len(clip) >= length else np.pad(clip, (0, length - len(clip)))


class RandomCrops(Dataset):
    """``size`` random crops of ``length`` samples per epoch, drawn in proportion to clip length, starting on
    multiples of ``align`` samples; with ``inputs`` (versions of the clips), each crop's input from a random one.
    ``pitch_shift`` > 0: each crop (and its input) is resampled by a random interval of up to that many semitones
    either way, so that a decoder meets every pitch between the notes of its data, not only the notes."""

    def __init__(
        self,
        clips: list[np.ndarray],
        length: int,
        size: int,
        seed: int = 0,
        align: int = 1,
        inputs: list[list[np.ndarray]] | None = None,
        pitch_shift: float = 0.0,
    ) -> None:
        self.clips, self.length, self.size, self.seed, self.align = clips, length, size, seed, align
        self.inputs, self.pitch_shift = inputs, float(pitch_shift)
        lengths = np.array([len(clip) for clip in clips], dtype=np.float64)
        self.weights = lengths / lengths.sum()
        self.epoch = 0

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        clip = int(rng.choice(len(self.clips), p=self.weights))
        # no draw for the interval without pitch_shift: crops stay what they were before it existed
        ratio = 2 ** (rng.uniform(-self.pitch_shift, self.pitch_shift) / 12) if self.pitch_shift else 1.0
        span = int(np.ceil(self.length * ratio))  # the source samples that play in one crop (> 1: higher, faster)
        start = int(rng.integers(0, max(len(self.clips[clip]) - span, 0) // self.align + 1)) * self.align
        version = int(rng.integers(len(self.inputs))) if self.inputs else None
        item = _item(self.clips, clip, start, span, self.inputs, version)
        if self.pitch_shift:
            for key in ("audio", "input"):
                if key in item:
                    shifted = resample(item[key][0].numpy(), self.length * ratio, self.length)
                    item[key] = torch.from_numpy(_crop(shifted, 0, self.length))
            item["ratio"] = ratio
        return item


class FixedCrops(Dataset):
    """Crops at fixed places: up to ``per_clip`` evenly spaced crops of every clip; with ``inputs``, the crops
    take their inputs from the versions in turn."""

    def __init__(
        self, clips: list[np.ndarray], length: int, per_clip: int = 1, inputs: list[list[np.ndarray]] | None = None
    ) -> None:
        self.items = []
        for index, clip in enumerate(clips):
            starts = np.linspace(0, max(len(clip) - length, 0), num=per_clip).astype(int)
            self.items += [(index, int(start)) for start in dict.fromkeys(starts)]
        self.clips, self.length, self.inputs = clips, length, inputs

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        clip, start = self.items[index]
        version = index % len(self.inputs) if self.inputs else None
        return _item(self.clips, clip, start, self.length, self.inputs, version)


def _item(
    clips: list[np.ndarray],
    clip: int,
    start: int,
    length: int,
    inputs: list[list[np.ndarray]] | None = None,
    version: int | None = None,
) -> dict:
    item = {"audio": torch.from_numpy(_crop(clips[clip], start, length)), "clip": clip, "start": start}
    if version is not None:
        item["input"] = torch.from_numpy(_crop(inputs[version][clip], start, length))
        item["input_clip"] = version * len(clips) + clip
    return item


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
    inputs: list[np.ndarray] = ()  # with parallel versions: every version's training clips, version after version
    resampled: bool = False  # crops are pitch-shifted: their codes cannot be sliced from codes computed once
    style_length: int = 0  # samples per style excerpt, for data that has them (a transfer decoder's)


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
        inputs: str | None = None,
        pitch_shift: float = 0.0,
    ) -> None:
        """``val_share``: for a folder of audio files without splits, the share of each file kept for validation.
        ``inputs``: for such a folder, a folder of sub-folders holding the same files played by other instruments,
        the inputs whose codes the target audio is learnt from (a decoder's training). ``pitch_shift``: training
        crops are resampled by up to this many semitones either way (0: off)."""
        super().__init__()
        if root is None:
            raise JukestyleError("data.root is not set: give the folder of audio to train on (data.root=<folder>)")
        if not 0 < val_share < 1:
            raise JukestyleError(f"data.val_share must be between 0 and 1, got {val_share}")
        self.val_share = val_share
        self.root = Path(root)
        self.inputs = None if inputs is None else Path(inputs)
        if not 0 <= pitch_shift <= 12:
            raise JukestyleError(f"data.pitch_shift is in semitones, from 0 to 12, got {pitch_shift}")
        self.pitch_shift = float(pitch_shift)
        self.sample_rate, self.batch_size, self.num_workers, self.seed = sample_rate, batch_size, num_workers, seed
        # Crops are a whole number of top-level latent frames, so every level sees whole frames.
        self.crop_multiple = crop_multiple
        self.crop_length = max(crop_multiple, int(crop_seconds * sample_rate) // crop_multiple * crop_multiple)
        self.crops_per_epoch, self.val_crops_per_clip = crops_per_epoch, val_crops_per_clip
        self.train_clips: list[np.ndarray] = []
        self.val_clips: list[np.ndarray] = []
        self.train_inputs: list[list[np.ndarray]] | None = None  # per version, aligned with the clips
        self.val_inputs: list[list[np.ndarray]] | None = None

    def setup(self, stage: str | None = None) -> None:
        if not self.train_clips:
            self.train_clips, self.val_clips = self._read()
        self.train_set = RandomCrops(
            self.train_clips,
            self.crop_length,
            self.crops_per_epoch,
            self.seed,
            align=self.crop_multiple,
            inputs=self.train_inputs,
            pitch_shift=self.pitch_shift,
        )
        self.val_set = FixedCrops(self.val_clips, self.crop_length, self.val_crops_per_clip, self.val_inputs)

    def _read(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if has_splits(self.root):
            if self.inputs is not None:
                raise JukestyleError(f"{self.root}: data.inputs needs a plain folder of audio files, not splits")
            return tuple(
                [load_audio(path, self.sample_rate) for path in corpus_files(self.root, split)]
                for split in ("train", "val")
            )
        files = audio_files(self.root)
        if not files:
            raise JukestyleError(
                f"{self.root}: no audio (expected audio files, manifest.csv, or train/ and val/ folders of audio)"
            )
        clips = [load_audio(path, self.sample_rate) for path in files]
        cuts = [tail_cut(len(clip), self.val_share, self.crop_length) for clip in clips]
        if all(cut is None for cut in cuts):
            seconds = 2 * self.crop_length / self.sample_rate
            raise JukestyleError(
                f"{self.root}: no file is long enough to hold out validation audio (at least {seconds:.1f} s)"
            )
        if self.inputs is not None:
            rate = self.sample_rate
            versions = [
                [_fitted(load_audio(path, rate), len(clip)) for path, clip in zip(paths, clips, strict=True)]
                for paths in parallel_versions(self.root, files, self.inputs)
            ]
            self.train_inputs, self.val_inputs = map(list, zip(*(split_at(v, cuts) for v in versions), strict=True))
        return split_at(clips, cuts)

    def training_corpus(self) -> TrainingCorpus:
        """The training split as pre-training sees it (after ``setup``)."""
        inputs = [clip for version in self.train_inputs or [] for clip in version]
        return TrainingCorpus(
            self.train_clips,
            self.crop_length,
            self.crop_multiple,
            self.batch_size,
            str(self.root),
            self.seed,
            inputs,
            resampled=self.pitch_shift > 0,
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
