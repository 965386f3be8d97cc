"""Figures: mel spectrograms (and, with the report, the paper's bar plots). Matplotlib, no display needed."""

from __future__ import annotations

from pathlib import Path

import librosa
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from jukestyle.fileio import atomic_path


def save_figure(figure: plt.Figure, path: Path, dpi: int = 110) -> Path:
    """Write ``figure`` atomically (PNG, from the suffix) and close it."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi)
    plt.close(figure)
    return path


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


def channel_response_figure(
    frequency: np.ndarray, activation: np.ndarray, nyquist: float, log_frequency: bool = False, title: str = ""
) -> plt.Figure:
    """A channel's activation against the sweep's frequency, with the layer's Nyquist frequency in red."""
    figure, axis = plt.subplots(figsize=(6, 3), dpi=100)
    axis.plot(frequency, activation, linewidth=0.8)
    axis.axvline(nyquist, color="red", linestyle="--", label=f"layer Nyquist {nyquist:.0f} Hz")
    if log_frequency:
        axis.set_xscale("log")
    axis.set(xlabel="sweep frequency (Hz)", ylabel="activation", title=title)
    axis.legend(loc="upper right", fontsize="small")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def channel_map_figure(active_counts: list[np.ndarray], instruments: int, title: str = "") -> plt.Figure:
    """Layers (rows) x channels (columns), coloured by how many instruments each channel is active for:
    0 (silent for all) and ``instruments`` (active for all) at the ends, selective channels between."""
    width = max(len(counts) for counts in active_counts)
    grid = np.full((len(active_counts), width), np.nan)
    for row, counts in enumerate(active_counts):
        grid[row, : len(counts)] = counts
    colours = plt.get_cmap("viridis", instruments + 1)
    figure, axis = plt.subplots(figsize=(max(6, width / 8), max(3, len(active_counts) / 6)), dpi=100)
    image = axis.imshow(grid, aspect="auto", cmap=colours, vmin=-0.5, vmax=instruments + 0.5, interpolation="none")
    axis.set(xlabel="channel", ylabel="encoder layer", title=title)
    bar = figure.colorbar(image, ax=axis, ticks=range(instruments + 1))
    bar.set_label("instruments the channel is active for")
    figure.tight_layout()
    return figure


def selective_channels_figure(
    activity: np.ndarray, instruments: list[str], labels: list[str], title: str = ""
) -> plt.Figure:
    """Instruments (rows) x selective channels (columns), each column scaled to its largest activity."""
    peak = activity.max(axis=0, keepdims=True)
    scaled = np.divide(activity, peak, out=np.zeros_like(activity, dtype=float), where=peak > 0)
    figure, axis = plt.subplots(figsize=(max(6, len(labels) / 5), 1 + 0.4 * len(instruments)), dpi=100)
    image = axis.imshow(scaled, aspect="auto", cmap="magma", vmin=0, vmax=1, interpolation="none")
    axis.set_yticks(range(len(instruments)), instruments)
    axis.set_xticks(range(len(labels)), labels, rotation=90, fontsize=5)
    axis.set(xlabel="layer:channel", title=title)
    figure.colorbar(image, ax=axis, label="activity / column max")
    figure.tight_layout()
    return figure


def metric_curves_figure(
    xs: list[float],
    curves: dict[str, list[float]],
    baselines: dict[str, dict[str, float]],
    xlabel: str,
    title: str = "",
) -> plt.Figure:
    """One panel per metric: its curve against ``xs``, and each baseline method's value as a dashed line."""
    figure, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.4), dpi=100, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, (metric, values) in zip(axes[0], curves.items(), strict=True):
        axis.plot(xs, values, marker="o", color="black", label="decoder")
        for index, (method, metrics) in enumerate(baselines.items()):
            value = metrics.get(metric)
            if value is not None and np.isfinite(value):  # a row with nothing scored on this set has no line
                colour = colours[index % len(colours)]
                axis.axhline(value, linestyle="--", linewidth=1, color=colour, label=method)
        axis.set(xlabel=xlabel, title=metric.replace("_", " "))
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small", loc="best")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
