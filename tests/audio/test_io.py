"""Audio loading, conversion, loudness and atomic saving."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from signals import harmonic_tone

from jukestyle.audio import io as audio
from jukestyle.errors import AudioError

SR = 44100


def dominant_frequency(signal: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / sample_rate)[spectrum.argmax()])


def test_stereo_file_at_another_rate_becomes_mono_at_model_rate(tmp_path):
    t = np.arange(22050) / 22050
    left, right = 0.4 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 22050, subtype="PCM_16")
    loaded = audio.load_audio(tmp_path / "stereo.wav", SR)
    assert loaded.dtype == np.float32 and loaded.ndim == 1
    assert abs(len(loaded) - SR) <= 1
    assert dominant_frequency(loaded, SR) == pytest.approx(440, abs=2)
    assert np.abs(loaded).max() == pytest.approx(0.3, abs=0.01)  # the mean of the two channels


def test_flac_round_trip_is_exact_enough(tmp_path):
    tone = harmonic_tone()
    audio.save_audio(tmp_path / "tone.flac", tone, SR)
    assert np.max(np.abs(audio.load_audio(tmp_path / "tone.flac", SR) - tone)) < 1e-6  # 24-bit


def test_wav_is_written_as_float_with_a_software_tag(tmp_path):
    loud = harmonic_tone() * 3.0  # peaks above 1 survive in a float WAV
    path = audio.save_audio(tmp_path / "out.wav", loud, SR, comment="pair piano->violin")
    info = sf.info(path)
    assert info.subtype == "FLOAT" and info.samplerate == SR and info.channels == 1
    assert np.array_equal(sf.read(path, dtype="float32")[0], loud)
    with sf.SoundFile(path) as handle:
        assert handle.software.startswith("jukestyle ") and handle.comment == "pair piano->violin"


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match=r"absent\.wav: no such audio file"):
        audio.load_audio(tmp_path / "absent.wav", SR)
    with pytest.raises(AudioError, match=r": a folder, not an audio file"):
        audio.load_audio(tmp_path, SR)
    (tmp_path / "nothing.wav").touch()
    with pytest.raises(AudioError, match=r"nothing\.wav: an empty file \(0 bytes\), not audio"):
        audio.load_audio(tmp_path / "nothing.wav", SR)


def test_unreadable_file(tmp_path):
    (tmp_path / "notes.wav").write_text("these are not samples")
    with pytest.raises(AudioError, match=r"notes\.wav: unreadable audio \(") as error:
        audio.load_audio(tmp_path / "notes.wav", SR)
    assert "\n" not in str(error.value)


def test_empty_file(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(AudioError, match=r"empty\.wav: empty audio \(0 samples\)"):
        audio.load_audio(tmp_path / "empty.wav", SR)


def test_non_finite_file(tmp_path):
    samples = harmonic_tone()
    samples[100] = np.nan
    sf.write(tmp_path / "nan.wav", samples, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: contains NaN or infinite samples"):
        audio.load_audio(tmp_path / "nan.wav", SR)


def test_arrays_are_checked_like_files():
    with pytest.raises(AudioError, match=r"content: expected shape \(samples,\) or \(samples, channels\)"):
        audio.prepare_audio(np.zeros((2, 2, 2)), SR, SR, name="content")
    converted = audio.prepare_audio(np.zeros(4410, dtype=np.int16), 4410, SR)
    assert converted.dtype == np.float32 and len(converted) == SR


def test_loudness_normalisation_reaches_target_and_restores():
    tone = harmonic_tone(seconds=2.0) * 0.1
    normalized, gain_db = audio.normalize_loudness(tone, SR)
    assert audio.loudness(normalized, SR) == pytest.approx(audio.EBU_R128_TARGET_LUFS, abs=0.05)
    assert gain_db == pytest.approx(audio.EBU_R128_TARGET_LUFS - audio.loudness(tone, SR), abs=1e-6)
    np.testing.assert_allclose(audio.apply_gain(normalized, -gain_db), tone, rtol=1e-5, atol=1e-7)


def test_loudness_of_silence_and_of_very_short_sounds():
    normalized, gain_db = audio.normalize_loudness(np.zeros(SR, dtype=np.float32), SR)
    assert gain_db == 0.0 and not np.any(normalized) and np.isfinite(normalized).all()
    short = harmonic_tone(seconds=0.1)  # shorter than one 400 ms gating block
    # A short sound looped measures like the same sound held longer.
    held = np.tile(short, 10)
    assert audio.loudness(short, SR) == pytest.approx(audio.loudness(held, SR), abs=0.5)
    normalized, _ = audio.normalize_loudness(short, SR)
    assert audio.loudness(normalized, SR) == pytest.approx(audio.EBU_R128_TARGET_LUFS, abs=0.05)


def test_an_interrupted_save_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "result.wav"
    audio.save_audio(target, harmonic_tone(), SR)
    before = target.read_bytes()

    def failing_write(self, data):
        raise KeyboardInterrupt  # e.g. the user stops the run mid-write

    monkeypatch.setattr(sf.SoundFile, "write", failing_write)
    with pytest.raises(KeyboardInterrupt):
        audio.save_audio(target, harmonic_tone() * 0.5, SR)
    with pytest.raises(KeyboardInterrupt):
        audio.save_audio(tmp_path / "new.wav", harmonic_tone(), SR)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.wav"]


def test_save_refuses_what_it_cannot_write_faithfully(tmp_path):
    with pytest.raises(AudioError, match=r"loud\.flac: peak 1\.500 would clip in PCM_24"):
        audio.save_audio(tmp_path / "loud.flac", harmonic_tone() * 3.0, SR)
    with pytest.raises(AudioError, match=r"bad\.wav: refusing to write NaN or infinite samples"):
        audio.save_audio(tmp_path / "bad.wav", np.array([0.0, np.inf]), SR)
    with pytest.raises(AudioError, match=r"x\.mp4: cannot write \.mp4 files"):
        audio.save_audio(tmp_path / "x.mp4", harmonic_tone(), SR)
    assert not any(tmp_path.iterdir())
