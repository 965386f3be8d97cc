"""The pre-training corpus: splits from a manifest, from train/ and val/ folders, or held out from plain files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf
from jukestyle_lightning.datamodules.corpus import CorpusDataModule
from signals import SAMPLE_RATE, harmonic_tone

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


# -- parallel versions: the same files played by other instruments, a decoder's inputs ---------------
def parallel(root, instruments=("flute", "violin", "sine"), names=("a.wav", "b.flac")) -> dict:
    """``root/<instrument>/<name>``: the same two scores (notes at 220 and 330 Hz) in each instrument's timbre,
    a little longer or shorter from instrument to instrument, as renders of one score are."""
    audio = {}
    for index, instrument in enumerate(instruments):
        for name, frequency in zip(names, (220.0, 330.0), strict=False):
            audio[instrument, name] = write(root / instrument / name, 1.0 + 0.01 * index, frequency * (1 + index))
    return audio


def test_with_inputs_each_crop_hears_one_instruments_version_of_the_targets_crop(tmp_path):
    audio = parallel(tmp_path)
    module = corpus(tmp_path / "flute", inputs=str(tmp_path))
    versions = ("flute", "sine", "violin")  # the sub-folders, sorted; the target's own among them
    assert len(module.train_inputs) == len(module.val_inputs) == 3
    for version, clips in zip(versions, module.train_inputs, strict=True):
        for clip, target, name in zip(clips, module.train_clips, ("a.wav", "b.flac"), strict=True):
            assert len(clip) == len(target)  # cut or padded to the target's length, split at the target's cut
            np.testing.assert_allclose(clip, audio[version, name][: len(clip)], atol=1e-6)
    corpus_view = module.training_corpus()
    assert len(corpus_view.inputs) == 3 * len(corpus_view.clips)
    heard = set()
    for epoch in range(4):
        module.set_epoch(epoch)
        for item in map(module.train_set.__getitem__, range(len(module.train_set))):
            version, clip = divmod(item["input_clip"], len(module.train_clips))
            assert clip == item["clip"]
            source = module.train_inputs[version][clip][item["start"] : item["start"] + CROP]
            np.testing.assert_array_equal(item["input"][0, : len(source)].numpy(), source)
            heard.add(version)
    assert heard == {0, 1, 2}  # 16 crops, each from a random version: all three are heard
    val_versions = [divmod(module.val_set[i]["input_clip"], len(module.val_clips))[0] for i in range(3)]
    assert val_versions == [0, 1, 2]  # validation takes the versions in turn
    assert "input" not in corpus(tmp_path / "flute").train_set[0]  # without inputs the target is the input


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        ("violin/b.flac", r"violin/b\.flac: missing; data\.inputs' versions must hold every file of .*flute"),
        (None, r"no sub-folder holds the files of .*flute \(data\.inputs\)"),
    ],
)
def test_inputs_without_whole_versions_are_one_line(tmp_path, remove, message):
    parallel(tmp_path / "versions")
    shutil.copytree(tmp_path / "versions" / "flute", tmp_path / "flute")
    inputs = tmp_path / "versions"
    if remove:
        (inputs / remove).unlink()
    else:
        inputs = tmp_path / "elsewhere"
        write(inputs / "other" / "c.wav", 1.0)
    with pytest.raises(JukestyleError, match=message):
        corpus(tmp_path / "flute", inputs=str(inputs))


def _peak_frequency(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), n=1 << 18))
    return float(np.argmax(spectrum) * SAMPLE_RATE / (1 << 18))


def test_pitch_shift_resamples_each_crop_and_its_input_by_the_same_random_interval(tmp_path):
    parallel(tmp_path)
    module = corpus(tmp_path / "flute", inputs=str(tmp_path), pitch_shift=1.0)
    assert module.training_corpus().resampled and not corpus(tmp_path / "flute").training_corpus().resampled
    ratios = []
    for index in range(len(module.train_set)):
        item = module.train_set[index]
        version, clip = divmod(item["input_clip"], len(module.train_clips))
        ratio, target = item["ratio"], (220.0, 330.0)[clip]  # flute: 220 or 330 Hz; the n-th version: (n+1) times
        assert item["audio"].shape == item["input"].shape == (1, CROP) and 2 ** (-1 / 12) <= ratio <= 2 ** (1 / 12)
        assert _peak_frequency(item["audio"][0].numpy()) == pytest.approx(target * ratio, rel=0.01)
        heard = target * (1 + ["flute", "violin", "sine"].index(("flute", "sine", "violin")[version]))
        assert _peak_frequency(item["input"][0].numpy()) == pytest.approx(heard * ratio, rel=0.01)
        ratios.append(ratio)
    assert len(set(ratios)) == len(ratios)  # a new interval for every crop
    with pytest.raises(JukestyleError, match=r"data.pitch_shift is in semitones, from 0 to 12, got 13"):
        CorpusDataModule(str(tmp_path), pitch_shift=13)
