"""Synthetic test signals (tests import this module by name; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 44100


def harmonic_tone(
    frequency: float = 261.63, seconds: float = 1.0, sample_rate: int = SAMPLE_RATE, partials: int = 8
) -> np.ndarray:
    """A plucked-string-like tone: decaying harmonics with a short attack, peak 0.5."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = sum(np.sin(2 * np.pi * frequency * n * t) / n**1.5 for n in range(1, partials + 1))
    envelope = np.minimum(t / 0.01, 1.0) * np.exp(-2.0 * t)
    signal = tone * envelope
    return (0.5 * signal / np.abs(signal).max()).astype(np.float32)
