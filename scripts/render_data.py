"""Render audio with FluidSynth and the FluidR3_GM sound font.

    python scripts/render_data.py experiments [--out data] [--only piano-C4,sine-C4]
    python scripts/render_data.py corpus [--out data/corpus] [--seed 0] [--scale 1.0] [--programs violin,flute]
    python scripts/render_data.py targets [--out data/targets] [--minutes 5] [--instruments flute,sine] [--seed 0]

``experiments`` renders the paper's three experiments to FLAC under ``data/exp1``,
``data/exp2`` and ``data/exp3`` with ``data/manifest.csv`` (id, experiment,
instrument, piece, file, sha256) and ``data/pairs.csv`` (the 34 ordered pairs).

``corpus`` renders the self-supervised training corpus (about 86 minutes of
training audio at scale 1.0, plus a validation split of unseen (program,
pitch) combinations) as FLAC files with a ``manifest.csv``. Files are written
atomically and the manifest last, so an interrupted run leaves no partial
file; re-running skips files that already match the manifest's checksum.

``targets`` renders the same scores (minutes of notes, chords and scale phrases, never the
pitches of Experiment 1 nor the pieces of Experiments 2 and 3) with each of the experiments'
nine instruments (same synths as ``experiments``): ``<out>/<instrument>/<score>.flac``, a
parallel corpus to train decoders on (``experiment=train_decoder
data.root=data/targets/<instrument> data.inputs=data/targets``). Same manifest and skipping
as ``corpus``.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from jukestyle.audio.corpus_plan import (
    HELD_OUT_CONTENT_PITCH,
    HELD_OUT_PITCHES,
    TARGET_INSTRUMENTS,
    held_out_pairs,
    held_out_phrase,
    held_out_programs,
    held_out_style_pitch,
    plan_corpus,
    plan_targets,
    program_list,
    transfer_programs,
)
from jukestyle.audio.io import save_audio
from jukestyle.audio.pieces import (
    moonlight_opening,
    oh_susanna,
    old_hundredth,
    sawtooth_tone,
    sine_tone,
    synthesise,
)
from jukestyle.audio.render import DEFAULT_SOUNDFONT, GM_PROGRAMS, Note, Renderer, program_number
from jukestyle.errors import JukestyleError
from jukestyle.fileio import sha256_file, write_text

REPO = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 44100
PEAK = 0.89  # -1 dBFS
CORPUS_COLUMNS = ["file", "split", "program", "instrument", "kind", "pitches", "seconds", "sha256"]


def _read_manifest(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    with open(path, newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def _up_to_date(path: Path, row: dict | None) -> bool:
    """Whether ``path`` is the file its manifest ``row`` describes (a re-run skips it)."""
    return row is not None and path.is_file() and sha256_file(path) == row["sha256"]


def _peak_normalised(audio: np.ndarray) -> np.ndarray:
    return (audio * (PEAK / max(float(np.abs(audio).max()), 1e-9))).astype(np.float32)


def render_corpus(out: Path, seed: int, scale: float, programs: list[int] | None, soundfont: Path) -> list[dict]:
    renderer = Renderer(soundfont, SAMPLE_RATE)
    manifest_path = out / "manifest.csv"
    previous = _read_manifest(manifest_path)
    rows, started = [], time.time()
    plan = plan_corpus(seed, scale, programs)
    for index, item in enumerate(plan):
        relative = f"{item.name}.flac"
        path = out / relative
        old = previous.get(relative)
        if _up_to_date(path, old):
            rows.append(old)
            continue
        audio = _peak_normalised(renderer.render(item.notes, item.program))
        save_audio(path, audio, SAMPLE_RATE, comment=f"jukestyle corpus seed={seed} scale={scale}")
        rows.append(
            {
                "file": relative,
                "split": item.split,
                "program": item.program,
                "instrument": GM_PROGRAMS[item.program],
                "kind": item.kind,
                "pitches": " ".join(map(str, item.pitches)),
                "seconds": f"{len(audio) / SAMPLE_RATE:.3f}",
                "sha256": sha256_file(path),
            }
        )
        if (index + 1) % 32 == 0:
            print(f"rendered {index + 1}/{len(plan)} files in {time.time() - started:.0f} s", file=sys.stderr)
    _write_csv(manifest_path, CORPUS_COLUMNS, rows)
    return rows


# -- targets: minutes of one instrument, for trained decoders -----------------------------------
TARGET_COLUMNS = ["file", "instrument", "kind", "seconds", "sha256"]
TONES = {"sine": sine_tone, "sawtooth": sawtooth_tone}


def render_targets(
    out: Path, instruments: dict[str, str | None], minutes: float, seed: int, soundfont: Path
) -> list[dict]:
    """The targets' scores played by each of ``instruments`` ({folder name: GM program name, or None for the
    numpy tone of that name}), ``<out>/<instrument>/<score>.flac``."""
    renderer = None  # FluidSynth only when an instrument needs it
    manifest_path = out / "manifest.csv"
    previous = _read_manifest(manifest_path)
    kept = [row for row in previous.values() if row["instrument"] not in instruments]  # other instruments stay
    rows, scores = [], plan_targets(minutes * 60, seed)
    for instrument, program in instruments.items():
        for name, notes in scores:
            relative = f"{instrument}/{name}.flac"
            path, old = out / relative, previous.get(relative)
            if _up_to_date(path, old):
                rows.append(old)
                continue
            if program is None:
                audio = synthesise(notes, TONES[instrument], SAMPLE_RATE)
            else:
                renderer = renderer or Renderer(soundfont, SAMPLE_RATE)
                audio = renderer.render(notes, program_number(program))
            audio = _peak_normalised(audio)
            save_audio(path, audio, SAMPLE_RATE, comment=f"jukestyle target {instrument} seed={seed}")
            row = {"file": relative, "instrument": instrument, "kind": name.rsplit("-", 1)[1]}
            rows.append({**row, "seconds": f"{len(audio) / SAMPLE_RATE:.3f}", "sha256": sha256_file(path)})
        seconds = sum(float(r["seconds"]) for r in rows if r["instrument"] == instrument)
        print(f"{instrument}: {seconds / 60:.1f} min", file=sys.stderr)
    _write_csv(manifest_path, TARGET_COLUMNS, kept + rows)
    return rows


# -- the paper's experiments ------------------------------------------------------------------
EXPERIMENT_COLUMNS = ["id", "experiment", "instrument", "piece", "file", "sha256"]
PAIR_COLUMNS = ["pair_id", "experiment", "content", "style"]
NOTES = {"C4": 60, "G4": 67}  # G4 versions are for the channel maps, not for pairs
# the GM programs of Experiment 1 (the sine and sawtooth are numpy tones); the targets use the same ones
EXPERIMENT_1_PROGRAMS = {name: TARGET_INSTRUMENTS[name] for name in ("flute", "piano", "trumpet", "violin")}
NOTE_SECONDS = 2.6  # note-on time; with the trimmed release each file lasts about 3 s


def experiment_items(renderer: Renderer) -> list[tuple[str, str, str, str, Callable[[], np.ndarray]]]:
    """(id, experiment, instrument, piece, render) for every file of the three experiments."""
    items = []
    for note, midi in NOTES.items():
        for instrument, program in EXPERIMENT_1_PROGRAMS.items():
            notes = [Note(midi, 0.0, NOTE_SECONDS, 100)]
            render = partial(renderer.render, notes, program_number(program), tail_seconds=0.6)
            items.append((f"{instrument}-{note}", "1", instrument, note, render))
        items.append((f"sine-{note}", "1", "sine", note, partial(sine_tone, midi, 3.0, SAMPLE_RATE)))
        items.append((f"sawtooth-{note}", "1", "sawtooth", note, partial(sawtooth_tone, midi, 3.0, SAMPLE_RATE)))
    pieces = [
        ("piano-moonlight", "2", "acoustic_grand_piano", "moonlight", moonlight_opening(guitar=False)),
        ("guitar-moonlight", "2", "acoustic_guitar_nylon", "moonlight", moonlight_opening(guitar=True)),
        ("banjo-oh_susanna", "3", "banjo", "oh_susanna", oh_susanna()),
        ("organ-old_hundredth", "3", "church_organ", "old_hundredth", old_hundredth()),
    ]
    for item_id, experiment, program, piece, notes in pieces:
        render = partial(renderer.render, notes, program_number(program), tail_seconds=1.5)
        items.append((item_id, experiment, item_id.split("-")[0], piece, render))
    return items


def experiment_pairs(rows: list[dict]) -> list[dict]:
    """Ordered pairs: the six C4 files of Experiment 1 (30), and both directions of Experiments 2 and 3."""
    pairs = []
    for experiment in ("1", "2", "3"):
        files = [row for row in rows if row["experiment"] == experiment and row["piece"] != "G4"]
        for content in files:
            for style in files:
                if content is not style:
                    pair_id = f"{content['id']}--{style['id']}"
                    pairs.append(
                        {
                            "pair_id": pair_id,
                            "experiment": experiment,
                            "content": content["file"],
                            "style": style["file"],
                        }
                    )
    return pairs


def render_experiments(out: Path, only: set[str] | None, soundfont: Path) -> list[dict]:
    renderer = Renderer(soundfont, SAMPLE_RATE)
    rows = []
    for item_id, experiment, instrument, piece, render in experiment_items(renderer):
        if only is not None and item_id not in only:
            continue
        audio = _peak_normalised(render())
        relative = Path(f"exp{experiment}") / f"{item_id}.flac"
        save_audio(
            out / relative,
            audio,
            SAMPLE_RATE,
            comment=f"jukestyle paper experiment {experiment}: {instrument}, {piece}",
        )
        written = (out / relative).resolve()
        file = str(written.relative_to(REPO)) if written.is_relative_to(REPO) else str(written)  # repo-relative
        rows.append(
            {
                "id": item_id,
                "experiment": experiment,
                "instrument": instrument,
                "piece": piece,
                "file": file,
                "sha256": sha256_file(out / relative),
            }
        )
    _write_csv(out / "manifest.csv", EXPERIMENT_COLUMNS, rows)
    _write_csv(out / "pairs.csv", PAIR_COLUMNS, experiment_pairs(rows))
    return rows


HELD_OUT_COLUMNS = ["id", "program", "instrument", "pitch", "file", "sha256"]


def note_name(pitch: int) -> str:
    """MIDI 62 -> 'D4' (sharps as 's': 61 -> 'Cs4', safe in file names)."""
    return ["C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B"][pitch % 12] + str(pitch // 12 - 1)


def render_held_out(out: Path, soundfont: Path) -> list[dict]:
    """Notes of the programs no transfer decoder or timbre metric trains on, ``<out>/<program>-<note>.flac``, and
    a phrase of each (``<program>-phrase.flac``), with ``manifest.csv`` and ``pairs.csv`` (contents at D4, styles
    of other programs at other notes)."""
    renderer = Renderer(soundfont, SAMPLE_RATE)
    previous = {row["file"]: row for row in _read_manifest(out / "manifest.csv").values()}
    rows = []
    for program in held_out_programs():
        scores = [(note_name(pitch), pitch, [Note(pitch, 0.0, NOTE_SECONDS, 100)]) for pitch in HELD_OUT_PITCHES]
        scores.append(("phrase", "phrase", held_out_phrase()))
        for name, pitch, notes in scores:
            item_id = f"{GM_PROGRAMS[program]}-{name}"
            relative = f"{item_id}.flac"
            if not _up_to_date(out / relative, previous.get(relative)):
                audio = _peak_normalised(renderer.render(notes, program, tail_seconds=0.6))
                save_audio(out / relative, audio, SAMPLE_RATE, comment=f"jukestyle held-out program {program}")
            row = {"id": item_id, "program": program, "instrument": GM_PROGRAMS[program], "pitch": pitch}
            rows.append({**row, "file": relative, "sha256": sha256_file(out / relative)})
    pairs = []
    for index, (content, style) in enumerate(held_out_pairs()):
        content_file = f"{GM_PROGRAMS[content]}-{note_name(HELD_OUT_CONTENT_PITCH)}.flac"
        style_file = f"{GM_PROGRAMS[style]}-{note_name(held_out_style_pitch(index))}.flac"
        pair_id = f"{Path(content_file).stem}--{Path(style_file).stem}"
        pairs.append({"pair_id": pair_id, "experiment": "heldout", "content": content_file, "style": style_file})
    _write_csv(out / "pairs.csv", PAIR_COLUMNS, pairs)
    _write_csv(out / "manifest.csv", HELD_OUT_COLUMNS, rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--soundfont", type=Path, default=DEFAULT_SOUNDFONT)
    commands = parser.add_subparsers(dest="command", required=True)
    experiments = commands.add_parser("experiments", help="the audio of the paper's three experiments")
    experiments.add_argument("--out", type=Path, default=REPO / "data")
    experiments.add_argument("--only", default=None, help="comma-separated ids, e.g. piano-C4,sine-C4 (default: all)")
    corpus = commands.add_parser("corpus", help="the self-supervised training corpus")
    corpus.add_argument("--out", type=Path, default=REPO / "data" / "corpus")
    corpus.add_argument("--seed", type=int, default=0)
    corpus.add_argument("--scale", type=float, default=1.0, help="1.0 gives about 86 minutes of training audio")
    corpus.add_argument("--programs", default=None, help="comma-separated GM program names or numbers (default: all)")
    targets = commands.add_parser("targets", help="the same scores played by each instrument, to train decoders on")
    targets.add_argument("--out", type=Path, default=REPO / "data" / "targets")
    targets.add_argument("--minutes", type=float, default=5.0, help="audio per instrument")
    targets.add_argument("--instruments", default=",".join(TARGET_INSTRUMENTS), help="comma-separated")
    targets.add_argument("--seed", type=int, default=0)
    transfer = commands.add_parser(
        "transfer", help="the targets' scores played by every training program (a transfer decoder's corpus)"
    )
    transfer.add_argument("--out", type=Path, default=REPO / "data" / "transfer")
    transfer.add_argument("--minutes", type=float, default=1.5, help="audio per program")
    transfer.add_argument("--programs", default=None, help="comma-separated GM programs (default: the training ones)")
    transfer.add_argument("--seed", type=int, default=0)
    held_out = commands.add_parser("heldout", help="notes of the held-out programs and their evaluation pairs")
    held_out.add_argument("--out", type=Path, default=REPO / "data" / "heldout")
    args = parser.parse_args(argv)
    try:
        if args.command == "experiments":
            only = set(args.only.split(",")) if args.only else None
            rows = render_experiments(args.out, only, args.soundfont)
            print(f"rendered {len(rows)} files to {args.out}; pairs in {args.out / 'pairs.csv'}")
        if args.command == "corpus":
            rows = render_corpus(args.out, args.seed, args.scale, program_list(args.programs), args.soundfont)
            for split in ("train", "val"):
                minutes = sum(float(row["seconds"]) for row in rows if row["split"] == split) / 60
                print(f"{split}: {sum(row['split'] == split for row in rows)} files, {minutes:.1f} minutes")
        if args.command == "targets":
            instruments = {name: TARGET_INSTRUMENTS.get(name, name) for name in args.instruments.split(",")}
            rows = render_targets(args.out, instruments, args.minutes, args.seed, args.soundfont)
            print(f"rendered {len(rows)} files to {args.out}; train on one with data.root={args.out}/<instrument>")
        if args.command == "transfer":
            programs = program_list(args.programs) or transfer_programs()
            instruments = {GM_PROGRAMS[program]: GM_PROGRAMS[program] for program in programs}
            instruments.update({tone: None for tone in TONES})  # Experiment 1's tones: timbres with no GM program
            rows = render_targets(args.out, instruments, args.minutes, args.seed, args.soundfont)
            print(f"rendered {len(rows)} files of {len(instruments)} instruments to {args.out}")
        if args.command == "heldout":
            rows = render_held_out(args.out, args.soundfont)
            print(f"rendered {len(rows)} notes to {args.out}; pairs in {args.out / 'pairs.csv'}")
    except (JukestyleError, ValueError) as error:
        print(f"render_data: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
