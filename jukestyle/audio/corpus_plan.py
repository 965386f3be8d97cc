"""The plan of the self-supervised training corpus: what to render, not how.

All 128 melodic General MIDI programs, each with single notes across its
playable range (several velocities and durations), random chords and short
scale phrases. The validation split holds (program, pitch) combinations that
never occur in training: a few random pitches per program, plus C4 and G4 on
the instruments of the paper's experiments, so that reconstructions of those
notes measure generalisation. The plan is a pure function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from jukestyle.audio.render import GM_PROGRAMS, Note, program_number

# Playable MIDI range of each GM family (8 programs each), with per-program exceptions.
_FAMILY_RANGES = [
    (21, 108),  # piano
    (48, 96),  # chromatic percussion
    (36, 96),  # organ
    (40, 84),  # guitar
    (28, 60),  # bass
    (36, 96),  # strings
    (36, 96),  # ensemble
    (40, 82),  # brass
    (44, 84),  # reed
    (55, 96),  # pipe
    (36, 96),  # synth lead
    (36, 96),  # synth pad
    (36, 96),  # synth effects
    (48, 84),  # ethnic
    (48, 84),  # percussive
    (36, 84),  # sound effects
]
_PROGRAM_RANGES = {
    "violin": (55, 100),
    "viola": (48, 88),
    "cello": (36, 76),
    "contrabass": (28, 60),
    "orchestral_harp": (24, 103),
    "timpani": (36, 57),
    "trumpet": (54, 86),
    "trombone": (34, 72),
    "tuba": (28, 58),
    "french_horn": (34, 77),
    "soprano_sax": (56, 88),
    "alto_sax": (49, 81),
    "tenor_sax": (44, 76),
    "baritone_sax": (36, 69),
    "oboe": (58, 91),
    "english_horn": (52, 81),
    "bassoon": (34, 72),
    "clarinet": (50, 94),
    "piccolo": (74, 108),
    "flute": (60, 96),
}
# The instruments of the paper's experiments; their C4 and G4 are validation-only.
EXPERIMENT_PROGRAMS = (
    "acoustic_grand_piano",
    "flute",
    "trumpet",
    "violin",
    "acoustic_guitar_nylon",
    "banjo",
    "church_organ",
)
EXPERIMENT_PITCHES = (60, 67)

VELOCITIES = (30, 60, 90, 120)
NOTE_DURATIONS = (0.25, 0.5, 1.0, 2.0)
CHORD_DURATIONS = (0.6, 1.2, 2.0)
CHORDS = ((0, 4, 7), (0, 3, 7), (0, 3, 6), (0, 5, 7), (0, 4, 7, 11), (0, 3, 7, 10), (0, 4, 7, 12))
SCALES = ((0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10), (0, 2, 4, 7, 9))
RELEASE_GAP = 0.8  # seconds of room after each item for its release and reverb


def playable_range(program: int) -> tuple[int, int]:
    return _PROGRAM_RANGES.get(GM_PROGRAMS[program], _FAMILY_RANGES[program // 8])


@dataclass
class CorpusFile:
    split: str  # "train" or "val"
    program: int
    kind: str  # "notes", "chords" or "phrases"
    notes: list[Note] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.split}/p{self.program:03d}-{GM_PROGRAMS[self.program]}-{self.kind}"

    @property
    def pitches(self) -> list[int]:
        return sorted({note.pitch for note in self.notes})


class _Timeline:
    """Places items one after another, each followed by a release gap."""

    def __init__(self) -> None:
        self.cursor = 0.0
        self.notes: list[Note] = []

    def add(self, notes: list[Note]) -> None:
        end = max(note.start + note.duration for note in notes)
        self.notes += [Note(n.pitch, self.cursor + n.start, n.duration, n.velocity) for n in notes]
        self.cursor += end + RELEASE_GAP


def held_out_pitches(program: int, rng: np.random.Generator, count: int = 3) -> set[int]:
    low, high = playable_range(program)
    held = {int(p) for p in rng.choice(np.arange(low, high + 1), size=count, replace=False)}
    if GM_PROGRAMS[program] in EXPERIMENT_PROGRAMS:
        held |= {p for p in EXPERIMENT_PITCHES if low <= p <= high}
    return held


def _spread(allowed: list[int], count: int, rng: np.random.Generator) -> list[int]:
    """``count`` pitches spread over the allowed ones: one random pick per equal slice of the range."""
    slices = np.array_split(np.array(allowed), count)
    return [int(rng.choice(part)) for part in slices if len(part)]


def _notes(allowed: list[int], count: int, rng: np.random.Generator) -> _Timeline:
    timeline = _Timeline()
    for pitch in _spread(allowed, count, rng):
        timeline.add([Note(pitch, 0.0, float(rng.choice(NOTE_DURATIONS)), int(rng.choice(VELOCITIES)))])
    return timeline


def _chords(allowed: list[int], count: int, rng: np.random.Generator) -> _Timeline:
    timeline, allowed_set = _Timeline(), set(allowed)
    while len(timeline.notes) == 0 or timeline.cursor < count * 2.0:
        root = int(rng.choice(allowed))
        pitches = [root + step for step in CHORDS[rng.integers(len(CHORDS))] if root + step in allowed_set]
        if len(pitches) < 2:
            continue
        duration, velocity = float(rng.choice(CHORD_DURATIONS)), int(rng.choice(VELOCITIES))
        strum = rng.uniform(0.0, 0.03)  # a slight spread of onsets, as when played by hand
        timeline.add([Note(p, i * strum, duration, velocity) for i, p in enumerate(pitches)])
    return timeline


def _phrases(allowed: list[int], count: int, rng: np.random.Generator) -> _Timeline:
    timeline, allowed_set = _Timeline(), set(allowed)
    for _ in range(count):
        root, scale = int(rng.choice(allowed)), SCALES[rng.integers(len(SCALES))]
        degrees = [p for p in range(min(allowed), max(allowed) + 1) if (p - root) % 12 in scale and p in allowed_set]
        if len(degrees) < 3:
            continue
        index, time, phrase = int(rng.integers(len(degrees))), 0.0, []
        beat, velocity = rng.uniform(0.18, 0.4), int(rng.choice(VELOCITIES[1:]))
        for _ in range(int(rng.integers(6, 11))):
            length = beat * float(rng.choice((1, 1, 2, 0.5)))
            loudness = int(np.clip(velocity + rng.integers(-15, 16), 20, 127))
            phrase.append(Note(degrees[index], time, 0.9 * length, loudness))  # slightly detached
            time += length
            index = int(np.clip(index + rng.choice((-2, -1, 1, 2)), 0, len(degrees) - 1))
        timeline.add(phrase)
    return timeline


def plan_corpus(seed: int = 0, scale: float = 1.0, programs: list[int] | None = None) -> list[CorpusFile]:
    """Files of the corpus; ``scale`` 1.0 gives about an hour of training audio."""
    plan = []
    for program in range(128) if programs is None else programs:
        rng = np.random.default_rng([seed, program])
        low, high = playable_range(program)
        held = held_out_pitches(program, rng)
        allowed = [p for p in range(low, high + 1) if p not in held]
        for kind, build, count in (("notes", _notes, 14), ("chords", _chords, 4), ("phrases", _phrases, 2)):
            timeline = build(allowed, max(1, round(count * scale)), rng)
            plan.append(CorpusFile("train", program, kind, timeline.notes))
        validation = _Timeline()
        for pitch in sorted(held):
            validation.add([Note(pitch, 0.0, 1.0, int(rng.choice((64, 90, 110))))])
        plan.append(CorpusFile("val", program, "notes", validation.notes))
    return plan


def program_list(names: str | None) -> list[int] | None:
    """Comma-separated GM program names or numbers -> program numbers (None: all)."""
    if not names:
        return None
    return [int(name) if name.isdigit() else program_number(name) for name in names.split(",")]


# -- targets: the same scores played by every instrument, to train decoders on --------------------
TARGET_INSTRUMENTS = {  # the paper's instruments: GM programs, or None for the numpy tones
    "flute": "flute",
    "piano": "acoustic_grand_piano",
    "trumpet": "trumpet",
    "violin": "violin",
    "sine": None,
    "sawtooth": None,
    "guitar": "acoustic_guitar_nylon",  # Experiment 2
    "banjo": "banjo",  # Experiment 3
    "organ": "church_organ",  # Experiment 3
}
# One range for every instrument, so that each score exists in every timbre (a parallel corpus: a decoder
# learns to render any instrument's codes of a score as its own instrument's recording of it). It spans the
# experiments' notes and pieces on both sides; a synth beyond an instrument's playable range still sounds.
TARGET_RANGE = (40, 84)  # E2-C6
TARGET_FILE_SECONDS = 30.0  # about this much audio per file
_TARGET_STREAM = 6  # in the seed of the targets' random numbers: apart from the corpus's ([seed, program])


def plan_targets(seconds: float, seed: int = 0) -> list[tuple[str, list[Note]]]:
    """(name, notes) of the scores every target instrument plays, ``seconds`` in all: single notes, chords and
    scale phrases across ``TARGET_RANGE``, never at the pitches of Experiment 1 (C4, G4), and none of
    Experiments 2-3's pieces. The plan is a pure function of its arguments."""
    allowed = [p for p in range(TARGET_RANGE[0], TARGET_RANGE[1] + 1) if p not in EXPERIMENT_PITCHES]
    kinds = [("notes", _notes, 14), ("phrases", _phrases, 3), ("chords", _chords, 8)]
    rng = np.random.default_rng([seed, _TARGET_STREAM])
    files, total = [], 0.0
    while total < seconds:
        kind, build, count = kinds[len(files) % len(kinds)]
        timeline = _Timeline()
        while timeline.cursor < TARGET_FILE_SECONDS:
            timeline.add(build(allowed, count, rng).notes)
        files.append((f"{len(files):03d}-{kind}", timeline.notes))
        total += timeline.cursor
    return files


