"""The scoreboard: every metric that judges a transfer, in one table.

Two kinds of entries:

- a ``PairMetric`` is computed for one output against its content (the *source*) and its style (``measure``);
  each is a field of a run's records, and a column of ``results.csv`` unless it is a vector;
- a ``Summary`` aggregates a method's records (``summarise``): a win rate, a mean, or a Fréchet distance. The
  summaries are the columns of ``report.md``, the W&B summaries (``summary/<method>/<name>``, reduced across
  devices by ``jukestyle_lightning.lightning_modules.summary_metrics``), the sweep summary and the cards'
  tables, each printed with its entry's format.

Adding a metric is one entry in ``PAIR_METRICS`` (and one in ``SUMMARIES`` to aggregate it), plus its test.

The timbre metrics need a timbre network (``timbre.py``; the shipped one unless another checkpoint is given);
without one (``timbre_metric=None``) they are None, as pitch accuracy is for polyphonic content.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from jukestyle.evaluation.metrics import Reference, chroma_similarity, frame_tone_level, mean_mfcc, pitch_accuracy
from jukestyle.evaluation.timbre import embed, frechet_distance, timbre_distance

FRAME_PERIODS = (128, 32, 8)  # samples per code of levels 2, 1 and 0 (344, 1378 and 5512 Hz at 44.1 kHz)


@dataclass
class Measurement:
    """One output against its source and style references: what every pair metric reads (each analysis of the
    output is made once, however many metrics read it)."""

    output: np.ndarray
    source: Reference
    style: Reference
    sample_rate: int
    timbre_metric: Path | None = None

    @cached_property
    def mfcc(self) -> np.ndarray:
        return mean_mfcc(self.output, self.sample_rate)

    @cached_property
    def timbre(self) -> np.ndarray | None:
        if self.timbre_metric is None or self.source.timbre is None or self.style.timbre is None:
            return None
        return embed(self.output, self.sample_rate, self.timbre_metric)


def _nearer(to_style: float | None, to_source: float | None) -> str | None:
    if to_style is None or to_source is None:
        return None
    return "style" if to_style < to_source else "source"


def _timbre_to(m: Measurement, reference: Reference) -> float | None:
    return None if m.timbre is None else timbre_distance(m.timbre, reference.timbre)


@dataclass(frozen=True)
class PairMetric:
    """A metric of one output: ``compute`` reads the measurement and the metrics listed before it."""

    name: str
    compute: Callable[[Measurement, dict], object]
    about: str
    column: bool = True  # a column of results.csv (vectors are kept in the records only)
    timbre: bool = False  # read from the timbre metric alone: measured again when that metric changes


PAIR_METRICS: tuple[PairMetric, ...] = (
    PairMetric(
        "l2mfcc_source",
        lambda m, _: float(np.linalg.norm(m.mfcc - m.source.mfcc)),
        "the paper's l2-mfcc of the output to the content (lower is nearer)",
    ),
    PairMetric(
        "l2mfcc_style",
        lambda m, _: float(np.linalg.norm(m.mfcc - m.style.mfcc)),
        "the paper's l2-mfcc of the output to the style",
    ),
    PairMetric(
        "closer_to",
        lambda _, row: _nearer(row["l2mfcc_style"], row["l2mfcc_source"]),
        "'style' where the output is nearer the style than the content by l2-mfcc (a style win)",
    ),
    PairMetric(
        "timbre_source",
        lambda m, _: _timbre_to(m, m.source),
        "the timbre metric's cosine distance of the output to the content",
        timbre=True,
    ),
    PairMetric("timbre_style", lambda m, _: _timbre_to(m, m.style), "the same, to the style", timbre=True),
    PairMetric(
        "timbre_closer_to",
        lambda _, row: _nearer(row["timbre_style"], row["timbre_source"]),
        "'style' where the output is nearer the style than the content by the timbre metric (a timbre win)",
        timbre=True,
    ),
    PairMetric(
        "pitch_accuracy",
        lambda m, _: pitch_accuracy(m.output, m.source, m.sample_rate),
        "share of the content's voiced frames where the output is within 50 cents (monophonic content only)",
    ),
    PairMetric(
        "chroma_similarity",
        lambda m, _: chroma_similarity(m.output, m.source, m.sample_rate),
        "mean cosine of aligned chroma frames of output and content where the content sounds",
    ),
    *(
        PairMetric(
            f"frame_tones_{period}",
            lambda m, _, period=period: frame_tone_level(m.output, m.sample_rate, period),
            f"dB of the output's comb at the code rate of {period}-sample hops, under its strongest peak",
        )
        for period in FRAME_PERIODS
    ),
    PairMetric(
        "timbre_embedding",
        lambda m, _: None if m.timbre is None else m.timbre.round(6).tolist(),
        "the output's timbre embedding",
        column=False,
        timbre=True,
    ),
    PairMetric(
        "style_timbre_embedding",
        lambda m, _: None if m.timbre is None else m.style.timbre.round(6).tolist(),
        "the style's timbre embedding (the Fréchet distance's other set)",
        column=False,
        timbre=True,
    ),
)

RECORD_COLUMNS = tuple(metric.name for metric in PAIR_METRICS if metric.column)
TIMBRE_METRICS = tuple(metric.name for metric in PAIR_METRICS if metric.timbre)


def measure(measurement: Measurement, names: Sequence[str] | None = None) -> dict:
    """The pair metrics of one output, in the table's order: all of them, or those ``names`` lists (each metric
    may read the ones before it in the table only if they are listed too)."""
    row: dict = {}
    for metric in PAIR_METRICS:
        if names is None or metric.name in names:
            row[metric.name] = metric.compute(measurement, row)
    return row


# -- summaries -------------------------------------------------------------------------------------------


def _finite(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and not math.isfinite(value))


def win_rate(records: Sequence[dict], key: str) -> float | None:
    """Share of the records whose ``key`` is 'style', of those that have it."""
    values = [record[key] == "style" for record in records if record.get(key)]
    return float(np.mean(values)) if values else None


def finite_mean(records: Sequence[dict], key: str) -> float | None:
    """Mean of the finite values of ``key`` (None and NaN: the metric does not apply)."""
    values = [float(record[key]) for record in records if _finite(record.get(key))]
    return float(np.mean(values)) if values else None


def frechet(records: Sequence[dict], outputs: str, styles: str) -> float | None:
    """Fréchet distance between the outputs' and the styles' embeddings (at least two records that have both)."""
    both = [record for record in records if record.get(outputs) and record.get(styles)]
    if len(both) < 2:
        return None
    return frechet_distance(np.array([r[outputs] for r in both]), np.array([r[styles] for r in both]))


AGGREGATES = {"win_rate": win_rate, "mean": finite_mean, "frechet": frechet}


@dataclass(frozen=True)
class Summary:
    """A method's figure over its records: ``kind`` (a key of ``AGGREGATES``) of the record fields ``reads``."""

    name: str
    kind: str
    reads: tuple[str, ...]
    format: str  # a format spec: ".0%", ".1f", ...
    about: str

    def aggregate(self, records: Sequence[dict]) -> float | None:
        return AGGREGATES[self.kind](records, *self.reads)

    def cell(self, value: object) -> str:
        """A table cell: '-' where the summary has no value."""
        if not _finite(value):
            return "-"
        return format(round(value, 9) + 0.0 if isinstance(value, float) else value, self.format)  # no "-0.000"


