"""The timbre metric's own validation: triplets of held-out programs, the learned metric beside l2-mfcc.

A triplet (anchor, positive, negative) is right when the anchor is nearer the positive (the same program)
than the negative (another program). Three kinds, all on programs no training heard
(``scripts/render_data.py heldout``):

- *pitch*: a program at one note, it at another note, another program at the anchor's note;
- *loudness*: as *pitch*, the positive 12 dB louder or quieter than the anchor (in turn);
- *phrase*: a program's phrase, it playing a single note, another program's phrase.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jukestyle.audio.io import apply_gain, load_audio
from jukestyle.errors import JukestyleError

SAMPLE_RATE = 44100
LOUDNESS_DB = 12.0
Triplet = tuple[str, str, str]  # clip ids: anchor, positive, negative


@dataclass(frozen=True)
class Clip:
    id: str
    program: int
    pitch: str  # a MIDI note number, or "phrase"
    audio: np.ndarray


def held_out_clips(folder: Path) -> list[Clip]:
    """The clips of ``render_data.py heldout``'s folder (its ``manifest.csv``), at 44.1 kHz."""
    manifest = Path(folder) / "manifest.csv"
    if not manifest.is_file():
        raise JukestyleError(f"{manifest}: missing (render it: python scripts/render_data.py heldout --out {folder})")
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [Clip(row["id"], int(row["program"]), row["pitch"], load_audio(Path(folder) / row["file"], SAMPLE_RATE))
            for row in rows]  # fmt: skip


def _notes(clips: Sequence[Clip]) -> dict[tuple[int, str], Clip]:
    return {(clip.program, clip.pitch): clip for clip in clips if clip.pitch != "phrase"}


def pitch_triplets(clips: Sequence[Clip]) -> list[Triplet]:
    """(a at p1, a at p2, b at p1) for every program a, ordered pair of notes p1 != p2, and other program b."""
    notes = _notes(clips)
    programs = sorted({program for program, _ in notes})
    pitches = sorted({pitch for _, pitch in notes})
    return [
        (notes[a, p1].id, notes[a, p2].id, notes[b, p1].id)
        for a in programs
        for p1 in pitches
        for p2 in pitches
        for b in programs
        if p1 != p2 and a != b and {(a, p1), (a, p2), (b, p1)} <= notes.keys()
    ]


def phrase_triplets(clips: Sequence[Clip]) -> list[Triplet]:
    """(a's phrase, a at each note, b's phrase) for every program a and other program b."""
    phrases = {clip.program: clip for clip in clips if clip.pitch == "phrase"}
    notes = _notes(clips)
    return [
        (phrases[a].id, notes[a, pitch].id, phrases[b].id)
        for a in sorted(phrases)
        for (program, pitch) in sorted(notes)
        if program == a
        for b in sorted(phrases)
        if b != a
    ]


def loud(clip_id: str, index: int) -> str:
    """The id of a clip's louder (even ``index``) or quieter copy."""
    return f"{clip_id}@{'+' if index % 2 == 0 else '-'}{LOUDNESS_DB:g}dB"


def loudness_triplets(clips: Sequence[Clip]) -> list[Triplet]:
    """The pitch triplets with the positive 12 dB louder or quieter than the anchor, in turn."""
    return [(a, loud(p, index), n) for index, (a, p, n) in enumerate(pitch_triplets(clips))]


def with_loudness_copies(clips: Sequence[Clip]) -> dict[str, np.ndarray]:
    """Every clip's audio by id, with its copies 12 dB louder and quieter (``loud``'s ids)."""
    audio = {clip.id: clip.audio for clip in clips}
    for clip in clips:
        audio[loud(clip.id, 0)] = apply_gain(clip.audio, LOUDNESS_DB)
        audio[loud(clip.id, 1)] = apply_gain(clip.audio, -LOUDNESS_DB)
    return audio


def triplet_accuracy(triplets: Sequence[Triplet], distance: Callable[[str, str], float]) -> float:
    """The share of triplets whose anchor is strictly nearer its positive than its negative."""
    if not triplets:
        raise JukestyleError("no triplets to measure (are the held-out clips rendered?)")
    return float(np.mean([distance(a, p) < distance(a, n) for a, p, n in triplets]))
