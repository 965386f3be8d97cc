"""Triplets for a timbre metric: the anchor's notes played by another instrument are its negative."""

from __future__ import annotations

import numpy as np
import pytest
from jukestyle_lightning.datamodules import timbre_corpus
from jukestyle_lightning.datamodules.timbre_corpus import TimbreCorpusDataModule
from test_transfer_corpus import parallel

from jukestyle.errors import JukestyleError


def data(root, **settings) -> TimbreCorpusDataModule:
    module = TimbreCorpusDataModule(str(root), crop_seconds=0.1, crops_per_epoch=8, val_items=4, **settings)
    module.setup("fit")
    return module


def find(module, audio: np.ndarray) -> tuple[int, int]:
    """(clip, start) of a crop in the training clips."""
    for index, clip in enumerate(module.train_split.clips):
        for start in range(len(clip) - len(audio) + 1):
            if np.array_equal(clip[start : start + len(audio)], audio):
                return index, start
    raise AssertionError("crop not found")


def test_a_triplet_is_the_anchor_another_of_its_scores_and_its_notes_by_another_instrument(tmp_path):
    module = data(parallel(tmp_path))
    files = module.train_split.files
    for index in range(4):
        item = module.train_set[index]
        (anchor, start), (positive, _) = (find(module, item[key].numpy()) for key in ("anchor", "positive"))
        negative, negative_start = find(module, item["negative"].numpy())
        assert anchor // files == positive // files == item["label"] and anchor % files != positive % files
        assert negative // files == item["negative_label"] != item["label"]
        assert negative % files == anchor % files and negative_start == start  # the same notes
    fixed = [module.val_set[0]["anchor"] for _ in range(2)]
    assert np.array_equal(*fixed)


def test_quiet_crops_are_drawn_again(tmp_path, monkeypatch):
    module = data(parallel(tmp_path))
    for clip in module.train_split.clips:  # silence, then a tone in the second half of each clip
        clip[: len(clip) // 2] = 0.0

    def loud_anchors() -> int:
        return sum(float(np.abs(module.train_set[index]["anchor"].numpy()).max()) > 0 for index in range(16))

    assert loud_anchors() == 16
    monkeypatch.setattr(timbre_corpus, "_DRAWS", 1)  # the first draw kept: some crops are silent
    assert loud_anchors() < 16


def test_a_corpus_of_one_instrument_is_one_line(tmp_path):
    parallel(tmp_path / "x", instruments=("flute",))
    with pytest.raises(JukestyleError, match="parallel corpus: two or more instruments"):
        data(tmp_path / "x" / "flute")
