"""The paper's l2-mfcc, the content metrics, and the report."""

from __future__ import annotations

import re

import librosa
import numpy as np
import pyloudnorm
import pytest
import scipy.fft
from signals import harmonic_tone

from jukestyle.evaluation import metrics
from jukestyle.evaluation.report import summaries, write_report

SR = 44100


def square_tone(frequency: float, seconds: float = 1.0) -> np.ndarray:
    return (0.3 * np.sign(harmonic_tone(frequency, seconds))).astype(np.float32)


# -- l2-mfcc ---------------------------------------------------------------------------
def test_l2_mfcc_of_a_signal_with_itself_is_zero():
    tone = harmonic_tone()
    assert metrics.l2_mfcc(tone, tone, SR) == 0.0


def test_l2_mfcc_ignores_gain_and_dc_offset():
    tone = harmonic_tone()
    assert metrics.l2_mfcc(tone, 0.05 * tone + 0.01, SR) < 1e-3
    assert metrics.l2_mfcc(tone, square_tone(261.63), SR) > 10  # but not timbre


def test_l2_mfcc_follows_its_documented_recipe_step_by_step():
    """Zero mean, -23 LUFS, |STFT|^2 (2048/512), 128 mel bands, dB, DCT-II, c1..c19, mean over time, L2."""

    def mean_mfcc_by_hand(y: np.ndarray) -> np.ndarray:
        y = y.astype(np.float64) - y.mean()
        y = y * 10 ** ((-23.0 - pyloudnorm.Meter(SR).integrated_loudness(y)) / 20)
        power = np.abs(librosa.stft(y.astype(np.float32), n_fft=2048, hop_length=512)) ** 2
        mel = librosa.filters.mel(sr=SR, n_fft=2048, n_mels=128) @ power
        decibels = 10 * np.log10(np.maximum(mel, 1e-10))
        decibels = np.maximum(decibels, decibels.max() - 80.0)  # librosa's top_db=80 floor
        cepstrum = scipy.fft.dct(decibels, type=2, axis=0, norm="ortho")[:20]
        return cepstrum[1:].mean(axis=1)

    a, b = harmonic_tone(261.63, 1.5), square_tone(392.0, 1.2)
    expected = float(np.linalg.norm(mean_mfcc_by_hand(a) - mean_mfcc_by_hand(b)))
    assert metrics.l2_mfcc(a, b, SR) == pytest.approx(expected, rel=1e-4)


# -- content metrics -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def c4_reference():
    return metrics.analyse_reference(harmonic_tone(261.63, 1.0), SR)


def test_pitch_accuracy_counts_frames_within_50_cents(c4_reference):
    assert c4_reference.monophonic
    assert metrics.pitch_accuracy(harmonic_tone(261.63, 1.0), c4_reference, SR) > 0.95
    assert metrics.pitch_accuracy(harmonic_tone(261.63 * 2 ** (30 / 1200), 1.0), c4_reference, SR) > 0.95  # +30 cents
    assert metrics.pitch_accuracy(harmonic_tone(261.63 * 2 ** (1 / 12), 1.0), c4_reference, SR) < 0.05  # a semitone
    assert metrics.pitch_accuracy(np.zeros(SR, np.float32), c4_reference, SR) == 0.0  # nothing left


def test_pitch_accuracy_does_not_apply_to_polyphonic_content():
    chord = harmonic_tone(261.63) + harmonic_tone(329.63) + harmonic_tone(392.0) + harmonic_tone(466.16)
    reference = metrics.analyse_reference(chord, SR)
    assert not reference.monophonic and metrics.pitch_accuracy(chord, reference, SR) is None


def test_chroma_similarity_tells_harmony_apart(c4_reference):
    assert metrics.chroma_similarity(harmonic_tone(261.63, 1.0), c4_reference, SR) > 0.95
    assert metrics.chroma_similarity(square_tone(261.63), c4_reference, SR) > 0.8  # same note, other timbre
    assert metrics.chroma_similarity(harmonic_tone(369.99, 1.0), c4_reference, SR) < 0.5  # F#4: a tritone away


def test_frame_tone_level_reads_the_comb_at_a_decoders_frame_rate():
    note = harmonic_tone(261.63, 1.0)
    t = np.arange(len(note)) / SR
    clean = metrics.frame_tone_level(note, SR)
    assert clean < -40  # a C4's partials stay off 1378 and 2756 Hz
    combed = note + 0.01 * np.sin(2 * np.pi * 2 * SR / 32 * t)  # a steady 2756 Hz tone (24 dB under the strongest peak)
    assert metrics.frame_tone_level(combed, SR) > clean + 15
    assert metrics.frame_tone_level(combed, SR, harmonics=1) < -40  # only 1378 Hz read
    assert metrics.frame_tone_level(np.zeros(SR), SR) == -np.inf
    assert np.isnan(metrics.frame_tone_level(np.ones(31), SR))  # shorter than one period: nothing to read


