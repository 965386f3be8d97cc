"""What the shipped checkpoint (checkpoints/jukestyle_gm.pth.tar) is measured to do, asserted on it."""

from __future__ import annotations

import pytest
from project import REPO

from jukestyle.audio.corpus_plan import TARGET_INSTRUMENTS
from jukestyle.audio.io import load_audio
from jukestyle.evaluation.model_quality import instrument_identity
from jukestyle.jukebox import load_vqvae, read_checkpoint
from jukestyle.jukebox.checkpoint import training_stages
from jukestyle.jukebox.decoder_checkpoint import read_decoder
from jukestyle.methods import AdaIN
from jukestyle.methods.decoder import BUNDLED_DECODERS, TrainedDecoder
from jukestyle.methods.rendering import BUNDLED_TRANSFER_DECODER

C4 = ["flute", "piano", "trumpet", "violin", "sine", "sawtooth"]


@pytest.fixture(scope="module")
def bundled():
    return load_vqvae("bundled")


def test_the_bundled_model_records_its_trained_levels_and_stages():
    checkpoint = read_checkpoint(REPO / "checkpoints" / "jukestyle_gm.pth.tar")
    assert checkpoint["trained_levels"] == [0, 1, 2]
    stages = training_stages(checkpoint)
    assert [stage["training"].get("levels", [2]) for stage in stages] == [[2], [2], [1], [0]]


@pytest.mark.slow
@pytest.mark.parametrize("level", [0, 1, 2])
def test_reconstructions_keep_the_pitch_of_the_six_c4_notes(bundled, level):
    recordings = {name: load_audio(REPO / "data" / "exp1" / f"{name}-C4.flac", bundled.sample_rate) for name in C4}
    result = instrument_identity(bundled, recordings, level, bundled.sample_rate)
    assert all(pitch is not None and pitch >= 0.9 for pitch in result.pitch), result.pitch


def test_the_shipped_decoders_serve_every_instrument_of_the_experiments_on_the_bundled_model(bundled):
    files = sorted(BUNDLED_DECODERS.glob("*.pth.tar"))
    assert {path.name.removesuffix(".pth.tar") for path in files} == set(TARGET_INSTRUMENTS)
    assert all(path.stat().st_size <= 1.5e6 for path in files)  # the size that may ship in git
    method = TrainedDecoder()  # unset: the shipped folder
    method.validate(bundled)  # every decoder renders the bundled model's level-2 codes
    card = (BUNDLED_DECODERS / "DECODERS.md").read_text()
    assert all(f"| {instrument} | " in card for instrument in TARGET_INSTRUMENTS)


def test_the_bundled_model_serves_the_methods_at_level_1():
    assert load_vqvae("bundled").transfer_level == 1 and load_vqvae("bundled", transfer_level=2).transfer_level == 2


def test_the_shipped_transfer_decoder_is_a_level_1_decoder_of_the_bundled_model(bundled):
    path = BUNDLED_TRANSFER_DECODER
    assert path.name == "transfer_decoder.pth.tar" and path.stat().st_size <= 2e6
    contents = read_decoder(path)
    assert contents["level"] == 1 and contents["transfer"]["method"] == "adain"
    # the decoder only: no encoder, codebook, or other level's weights
    assert contents["decoder"] and all(not key.startswith(("encoders", "bottleneck")) for key in contents["decoder"])
    method = AdaIN(decoder="bundled")  # the name the README gives
    assert method.decoder == str(path) and method.level == 1
    method.validate(bundled)  # it renders the bundled model's level-1 codes
    card = (path.parent / "TRANSFER_DECODER.md").read_text()
    assert "## Targets" in card and "## A/B" in card