# -- the transfer corpus: the targets' scores played by many GM programs, some held out -----------
# Programs with no pitch to keep or to hear (noises, drums): a transfer decoder learns nothing from them.
UNPITCHED_PROGRAMS = (
    "woodblock",
    "taiko_drum",
    "synth_drum",
    "reverse_cymbal",
    "breath_noise",
    "seashore",
    "helicopter",
    "applause",
    "gunshot",
)
# Never in a transfer decoder's or timbre metric's training: one or more per GM family (in family order), the
# programs whose notes the issue found hardest to keep (cello, oboe, clarinet, marimba) among them. The
# experiments' instruments stay in training: the paper's pairs measure seen instruments, these unseen ones.
HELD_OUT_PROGRAMS = (
    "electric_piano_1",
    "vibraphone",
    "marimba",
    "accordion",
    "electric_guitar_jazz",
    "electric_bass_finger",
    "cello",
    "choir_aahs",
    "trombone",
    "oboe",
    "clarinet",
    "pan_flute",
    "lead_2_sawtooth",
    "pad_2_warm",
    "fx_3_crystal",
    "sitar",
    "steel_drums",
    "telephone_ring",
)
# The held-out set's notes: every program plays each (D3, A3, D4, F4, D5), none of Experiment 1's. Transfer pairs
# take contents at D4 and styles at A3 or F4, so that returning the style fails the pitch test; a timbre metric
# is held to the octaves too.
HELD_OUT_PITCHES = (50, 57, 62, 65, 74)
HELD_OUT_CONTENT_PITCH = 62
HELD_OUT_STYLE_PITCHES = (57, 65)
HELD_OUT_STYLE_OFFSETS = (1, 5, 9, 13)  # each content program meets the styles this many programs further on


