"""Note lists and synthetic tones for the paper's experiments (all public domain, written here).

- Experiment 1: one note (C4, and G4 for the channel maps) on several instruments, plus a sine
  and a band-limited sawtooth synthesised in numpy.
- Experiment 2: the opening four bars of Beethoven's Piano Sonata No. 14 ("Moonlight"),
  first movement, for piano and, with the bass an octave up, for guitar.
- Experiment 3: two different pieces: Stephen Foster's "Oh! Susanna" (1848) for banjo, and
  the hymn tune "Old Hundredth" (Genevan Psalter, 1551) in a four-part setting for organ.
"""

from __future__ import annotations

import numpy as np

from jukestyle.audio.render import Note, midi_to_hz

_NAMES = {
    "C": 0,
    "C#": 1,
    "D": 2,
    "D#": 3,
    "E": 4,
    "F": 5,
    "F#": 6,
    "G": 7,
    "G#": 8,
    "A": 9,
    "A#": 10,
    "B": 11,
    "B#": 12,
}


def pitch(name: str) -> int:
    """'C#4' -> 61; 'B#3' is C4 (60)."""
    return 12 * (int(name[-1]) + 1) + _NAMES[name[:-1]]


def _chord(names: str, start: float, duration: float, velocity: int) -> list[Note]:
    return [Note(pitch(name), start, duration, velocity) for name in names.split()]


# -- Experiment 2: Moonlight Sonata, Op. 27 No. 2, I. Adagio sostenuto, bars 1-4 ---------------
MOONLIGHT_QUARTER = 60 / 54  # quarter note = 54: each triplet quaver lasts a third of this
_MOONLIGHT_TRIPLETS = [  # four triplet groups per bar, right hand
    ["G#3 C#4 E4"] * 4,
    ["G#3 C#4 E4"] * 4,
    ["A3 C#4 E4"] * 2 + ["A3 D4 F#4"] * 2,
    ["G#3 B#3 F#4", "G#3 C#4 E4", "G#3 C#4 D#4", "F#3 B#3 D#4"],
]
_MOONLIGHT_BASS = [  # left hand octaves: (notes, beats)
    [("C#2 C#3", 4)],
    [("B1 B2", 4)],
    [("A1 A2", 2), ("F#1 F#2", 2)],
    [("G#1 G#2", 2), ("G#1 G#2", 2)],
]


def moonlight_opening(guitar: bool = False) -> list[Note]:
    """Bars 1-4 (about 18 s). On guitar the bass octaves keep only their upper note (E2 is its lowest)."""
    notes, beat = [], MOONLIGHT_QUARTER
    for bar, (triplets, bass) in enumerate(zip(_MOONLIGHT_TRIPLETS, _MOONLIGHT_BASS, strict=True)):
        start = bar * 4 * beat
        for group, names in enumerate(triplets):
            for index, name in enumerate(names.split()):
                onset = start + (group + index / 3) * beat
                notes.append(Note(pitch(name), onset, beat / 3 * 1.05, 52 + (8 if index == 0 else 0)))
        for names, beats in bass:
            if guitar:
                names = names.split()[-1]
            notes += _chord(names, start, beats * beat * 0.98, 62)
            start += beats * beat
    return notes


# -- Experiment 3a: "Oh! Susanna" (Stephen Foster, 1848), banjo ---------------------------
_SUSANNA = (  # (note, eighths) in G major; "I come from Alabama with my banjo on my knee ..."
    "G4 1 A4 1 | B4 1 D5 1 D5 1.5 E5 0.5 | D5 1 B4 1 G4 1.5 A4 0.5 | B4 1 B4 1 A4 1 G4 1 | A4 2 G4 1 A4 1 |"
    " B4 1 D5 1 D5 1.5 E5 0.5 | D5 1 B4 1 G4 1.5 A4 0.5 | B4 1 B4 1 A4 1 A4 1 | G4 4"
)
_SUSANNA_CHORDS = ["G3 D4", "G3 D4", "G3 D4", "D3 A3", "G3 D4", "G3 D4", "D3 A3", "G3 D4"]  # per bar


