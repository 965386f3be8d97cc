"""How good is a VQ-VAE? Reconstruction quality, codebook use, and whether timbre and pitch survive.

- ``instrument_identity``: reconstruct each of several recordings of one note on
  different instruments and check that every reconstruction is closer (l2-mfcc) to
  its own source than to any other source: the model keeps the instrument.
- ``pitch_kept``: pitch accuracy (pYIN, within 50 cents) of each reconstruction.
- ``validation_metrics``: per level, over a set of clips: reconstruction errors,
  spectral and log-mel distances, l2-mfcc, the energy per frequency band against
  the source's (where a blurred timbre shows first: lost upper harmonics, added
  noise), pYIN pitch kept over all voiced frames (a decoder that buzzes at its
  frame rate or drops an octave fails it), and how many codes are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jukestyle.evaluation.metrics import (
    PITCH_TOLERANCE_CENTS,
    analyse_reference,
    frame_tone_level,
    mean_mfcc,
    pitch_accuracy,
    pitch_track,
)
from jukestyle.evaluation.scoreboard import Measurement, measure
from jukestyle.evaluation.timbre import embed, timbre_distance
from jukestyle.jukebox import VQVAE
from jukestyle.losses import MULTISPECTRAL_RESOLUTIONS, MelLoss, multispectral_loss

# Frequency bands (Hz) of the band-energy comparison: fundamentals, low harmonics, the upper
# harmonics that carry timbre, and the air/noise region above them.
BANDS_HZ = ((0, 500), (500, 2000), (2000, 5000), (5000, 22050))


@torch.no_grad()
def reconstruct(model: VQVAE, samples: np.ndarray, level: int) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).view(1, 1, -1)
    return model.reconstruct(x, level).reshape(-1).numpy()


@dataclass
class IdentityResult:
    names: list[str]
    distances: np.ndarray  # [i, j]: l2-mfcc of reconstruction i to source j
    pitch: list[float | None]  # pitch accuracy of each reconstruction

    @property
    def kept(self) -> list[bool]:
        """For each recording: is its reconstruction closest to its own source?"""
        return [int(np.argmin(row)) == i for i, row in enumerate(self.distances)]


def instrument_identity(
    model: VQVAE, recordings: dict[str, np.ndarray], level: int, sample_rate: int
) -> IdentityResult:
    names = list(recordings)
    sources = [mean_mfcc(recordings[name], sample_rate) for name in names]
    distances = np.zeros((len(names), len(names)))
    pitch = []
    for i, name in enumerate(names):
        output = reconstruct(model, recordings[name], level)
        output_mfcc = mean_mfcc(output, sample_rate)
        distances[i] = [np.linalg.norm(output_mfcc - source) for source in sources]
        pitch.append(pitch_accuracy(output, analyse_reference(recordings[name], sample_rate), sample_rate))
    return IdentityResult(names, distances, pitch)


def band_energies_db(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Energy (dB) of ``samples`` in each of ``BANDS_HZ``, from one power spectrum of the whole clip."""
    power = np.abs(np.fft.rfft(np.asarray(samples, dtype=np.float64))) ** 2
    frequencies = np.fft.rfftfreq(len(samples), 1 / sample_rate)
    return np.array(
        [10 * np.log10(power[(frequencies >= low) & (frequencies < high)].sum() + 1e-12) for low, high in BANDS_HZ]
    )


@dataclass
class PitchCount:
    """Voiced frames of the sources, and how many of them the reconstructions kept within 50 cents."""

    voiced: int = 0
    kept: int = 0

    def add(self, output: np.ndarray, source: np.ndarray, sample_rate: int) -> None:
        ref_f0, ref_voiced, _ = pitch_track(source, sample_rate)
        out_f0, out_voiced, _ = pitch_track(output, sample_rate)
        frames = min(len(ref_f0), len(out_f0))
        ref_voiced, both = ref_voiced[:frames], ref_voiced[:frames] & out_voiced[:frames]
        cents = np.abs(1200 * np.log2(out_f0[:frames][both] / ref_f0[:frames][both]))
        self.voiced += int(ref_voiced.sum())
        self.kept += int((cents <= PITCH_TOLERANCE_CENTS).sum())

    @property
    def share(self) -> float:
        return self.kept / self.voiced if self.voiced else float("nan")


