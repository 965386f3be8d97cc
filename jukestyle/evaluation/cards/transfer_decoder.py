"""The transfer decoder's card: the decoder against the zero-shot methods and the per-instrument decoders,
on the paper's pairs and on pairs of instruments no training has heard, with its A/B and its curve.

Everything is scored in this process (``scoring.Scorer``; outputs and scores are kept under a work folder), and
written as ``TRANSFER_DECODER.md`` with ``transfer_card.csv`` (one row per set and row) and
``transfer_curve.png`` (the decoder's metrics against training steps, the baselines as dashed lines).
"""

from __future__ import annotations

import csv
import io
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jukestyle.errors import JukestyleError
from jukestyle.evaluation.figures import metric_curves_figure, save_figure
from jukestyle.evaluation.pair_sets import Pair
from jukestyle.evaluation.scoreboard import FRAME_PERIODS, SUMMARY_NAMES, markdown_table, print_value, summarise
from jukestyle.evaluation.scoring import Row, Scorer
from jukestyle.fileio import sha256_file, write_text
from jukestyle.jukebox import VQVAE
from jukestyle.jukebox.decoder_checkpoint import read_decoder

CURVE_METRICS = ("style_win_rate", "pitch_accuracy", "chroma_similarity")
FRAME_TONES = tuple(f"frame_tones_{period}" for period in FRAME_PERIODS)
COLUMNS = ("set", "row", "pairs", *SUMMARY_NAMES)  # every summary of the scoreboard


@dataclass(frozen=True)
class Arm:
    """One side of an A/B: a decoder file and the method that renders through it."""

    label: str
    decoder: Path
    method: str = "adain"

    def row(self) -> Row:
        return Row(self.label, self.method, {"decoder": str(self.decoder)})


def summarise_rows(
    scorer: Scorer, rows: Sequence[Row], sets: Mapping[str, Sequence[Pair]], progress: Callable[[str], None] = print
) -> list[dict]:
    """One summary per (set, row): ``COLUMNS``."""
    table = []
    for set_name, pairs in sets.items():
        for row in rows:
            summary = summarise(scorer.score(row, pairs))
            table.append({"set": set_name, "row": row.label, **summary})
            progress(f"{set_name} / {row.label}: {format_summary(summary)}")
    return table


def self_transfer(scorer: Scorer, rows: Sequence[Row], contents: Sequence[Pair]) -> dict[str, dict]:
    """Each content with itself as the style: how far each row's output is from the source (l2-mfcc), and in how
    many pairs it is nearer than the first row's (the plain reconstruction)."""
    own = list(
        {p.content: Pair(f"{Path(p.content).stem}--itself", p.content, p.content, "self") for p in contents}.values()
    )
    scores = {row.label: {r["pair_id"]: r for r in scorer.score(row, own) if not r.get("error")} for row in rows}
    baseline = scores[rows[0].label]
    result = {}
    for row in rows:
        distances = {pair: record["l2mfcc_source"] for pair, record in scores[row.label].items()}
        nearer = sum(distances[pair] < baseline[pair]["l2mfcc_source"] for pair in distances if pair in baseline)
        result[row.label] = {"pairs": len(distances), "l2mfcc_source": _mean(distances.values()), "nearer": nearer}
    return result


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def format_summary(summary: Mapping) -> str:
    return ", ".join(f"{k} {print_value(summary.get(k), k)}" for k in ("pairs", *CURVE_METRICS))


