"""Figures: mel spectrograms (and, with the report, the paper's bar plots). Matplotlib, no display needed."""

from __future__ import annotations

import librosa
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def loss_curve_figure(losses: list[float], title: str = "") -> plt.Figure:
    """The loss at every evaluation of an optimisation (log scale)."""
    figure, axis = plt.subplots(figsize=(5, 3), dpi=100)
    axis.semilogy(np.arange(len(losses)), np.maximum(losses, 1e-12), marker=".")
    axis.set(xlabel="evaluation", ylabel="style loss", title=title)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def mel_spectrogram_figure(samples: np.ndarray, sample_rate: int, title: str = "") -> plt.Figure:
    mel = librosa.feature.melspectrogram(
        y=np.asarray(samples, dtype=np.float32), sr=sample_rate, n_fft=2048, hop_length=512, n_mels=128
    )
    decibels = librosa.power_to_db(mel, ref=np.max(mel) if mel.max() > 0 else 1.0, top_db=80)
    figure, axis = plt.subplots(figsize=(6, 3), dpi=100)
    seconds = len(samples) / sample_rate
    image = axis.imshow(decibels, origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, mel.shape[0]))
    axis.set(xlabel="time (s)", ylabel="mel band", title=title)
    figure.colorbar(image, ax=axis, format="%+.0f dB")
    figure.tight_layout()
    return figure
