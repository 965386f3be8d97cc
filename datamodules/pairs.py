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

from collections.abc import Sequence

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset

from jukestyle.audio.io import collected_warnings, load_audio
from jukestyle.errors import JukestyleError
from jukestyle.evaluation.pair_sets import Pair, make_pair_id, read_manifest, unique_ids


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
        self.pairs = unique_ids(pairs)

    def predict_dataloader(self) -> DataLoader:
        return predict_loader(PairDataset(self.pairs, self.sample_rate), self.num_workers)