def oh_susanna(eighth: float = 0.3) -> list[Note]:
    """The first verse's melody with a root-fifth strum on every beat (about 11 s)."""
    notes, time = [], 0.0
    bars = [bar.split() for bar in _SUSANNA.split("|")]
    pickup, bars = bars[0], bars[1:]
    for name, length in zip(pickup[::2], pickup[1::2], strict=True):
        notes.append(Note(pitch(name), time, float(length) * eighth * 0.9, 96))
        time += float(length) * eighth
    for bar, chord in zip(bars, _SUSANNA_CHORDS, strict=True):
        for beat in range(2):  # 2/4: a strum on each beat
            notes += _chord(chord, time + beat * 2 * eighth, eighth * 1.6, 70)
        for name, length in zip(bar[::2], bar[1::2], strict=True):
            notes.append(Note(pitch(name), time, float(length) * eighth * 0.9, 100))
            time += float(length) * eighth
    return notes


# -- Experiment 3b: "Old Hundredth" (Genevan Psalter, 1551), four parts, organ ----------------
_HUNDREDTH = [  # soprano alto tenor bass, quarter notes; first two phrases
    ("G4 D4 B3 G2", 2), ("G4 D4 B3 G3", 1), ("F#4 D4 A3 D3", 1), ("E4 C4 G3 E3", 1), ("D4 B3 G3 G2", 2),
    ("G4 D4 B3 G3", 1), ("A4 E4 C4 A2", 1), ("B4 D4 G3 G2", 2),
    ("B4 D4 G3 G3", 2), ("B4 D4 G3 G3", 1), ("B4 E4 G3 E3", 1), ("A4 E4 C4 A2", 1), ("G4 D4 B3 G2", 2),
    ("C5 E4 G3 C3", 1), ("B4 D4 G3 D3", 1), ("A4 D4 F#3 D3", 2), ("G4 D4 B3 G2", 4),
]  # fmt: skip


def old_hundredth(quarter: float = 0.52) -> list[Note]:
    """Two phrases, organ legato (about 13.5 s)."""
    notes, time = [], 0.0
    for names, quarters in _HUNDREDTH:
        notes += _chord(names, time, quarters * quarter * 0.97, 90)
        time += quarters * quarter
    return notes


# -- Experiment 1: synthetic tones -------------------------------------------------------------
def _envelope(samples: int, sample_rate: int, attack: float = 0.01, release: float = 0.05) -> np.ndarray:
    t = np.arange(samples) / sample_rate
    return np.minimum(1.0, np.minimum(t / attack, (samples / sample_rate - t) / release)).clip(0.0, 1.0)


def sine_tone(midi: int, seconds: float = 3.0, sample_rate: int = 44100) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (np.sin(2 * np.pi * midi_to_hz(midi) * t) * _envelope(len(t), sample_rate)).astype(np.float32)


def sawtooth_tone(midi: int, seconds: float = 3.0, sample_rate: int = 44100) -> np.ndarray:
    """Band-limited: the harmonics of a sawtooth (amplitude 1/k) up to the Nyquist frequency only."""
    frequency = midi_to_hz(midi)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    harmonics = int((sample_rate / 2) // frequency)
    wave = sum((-1) ** (k + 1) * np.sin(2 * np.pi * k * frequency * t) / k for k in range(1, harmonics + 1))
    return (2 / np.pi * wave * _envelope(len(t), sample_rate)).astype(np.float32)


def synthesise(notes: list[Note], tone, sample_rate: int = 44100, tail: float = 0.3) -> np.ndarray:
    """``notes`` played by a numpy ``tone(midi, seconds, sample_rate)`` (e.g. ``sine_tone``), at amplitude
    velocity / 127, mixed; ``tail`` seconds of silence at the end."""
    end = max(note.start + note.duration for note in notes) + tail
    mix = np.zeros(int(end * sample_rate) + 1, dtype=np.float32)
    for note in notes:
        start = int(note.start * sample_rate)
        sound = tone(note.pitch, note.duration, sample_rate) * (note.velocity / 127)
        mix[start : start + len(sound)] += sound
    return mix
