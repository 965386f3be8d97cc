"""Evaluation metrics: the paper's timbre distance, and checks that the music survived.

``l2_mfcc`` is the paper's timbre distance (section III-E): both signals are set
to zero mean and loudness-normalised to -23 LUFS (EBU R128, pyloudnorm in place
of ffmpeg-normalize), their MFCCs are averaged over time, and the result is the
L2 distance between the two average vectors. Settings: 20 MFCCs from a 128-band
mel spectrogram (n_fft 2048, hop 512, librosa's defaults); c0 is dropped, since
it measures overall level, which the loudness normalisation has already
equalised, leaving 19 coefficients that describe the spectral envelope.

A "style win" (output closer to the style than to the source) means little if
the transfer destroyed the music, so two content metrics go with it:

- ``pitch_accuracy``: the share of the content's voiced frames where the output's
  pYIN pitch is within 50 cents of the content's; only for monophonic content
  (mean pYIN voiced probability >= 0.6: single notes score 0.8-0.95, the pieces of
  Experiments 2 and 3 0.1-0.5), else None;
- ``chroma_similarity``: the mean cosine similarity of time-aligned chroma (CQT)
  frames of output and content, over the frames where the content sounds.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np

from jukestyle.audio.io import EBU_R128_TARGET_LUFS, normalize_loudness, resample
from jukestyle.evaluation.timbre import embed

N_MFCC = 20
N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
ANALYSIS_RATE = 22050  # pitch and chroma are computed at this rate (enough up to C8, twice as fast)
PITCH_RANGE = (65.4, 2093.0)  # C2..C7
PITCH_TOLERANCE_CENTS = 50.0
MONOPHONIC_PROBABILITY = 0.6
MONOPHONIC_CHECK_SECONDS = 3.0


def mean_mfcc(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Time-averaged MFCCs c1..c19 of a zero-mean, -23 LUFS version of ``samples``."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples - samples.mean()
    normalised, _ = normalize_loudness(samples, sample_rate, EBU_R128_TARGET_LUFS)
    mfcc = librosa.feature.mfcc(
        y=normalised.astype(np.float32),
        sr=sample_rate,
        n_mfcc=N_MFCC,
        n_fft=N_FFT,
        hop_length=HOP_LENGTH,
        n_mels=N_MELS,
    )
    return mfcc[1:].mean(axis=1)


def l2_mfcc(a: np.ndarray, b: np.ndarray, sample_rate: int) -> float:
    """The paper's l2-mfcc distance between two signals (any lengths)."""
    return float(np.linalg.norm(mean_mfcc(a, sample_rate) - mean_mfcc(b, sample_rate)))


def pitch_track(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, float]:
    """pYIN f0 (Hz, NaN where unvoiced), voiced flags, and the mean voiced probability."""
    y = resample(np.asarray(samples, dtype=np.float32), sample_rate, ANALYSIS_RATE)
    f0, voiced, probability = librosa.pyin(
        y, fmin=PITCH_RANGE[0], fmax=PITCH_RANGE[1], sr=ANALYSIS_RATE, frame_length=2048, hop_length=HOP_LENGTH
    )
    return f0, voiced, float(np.nanmean(probability)) if probability.size else 0.0


