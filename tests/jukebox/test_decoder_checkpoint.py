"""Decoder files: the decoder's weights only, tied to the codes of the base model they were trained on."""

from __future__ import annotations

import copy

import pytest
import torch

from jukestyle.errors import CheckpointError
from jukestyle.jukebox import build_vqvae, read_checkpoint, save_checkpoint
from jukestyle.jukebox.decoder_checkpoint import codes_digest, read_decoder, save_decoder, with_decoder


def test_a_decoder_file_holds_the_decoder_alone_and_loads_into_a_copy(tiny_model, tmp_path):
    trained = copy.deepcopy(tiny_model)
    with torch.no_grad():
        trained.decoders[1].out.weight.mul_(0.5)
    save_decoder(tmp_path / "d.pth.tar", trained, 1, step=7)
    saved = read_checkpoint(tmp_path / "d.pth.tar")
    assert "model" not in saved and saved["level"] == 1 and saved["step"] == 7
    assert set(saved["decoder"]) == set(tiny_model.decoders[1].state_dict())
    rendering, level = with_decoder(tiny_model, tmp_path / "d.pth.tar")
    assert level == 1 and rendering is not tiny_model
    assert torch.equal(rendering.decoders[1].out.weight, trained.decoders[1].out.weight)
    encoders = rendering.encoders[1].state_dict(), tiny_model.encoders[1].state_dict()
    assert all(torch.equal(encoders[0][key], encoders[1][key]) for key in encoders[1])
    assert not torch.equal(tiny_model.decoders[1].out.weight, trained.decoders[1].out.weight)  # base untouched


def test_the_codes_digest_follows_the_encoder_and_codebook_of_its_level_only(tiny_model):
    before = codes_digest(tiny_model, 2)
    other = copy.deepcopy(tiny_model)
    with torch.no_grad():
        other.decoders[2].out.bias += 1  # the decoder being replaced
        next(other.encoders[0].parameters()).add_(1)  # another level
    assert codes_digest(other, 2) == before
    with torch.no_grad():
        other.bottleneck[2].k.add_(1)
    assert codes_digest(other, 2) != before


def test_another_base_model_or_a_whole_vqvae_is_one_line(tiny_model, tmp_path):
    save_decoder(tmp_path / "d.pth.tar", tiny_model, 2)
    with pytest.raises(CheckpointError, match=r"d\.pth\.tar: trained on the level-2 codes of another base model"):
        with_decoder(build_vqvae("tiny", seed=1), tmp_path / "d.pth.tar")
    save_checkpoint(tmp_path / "whole.pth.tar", tiny_model)
    with pytest.raises(CheckpointError, match=r"whole\.pth\.tar: not a trained decoder \(written by experiment="):
        read_decoder(tmp_path / "whole.pth.tar")