def held_out_phrase() -> list[Note]:
    """The held-out programs' phrase: a monophonic line around D4 (a timbre metric hears it against single notes)."""
    pitches = (62, 64, 66, 67, 69, 67, 66, 64, 62, 57, 62)
    return [Note(pitch, 0.3 * index, 0.27, 96) for index, pitch in enumerate(pitches)]


def family(program: int) -> int:
    """The GM family (0-15) of a program (0-127)."""
    return program // 8


def transfer_programs() -> list[int]:
    """The GM programs a transfer decoder trains on: every pitched program that is not held out."""
    excluded = {program_number(name) for name in (*UNPITCHED_PROGRAMS, *HELD_OUT_PROGRAMS)}
    return [program for program in range(128) if program not in excluded]


def held_out_programs() -> list[int]:
    return [program_number(name) for name in HELD_OUT_PROGRAMS]


def held_out_pairs() -> list[tuple[int, int]]:
    """(content program, style program) of the held-out evaluation: every program as content, each with the
    styles ``HELD_OUT_STYLE_OFFSETS`` further along the list (72 ordered pairs of distinct programs)."""
    programs = held_out_programs()
    return [
        (content, programs[(index + offset) % len(programs)])
        for index, content in enumerate(programs)
        for offset in HELD_OUT_STYLE_OFFSETS
    ]


def held_out_style_pitch(pair_index: int) -> int:
    """The style's note of a held-out pair: ``HELD_OUT_STYLE_PITCHES`` in turn."""
    return HELD_OUT_STYLE_PITCHES[pair_index % len(HELD_OUT_STYLE_PITCHES)]
