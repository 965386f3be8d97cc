"""A run's report: ``report.md`` and ``figures/*.png`` from its records.

Over all pairs (when they span several experiments), then per experiment: a table of the
style-win rate and the mean metrics of every method, with the reference rows that show
each metric's scale (the plain reconstruction, and the content and the style themselves
as the output); the paper's bar plots (l2-mfcc to the source and to the style for each
method, as its Figs. 2-4): one panel per pair for experiments of a few pairs, the mean
over pairs otherwise, plus the paper's own Fig. 2 pair (piano to violin); and links to
the audio.
"""

from __future__ import annotations

import functools
import shutil
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from jukestyle.evaluation.figures import save_figure
from jukestyle.evaluation.scoreboard import SUMMARY_NAMES, markdown_table, summarise
from jukestyle.fileio import atomic_path, sha256_file, write_text

REFERENCE_ORDER = ("identity", "content_as_output", "style_as_output")
PAPER_FIGURE_2 = "piano-C4--violin-C4"  # the pair of the paper's Fig. 2
PANELS_UP_TO = 4  # experiments with at most this many pairs get one panel per pair
TABLE_COLUMNS = ("pairs", *SUMMARY_NAMES)


def _ok(records: list[dict]) -> list[dict]:
    return [record for record in records if not record.get("error")]


def method_order(records: list[dict]) -> list[str]:
    """Methods in the order they ran, then the references in a fixed order."""
    methods = list(dict.fromkeys(r["method"] for r in records if not r.get("reference")))
    present = {r["method"] for r in records}
    return methods + [name for name in REFERENCE_ORDER if name in present and name not in methods]


def summaries(records: list[dict]) -> dict[str, dict]:
    """The scoreboard's summaries of every method (``method_order``), of its successful records."""
    return {method: summarise([r for r in records if r["method"] == method]) for method in method_order(records)}


def experiments(records: list[dict]) -> dict[str, list[dict]]:
    groups = defaultdict(list)
    for record in records:
        groups[str(record.get("experiment") or "")].append(record)
    return dict(sorted(groups.items()))


def _title(experiment: str) -> str:
    return f"Experiment {experiment}" if experiment else "All pairs"


def _bars(axis: plt.Axes, methods: list[str], to_source: list[float], to_style: list[float], title: str) -> None:
    x = np.arange(len(methods))
    axis.bar(x - 0.2, to_source, width=0.4, label="l2-mfcc to source", color="#4c72b0")
    axis.bar(x + 0.2, to_style, width=0.4, label="l2-mfcc to style", color="#dd8452")
    axis.set_xticks(x, [m.replace("_as_output", "\nas output") for m in methods], rotation=30, ha="right", fontsize=8)
    axis.set_title(title, fontsize=9)
    axis.set_ylabel("l2-mfcc")


def pair_figure(records: list[dict], pair_ids: list[str], title: str, path: Path) -> Path:
    """One panel per pair: both distances for every method (the paper's Figs. 2-4)."""
    figure, axes = plt.subplots(1, len(pair_ids), figsize=(5 * len(pair_ids), 3.8), squeeze=False)
    for axis, pair_id in zip(axes[0], pair_ids, strict=True):
        rows = {r["method"]: r for r in _ok(records) if r["pair_id"] == pair_id}
        methods = [m for m in method_order(records) if m in rows]
        _bars(
            axis,
            methods,
            [rows[m]["l2mfcc_source"] for m in methods],
            [rows[m]["l2mfcc_style"] for m in methods],
            pair_id.replace("--", " to "),
        )
    axes[0][0].legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