SUMMARIES: tuple[Summary, ...] = (
    Summary("style_win_rate", "win_rate", ("closer_to",), ".0%", "share of outputs nearer the style by l2-mfcc"),
    Summary("timbre_win_rate", "win_rate", ("timbre_closer_to",), ".0%", "share of outputs nearer the style by timbre"),
    Summary("pitch_accuracy", "mean", ("pitch_accuracy",), ".0%", "mean pitch accuracy (monophonic content)"),
    Summary("chroma_similarity", "mean", ("chroma_similarity",), ".3f", "mean chroma similarity to the content"),
    Summary("l2mfcc_source", "mean", ("l2mfcc_source",), ".1f", "mean l2-mfcc to the content"),
    Summary("l2mfcc_style", "mean", ("l2mfcc_style",), ".1f", "mean l2-mfcc to the style"),
    Summary("timbre_source", "mean", ("timbre_source",), ".3f", "mean timbre distance to the content"),
    Summary("timbre_style", "mean", ("timbre_style",), ".3f", "mean timbre distance to the style"),
    *(
        Summary(f"frame_tones_{p}", "mean", (f"frame_tones_{p}",), ".1f", f"mean comb level at {p}-sample hops (dB)")
        for p in FRAME_PERIODS
    ),
    Summary(
        "timbre_frechet",
        "frechet",
        ("timbre_embedding", "style_timbre_embedding"),
        ".3f",
        "Fréchet distance of the outputs' timbre embeddings to the styles' (lower is nearer)",
    ),
)
BY_NAME = {summary.name: summary for summary in SUMMARIES}
SUMMARY_NAMES = tuple(BY_NAME)


def summarise(records: Sequence[dict]) -> dict:
    """``pairs`` (records without an error) and every summary of them."""
    scored = [record for record in records if not record.get("error")]
    return {"pairs": len(scored), **{summary.name: summary.aggregate(scored) for summary in SUMMARIES}}


def print_value(value: object, name: str) -> str:
    """A table cell for the summary ``name``, or for any other column (counts and text as they are)."""
    if name in BY_NAME:
        return BY_NAME[name].cell(value)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> list[str]:
    """A Markdown table of ``rows`` (dicts) with the given columns, each cell printed by ``print_value``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [print_value(row.get(column), column).replace("|", "\\|") for column in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
