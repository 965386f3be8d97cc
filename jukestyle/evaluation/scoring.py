"""Score methods on sets of pairs, in this process: what the cards measure.

A *row* is a method with its settings; a *set* is a list of pairs. Each (row, pair) is scored once, by
the shared pipeline (``StyleTransfer``: loudness, windows) and ``metrics.evaluate``, plus the level of
the decoder combs at the frame rates of levels 2, 1 and 0 (``frame_tone_level`` at periods 128, 32, 8).
Scores are kept as JSON under a work folder, keyed by the row's settings, the checksums of the decoder
files it reads and of the pair's audio, so that a card re-run computes only what changed, and never
reuses a row whose decoder was retrained.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jukestyle.audio.io import collected_warnings, load_audio
from jukestyle.errors import JukestyleError
from jukestyle.evaluation.metrics import ReferenceCache, evaluate, frame_tone_level
from jukestyle.evaluation.pair_sets import Pair
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
        """What the row's scores depend on: its settings, and the contents of every file it reads."""
        files = {name: sha256_file(value) for name, value in sorted(self.options.items()) if _is_file(value)}
        text = json.dumps({"method": self.method, "options": dict(self.options), "files": files}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _is_file(value: object) -> bool:
    return isinstance(value, str | Path) and Path(value).is_file()


def score_row(model: VQVAE, row: Row, pairs: Sequence[Pair], work: Path | None = None) -> list[dict]:
    """One record per pair: the metrics of ``row``'s output (or the error that stopped it)."""
    folder = None if work is None else Path(work) / row.key()
    method = make_method(row.method, **row.options)
    method.validate(model)
    engine = StyleTransfer(model, method)
    references = ReferenceCache()
    rate = model.sample_rate
    records = []
    for pair in pairs:
        path = None if folder is None else folder / f"{pair.pair_id}.json"
        inputs = {"content": sha256_file(pair.content), "style": sha256_file(pair.style)}
        if path is not None and path.is_file():
            stored = json.loads(path.read_text())
            if stored.get("inputs") == inputs:
                records.append(stored)
                continue
        record = {"pair_id": pair.pair_id, "row": row.label, "inputs": inputs}
        try:
            with collected_warnings():
                content, style = load_audio(pair.content, rate), load_audio(pair.style, rate)
                output = engine(content, style, pair.content, pair.style).audio
            refs = [references.get(audio_hash(audio), audio, rate) for audio in (content, style)]
            record.update(evaluate(output, *refs, rate))
            record.update({f"frame_tones_{p}": frame_tone_level(output, rate, p) for p in FRAME_PERIODS})
        except JukestyleError as error:  # e.g. no per-instrument decoder for this style: a row without it
            record["error"] = str(error)
        record = {key: None if isinstance(v, float) and not math.isfinite(v) else v for key, v in record.items()}
        if path is not None:
            write_json(path, record)
        records.append(record)
    return records


def summarise(records: Sequence[dict]) -> dict:
    """Pairs scored, the share of style wins, and the means of the content metrics and comb levels."""
    scored = [record for record in records if not record.get("error")]

    def mean(key: str) -> float | None:
        values = [record[key] for record in scored if record.get(key) is not None]
        return float(np.mean(values)) if values else None

    summary = {"pairs": len(scored)}
    summary["style_wins"] = float(np.mean([r["closer_to"] == "style" for r in scored])) if scored else None
    for key in ("pitch_accuracy", "chroma_similarity", "l2mfcc_source", "l2mfcc_style"):
        summary[key] = mean(key)
    for period in FRAME_PERIODS:
        summary[f"frame_tones_{period}"] = mean(f"frame_tones_{period}")
    return summary
