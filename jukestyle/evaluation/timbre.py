"""A learned timbre metric: an embedding of log-mel frames where one instrument sits close to itself at any
pitch, loudness or phrase, and apart from other instruments playing the same notes.

The paper's l2-mfcc compares mean MFCCs, which move with the pitch: an output at the content's pitch is
measured against a style at another pitch. This network (``TimbreNet``, a few hundred thousand weights)
is trained by the framework (``experiment=train_timbre_metric``) on the transfer corpus, where every
program plays the same scores, so that what tells two crops apart is the instrument and nothing else;
programs it never heard give its validation (``checkpoints/timbre_metric/TIMBRE_METRIC.md``).

``embed(audio, sample_rate)`` is the public entry point: a mono float array in, a unit vector out, from
the shipped network unless another checkpoint is given. Loudness does not enter: the log-mel frames are
taken relative to their mean level.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import librosa
import numpy as np
import torch
from scipy import linalg
from torch import nn
from torch.nn import functional as F

from jukestyle.audio.io import resample
from jukestyle.errors import CheckpointError
from jukestyle.fileio import atomic_path
from jukestyle.jukebox.factory import SHIPPED

SAMPLE_RATE = 44100
N_FFT, HOP, MELS, FMIN, FMAX = 2048, 512, 64, 30.0, 16000.0
FLOOR_DB = -80.0  # log-mel frames are clamped this far under the clip's loudest frame
FORMAT = "jukestyle-timbre-metric/1"
BUNDLED = SHIPPED / "timbre_metric" / "timbre_metric.pth.tar"


class LogMel(nn.Module):
    """(B, T) audio at 44.1 kHz -> (B, 1, MELS, frames) log-mel in dB relative to each clip's mean level (so a
    gain leaves it unchanged), clamped ``FLOOR_DB`` under its loudest bin."""

    def __init__(self) -> None:
        super().__init__()
        filters = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=MELS, fmin=FMIN, fmax=FMAX)
        self.register_buffer("filters", torch.from_numpy(filters).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spectrum = torch.stft(audio, N_FFT, HOP, window=self.window, return_complex=True).abs().square()
        db = 10 * torch.log10((self.filters @ spectrum).clamp_min(1e-12))
        db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) + FLOOR_DB)
        return (db - db.mean(dim=(1, 2), keepdim=True)).unsqueeze(1) / 20.0  # about unit scale


class TimbreNet(nn.Module):
    """Log-mel -> four convolution blocks (3x3, group norm, ReLU, 2x2 average pooling) -> mean and standard
    deviation over time of each (channel, band) -> a linear map to ``dim`` dimensions, unit length.

    Group norm, not batch norm: one clip is embedded the same whatever it is batched with. The pooled bands
    keep where the energy sits in frequency (the spectral envelope), the convolutions how it is shaped."""

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64, 128), dim: int = 128) -> None:
        super().__init__()
        self.features = LogMel()
        layers, previous = [], 1
        for width in channels:
            layers += [
                nn.Conv2d(previous, width, 3, padding=1),
                nn.GroupNorm(8, width),
                nn.ReLU(),
                nn.AvgPool2d(2, ceil_mode=True),
            ]
            previous = width
        self.convolutions = nn.Sequential(*layers)
        bands = -(-MELS // 2 ** len(channels))
        self.projection = nn.Linear(2 * previous * bands, dim)
        self.channels, self.dim = tuple(channels), dim

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) audio at 44.1 kHz -> (B, dim) unit vectors."""
        maps = self.convolutions(self.features(audio))  # (B, C, bands, frames)
        pooled = torch.cat([maps.mean(dim=-1), maps.std(dim=-1, unbiased=False)], dim=1).flatten(1)
        return F.normalize(self.projection(pooled), dim=-1)


def save_metric(path: str | os.PathLike, network: TimbreNet, **extra: object) -> None:
    checkpoint = {
        "format": FORMAT,
        "channels": list(network.channels),
        "dim": network.dim,
        "state_dict": {key: value for key, value in network.state_dict().items()},
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def load_metric(path: str | os.PathLike = BUNDLED) -> TimbreNet:
    """The timbre network of a checkpoint written by ``save_metric`` (``experiment=train_timbre_metric``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no timbre metric (train one with experiment=train_timbre_metric)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path}: not a readable timbre metric ({type(error).__name__})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a timbre metric (written by experiment=train_timbre_metric)")
    network = TimbreNet(tuple(checkpoint["channels"]), int(checkpoint["dim"]))
    network.load_state_dict(checkpoint["state_dict"])
    return network.eval().requires_grad_(False)


def metric_file(choice: str | os.PathLike | None) -> Path | None:
    """The checkpoint a setting names: "bundled" (the shipped metric), a path, or None (no timbre metric)."""
    if choice is None:
        return None
    path = BUNDLED if str(choice) == "bundled" else Path(choice)
    if not path.is_file():
        raise CheckpointError(f"{path}: no timbre metric (train one with experiment=train_timbre_metric)")
    return path


def shipped_metric() -> Path | None:
    """The shipped metric where this installation has it, else None (its timbre metrics are then left out)."""
    return BUNDLED if BUNDLED.is_file() else None


@functools.lru_cache(maxsize=4)
def _network(path: str) -> TimbreNet:
    return load_metric(path)


def embed(audio: np.ndarray, sample_rate: int, checkpoint: str | os.PathLike | None = None) -> np.ndarray:
    """The timbre embedding (a unit vector) of a mono float array: the shipped metric, or ``checkpoint``'s."""
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    if sample_rate != SAMPLE_RATE:
        samples = resample(samples, sample_rate, SAMPLE_RATE)
    samples = np.pad(samples, (0, max(N_FFT - len(samples), 0)))  # at least one frame
    network = _network(str(BUNDLED if checkpoint is None else checkpoint))
    with torch.inference_mode():
        return network(torch.from_numpy(samples)[None])[0].numpy().astype(np.float64)


def timbre_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine distance of two embeddings: 0 for the same direction, 2 for opposite ones."""
    return float(1.0 - np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def frechet_distance(a: np.ndarray, b: np.ndarray, eps: float = 1e-6) -> float:
    """The Fréchet distance of two sets of embeddings (rows) as Gaussians, as FAD computes it:
    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)). ``eps`` regularises covariances of few rows."""
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    mean = a.mean(0) - b.mean(0)
    identity = np.eye(a.shape[1]) * eps
    cov_a = (np.cov(a, rowvar=False) if len(a) > 1 else np.zeros((a.shape[1],) * 2)) + identity
    cov_b = (np.cov(b, rowvar=False) if len(b) > 1 else np.zeros((b.shape[1],) * 2)) + identity
    root = linalg.sqrtm(cov_a @ cov_b)
    return float(mean @ mean + np.trace(cov_a + cov_b - 2 * np.real(root)))