@torch.no_grad()
def validation_metrics(
    model: VQVAE, clips: list[np.ndarray], level: int, sample_rate: int, pitch: bool = True
) -> dict[str, float]:
    """Reconstruction metrics and codebook use at ``level`` over ``clips``; ``pitch``: also pYIN on every
    clip (slow; meant for single notes).

    Clips shorter than the spectral loss's longest window (2048 samples) are skipped.
    """
    hop = model.hop_length(level)
    shortest = max(n_fft for n_fft, _, _ in MULTISPECTRAL_RESOLUTIONS)
    histogram = torch.zeros(model.config.l_bins, dtype=torch.float64)
    log_mel = MelLoss(sample_rate=sample_rate)
    l2, snr, spectral, timbre, mel, bands, pitches = [], [], [], [], [], [], PitchCount()
    for clip in clips:
        clip = clip[: len(clip) // hop * hop]
        if len(clip) < shortest:
            continue
        x = torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32)).view(1, 1, -1)
        codes = model.encode(x, level)
        y = model.decode(codes, level)
        histogram += torch.bincount(codes.reshape(-1), minlength=model.config.l_bins).double()
        error = float(torch.mean((y - x) ** 2))
        l2.append(error)
        snr.append(10 * np.log10(float(torch.mean(x**2)) / max(error, 1e-12)))
        spectral.append(float(multispectral_loss(x, y).mean()))
        output = y.reshape(-1).numpy()
        timbre.append(float(np.linalg.norm(mean_mfcc(output, sample_rate) - mean_mfcc(clip, sample_rate))))
        mel.append(float(log_mel(x, y)["mel"]))
        bands.append(band_energies_db(output, sample_rate) - band_energies_db(clip, sample_rate))
        if pitch:
            pitches.add(output, clip, sample_rate)
    probability = histogram / histogram.sum().clamp_min(1)
    entropy = float(-(probability * torch.log(probability.clamp_min(1e-12))).sum())
    return {
        "clips": len(l2),
        "mse": float(np.mean(l2)),
        "snr_db": float(np.mean(snr)),
        "multispectral": float(np.mean(spectral)),
        "l2mfcc_to_source": float(np.mean(timbre)),
        "log_mel": float(np.mean(mel)),
        # median over clips of (reconstruction - source) energy per band, dB
        "band_db": [float(v) for v in np.median(np.stack(bands), axis=0)],
        "pitch_kept": pitches.share,
        "codes_used": int((histogram > 0).sum()),
        "codes_used_share": float((histogram > 0).double().mean()),
        "perplexity": float(np.exp(entropy)),
    }


@torch.no_grad()
def timbre_metrics(
    model: VQVAE,
    clips: list[np.ndarray],
    recordings: dict[str, np.ndarray],
    level: int,
    sample_rate: int,
    timbre_metric: Path,
) -> dict:
    """The scoreboard's view of reconstructions at ``level``: the mean timbre distance of each clip's
    reconstruction to its source (``timbre_source``), the mean comb level at the level's own code rate
    (``frame_tone_level`` at its hop), and how many ``recordings`` are reconstructed nearest their own source
    by the timbre metric (Experiment 1 by timbre)."""
    hop = model.hop_length(level)
    distances, combs = [], []
    for clip in clips:
        clip = clip[: len(clip) // hop * hop]
        if len(clip) < hop:
            continue
        output = reconstruct(model, clip, level)
        reference = analyse_reference(clip, sample_rate, with_pitch=False, timbre_metric=timbre_metric)
        row = measure(Measurement(output, reference, reference, sample_rate, timbre_metric), ("timbre_source",))
        distances.append(row["timbre_source"])
        combs.append(frame_tone_level(output, sample_rate, hop))
    sources = {name: embed(audio, sample_rate, timbre_metric) for name, audio in recordings.items()}
    kept = 0
    for name, audio in recordings.items():
        output = embed(reconstruct(model, audio, level), sample_rate, timbre_metric)
        kept += min(sources, key=lambda other: timbre_distance(output, sources[other])) == name
    finite = [c for c in combs if np.isfinite(c)]
    return {
        "timbre_source": float(np.mean(distances)) if distances else None,
        "frame_tones_db": float(np.mean(finite)) if finite else None,
        "hop": hop,
        "timbre_kept": int(kept),
        "recordings": len(recordings),
    }
