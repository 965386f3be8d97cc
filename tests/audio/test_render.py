"""FluidSynth rendering and the training-corpus plan (real sound font, real synthesis)."""

from __future__ import annotations

import csv
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from project import REPO, script

from jukestyle.audio.corpus_plan import (
    EXPERIMENT_PITCHES,
    EXPERIMENT_PROGRAMS,
    plan_corpus,
    plan_targets,
    playable_range,
)
from jukestyle.audio.render import GM_PROGRAMS, Note, Renderer, midi_to_hz, program_number
from jukestyle.fileio import sha256_file

SR = 44100


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(sample_rate=SR)


def median_f0(audio: np.ndarray) -> float:
    f0, voiced, _ = librosa.pyin(audio, fmin=80, fmax=1200, sr=SR, frame_length=4096)
    return float(np.nanmedian(f0[voiced]))


def cents(a: float, b: float) -> float:
    return 1200 * abs(np.log2(a / b))


@pytest.mark.parametrize("instrument", ["violin", "flute", "trumpet"])
def test_rendered_note_has_the_planned_pitch(renderer, instrument):
    audio = renderer.render([Note(60, 0.0, 1.0, 100)], program_number(instrument))
    assert 1.0 < len(audio) / SR < 3.1  # the note plus a trimmed release tail
    assert cents(median_f0(audio), midi_to_hz(60)) < 20


def test_rendering_is_deterministic(renderer):
    notes = [Note(60, 0.0, 0.5, 90), Note(64, 0.25, 0.5, 60)]
    first = renderer.render(notes, program_number("acoustic_grand_piano"))
    renderer.render([Note(72, 0.0, 1.0, 127)], program_number("church_organ"))  # state must not leak
    assert np.array_equal(first, renderer.render(notes, program_number("acoustic_grand_piano")))


def test_missing_sound_font_is_a_clear_error(tmp_path):
    with pytest.raises(Exception, match=r"nothing\.sf2: sound font not found"):
        Renderer(tmp_path / "nothing.sf2")


def test_corpus_plan_keeps_validation_pitches_out_of_training():
    plan = plan_corpus(seed=0, scale=1.0)
    train = {(f.program, p) for f in plan if f.split == "train" for p in f.pitches}
    val = {(f.program, p) for f in plan if f.split == "val" for p in f.pitches}
    assert not train & val
    assert {f.program for f in plan if f.split == "train"} == set(range(128))
    for name in EXPERIMENT_PROGRAMS:  # the paper's notes are unseen in training
        low, high = playable_range(program_number(name))
        assert {(program_number(name), p) for p in EXPERIMENT_PITCHES if low <= p <= high} <= val
    for item in plan:  # every note within its instrument's range
        low, high = playable_range(item.program)
        assert all(low <= p <= high for p in item.pitches), item.name
    velocities = {n.velocity for f in plan for n in f.notes}
    durations = {n.duration for f in plan if f.kind == "notes" for n in f.notes}
    assert len(velocities) >= 4 and len(durations) >= 4


def test_corpus_plan_lasts_over_an_hour_and_follows_its_seed():
    plan = plan_corpus(seed=0, scale=1.0)
    train_seconds = sum(max(n.start + n.duration for n in f.notes) for f in plan if f.split == "train")
    assert train_seconds > 3600
    again, other = plan_corpus(seed=0, scale=1.0), plan_corpus(seed=1, scale=1.0)
    assert [f.notes for f in again] == [f.notes for f in plan]
    assert [f.notes for f in other] != [f.notes for f in plan]


def test_render_corpus_script_writes_files_and_manifest(tmp_path):
    main = script("render_data").main

    out = tmp_path / "corpus"
    assert main(["corpus", "--out", str(out), "--programs", "violin,banjo", "--scale", "0.1"]) == 0
    with open(out / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["split"] for row in rows].count("val") == 2 and len(rows) == 8
    for row in rows:
        path = out / row["file"]
        assert sha256_file(path) == row["sha256"]
        assert row["instrument"] == GM_PROGRAMS[int(row["program"])]
    stamps = {row["file"]: (out / row["file"]).stat().st_mtime_ns for row in rows}
    assert main(["corpus", "--out", str(out), "--programs", "violin,banjo", "--scale", "0.1"]) == 0
    assert stamps == {row["file"]: (out / row["file"]).stat().st_mtime_ns for row in rows}  # nothing re-rendered


# -- targets: minutes of one instrument, for trained decoders ---------------------------------
def test_target_scores_last_their_minutes_surround_the_experiments_pitches_and_avoid_them():
    files = plan_targets(300)
    seconds = sum(max(note.start + note.duration for note in notes) for _, notes in files)
    pitches = {note.pitch for _, notes in files for note in notes}
    assert 270 <= seconds < 360 and not pitches & set(EXPERIMENT_PITCHES)
    assert {59, 61, 66, 68} <= pitches and min(pitches) < 48 and max(pitches) > 76  # around C4 and G4, wide
    assert {name.split("-")[1] for name, _ in files} == {"notes", "phrases", "chords"}
    assert plan_targets(300) == files and plan_targets(300, seed=1) != files


