"""The timbre embedding: loudness does not enter, any length and rate go in, and its checkpoints load or say why not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from project import REPO
from signals import harmonic_tone

from jukestyle.audio.io import load_audio
from jukestyle.errors import CheckpointError
from jukestyle.evaluation import timbre


@pytest.fixture(scope="module")
def metric(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("metric") / "timbre_metric.pth.tar"
    timbre.save_metric(path, timbre.TimbreNet(), step=0)
    return path


def test_an_embedding_is_a_unit_vector_that_a_gain_does_not_move(metric):
    tone = harmonic_tone(220.0, 1.0)
    first = timbre.embed(tone, 44100, metric)
    assert first.shape == (128,) and np.linalg.norm(first) == pytest.approx(1.0)
    np.testing.assert_allclose(timbre.embed(tone * 10 ** (-12 / 20), 44100, metric), first, atol=1e-5)
    assert timbre.timbre_distance(first, first) == pytest.approx(0.0, abs=1e-9)
    other = timbre.embed(np.sign(tone).astype(np.float32) * 0.3, 44100, metric)  # a square wave
    assert timbre.timbre_distance(first, other) > 1e-3


def test_short_audio_and_other_rates_are_embedded(metric):
    assert timbre.embed(harmonic_tone(220.0, 0.01), 44100, metric).shape == (128,)  # shorter than one frame
    at_22k = timbre.embed(harmonic_tone(220.0, 1.0, 22050), 22050, metric)
    at_44k = timbre.embed(harmonic_tone(220.0, 1.0), 44100, metric)
    assert timbre.timbre_distance(at_22k, at_44k) < 0.05


def test_the_frechet_distance_is_zero_for_one_set_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 4))
    assert timbre.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-4)
    shifted = timbre.frechet_distance(a, a + 1.0)
    assert shifted == pytest.approx(4.0, rel=0.05) and timbre.frechet_distance(a, a + 2.0) > shifted


def test_checkpoints_that_are_not_a_metric_are_one_line(tmp_path, metric):
    with pytest.raises(CheckpointError, match=r"missing.pth.tar: no timbre metric \(train one with"):
        timbre.load_metric(tmp_path / "missing.pth.tar")
    other = tmp_path / "other.pth.tar"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(CheckpointError, match=r"other.pth.tar: not a timbre metric"):
        timbre.load_metric(other)
    (tmp_path / "text.pth.tar").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"text.pth.tar: not a readable timbre metric"):
        timbre.load_metric(tmp_path / "text.pth.tar")
    loaded = timbre.load_metric(metric)
    assert not loaded.training and sum(p.numel() for p in loaded.parameters()) * 4 < 2e6  # under 2 MB


def test_the_shipped_metric_hears_the_instrument_across_a_fifth():
    """Experiment 1's notes: each instrument's C4 is nearer its own G4 than any other instrument's C4 (what
    l2-mfcc gets wrong when the pitch moves), with no checkpoint named: the bundled metric."""
    instruments = ["flute", "piano", "trumpet", "violin"]
    vectors = {
        (name, note): timbre.embed(load_audio(REPO / "data" / "exp1" / f"{name}-{note}.flac", 44100), 44100)
        for name in instruments
        for note in ("C4", "G4")
    }
    for name in instruments:
        own = timbre.timbre_distance(vectors[name, "C4"], vectors[name, "G4"])
        others = [
            timbre.timbre_distance(vectors[name, "G4"], vectors[other, "C4"]) for other in instruments if other != name
        ]
        assert own < min(others), (name, own, others)
