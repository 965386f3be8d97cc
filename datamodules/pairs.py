"""(content, style) pairs for style transfer, served to ``trainer.predict``.

Three sources, chosen by the config (``data=pair``, ``data=manifest``, ``data=paper``):
- one pair: ``content`` and ``style`` file paths;
- a manifest CSV with columns ``content``, ``style`` and optionally ``pair_id``
  (relative paths are taken from ``root``, by default the manifest's folder);
- the paper's experiments: ``data/pairs.csv``, optionally filtered by ``experiments``.

Pair ids travel inside the batch. A pair whose audio cannot be read is not
dropped: it reaches the module with its error, which ends up in results.csv.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset

from jukestyle.audio.io import collected_warnings, load_audio
from jukestyle.errors import JukestyleError


@dataclass(frozen=True)
class Pair:
    pair_id: str
    content: str
    style: str
    experiment: str = ""


def make_pair_id(content: str | Path, style: str | Path) -> str:
    return f"{Path(content).stem}--{Path(style).stem}"


def _safe_id(pair_id: str) -> str:
    """File-name-safe id: letters, digits, '.', '_', '-' and '+' only."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", pair_id).strip("._") or "pair"


def _unique(pairs: list[Pair]) -> list[Pair]:
    """Pair ids made unique: a repeated id gets the first free suffix (``-2``, ``-3``, ...) that no row of the
    manifest uses, so that a renamed row never takes an id given explicitly to another."""
    ids = [_safe_id(pair.pair_id) for pair in pairs]
    taken = set(ids)
    used: set[str] = set()
    unique = []
    for pair, pair_id in zip(pairs, ids, strict=True):
        if pair_id in used:
            base, number = pair_id, 2
            while f"{base}-{number}" in taken:
                number += 1
            pair_id = f"{base}-{number}"
            taken.add(pair_id)
        used.add(pair_id)
        unique.append(Pair(pair_id, pair.content, pair.style, pair.experiment))
    return unique


def read_manifest(
    manifest: str | Path, root: str | Path | None = None, experiments: Sequence | None = None
) -> list[Pair]:
    manifest = Path(manifest)
    if not manifest.is_file():
        raise JukestyleError(f"{manifest}: no such pairs manifest")
    base = Path(root) if root is not None else manifest.parent
    with open(manifest, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"content", "style"} - set(reader.fieldnames or [])
        if missing:
            raise JukestyleError(f"{manifest}: missing column(s) {', '.join(sorted(missing))} (needs content, style)")
        rows = list(reader)
    wanted = None if experiments is None else {str(e) for e in experiments}
    pairs = []
    for row in rows:
        if wanted is not None and str(row.get("experiment", "")) not in wanted:
            continue
        content, style = (str(p if Path(p).is_absolute() else base / p) for p in (row["content"], row["style"]))
        pair_id = row.get("pair_id") or make_pair_id(content, style)
        pairs.append(Pair(pair_id, content, style, str(row.get("experiment", ""))))
    if not pairs:
        raise JukestyleError(f"{manifest}: no pairs" + (f" in experiments {sorted(wanted)}" if wanted else ""))
    return pairs


class PairDataset(Dataset):
    def __init__(self, pairs: list[Pair], sample_rate: int) -> None:
        self.pairs, self.sample_rate = pairs, sample_rate

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        pair = self.pairs[index]
        item = {"pair_id": pair.pair_id, "content": pair.content, "style": pair.style, "experiment": pair.experiment}
        with collected_warnings() as warnings:  # e.g. a stereo file whose channels cancel: kept in the records
            try:
                item["content_audio"] = load_audio(pair.content, self.sample_rate)
                item["style_audio"] = load_audio(pair.style, self.sample_rate)
                item["error"] = None
            except JukestyleError as error:  # reported per pair; the run goes on
                item.update(content_audio=None, style_audio=None, error=str(error))
        item["warnings"] = warnings
        return item


def predict_loader(dataset: Dataset, num_workers: int) -> DataLoader:
    """One item per batch, in order; items hold audio of different lengths, so a batch is a plain list."""
    return DataLoader(dataset, batch_size=1, shuffle=False, num_workers=num_workers, collate_fn=list)


class PairDataModule(pl.LightningDataModule):
    def __init__(
        self,
        content: str | None = None,
        style: str | None = None,
        manifest: str | None = None,
        root: str | None = None,
        experiments: Sequence | None = None,
        sample_rate: int = 44100,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if (content is None) != (style is None):
            raise JukestyleError("data: give both content and style (data=pair data.content=A data.style=B)")
        if (content is None) == (manifest is None):
            raise JukestyleError("data: give either content and style, or a manifest CSV")
        self.content, self.style, self.manifest, self.root = content, style, manifest, root
        self.experiments = None if experiments is None else list(experiments)
        self.sample_rate, self.num_workers = sample_rate, num_workers
        self.pairs: list[Pair] = []

    def setup(self, stage: str | None = None) -> None:
        if self.manifest is not None:
            pairs = read_manifest(self.manifest, self.root, self.experiments)
        else:
            pairs = [Pair(make_pair_id(self.content, self.style), str(self.content), str(self.style))]
        self.pairs = _unique(pairs)

    def predict_dataloader(self) -> DataLoader:
        return predict_loader(PairDataset(self.pairs, self.sample_rate), self.num_workers)