def test_render_targets_writes_each_instruments_folder_and_keeps_the_others(tmp_path):
    main = script("render_data").main

    out = tmp_path / "targets"
    assert main(["targets", "--out", str(out), "--minutes", "0.2", "--instruments", "violin,sawtooth"]) == 0
    rows = read_csv(out / "manifest.csv")
    assert {row["instrument"] for row in rows} == {"violin", "sawtooth"}
    names = {instrument: sorted(p.name for p in (out / instrument).iterdir()) for instrument in ("violin", "sawtooth")}
    assert names["violin"] == names["sawtooth"]  # the same scores, file for file: a parallel corpus
    for row in rows:
        audio, rate = sf.read(out / row["file"], dtype="float32")
        assert rate == SR and sha256_file(out / row["file"]) == row["sha256"]
        assert row["file"].startswith(f"{row['instrument']}/") and 0.8 < np.abs(audio).max() <= 0.9
    stamps = {row["file"]: (out / row["file"]).stat().st_mtime_ns for row in rows}
    assert main(["targets", "--out", str(out), "--minutes", "0.2", "--instruments", "sawtooth"]) == 0
    again = read_csv(out / "manifest.csv")
    assert {row["file"] for row in again} == set(stamps)  # the violin's rows kept, nothing re-rendered
    assert stamps == {row["file"]: (out / row["file"]).stat().st_mtime_ns for row in again}


def test_transfer_programs_span_every_family_and_never_the_held_out_ones():
    from jukestyle.audio.corpus_plan import family, held_out_pairs, held_out_programs, transfer_programs

    training, held = transfer_programs(), held_out_programs()
    assert len(training) >= 64 and {family(p) for p in training} == set(range(16))
    assert len(held) >= 16 and {family(p) for p in held} == set(range(16)) and not set(training) & set(held)
    assert {program_number(name) for name in ("cello", "oboe", "clarinet", "marimba")} <= set(held)
    pairs = held_out_pairs()
    assert len(pairs) >= 60 and all(a != b and {a, b} <= set(held) for a, b in pairs)


def test_render_transfer_and_held_out(tmp_path):
    main = script("render_data").main

    out = tmp_path / "transfer"
    assert main(["transfer", "--out", str(out), "--minutes", "0.1", "--programs", "oboe,koto"]) == 0
    folders = sorted(path.name for path in out.iterdir() if path.is_dir())
    assert folders == ["koto", "oboe", "sawtooth", "sine"]  # and Experiment 1's tones
    assert len({tuple(sorted(p.name for p in (out / f).iterdir())) for f in folders}) == 1  # the same scores
    held = tmp_path / "heldout"
    assert main(["heldout", "--out", str(held)]) == 0
    pairs = read_csv(held / "pairs.csv")
    manifest = read_csv(held / "manifest.csv")
    assert len(pairs) == 72 and len(manifest) == 18 * 6 and all((held / row["file"]).is_file() for row in manifest)
    assert all(row["content"].endswith("-D4.flac") and row["style"].endswith(("-A3.flac", "-F4.flac")) for row in pairs)


# -- the paper's experiments (data/, committed) -------------------------------------------------


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_paper_data_is_complete_and_matches_its_manifest():
    rows = read_csv(REPO / "data" / "manifest.csv")
    assert list(rows[0]) == ["id", "experiment", "instrument", "piece", "file", "sha256"]
    assert len(rows) == 16
    for row in rows:
        path = REPO / row["file"]
        assert sha256_file(path) == row["sha256"], row["file"]
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.format) == (44100, 1, "FLAC")
        audio = sf.read(path)[0]
        assert np.abs(audio).max() < 0.99  # no clipping
        assert np.abs(audio[-44:]).max() < 0.05 * np.abs(audio).max()  # the last millisecond has died away
    pairs = read_csv(REPO / "data" / "pairs.csv")
    assert [sum(p["experiment"] == e for p in pairs) for e in "123"] == [30, 2, 2]
    assert len({p["pair_id"] for p in pairs}) == 34
    assert all((REPO / p["content"]).is_file() and (REPO / p["style"]).is_file() for p in pairs)


def test_each_c4_file_is_in_tune():
    rows = [row for row in read_csv(REPO / "data" / "manifest.csv") if row["piece"] == "C4"]
    assert len(rows) == 6
    for row in rows:
        audio = sf.read(REPO / row["file"], dtype="float32")[0]
        assert cents(median_f0(audio), 261.63) < 20, row["id"]


def test_experiments_script_reproduces_the_committed_files(tmp_path):
    main = script("render_data").main

    assert main(["experiments", "--out", str(tmp_path), "--only", "piano-C4,sine-C4,violin-G4"]) == 0
    rendered = read_csv(tmp_path / "manifest.csv")
    committed = {row["id"]: row for row in read_csv(REPO / "data" / "manifest.csv")}
    assert sorted(row["id"] for row in rendered) == ["piano-C4", "sine-C4", "violin-G4"]
    for row in rendered:
        assert list(row) == list(committed[row["id"]])
        assert {k: row[k] for k in ("experiment", "instrument", "piece")} == {
            k: committed[row["id"]][k] for k in ("experiment", "instrument", "piece")
        }
        new, old = sf.read(row["file"])[0], sf.read(REPO / committed[row["id"]]["file"])[0]
        assert len(new) == len(old) and np.max(np.abs(new - old)) < 1e-4