def write_csv(path: Path, rows: Sequence[Mapping], columns: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def curve_figure(curve: Sequence[Mapping], baselines: Mapping[str, Mapping], set_name: str, path: Path) -> Path:
    """The decoder's metrics on one set against its training steps, the baseline rows as dashed lines."""
    points = [point for point in curve if point["set"] == set_name]
    steps = [point["step"] for point in points]
    curves = {metric: [point[metric] if point[metric] is not None else math.nan for point in points]
              for metric in CURVE_METRICS}  # fmt: skip
    figure = metric_curves_figure(steps, curves, baselines, "training step", f"transfer decoder, {set_name} pairs")
    return save_figure(figure, path)


def decoder_facts(path: Path) -> dict:
    """What the card says of the shipped file: size, digest, steps, training time, recipe."""
    contents = read_decoder(path)
    training = contents.get("training") or {}
    return {
        "file": path.name,
        "MB": path.stat().st_size / 1e6,
        "sha256": sha256_file(path),
        "level": contents["level"],
        "steps": contents.get("step"),
        "hours": (contents.get("train_seconds") or 0.0) / 3600,
        "transfer": contents.get("transfer") or {},
        "hardware": training.get("hardware", ""),
        "lr": training.get("lr"),
        "batch_size": training.get("batch_size"),
        "crop_seconds": training.get("crop_seconds"),
    }


# -- what the card measures --------------------------------------------------------------------------
ZERO_SHOT = ("identity", "codebook", "adain", "wct", "gram")
LEVELS = (2, 1, 0)


def level_rows(methods: Sequence[str] = ZERO_SHOT, levels: Sequence[int] = LEVELS) -> list[Row]:
    """Every zero-shot method at every level, on the frozen model (the level table)."""
    rows = []
    for level in levels:
        for method in methods:
            options = {"level": level}
            if method == "gram":  # the encoder's Gram matrices at the level it decodes from
                options["layers"] = {level: "all"}
            rows.append(Row(f"{method} L{level}", method, options))
    return rows


def instrument_decoders_row(folder: Path | None) -> list[Row]:
    """The per-instrument decoders (one per style instrument, where one exists)."""
    return (
        []
        if folder is None or not Path(folder).is_dir()
        else [Row("per-instrument decoders", "decoder", {"checkpoint": str(folder)})]
    )


def transfer_rows(decoder: Path, methods: Sequence[str] = ("adain", "wct")) -> list[Row]:
    return [Row(f"{method} + transfer decoder", method, {"decoder": str(decoder)}) for method in methods]


# -- the card ------------------------------------------------------------------------------------
TABLE_COLUMNS = ("row", "pairs", "style_win_rate", "pitch_accuracy", "chroma_similarity", *FRAME_TONES,
                 "timbre_win_rate", "timbre_frechet")  # fmt: skip
STYLE_SOURCES = {"decoder": "itself", "frozen": "the bundled model's frozen decoder"}
SET_TITLES = {
    "paper": "The paper's 34 pairs (Experiments 1-3; instruments the transfer decoder trained on)",
    "heldout": "Held-out programs (content and style both unheard in training; content at D4, style at another note)",
}


def _for_set(table: Sequence[Mapping], set_name: str, labels: Sequence[str] | None = None) -> list[Mapping]:
    rows = [row for row in table if row["set"] == set_name]
    return rows if labels is None else [row for label in labels for row in rows if row["row"] == label]


def goals(table: Sequence[Mapping], decoder_label: str, identity_label: str, zero_shot: Sequence[str]) -> list[str]:
    """The issue's targets, each with the measured numbers and whether it is met."""

    def value(set_name: str, label: str, key: str) -> float | None:
        return next((row[key] for row in _for_set(table, set_name, [label])), None)

    lines = []
    held = {key: value("heldout", decoder_label, key) for key in ("style_win_rate", "pitch_accuracy")}
    identity_pitch = value("heldout", identity_label, "pitch_accuracy")
    checks = [
        ("held-out style wins >= 75%", held["style_win_rate"], lambda v: v >= 0.75),
        ("held-out pitch accuracy >= 80%", held["pitch_accuracy"], lambda v: v >= 0.80),
        (f"held-out pitch accuracy >= 90% of {identity_label}'s ({print_value(identity_pitch, 'pitch_accuracy')})",
         held["pitch_accuracy"], lambda v: identity_pitch is not None and v >= 0.9 * identity_pitch),
    ]  # fmt: skip
    for label in zero_shot:
        for key in ("style_win_rate", "pitch_accuracy"):
            other = value("heldout", label, key)
            checks.append((f"held-out {key} above {label}'s ({print_value(other, key)})", held[key],
                           lambda v, other=other: other is not None and v > other))  # fmt: skip
    paper = {key: value("paper", decoder_label, key) for key in ("style_win_rate", "pitch_accuracy")}
    checks += [
        ("paper style wins >= 68%", paper["style_win_rate"], lambda v: v >= 0.68),
        ("paper pitch accuracy >= 87%", paper["pitch_accuracy"], lambda v: v >= 0.87),
    ]
    for text, measured, test in checks:
        key = "style_win_rate" if "style wins" in text or "style_win_rate" in text else "pitch_accuracy"
        met = measured is not None and test(measured)
        lines.append(f"- {'met' if met else '**not met**'}: {text}: {print_value(measured, key)}")
    return lines


def card_lines(
    facts: Mapping,
    command: str,
    table: Sequence[Mapping],
    shown: Sequence[str],
    decoder_label: str,
    identity_label: str,
    zero_shot: Sequence[str],
    self_scores: Mapping[str, Mapping],
    curve: Sequence[Mapping],
    ab: Sequence[Mapping],
    levels: Sequence[Mapping],
) -> list[str]:
    transfer = facts["transfer"]
    lines = [
        "# The transfer decoder",
        "",
        f"`{facts['file']}`: one decoder for any style recording: level {facts['level']} of the bundled model, "
        f"trained to render {transfer.get('method', 'adain')}'s transferred features at the points "
        f"`{transfer.get('points')}` (styles measured by {STYLE_SOURCES.get(transfer.get('style_source'), '?')}). "
        f"{facts['MB']:.2f} MB, sha256 `{facts['sha256'][:16]}...`; {facts['steps']} steps of batch "
        f"{facts['batch_size']} crops of {facts['crop_seconds']:.2f} s, {facts['hours']:.2f} h on {facts['hardware']}.",
        "",
        "```",
        command,
        "```",
        "",
        "Metrics: *style wins*, the share of pairs whose output is nearer the style than the content by the paper's "
        "l2-mfcc; *pitch accuracy*, the share of the content's voiced frames that the output keeps within 50 cents "
        "(pYIN); *chroma*, the mean cosine of time-aligned chroma frames; *frame tones*, the level of the combs "
        "decoders leak at the codes' frame rates (344, 1378 and 5512 Hz: periods of 128, 32 and 8 samples), in dB "
        "under the output's strongest peak (lower is cleaner); *timbre wins*, the share of pairs whose output is "
        "nearer the style than the content by the timbre metric's embedding (cosine; `jukestyle.evaluation.timbre`), "
        "and *timbre frechet*, the Frechet distance between the outputs' and the styles' embeddings (lower is nearer; "
        "`-` without a metric).",
        "",
        "## Targets",
        "",
        *goals(table, decoder_label, identity_label, zero_shot),
    ]  # fmt: skip
    for set_name in dict.fromkeys(row["set"] for row in table):
        lines += ["", f"## {SET_TITLES.get(set_name, set_name)}", ""]
        lines += markdown_table(_for_set(table, set_name, shown), TABLE_COLUMNS)
    if self_scores:
        first = next(iter(self_scores))
        lines += ["", "## Style = content itself (held-out programs)", "",
                  "Each held-out content with itself as the style: l2-mfcc to the source (lower is nearer), and in "
                  f"how many contents the output is nearer the source than {first}'s.", "",
                  f"| row | contents | l2-mfcc to the source | nearer than {first} |", "|---|---|---|---|"]  # fmt: skip
        for label, scores in self_scores.items():
            lines.append(f"| {label} | {scores['pairs']} | {print_value(scores['l2mfcc_source'], 'l2mfcc_source')} | "
                         f"{scores['nearer']}/{scores['pairs']} |")  # fmt: skip
    if curve:
        lines += ["", "## Against training steps", "", "![curve](transfer_curve.png)", ""]
        lines += markdown_table(curve, ("set", "step", "pairs", *CURVE_METRICS, "frame_tones_32", "timbre_win_rate"))
    if ab:
        lines += [
            "",
            "## A/B (held-out programs; each arm trained as many steps as the main run's row beside it, "
            "from the bundled decoder)",
            "",
        ]
        lines += markdown_table(ab, ("set", "row", "pairs", *CURVE_METRICS, *FRAME_TONES, "timbre_win_rate"))
    if levels:
        lines += ["", "## Every zero-shot method at every level (frozen decoder)", ""]
        lines += markdown_table(levels, ("set", "row", "pairs", *CURVE_METRICS, "frame_tones_32", "timbre_win_rate"))
    return [*lines, ""]


# -- the whole card ------------------------------------------------------------------------------
DECODER_FILE = "transfer_decoder.pth.tar"
CARD_FILE = "TRANSFER_DECODER.md"
MAX_MEGABYTES = 2.0


def snapshot(run: Path, step: int) -> Path:
    return Path(run) / "snapshots" / f"step{step:07d}.pth.tar"


def build_card(
    model: VQVAE,
    run: Path,
    sets: Mapping[str, Sequence[Pair]],
    out: Path,
    work: Path,
    command: str,
    steps: Sequence[int] = (),
    arms: Sequence[Arm] = (),
    instrument_decoders: Path | None = None,
    levels: Sequence[Row] = (),
    timbre_metric: Path | None = None,
    progress: Callable[[str], None] = print,
) -> Path:
    """Ship ``run``'s decoder to ``out`` and measure its card there (see the module's docstring)."""
    source = Path(run) / "decoder.pth.tar"
    if not source.is_file():
        raise JukestyleError(f"{source}: no decoder (a finished experiment=train_transfer_decoder run folder)")
    if source.stat().st_size > MAX_MEGABYTES * 1e6:
        raise JukestyleError(
            f"{source}: {source.stat().st_size / 1e6:.1f} MB, over the {MAX_MEGABYTES} MB a card ships"
        )
    out.mkdir(parents=True, exist_ok=True)
    shipped = out / DECODER_FILE
    shutil.copyfile(source, shipped)
    facts = decoder_facts(shipped)
    level = facts["level"]
    frozen = [Row(f"{method} L{level}", method, {"level": level}) for method in ("identity", "adain", "wct")]
    rows = [*frozen, *instrument_decoders_row(instrument_decoders), *transfer_rows(shipped)]
    scorer = Scorer(model, work, timbre_metric)
    table = summarise_rows(scorer, rows, sets, progress)
    write_csv(out / "transfer_card.csv", table, COLUMNS)
    decoder_label = rows[-2].label
    self_scores = {}
    if "heldout" in sets:
        self_scores = self_transfer(scorer, [frozen[0], rows[-2]], sets["heldout"])
    curve = []
    for step in steps:
        if snapshot(run, step).is_file():
            row = Row(f"step {step}", "adain", {"decoder": str(snapshot(run, step))})
            curve += [{**point, "step": step} for point in summarise_rows(scorer, [row], sets, progress)]
    for set_name in sets if curve else ():
        baselines = {row["row"]: row for row in _for_set(table, set_name) if row["row"] != decoder_label}
        curve_figure(curve, baselines, set_name, out / f"transfer_curve_{set_name}.png")
    ab = []
    # The A/B asks what helps on instruments no training heard: measured on the held-out set where there is one.
    ab_sets = {"heldout": sets["heldout"]} if "heldout" in sets else sets
    for arm in arms:
        step = read_decoder(arm.decoder).get("step")
        main = Row(f"main run, step {step}", "adain", {"decoder": str(snapshot(run, step))})
        compared = [main] if snapshot(run, step).is_file() else []
        ab += summarise_rows(scorer, [*compared, arm.row()], ab_sets, progress)
    ab = list({(row["set"], row["row"]): row for row in ab}.values())  # the main run's row once per set
    level_table = summarise_rows(scorer, levels, sets, progress)
    lines = card_lines(facts, command, table, [row.label for row in rows], decoder_label, frozen[0].label,
                       [row.label for row in frozen[1:]], self_scores, curve, ab, level_table)  # fmt: skip
    lines = [line.replace("transfer_curve.png", "transfer_curve_heldout.png") for line in lines]
    write_text(out / CARD_FILE, "\n".join(lines))
    return out / CARD_FILE
