"""The pre-training corpus: splits from a manifest, from train/ and val/ folders, or held out from plain files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from signals import SAMPLE_RATE, harmonic_tone

from datamodules.corpus import CorpusDataModule
from jukestyle.errors import JukestyleError

CROP_SECONDS = 0.1
CROP = int(CROP_SECONDS * SAMPLE_RATE) // 128 * 128


def write(path, seconds: float, frequency: float = 220.0) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = harmonic_tone(frequency, seconds)
    sf.write(path, audio, SAMPLE_RATE, subtype="FLOAT" if path.suffix == ".wav" else "PCM_24")
    return audio


def corpus(root, **settings) -> CorpusDataModule:
    module = CorpusDataModule(str(root), crop_seconds=CROP_SECONDS, batch_size=2, crops_per_epoch=4, **settings)
    module.setup("fit")
    return module


def test_a_folder_of_recordings_holds_out_the_end_of_every_file(tmp_path):
    first = write(tmp_path / "a.wav", 3.0)
    second = write(tmp_path / "more" / "b.flac", 0.5, frequency=330.0)
    module = corpus(tmp_path)
    assert [len(clip) for clip in module.train_clips] == [len(first) - len(first) // 10, len(second) - CROP]
    np.testing.assert_allclose(np.concatenate([module.train_clips[0], module.val_clips[0]]), first, atol=1e-6)
    assert len(module.val_clips[1]) == CROP  # a tenth of 0.5 s is shorter than one crop: one crop is held out
    assert next(iter(module.train_dataloader()))["audio"].shape == (2, 1, CROP)
    assert len(module.val_set) > 0


def test_train_and_val_folders_are_the_splits(tmp_path):
    write(tmp_path / "train" / "a.wav", 1.0)
    write(tmp_path / "val" / "b.wav", 0.5)
    module = corpus(tmp_path)
    assert [len(c) for c in module.train_clips] == [SAMPLE_RATE] and [len(c) for c in module.val_clips] == [22050]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, r"no audio \(expected audio files, manifest.csv, or train/ and val/ folders of audio\)"),
        ({"short.wav": 0.15}, r"no file is long enough to hold out validation audio \(at least 0\.2 s\)"),
    ],
)
def test_a_folder_it_cannot_split_is_one_line(tmp_path, files, message):
    for name, seconds in files.items():
        write(tmp_path / name, seconds)
    with pytest.raises(JukestyleError, match=message):
        corpus(tmp_path)


def test_the_held_out_share_is_checked():
    with pytest.raises(JukestyleError, match=r"data.val_share must be between 0 and 1, got 1.5"):
        CorpusDataModule("anywhere", val_share=1.5)