def mean_figure(records: list[dict], title: str, path: Path) -> Path:
    """Mean distances over all pairs of an experiment, with the standard deviation."""
    summary = summaries(records)
    methods = [m for m, s in summary.items() if s["pairs"]]
    spread = {
        (m, key): float(np.nanstd([r[key] for r in _ok(records) if r["method"] == m]))
        for m in methods
        for key in ("l2mfcc_source", "l2mfcc_style")
    }
    figure, axis = plt.subplots(figsize=(max(5, 1.1 * len(methods) + 2), 3.8))
    _bars(
        axis,
        methods,
        [summary[m]["l2mfcc_source"] for m in methods],
        [summary[m]["l2mfcc_style"] for m in methods],
        title,
    )
    x = np.arange(len(methods))
    axis.errorbar(
        x - 0.2,
        [summary[m]["l2mfcc_source"] for m in methods],
        [spread[m, "l2mfcc_source"] for m in methods],
        fmt="none",
        ecolor="k",
        capsize=2,
    )
    axis.errorbar(
        x + 0.2,
        [summary[m]["l2mfcc_style"] for m in methods],
        [spread[m, "l2mfcc_style"] for m in methods],
        fmt="none",
        ecolor="k",
        capsize=2,
    )
    axis.legend(fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def figures_for(records: list[dict], folder: Path) -> dict[str, list[Path]]:
    """Figures per experiment."""
    made = {}
    for experiment, rows in experiments(records).items():
        stem = f"experiment_{experiment}" if experiment else "pairs"
        pair_ids = sorted({r["pair_id"] for r in _ok(rows)})
        if not pair_ids:
            continue
        paths = []
        if len(pair_ids) <= PANELS_UP_TO:
            paths.append(pair_figure(rows, pair_ids, _title(experiment), folder / f"{stem}.png"))
        else:
            paths.append(
                mean_figure(rows, f"{_title(experiment)}: mean over {len(pair_ids)} pairs", folder / f"{stem}.png")
            )
            if PAPER_FIGURE_2 in pair_ids:
                paths.append(
                    pair_figure(
                        rows,
                        [PAPER_FIGURE_2],
                        f"{_title(experiment)} (the paper's Fig. 2)",
                        folder / f"{stem}_{PAPER_FIGURE_2}.png",
                    )
                )
        made[experiment] = paths
    return made


def summary_table(records: list[dict]) -> list[str]:
    """Markdown table of every method's summaries, reference rows marked."""
    rows = []
    for method, values in summaries(records).items():
        reference = method in REFERENCE_ORDER and any(r.get("reference") and r["method"] == method for r in records)
        rows.append({"method": f"{method} (reference)" if reference else method, **values})
    return markdown_table(rows, ["method", *TABLE_COLUMNS])


@functools.lru_cache(maxsize=256)
def _checksum(path: Path, size: int, modified: float) -> str:
    """An input's sha256, taken once per file version however many pairs and reports link it."""
    return sha256_file(path)


def _input_link(path: str, role: str, output_dir: Path) -> str:
    """A link to an input relative to the report, so that a run folder moved or copied keeps it: an input
    outside the folder is copied into ``inputs/`` once, under its checksum and name."""
    source = Path(path)
    if not source.is_file():
        return f"{role}: {source.name} (missing)"
    output_dir = output_dir.resolve()
    if output_dir in source.resolve().parents:
        return f"[{role}]({source.resolve().relative_to(output_dir).as_posix()})"
    stat = source.stat()
    kept = output_dir / "inputs" / f"{_checksum(source, stat.st_size, stat.st_mtime)[:12]}-{source.name}"
    if not kept.is_file():
        kept.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(kept) as tmp:
            shutil.copyfile(source, tmp)
    return f"[{role}](inputs/{kept.name})"


def write_report(output_dir: Path, records: list[dict]) -> Path:
    """Write ``report.md`` and ``figures/*.png`` for a run's records; returns the report's path."""
    output_dir = Path(output_dir)
    figures = figures_for(records, output_dir / "figures")
    failed = [r for r in records if r.get("error")]
    lines = [
        "# Style-transfer report",
        "",
        "l2-mfcc: the paper's timbre distance (lower is closer); style wins: the share of outputs closer to the "
        "style than to the source. timbre: the learned timbre metric's cosine distance (`jukestyle.evaluation."
        "timbre`), timbre wins by it, and the Fréchet distance of the outputs' embeddings to the styles'. Content "
        "metrics against the source: pitch accuracy (share of voiced frames within 50 cents; monophonic content "
        "only) and chroma similarity (1 = same harmony over time). frame_tones_<hop>: the output's comb at the "
        "code rate of that hop, in dB under its strongest peak. Reference rows show each metric's scale: the plain "
        "reconstruction (identity), and the content or the style itself taken as the output. "
        "Every column: `jukestyle/evaluation/scoreboard.py`.",
        "",
    ]
    groups = experiments(records)
    if len(groups) > 1:  # e.g. the paper's 34 pairs: how each method does over all of them
        lines += ["## All pairs", "", *summary_table(records), ""]
    for experiment, rows in groups.items():
        lines += [f"## {_title(experiment)}", "", *summary_table(rows), ""]
        lines += [f"![{path.stem}](figures/{path.name})" for path in figures.get(experiment, [])] + [""]
        lines += ["<details><summary>audio</summary>", ""]
        for pair_id in sorted({r["pair_id"] for r in rows}):
            pair = [r for r in rows if r["pair_id"] == pair_id]
            links = [_input_link(pair[0][role], role, output_dir) for role in ("content", "style")]
            links += [f"[{r['method']}]({r['output']})" for r in pair if r.get("output")]
            lines.append(f"- {pair_id}: " + " · ".join(links))
        lines += ["", "</details>", ""]
    if failed:
        lines += ["## Failed", ""] + [f"- {r['pair_id']} ({r['method']}): {r['error']}" for r in failed] + [""]
    path = output_dir / "report.md"
    write_text(path, "\n".join(lines))
    return path
