"""What do a level's codes know of the instrument? A linear probe on pooled codes.

Every file of a corpus (``manifest.csv`` with ``split`` and ``program``) is cut into
segments; each segment is described three ways:

- ``source``: mean and standard deviation over time of the source audio's MFCCs;
- ``codes``: the histogram of the level's codes in the segment (a bag of codes; on the
  bundled model it classified programs 29% right where the mean and deviation of the
  quantised latent managed 13%);
- ``reconstruction``: the MFCC statistics of the level's decoded audio.

A logistic regression fit on the training split's segments classifies the validation
split's segments (unseen (program, pitch) pairs) by General MIDI program and by GM
family (8 programs each). If the codes classify about as well as the source audio but
the reconstruction does not, the encoder kept the instrument and the decoder lost it,
so the decoder is the stage to train; if the codes already fail, the encoder is.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from jukestyle.audio.io import load_audio
from jukestyle.jukebox import VQVAE

VIEWS = ("source", "codes", "reconstruction")
PROGRAMS_PER_FAMILY = 8  # General MIDI groups its 128 programs in 16 families of 8


def _mfcc_stats(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    mfcc = librosa.feature.mfcc(y=samples.astype(np.float32), sr=sample_rate, n_mfcc=20, n_fft=2048, hop_length=512)
    return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)])


@dataclass
class Segments:
    features: dict[str, np.ndarray]  # view -> (segments, dims)
    programs: np.ndarray  # (segments,)


@torch.no_grad()
def describe(
    model: VQVAE,
    corpus: Path,
    split: str,
    level: int,
    segment_seconds: float = 2.0,
    max_segments: int = 8,
) -> Segments:
    """The three views of up to ``max_segments`` segments of every file of ``split``."""
    sample_rate, hop = model.sample_rate, model.hop_length(level)
    length = int(segment_seconds * sample_rate) // hop * hop
    with open(corpus / "manifest.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == split]
    features: dict[str, list[np.ndarray]] = {view: [] for view in VIEWS}
    programs = []
    for row in rows:
        audio = load_audio(corpus / row["file"], sample_rate)
        count = min(max_segments, len(audio) // length)
        if count == 0:
            continue
        batch = torch.from_numpy(audio[: count * length].reshape(count, 1, length).copy())
        codes = model.encode(batch, level)
        output = model.decode(codes, level).reshape(count, -1).numpy()
        histograms = np.stack([np.bincount(c, minlength=model.config.l_bins) for c in codes.numpy()])
        features["codes"].append(histograms / histograms.sum(axis=1, keepdims=True))
        features["source"].append(np.stack([_mfcc_stats(s, sample_rate) for s in batch.reshape(count, -1).numpy()]))
        features["reconstruction"].append(np.stack([_mfcc_stats(s, sample_rate) for s in output]))
        programs += [int(row["program"])] * count
    if not programs:
        raise ValueError(f"{corpus}: no {split} file is as long as one {segment_seconds} s segment")
    return Segments({view: np.concatenate(parts) for view, parts in features.items()}, np.array(programs))


def probe_accuracy(
    train: Segments, validation: Segments, regularisation: float = 0.1, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Validation accuracy of a logistic regression per view, for programs and for GM families
    (``regularisation``: the inverse strength C; 0.1 suits the 2048-bin histograms)."""
    results: dict[str, dict[str, float]] = {}
    for view in VIEWS:
        results[view] = {}
        for target, divisor in (("program", 1), ("family", PROGRAMS_PER_FAMILY)):
            classifier = make_pipeline(
                StandardScaler(), LogisticRegression(C=regularisation, max_iter=3000, random_state=seed)
            )
            classifier.fit(train.features[view], train.programs // divisor)
            predicted = classifier.predict(validation.features[view])
            results[view][target] = float(np.mean(predicted == validation.programs // divisor))
    return results


def instrument_probe(model: VQVAE, corpus: Path, level: int, **segments: float) -> dict[str, dict[str, float]]:
    """Describe the corpus's train and val splits at ``level`` and return ``probe_accuracy``."""
    return probe_accuracy(
        describe(model, corpus, "train", level, **segments), describe(model, corpus, "val", level, **segments)
    )
