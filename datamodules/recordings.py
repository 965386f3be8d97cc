"""Single recordings labelled by instrument and piece (e.g. the note C4), served to ``trainer.predict``.

The source is a manifest CSV with columns ``instrument``, ``piece`` and ``file`` (and
optionally ``id`` and ``experiment``), such as ``data/manifest.csv`` written by
``scripts/render_data.py experiments``. Relative paths are taken from ``root``
(by default the manifest's folder). A recording that cannot be read reaches the
module with its error, so the run reports it and goes on with the others.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
from jukestyle_lightning.datamodules.pairs import predict_loader
from torch.utils.data import DataLoader, Dataset

from jukestyle.audio.io import load_audio
from jukestyle.errors import JukestyleError


@dataclass(frozen=True)
class Recording:
    id: str
    instrument: str
    piece: str
    file: str


def _chosen(value: str, wanted: Sequence | None) -> bool:
    return wanted is None or value in {str(item) for item in wanted}


def read_recordings(
    manifest: str | Path,
    root: str | Path | None = None,
    experiments: Sequence | None = None,
    pieces: Sequence | None = None,
    instruments: Sequence | None = None,
) -> list[Recording]:
    manifest = Path(manifest)
    if not manifest.is_file():
        raise JukestyleError(f"{manifest}: no such recordings manifest")
    base = Path(root) if root is not None else manifest.parent
    with open(manifest, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"instrument", "piece", "file"} - set(reader.fieldnames or [])
        if missing:
            raise JukestyleError(f"{manifest}: missing column(s) {', '.join(sorted(missing))}")
        rows = list(reader)
    recordings = []
    for row in rows:
        if not (
            _chosen(row.get("experiment", ""), experiments)
            and _chosen(row["piece"], pieces)
            and _chosen(row["instrument"], instruments)
        ):
            continue
        file = row["file"] if Path(row["file"]).is_absolute() else str(base / row["file"])
        recordings.append(Recording(row.get("id") or Path(file).stem, row["instrument"], row["piece"], file))
    if not recordings:
        raise JukestyleError(f"{manifest}: no recordings match experiments={experiments}, pieces={pieces}")
    return recordings


class RecordingDataset(Dataset):
    def __init__(self, recordings: list[Recording], sample_rate: int) -> None:
        self.recordings, self.sample_rate = recordings, sample_rate

    def __len__(self) -> int:
        return len(self.recordings)

    def __getitem__(self, index: int) -> dict:
        recording = self.recordings[index]
        item = {"id": recording.id, "instrument": recording.instrument, "piece": recording.piece}
        item["file"] = recording.file
        try:
            item.update(audio=load_audio(recording.file, self.sample_rate), error=None)
        except JukestyleError as error:
            item.update(audio=None, error=str(error))
        return item


class RecordingDataModule(pl.LightningDataModule):
    def __init__(
        self,
        manifest: str,
        root: str | None = None,
        experiments: Sequence | None = None,
        pieces: Sequence | None = None,
        instruments: Sequence | None = None,
        sample_rate: int = 44100,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.manifest, self.root = manifest, root
        self.filters = {"experiments": experiments, "pieces": pieces, "instruments": instruments}
        self.sample_rate, self.num_workers = sample_rate, num_workers
        self.recordings: list[Recording] = []

    def setup(self, stage: str | None = None) -> None:
        self.recordings = read_recordings(self.manifest, self.root, **self.filters)

    def predict_dataloader(self) -> DataLoader:
        return predict_loader(RecordingDataset(self.recordings, self.sample_rate), self.num_workers)
