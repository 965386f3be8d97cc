"""Evaluation metrics.

``l2_mfcc`` is the paper's timbre distance (section III-E): both signals are set
to zero mean and loudness-normalised to -23 LUFS (EBU R128, pyloudnorm in place
of ffmpeg-normalize), their MFCCs are averaged over time, and the result is the
L2 distance between the two average vectors. Settings: 20 MFCCs from a 128-band
mel spectrogram (n_fft 2048, hop 512, librosa's defaults); c0 is dropped, since
it measures overall level, which the loudness normalisation has already
equalised, leaving 19 coefficients that describe the spectral envelope.
"""

from __future__ import annotations

import librosa
import numpy as np

from jukestyle.audio import EBU_R128_TARGET_LUFS, normalize_loudness

N_MFCC = 20
N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128


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


def timbre_scores(output: np.ndarray, source: np.ndarray, style: np.ndarray, sample_rate: int) -> dict:
    """l2-mfcc of the output to the source (content) and to the style, and which is closer."""
    to_output = mean_mfcc(output, sample_rate)
    to_source = float(np.linalg.norm(to_output - mean_mfcc(source, sample_rate)))
    to_style = float(np.linalg.norm(to_output - mean_mfcc(style, sample_rate)))
    return {
        "l2mfcc_source": to_source,
        "l2mfcc_style": to_style,
        "closer_to": "style" if to_style < to_source else "source",
    }
