"""Transfer with a trained decoder: the content's codes, rendered by the decoder of the target instrument."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from signals import harmonic_tone

import jukestyle
from jukestyle.errors import CheckpointError, ConfigError
from jukestyle.jukebox import build_vqvae
from jukestyle.jukebox.decoder_checkpoint import with_decoder
from jukestyle.methods import AdaIN, TrainedDecoder
from jukestyle.methods import decoder as decoder_module
from jukestyle.pipeline import StyleTransfer

CONTENT, STYLE, OTHER_STYLE = harmonic_tone(262, 0.3), harmonic_tone(392, 0.3), harmonic_tone(196, 0.3, partials=2)


def test_the_content_is_rendered_by_the_trained_decoder_and_the_style_is_not_needed(tiny_model, tiny_decoders):
    out = jukestyle.transfer(CONTENT, STYLE, method="decoder", model=tiny_model, checkpoint=tiny_decoders[2])
    rendering, _ = with_decoder(tiny_model, tiny_decoders[2])
    expected = jukestyle.transfer(CONTENT, STYLE, method="identity", model=rendering)  # the same loudness handling
    reconstruction = jukestyle.transfer(CONTENT, STYLE, method="identity", model=tiny_model)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert np.abs(out - reconstruction).max() > 0.01  # the trained decoder, not the base's
    other = jukestyle.transfer(CONTENT, OTHER_STYLE, method="decoder", model=tiny_model, checkpoint=tiny_decoders[2])
    np.testing.assert_array_equal(out, other)  # alpha 0: the decoder is the style


def test_alpha_moves_the_latent_toward_the_style_first(tiny_model, tiny_decoders):
    options = {"method": "decoder", "model": tiny_model, "checkpoint": tiny_decoders[2], "alpha": 1.0}
    out = jukestyle.transfer(CONTENT, STYLE, **options)
    rendering, _ = with_decoder(tiny_model, tiny_decoders[2])
    adain = jukestyle.transfer(CONTENT, STYLE, method="adain", model=rendering, points=["latent"])
    np.testing.assert_allclose(out, adain, atol=1e-5)
    style = torch.from_numpy(STYLE).view(1, 1, -1)
    with torch.no_grad():
        analysis = TrainedDecoder(tiny_decoders[2], alpha=1.0).analyse(tiny_model, style)["latent"]
        expected = AdaIN(points=["latent"]).analyse(tiny_model, style)
    assert analysis.keys() == expected.keys() == {"latent"}
    torch.testing.assert_close(analysis["latent"].std, expected["latent"].std)
    assert TrainedDecoder(tiny_decoders[2]).analyse(tiny_model, style)["latent"] is None  # alpha 0: not analysed


def test_a_folder_of_decoders_gives_each_style_its_instruments(tiny_model, tiny_decoders, tmp_path):
    folder = tmp_path / "decoders"
    folder.mkdir()
    shutil.copy(tiny_decoders[2], folder / "flute.pth.tar")
    bank = TrainedDecoder(folder)
    engine = StyleTransfer(tiny_model, bank)
    routed = engine(CONTENT, STYLE, "content.wav", "some/where/flute-C4.flac")
    single = StyleTransfer(tiny_model, TrainedDecoder(tiny_decoders[2]))(CONTENT, STYLE)
    np.testing.assert_array_equal(routed.audio, single.audio)
    assert routed.info["decoder"] == str(folder / "flute.pth.tar")
    with pytest.raises(ConfigError, match=r"no decoder for banjo-oh_susanna.flac's instrument 'banjo' in .* has flute"):
        engine(CONTENT, STYLE, "content.wav", "banjo-oh_susanna.flac")
    with pytest.raises(ConfigError, match=r"are of several levels \[0, 2\]"):
        shutil.copy(tiny_decoders[0], folder / "piano.pth.tar")
        TrainedDecoder(folder)


def test_the_level_comes_from_the_decoder_file(tiny_decoders):
    assert TrainedDecoder(tiny_decoders[0]).level == 0
    with pytest.raises(ConfigError, match=r"decoder: .*level0\.pth\.tar is a level-0 decoder, not level 2"):
        TrainedDecoder(tiny_decoders[0], level=2)


def test_missing_or_mismatching_decoders_are_one_line(tiny_model, tiny_decoders, tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match=r"decoders/banjo\.pth\.tar: a decoder of another architecture than"):
        TrainedDecoder().validate(tiny_model)  # unset: the bundled model's decoders, which the tiny model refuses
    monkeypatch.setattr(decoder_module, "BUNDLED_DECODERS", tmp_path / "not_installed")
    with pytest.raises(ConfigError, match=r"decoder: set method.checkpoint=<decoder file>"):
        TrainedDecoder().validate(tiny_model)
    with pytest.raises(CheckpointError, match=r"absent\.pth\.tar: no such checkpoint file"):
        TrainedDecoder(tmp_path / "absent.pth.tar")
    with pytest.raises(CheckpointError, match=r"trained on the level-2 codes of another base model"):
        jukestyle.transfer(CONTENT, STYLE, method="decoder", model=build_vqvae("tiny", seed=5),
                           checkpoint=tiny_decoders[2])  # fmt: skip


def test_settings_are_checked(tiny_decoders):
    with pytest.raises(ConfigError, match=r"decoder: alpha must be in \[0, 1\], got 2"):
        TrainedDecoder(tiny_decoders[2], alpha=2)
    assert AdaIN(points=["latent"]).settings()["points"] == ["latent"]