# -- report ------------------------------------------------------------------------------
def _record(pair: str, method: str, source: float, style: float, experiment: str = "1", **extra) -> dict:
    return {
        "pair_id": pair,
        "method": method,
        "experiment": experiment,
        "l2mfcc_source": source,
        "l2mfcc_style": style,
        "closer_to": "style" if style < source else "source",
        "content": f"{pair}.c.wav",
        "style": f"{pair}.s.wav",
        "output": f"transfers/{method}/{pair}.wav",
        "reference": method in ("identity", "content_as_output", "style_as_output"),
        **extra,
    }


def test_report_summarises_methods_with_reference_rows(tmp_path):
    records = [
        _record("piano-C4--violin-C4", "adain", 10.0, 5.0, pitch_accuracy=0.9),
        _record("flute-C4--violin-C4", "adain", 8.0, 9.0, pitch_accuracy=0.7),
        _record("piano-C4--violin-C4", "identity", 2.0, 12.0),
        _record("flute-C4--violin-C4", "identity", 3.0, 11.0),
        _record("piano-C4--violin-C4", "content_as_output", 0.0, 12.0, output=None),
        _record("a--b", "adain", 4.0, 6.0, experiment="2"),
        {**_record("c--d", "adain", 0, 0, experiment="2"), "error": "AudioError: too short"},
    ]
    summary = summaries(records[:5])
    expected = {"pairs": 2, "style_win_rate": 0.5, "l2mfcc_source": 9.0, "l2mfcc_style": 7.0, "pitch_accuracy": 0.8}
    assert {key: summary["adain"][key] for key in expected} == pytest.approx(expected)
    assert summary["adain"]["chroma_similarity"] is None and summary["adain"]["timbre_win_rate"] is None
    assert list(summary) == ["adain", "identity", "content_as_output"]
    report = write_report(tmp_path, records).read_text()
    assert "## Experiment 1" in report and "## Experiment 2" in report
    assert report.index("## All pairs") < report.index("## Experiment 1")  # the whole set's table first
    # columns: pairs, style wins, timbre wins, pitch, chroma, l2-mfcc to source and style, ... (the scoreboard's)
    assert "| adain | 3 | 33% | - | 80% | - | 7.3 | 6.7 |" in report  # all pairs: the two of Exp. 1 and a--b
    assert "| adain | 2 | 50% | - | 80% | - | 9.0 | 7.0 |" in report
    assert "| identity (reference) | 2 | 0% |" in report
    assert "c--d (adain): AudioError: too short" in report
    figures = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert figures == ["experiment_1.png", "experiment_2.png"]  # two pairs each: one panel per pair
    assert "[adain](transfers/adain/piano-C4--violin-C4.wav)" in report


def test_report_of_a_real_run_has_the_papers_figures(tmp_path):
    """The 30 pairs of Experiment 1 give the mean figure and the paper's Fig. 2 pair."""
    instruments = ["flute", "piano", "trumpet", "violin", "sine", "sawtooth"]
    pairs = [(a, b) for a in instruments for b in instruments if a != b]
    records = [_record(f"{a}-C4--{b}-C4", "wct", 5.0 + i, 6.0) for i, (a, b) in enumerate(pairs)]
    write_report(tmp_path, records)
    assert sorted(p.name for p in (tmp_path / "figures").glob("*.png")) == [
        "experiment_1.png",
        "experiment_1_piano-C4--violin-C4.png",
    ]
    assert "| wct | 30 |" in (tmp_path / "report.md").read_text()


def test_a_moved_run_folder_keeps_every_link_of_its_report(tmp_path):
    inputs, run = tmp_path / "elsewhere", tmp_path / "run"
    inputs.mkdir()
    for name in ("c.wav", "s.wav"):
        (inputs / name).write_bytes(b"audio " + name.encode())
    (run / "transfers").mkdir(parents=True)
    (run / "transfers" / "a--b.wav").write_bytes(b"output")
    record = {**_record("a--b", "adain", 2.0, 1.0), "content": str(inputs / "c.wav"), "style": str(inputs / "s.wav")}
    record["output"] = "transfers/a--b.wav"
    write_report(run, [record, {**record, "pair_id": "x--y", "content": str(tmp_path / "gone.wav")}])
    moved = tmp_path / "moved"
    run.rename(moved)
    report = (moved / "report.md").read_text()
    links = re.findall(r"\]\(([^)]+\.wav)\)", report)
    assert len(links) == 5 and all((moved / link).is_file() for link in links)  # 2 inputs, each pair's output
    assert all(not link.startswith("/") for link in links) and "content: gone.wav (missing)" in report
    assert (moved / links[0]).read_bytes() == b"audio c.wav"
