"""Model evaluation helpers (used by the model card) on a tiny random model."""

from __future__ import annotations

import numpy as np
from signals import harmonic_tone

from jukestyle.evaluation.model_quality import (
    BANDS_HZ,
    IdentityResult,
    PitchCount,
    band_energies_db,
    instrument_identity,
    validation_metrics,
)

SR = 44100


def test_identity_is_kept_when_each_reconstruction_is_nearest_its_source():
    result = IdentityResult(["a", "b", "c"], np.array([[1.0, 5, 5], [4, 2, 3], [9, 1, 8]]), [1.0, None, 0.5])
    assert result.kept == [True, True, False]


def test_instrument_identity_scores_every_reconstruction_against_every_source(tiny_model):
    recordings = {"bright": harmonic_tone(261.63, 0.5, partials=12), "dull": harmonic_tone(261.63, 0.5, partials=1)}
    result = instrument_identity(tiny_model, recordings, level=2, sample_rate=SR)
    assert result.names == ["bright", "dull"] and result.distances.shape == (2, 2)
    assert np.isfinite(result.distances).all() and (result.distances > 0).all()
    assert all(p is None or 0.0 <= p <= 1.0 for p in result.pitch)


def test_validation_metrics_count_codes_and_errors(tiny_model):
    clips = [harmonic_tone(f, 0.3) for f in (220.0, 330.0, 440.0)] + [np.zeros(2000, np.float32)]  # too short: skipped
    values = validation_metrics(tiny_model, clips, level=1, sample_rate=SR)
    assert values["clips"] == 3
    assert 0 < values["codes_used"] <= tiny_model.config.l_bins
    assert values["codes_used_share"] == values["codes_used"] / tiny_model.config.l_bins
    assert 1.0 <= values["perplexity"] <= values["codes_used"] + 1e-6
    assert values["mse"] > 0 and np.isfinite(values["snr_db"])


def test_band_energies_show_lost_upper_harmonics():
    bright, dull = harmonic_tone(440.0, 0.5, partials=12), harmonic_tone(440.0, 0.5, partials=2)
    difference = band_energies_db(dull, SR) - band_energies_db(bright, SR)
    assert len(difference) == len(BANDS_HZ) == 4
    assert abs(difference[0]) < 1.0  # the fundamental (440 Hz) is the same, up to the peak normalisation
    assert difference[2] < -40  # harmonics 5-11 (2.2-4.8 kHz) are gone


def test_pitch_count_pools_voiced_frames_and_rejects_octave_errors():
    note = harmonic_tone(261.63, 1.0)
    same, octave_down = PitchCount(), PitchCount()
    same.add(note, note, SR)
    octave_down.add(harmonic_tone(130.81, 1.0, partials=1), note, SR)
    assert same.voiced > 10 and same.share == 1.0
    assert octave_down.voiced == same.voiced and octave_down.share < 0.1


def test_validation_metrics_measure_timbre_and_pitch(tiny_model):
    values = validation_metrics(tiny_model, [harmonic_tone(f, 0.5) for f in (220.0, 330.0)], level=2, sample_rate=SR)
    assert values["log_mel"] > 0 and len(values["band_db"]) == len(BANDS_HZ)
    assert 0.0 <= values["pitch_kept"] <= 1.0
    assert np.isnan(validation_metrics(tiny_model, [harmonic_tone(220.0, 0.3)], 2, SR, pitch=False)["pitch_kept"])
