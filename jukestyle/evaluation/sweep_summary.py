"""A sweep's summary: one row per job (and method) with its settings and metrics.

Every run writes ``run.json`` (status, error, overrides, wall time) into its folder;
a sweep's jobs are the numbered sub-folders of the sweep folder. The summary is
built from those files and each job's records, so it is the same whichever
launcher ran the jobs (in-process, joblib, SLURM) and whether or not they failed.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from jukestyle.evaluation.records import read_records
from jukestyle.evaluation.report import TABLE_COLUMNS, summaries
from jukestyle.evaluation.scoreboard import markdown_table
from jukestyle.fileio import write_text

SUMMARY_COLUMNS = ["job", "status", "overrides", "method", *TABLE_COLUMNS, "seconds", "error"]


def job_rows(job_dir: Path) -> list[dict]:
    """Rows of one job: one per style-transfer method of the run (references left out)."""
    try:
        run = json.loads((job_dir / "run.json").read_text())
    except (OSError, ValueError):
        run = {"status": "unknown", "error": "no run.json: the job did not finish (killed, or still running)"}
    base = {
        "job": job_dir.name,
        "status": run.get("status"),
        "overrides": list(run.get("overrides") or []),
        "seconds": run.get("seconds"),
        "error": run.get("error"),
    }
    records = [record for record in read_records(job_dir / "transfers") if not record.get("reference")]
    summary = summaries(records)
    if not summary:
        return [{**base, "method": None}]
    return [{**base, "method": method, **values} for method, values in summary.items()]


def sweep_rows(sweep_dir: Path) -> tuple[list[dict], list[str]]:
    """Rows of every job, each showing only the overrides that vary across the sweep; and the common ones."""
    jobs = [folder for folder in Path(sweep_dir).iterdir() if folder.is_dir() and folder.name.isdigit()]
    rows = [row for job in sorted(jobs, key=lambda folder: int(folder.name)) for row in job_rows(job)]
    listed = [row["overrides"] for row in rows if row["status"] != "unknown"]
    common = [o for o in listed[0] if all(o in overrides for overrides in listed)] if listed else []
    for row in rows:
        row["overrides"] = " ".join(o for o in row["overrides"] if o not in common)
    return rows, common


def _cell(value: object) -> str:
    """A CSV cell: numbers at full precision (the Markdown table prints them by the scoreboard)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def write_sweep_summary(sweep_dir: Path) -> tuple[Path, list[dict]]:
    """Write ``sweep_summary.csv`` and ``sweep_summary.md`` into the sweep folder."""
    sweep_dir = Path(sweep_dir)
    rows, common = sweep_rows(sweep_dir)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: _cell(row.get(column)) for column in SUMMARY_COLUMNS})
    write_text(sweep_dir / "sweep_summary.csv", buffer.getvalue())
    lines = [
        f"# Sweep summary: {sweep_dir.name}",
        "",
        "One row per job and method; metrics are means over the job's pairs (references left out).",
        "",
        "Common to all jobs: " + (" ".join(f"`{o}`" for o in common) or "nothing"),
        "",
        *markdown_table(rows, SUMMARY_COLUMNS),
    ]
    write_text(sweep_dir / "sweep_summary.md", "\n".join(lines) + "\n")
    return sweep_dir / "sweep_summary.csv", rows
