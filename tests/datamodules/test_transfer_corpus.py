"""A transfer decoder's crops: content, style excerpt and target, from a parallel corpus or from any recordings."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from jukestyle_lightning.datamodules.transfer_corpus import TransferCorpusDataModule
from signals import SAMPLE_RATE, harmonic_tone

from jukestyle.errors import JukestyleError

CROP_SECONDS = 0.1
CROP = int(CROP_SECONDS * SAMPLE_RATE) // 128 * 128


def write(path, seconds: float, frequency: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(
        path, harmonic_tone(frequency, seconds), SAMPLE_RATE, subtype="FLOAT" if path.suffix == ".wav" else "PCM_24"
    )


def parallel(root, instruments=("flute", "oboe", "violin"), scores=("a", "b", "c")):
    """Every instrument plays every score: a distinct tone per (instrument, score), so crops can be traced."""
    for number, instrument in enumerate(instruments):
        for index, score in enumerate(scores):
            write(root / instrument / f"{score}.wav", 1.0 + 0.1 * index, 200.0 + 100 * number + 10 * index)
    return root


def data(root, **settings) -> TransferCorpusDataModule:
    settings = {"crop_seconds": CROP_SECONDS, "style_seconds": CROP_SECONDS, "batch_size": 2, **settings}
    module = TransferCorpusDataModule(str(root), crops_per_epoch=16, **settings)
    module.setup("fit")
    return module


def crop_of(module, clip: int, start: int, length: int) -> np.ndarray:
    return module.train_split.clips[clip][start : start + length]


def test_a_parallel_item_is_one_score_played_by_two_instruments_with_another_score_as_style(tmp_path):
    module = data(parallel(tmp_path), same_share=0.0)
    split = module.train_split
    assert module.versions == ["flute", "oboe", "violin"] and (split.versions, split.files) == (3, 3)
    for index in range(16):
        item = module.train_set[index]
        target, content, style = (divmod(item[key], split.files) for key in ("clip", "input_clip", "style_clip"))
        assert target[1] == content[1] and target[0] != content[0]  # the same score, another instrument
        assert style[0] == target[0] and style[1] != target[1]  # the target's instrument, another score
        assert item["start"] % 128 == 0 and item["style_start"] % 128 == 0
        np.testing.assert_array_equal(item["audio"][0].numpy(), crop_of(module, item["clip"], item["start"], CROP))
        np.testing.assert_array_equal(
            item["input"][0].numpy(), crop_of(module, item["input_clip"], item["start"], CROP)
        )
        expected = crop_of(module, item["style_clip"], item["style_start"], CROP)
        np.testing.assert_array_equal(item["style"][0].numpy(), expected)
    again = data(parallel(tmp_path / "again"), same_share=0.0).train_set[5]
    assert all(again[key] == module.train_set[5][key] for key in ("clip", "input_clip", "start", "style_start"))


def test_same_share_gives_the_target_its_own_version_as_content(tmp_path):
    module = data(parallel(tmp_path), same_share=1.0)
    assert all(module.train_set[i]["clip"] == module.train_set[i]["input_clip"] for i in range(16))


def test_recordings_without_versions_are_their_own_targets_with_a_style_beside_the_crop(tmp_path):
    write(tmp_path / "one.wav", 2.0, 220.0)
    write(tmp_path / "two.flac", 1.0, 330.0)
    module = data(tmp_path, style_seconds=0.3)
    assert not module.parallel and module.train_split.versions == 1
    style_length = int(0.3 * SAMPLE_RATE) // 128 * 128
    for index in range(16):
        item = module.train_set[index]
        assert item["clip"] == item["input_clip"] == item["style_clip"]  # the same file
        np.testing.assert_array_equal(item["audio"].numpy(), item["input"].numpy())  # the content is the target
        crop = range(item["start"], item["start"] + CROP)
        excerpt = range(item["style_start"], item["style_start"] + style_length)
        assert not set(crop) & set(excerpt)  # never the target's own excerpt
        assert item["style_start"] + style_length <= len(module.train_split.clips[item["clip"]])
    assert len(module.val_set) > 0 and module.val_set[0]["style"].shape == (1, style_length)


def test_a_parallel_corpus_can_be_used_as_plain_recordings(tmp_path):
    module = data(parallel(tmp_path), self_supervised=True, style_seconds=0.3)
    assert module.train_split.versions == 1 and module.train_split.files == 9
    item = module.train_set[3]
    assert item["clip"] == item["input_clip"] == item["style_clip"]


def test_folders_that_hold_other_files_are_one_line(tmp_path):
    parallel(tmp_path)
    (tmp_path / "violin" / "c.wav").unlink()
    with pytest.raises(JukestyleError, match=r"violin: holds other files than .*flute"):
        data(tmp_path)
    with pytest.raises(JukestyleError, match=r"no folder 'cello' \(data.instruments\)"):
        data(parallel(tmp_path / "full"), instruments=["flute", "cello"])


def test_validation_items_are_fixed_and_the_corpus_lists_every_clip(tmp_path):
    module = data(parallel(tmp_path), val_items=6)
    items = [module.val_set[index] for index in range(len(module.val_set))]
    assert len(items) == 6 and sum(item["clip"] != item["input_clip"] for item in items) == 4  # 2 in 3 translate
    assert all(item["style_clip"] % 3 != item["clip"] % 3 for item in items)  # the style: another score
    corpus = module.training_corpus()
    assert len(corpus.clips) == 9 and corpus.style_length == CROP and corpus.crop_length == CROP
