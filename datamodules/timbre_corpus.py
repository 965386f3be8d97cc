"""Crops for a timbre metric: the same notes played by two instruments, and one instrument playing others.

The corpus is a parallel one (``scripts/render_data.py transfer``: sub-folders, one per instrument,
holding the same scores), read as ``transfer_corpus.TransferCorpusDataModule`` reads it. An item is a
triplet of crops: the *anchor* (instrument v, a crop of one score), the *positive* (v, a crop of another
score: other pitches, another phrase) and the *negative* (another instrument playing the anchor's very
notes), with ``label`` v. A metric that tells the anchor from the negative can only be hearing the
instrument. Crops are drawn where there is sound (not in the corpus's release gaps).
"""

from __future__ import annotations

import numpy as np
import torch
from jukestyle_lightning.datamodules.corpus import _crop
from jukestyle_lightning.datamodules.transfer_corpus import TransferClips, TransferCorpusDataModule
from torch.utils.data import DataLoader, Dataset

from jukestyle.errors import JukestyleError

SILENCE_DB = -45.0  # a crop this far under full scale (RMS) is drawn again
_DRAWS = 16  # draws before a quiet crop is accepted


class TimbreTriplets(Dataset):
    def __init__(self, split: TransferClips, length: int, size: int, seed: int = 0, fixed: bool = False) -> None:
        if split.versions < 2:
            raise JukestyleError("a timbre metric trains on a parallel corpus: two or more instruments' folders")
        self.split, self.length, self.size, self.seed, self.fixed = split, length, size, seed, fixed
        lengths = np.array([split.length(file) for file in range(split.files)], dtype=np.float64)
        self.weights = lengths / lengths.sum()
        self.epoch = 0

    def __len__(self) -> int:
        return self.size

    def _crop(self, rng: np.random.Generator, version: int, file: int | None = None) -> tuple[np.ndarray, int, int]:
        """A sounding crop of ``version`` (of ``file``, or of a file drawn by length): audio, file, start."""
        for _ in range(_DRAWS):
            chosen = int(rng.choice(self.split.files, p=self.weights)) if file is None else file
            clip = self.split.clips[self.split.index(version, chosen)]
            start = int(rng.integers(0, max(len(clip) - self.length, 0) + 1))
            audio = _crop(clip, start, self.length)
            if 20 * np.log10(max(float(np.sqrt(np.mean(audio**2))), 1e-9)) > SILENCE_DB:
                break
        return audio, chosen, start

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, 0 if self.fixed else self.epoch, index])
        split = self.split
        version = int(rng.integers(split.versions))
        anchor, file, start = self._crop(rng, version)
        others = [f for f in range(split.files) if f != file] or [file]
        positive, _, _ = self._crop(rng, version, int(rng.choice(others)))
        other = int(rng.choice([v for v in range(split.versions) if v != version]))
        negative = _crop(split.clips[split.index(other, file)], start, self.length)  # the anchor's notes
        return {
            "anchor": torch.from_numpy(anchor[0]),
            "positive": torch.from_numpy(positive[0]),
            "negative": torch.from_numpy(negative[0]),
            "label": version,
            "negative_label": other,
        }


class TimbreCorpusDataModule(TransferCorpusDataModule):
    """``crop_seconds`` of audio per crop; ``crops_per_epoch`` triplets per training epoch; ``val_items`` fixed
    triplets from the held-out tail of every file (the instruments trained on, music not heard)."""

    def setup(self, stage: str | None = None) -> None:
        if self.train_split is None:
            self.train_split, self.val_split = self._read()
        self.train_set = TimbreTriplets(self.train_split, self.crop_length, self.crops_per_epoch, self.seed)
        self.val_set = TimbreTriplets(self.val_split, self.crop_length, self.val_items, self.seed, fixed=True)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set, batch_size=self.batch_size, shuffle=False, drop_last=True, num_workers=self.num_workers
        )
