"""The instrument probe on a synthetic two-instrument corpus and a tiny random model."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from signals import SAMPLE_RATE

from jukestyle.audio.io import save_audio
from jukestyle.inspect.instrument_probe import VIEWS, describe, instrument_probe


def tone(frequency: float, bright: bool, seconds: float = 1.0) -> np.ndarray:
    """A pure tone (program 0) or a 12-harmonic buzz (program 80): easy to tell apart from the audio."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    partials = range(1, 13) if bright else (1,)
    audio = sum(np.sin(2 * np.pi * frequency * n * t) / n for n in partials)
    return (0.5 * audio / np.abs(audio).max()).astype(np.float32)


@pytest.fixture(scope="module")
def two_instrument_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe_corpus")
    rows = []
    for split, frequencies in (("train", (196.0, 294.0, 440.0, 587.0)), ("val", (262.0, 349.0))):
        for program, bright in ((0, False), (80, True)):
            for frequency in frequencies:
                name = f"{split}/p{program}-{frequency:.0f}.wav"
                save_audio(root / name, tone(frequency, bright), SAMPLE_RATE)
                rows.append({"file": name, "split": split, "program": program})
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "split", "program"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_probe_describes_every_segment_three_ways(tiny_model, two_instrument_corpus):
    segments = describe(tiny_model, two_instrument_corpus, "val", level=2, segment_seconds=0.5, max_segments=2)
    assert sorted(segments.features) == sorted(VIEWS)
    assert len(segments.programs) == 8  # 4 files, 2 segments each
    assert all(len(features) == 8 and np.isfinite(features).all() for features in segments.features.values())
    assert segments.features["codes"].shape[1] == tiny_model.config.l_bins
    assert np.allclose(segments.features["codes"].sum(axis=1), 1.0)  # a histogram per segment


def test_probe_tells_the_instruments_apart_from_the_source(tiny_model, two_instrument_corpus):
    accuracy = instrument_probe(tiny_model, two_instrument_corpus, 2, segment_seconds=0.5, max_segments=2)
    assert accuracy["source"] == {"program": 1.0, "family": 1.0}  # the classifier works where the answer is plain
    assert all(0.0 <= value <= 1.0 for view in VIEWS for value in accuracy[view].values())
    with pytest.raises(ValueError, match="segment"):
        describe(tiny_model, two_instrument_corpus, "val", level=2, segment_seconds=5.0)
