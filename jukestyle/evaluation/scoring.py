"""Score methods on sets of pairs, in this process: what the cards measure.

A *row* is a method with its settings; a *set* is a list of pairs. Each (row, pair) is rendered once, by
the shared pipeline (``StyleTransfer``: loudness, windows), and measured by ``metrics.evaluate``, by the
level of the decoder combs at the frame rates of levels 2, 1 and 0 (``frame_tone_level`` at periods 128,
32 and 8), and, given a timbre metric (``timbre.py``), by the timbre distances of the output to the style
and to the content and the output's embedding (for Fréchet distances between sets).

Under a work folder every output is kept (``<row key>/<pair_id>.flac``) with its scores (``.json``),
keyed by the row's settings, the checksums of the files it reads and of the pair's audio: a card re-run
computes only what changed, never reuses a row whose decoder was retrained, and a new timbre metric
measures the kept outputs without rendering them again.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jukestyle.audio.io import collected_warnings, load_audio, save_audio
from jukestyle.errors import JukestyleError
from jukestyle.evaluation.metrics import ReferenceCache, evaluate, frame_tone_level
from jukestyle.evaluation.pair_sets import Pair
from jukestyle.evaluation.timbre import embed, frechet_distance, timbre_distance
from jukestyle.fileio import sha256_file, write_json
from jukestyle.jukebox import VQVAE
from jukestyle.methods import make_method
from jukestyle.pipeline import StyleTransfer, audio_hash

FRAME_PERIODS = (128, 32, 8)  # samples per frame of levels 2, 1 and 0's codes (344, 1378 and 5512 Hz)


@dataclass(frozen=True)
class Row:
    """A method with its settings, under the name a card prints."""

    label: str
    method: str
    options: Mapping = field(default_factory=dict)

    def key(self) -> str:
        """What the row's outputs depend on: its settings, and the contents of every file it reads."""
        # A file counts by its contents, not its path: a decoder copied to where it ships keeps its scores.
        options = {name: sha256_file(value) if _is_file(value) else value for name, value in self.options.items()}
        text = json.dumps({"method": self.method, "options": options}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _is_file(value: object) -> bool:
    return isinstance(value, str | Path) and Path(value).is_file()


def _finite(record: dict) -> dict:
    return {key: None if isinstance(v, float) and not math.isfinite(v) else v for key, v in record.items()}


class _Kept:
    """One (row, pair)'s record and output under the work folder (nothing is kept without one)."""

    def __init__(self, folder: Path | None, pair_id: str) -> None:
        self.json = None if folder is None else folder / f"{pair_id}.json"
        self.flac = None if folder is None else folder / f"{pair_id}.flac"

    def record(self, inputs: dict) -> dict | None:
        """The kept record, if it is of these inputs and its output (unless it failed) is kept too."""
        if self.json is None or not self.json.is_file():
            return None
        record = json.loads(self.json.read_text())
        if record.get("inputs") != inputs or not (record.get("error") or self.flac.is_file()):
            return None
        return record

    def audio(self, sample_rate: int) -> np.ndarray:
        return load_audio(self.flac, sample_rate)

    def save_audio(self, audio: np.ndarray | None, sample_rate: int, comment: str) -> None:
        if self.flac is not None and audio is not None:
            save_audio(self.flac, audio, sample_rate, comment=comment)

    def save_record(self, record: dict) -> dict:
        if self.json is not None:
            write_json(self.json, record)
        return record


class Scorer:
    """Renders and measures rows on pairs for one model (and, optionally, one timbre metric checkpoint)."""

    def __init__(self, model: VQVAE, work: Path | None = None, timbre_metric: Path | None = None) -> None:
        self.model, self.work = model, None if work is None else Path(work)
        self.timbre_metric = None if timbre_metric is None else Path(timbre_metric)
        self.timbre_sha = None if timbre_metric is None else sha256_file(timbre_metric)[:16]
        self._references = ReferenceCache()
        self._embeddings: dict[str, np.ndarray] = {}  # audio hash -> the timbre embedding of an input

    def _embedding(self, audio: np.ndarray) -> np.ndarray:
        key = audio_hash(audio)
        if key not in self._embeddings:
            self._embeddings[key] = embed(audio, self.model.sample_rate, self.timbre_metric)
        return self._embeddings[key]

    def _timbre(self, output: np.ndarray, content: np.ndarray, style: np.ndarray) -> dict:
        vector = embed(output, self.model.sample_rate, self.timbre_metric)
        to_style = timbre_distance(vector, self._embedding(style))
        to_source = timbre_distance(vector, self._embedding(content))
        return {
            "timbre_metric": self.timbre_sha,
            "timbre_source": to_source,
            "timbre_style": to_style,
            "timbre_closer_to": "style" if to_style < to_source else "source",
            "embedding": vector.round(6).tolist(),
            "style_embedding": self._embedding(style).round(6).tolist(),
        }

    def score(self, row: Row, pairs: Sequence[Pair]) -> list[dict]:
        """One record per pair: the metrics of ``row``'s output (or the error that stopped it)."""
        folder = None if self.work is None else self.work / row.key()
        engines: list[StyleTransfer] = []  # built at the first pair that needs rendering
        records = []
        for pair in pairs:
            inputs = {"content": sha256_file(pair.content), "style": sha256_file(pair.style)}
            kept = _Kept(folder, pair.pair_id)
            record, output = kept.record(inputs), None
            if record is None:  # not scored yet, other inputs, or the output was lost: rendered
                engines = engines or [self._engine(row)]
                record, output = self._render(engines[0], row, pair, inputs)
                kept.save_audio(output, self.model.sample_rate, f"jukestyle {row.label}: {pair.pair_id}")
            elif record.get("error") or self.timbre_metric is None or record.get("timbre_metric") == self.timbre_sha:
                records.append(record)  # as it was
                continue
            if self.timbre_metric is not None and not record.get("error"):  # a new output, or a new metric
                rate = self.model.sample_rate
                output = kept.audio(rate) if output is None else output
                record.update(self._timbre(output, load_audio(pair.content, rate), load_audio(pair.style, rate)))
            records.append(kept.save_record(_finite(record)))
        return records

    def _engine(self, row: Row) -> StyleTransfer:
        method = make_method(row.method, **row.options)
        method.validate(self.model)
        return StyleTransfer(self.model, method)

    def _render(self, engine: StyleTransfer, row: Row, pair: Pair, inputs: dict) -> tuple[dict, np.ndarray | None]:
        rate = self.model.sample_rate
        record = {"pair_id": pair.pair_id, "row": row.label, "inputs": inputs}
        try:
            with collected_warnings():
                content, style = load_audio(pair.content, rate), load_audio(pair.style, rate)
                output = engine(content, style, pair.content, pair.style).audio
        except JukestyleError as error:  # e.g. no per-instrument decoder for this style: a row without it
            record["error"] = str(error)
            return record, None
        refs = [self._references.get(audio_hash(audio), audio, rate) for audio in (content, style)]
        record.update(evaluate(output, *refs, rate))
        record.update({f"frame_tones_{p}": frame_tone_level(output, rate, p) for p in FRAME_PERIODS})
        return record, output


def score_row(model: VQVAE, row: Row, pairs: Sequence[Pair], work: Path | None = None) -> list[dict]:
    """``Scorer(model, work).score(row, pairs)``: the classic metrics, no timbre metric."""
    return Scorer(model, work).score(row, pairs)


def summarise(records: Sequence[dict]) -> dict:
    """Pairs scored, the share of style wins (l2-mfcc, and by timbre where measured), the means of the content
    metrics and comb levels, and the Fréchet distance of the outputs' embeddings to the styles'."""
    scored = [record for record in records if not record.get("error")]

    def mean(key: str) -> float | None:
        values = [record[key] for record in scored if record.get(key) is not None]
        return float(np.mean(values)) if values else None

    def rate(key: str) -> float | None:
        values = [record[key] == "style" for record in scored if record.get(key)]
        return float(np.mean(values)) if values else None

    summary = {"pairs": len(scored), "style_wins": rate("closer_to"), "timbre_wins": rate("timbre_closer_to")}
    for key in (
        "pitch_accuracy",
        "chroma_similarity",
        "l2mfcc_source",
        "l2mfcc_style",
        "timbre_source",
        "timbre_style",
    ):
        summary[key] = mean(key)
    for period in FRAME_PERIODS:
        summary[f"frame_tones_{period}"] = mean(f"frame_tones_{period}")
    embedded = [record for record in scored if record.get("embedding")]
    summary["timbre_frechet"] = (
        frechet_distance(
            np.array([r["embedding"] for r in embedded]), np.array([r["style_embedding"] for r in embedded])
        )
        if len(embedded) > 1
        else None
    )
    return summary
