"""Score methods on sets of pairs, in this process: what the cards measure.

A *row* is a method with its settings; a *set* is a list of pairs. Each (row, pair) is rendered once, by
the shared pipeline (``StyleTransfer``: loudness, windows), and measured by the scoreboard
(``scoreboard.measure``: l2-mfcc, pitch, chroma, the decoder combs at the frame rates of levels 2, 1 and 0,
and, given a timbre metric, the timbre distances and embeddings).

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
from jukestyle.evaluation.metrics import ReferenceCache
from jukestyle.evaluation.pair_sets import Pair
from jukestyle.evaluation.scoreboard import TIMBRE_METRICS, Measurement, measure
from jukestyle.fileio import sha256_file, write_json
from jukestyle.jukebox import VQVAE
from jukestyle.methods import make_method
from jukestyle.pipeline import StyleTransfer, audio_hash


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
        self._references = ReferenceCache(timbre_metric=self.timbre_metric)

    def _measurement(self, output: np.ndarray, content: np.ndarray, style: np.ndarray) -> Measurement:
        rate = self.model.sample_rate
        refs = [self._references.get(audio_hash(audio), audio, rate) for audio in (content, style)]
        return Measurement(output, *refs, rate, self.timbre_metric)

    def _measured_by_this_metric(self, record: dict) -> bool:
        return self.timbre_metric is None or (
            record.get("timbre_metric") == self.timbre_sha and "timbre_embedding" in record
        )

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
            elif record.get("error") or self._measured_by_this_metric(record):
                records.append(record)  # as it was
                continue
            else:  # kept, measured by another timbre metric (or none): its timbre metrics again, not rendered
                rate = self.model.sample_rate
                content, style = load_audio(pair.content, rate), load_audio(pair.style, rate)
                record.update(measure(self._measurement(kept.audio(rate), content, style), TIMBRE_METRICS))
                record["timbre_metric"] = self.timbre_sha
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
        record.update(measure(self._measurement(output, content, style)), timbre_metric=self.timbre_sha)
        return record, output


def score_row(model: VQVAE, row: Row, pairs: Sequence[Pair], work: Path | None = None) -> list[dict]:
    """``Scorer(model, work).score(row, pairs)``: the classic metrics, no timbre metric."""
    return Scorer(model, work).score(row, pairs)