def frame_tone_level(samples: np.ndarray, sample_rate: int, period: int = 32, harmonics: int = 2) -> float:
    """How loud a decoder's comb at its frame rate is: the strongest DFT magnitude at 1..``harmonics`` times
    ``sample_rate / period``, in dB under the strongest of the whole spectrum (one Hann window over the clip,
    cut to a multiple of ``period`` samples so that those frequencies fall on bins). -inf for silence, NaN for
    a clip shorter than one period."""
    samples = np.asarray(samples, dtype=np.float64)
    length = len(samples) // period * period
    if length == 0:  # shorter than one period: no comb to read
        return float("nan")
    spectrum = np.abs(np.fft.rfft(samples[:length] * np.hanning(length)))
    if spectrum.max() == 0:
        return -np.inf
    comb = spectrum[np.arange(1, harmonics + 1) * (length // period)].max()
    return float(20 * np.log10(max(comb, 1e-300) / spectrum.max()))


def chroma(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    y = resample(np.asarray(samples, dtype=np.float32), sample_rate, ANALYSIS_RATE)
    with warnings.catch_warnings():
        # The CQT's lowest octaves run on heavily downsampled audio, where librosa warns that its FFT is
        # longer than the signal; the result is still right, the warning only floods users' logs.
        warnings.filterwarnings("ignore", message="n_fft=.* is too large for input signal", category=UserWarning)
        return librosa.feature.chroma_cqt(y=y, sr=ANALYSIS_RATE, hop_length=HOP_LENGTH)


@dataclass
class Reference:
    """What the metrics need of a source or style signal, computed once and reused."""

    mfcc: np.ndarray
    chroma: np.ndarray
    energy: np.ndarray  # per chroma frame, to skip silence
    f0: np.ndarray | None  # None unless monophonic
    voiced: np.ndarray | None
    timbre: np.ndarray | None = None  # the timbre metric's embedding, where one is used

    @property
    def monophonic(self) -> bool:
        return self.f0 is not None


def analyse_reference(
    samples: np.ndarray, sample_rate: int, with_pitch: bool = True, timbre_metric: Path | None = None
) -> Reference:
    """What the metrics need of a source or style; its timbre embedding only given a timbre metric."""
    f0 = voiced = None
    if with_pitch:
        # Deciding "monophonic" needs a few seconds only; the full track only if it is.
        head = samples[: int(MONOPHONIC_CHECK_SECONDS * sample_rate)]
        track, flags, probability = pitch_track(head, sample_rate)
        if probability >= MONOPHONIC_PROBABILITY and flags.any():
            if len(head) < len(samples):
                track, flags, _ = pitch_track(samples, sample_rate)
            f0, voiced = track, flags
    y = resample(np.asarray(samples, dtype=np.float32), sample_rate, ANALYSIS_RATE)
    energy = librosa.feature.rms(y=y, frame_length=2048, hop_length=HOP_LENGTH)[0]
    timbre = None if timbre_metric is None else embed(samples, sample_rate, timbre_metric)
    return Reference(mean_mfcc(samples, sample_rate), chroma(samples, sample_rate), energy, f0, voiced, timbre)


def pitch_accuracy(output: np.ndarray, reference: Reference, sample_rate: int) -> float | None:
    """Share of the reference's voiced frames where the output is within 50 cents of its pitch."""
    if not reference.monophonic:
        return None
    f0, voiced, _ = pitch_track(output, sample_rate)
    frames = min(len(f0), len(reference.f0))
    ref_f0, ref_voiced = reference.f0[:frames], reference.voiced[:frames]
    out_f0, out_voiced = f0[:frames], voiced[:frames]
    if not ref_voiced.any():
        return None
    both = ref_voiced & out_voiced
    close = np.zeros(frames, dtype=bool)
    close[both] = np.abs(1200 * np.log2(out_f0[both] / ref_f0[both])) <= PITCH_TOLERANCE_CENTS
    return float(close[ref_voiced].mean())


def chroma_similarity(output: np.ndarray, reference: Reference, sample_rate: int) -> float:
    """Mean cosine similarity of aligned chroma frames where the reference sounds (> -40 dB of its peak)."""
    out = chroma(output, sample_rate)
    frames = min(out.shape[1], reference.chroma.shape[1], len(reference.energy))
    a, b = out[:, :frames], reference.chroma[:, :frames]
    sounding = reference.energy[:frames] > reference.energy.max() * 10 ** (-40 / 20)
    if not sounding.any():
        return float("nan")
    cosine = (a * b).sum(0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0) + 1e-12)
    return float(cosine[sounding].mean())


class ReferenceCache:
    """``Reference``s of recently seen signals, keyed by a hash of their samples (with the timbre embedding of
    ``timbre_metric``, if given)."""

    def __init__(self, size: int = 64, timbre_metric: Path | None = None) -> None:
        self.size, self._items, self.timbre_metric = size, OrderedDict(), timbre_metric

    def get(self, key: str, samples: np.ndarray, sample_rate: int) -> Reference:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        reference = self._items[key] = analyse_reference(samples, sample_rate, timbre_metric=self.timbre_metric)
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return reference
