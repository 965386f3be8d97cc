"""A run's results on disk: one record per (pair, method), and the results table.

``transfers/<output_id>.wav`` holds the output audio and ``transfers/<output_id>.json``
its metadata (settings, timings, metrics, checksums of the inputs and the output,
or the error). The JSON is written last, so its presence means the record is
complete. ``results.csv`` is derived from the JSON files, which makes it the same
however many processes wrote the records.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from jukestyle.audio.io import save_audio
from jukestyle.evaluation.scoreboard import RECORD_COLUMNS
from jukestyle.fileio import finished_files, sha256_file, write_json, write_text

RESULT_COLUMNS = [
    "pair_id",
    "experiment",
    "content",
    "style",
    "method",
    "reference",  # true for the rows that show the metrics' scale: identity, content/style as output
    *RECORD_COLUMNS,  # the scoreboard's pair metrics
    "seconds",
    "output",
    "error",
    "warnings",  # what the input or output had that was probably not meant (silence, clipping, ...), "; "-joined
]


def _checksum(path: str) -> str | None:
    """The file's sha256, or None where there is none to take (missing, or not readable: that pair's own
    error says so; a record is still written and the run goes on)."""
    try:
        return sha256_file(path) if Path(path).is_file() else None
    except OSError:
        return None


def _no_nan(value: object) -> object:
    """NaN (a metric that does not apply) as null: JSON has no NaN."""
    return None if isinstance(value, float) and math.isnan(value) else value


def write_record(transfers: Path, record: dict, run_config: str | None = None) -> dict:
    """Write a record's audio (if any), then its JSON metadata; returns the metadata."""
    metadata = {key: _no_nan(value) for key, value in record.items() if key != "audio"}
    metadata["checksums"] = {"content": _checksum(record["content"]), "style": _checksum(record["style"])}
    if run_config:
        metadata["run_config"] = run_config
    if record.get("audio") is not None:
        wav = transfers / f"{record['output_id']}.wav"
        comment = (
            f"jukestyle {record['method']}: {Path(record['content']).name} in the style of {Path(record['style']).name}"
        )
        save_audio(wav, record["audio"], record["sample_rate"], comment=comment)
        metadata["output"] = str(wav.relative_to(transfers.parent))
        metadata["checksums"]["output"] = sha256_file(wav)
        metadata["duration_seconds"] = len(record["audio"]) / record["sample_rate"]
    write_json(transfers / f"{record['output_id']}.json", metadata)
    return metadata


class FinishedRecords:
    """The complete records of an earlier run into the same folder, for resuming it.

    A record counts as finished when it has no error, its output audio is on disk
    with the checksum in its metadata, it was made from the same content and
    style files (checksums), the same method settings and the same model, and it
    has every metric of the scoreboard. Pairs that failed, changed, lost their
    audio or miss a metric are computed again.
    """

    def __init__(self, transfers: Path) -> None:
        self.transfers = Path(transfers)
        self._input_checksums: dict[str, str | None] = {}

    def _input_checksum(self, path: str) -> str | None:
        if path not in self._input_checksums:  # a file is hashed once per run, however many pairs use it
            self._input_checksums[path] = _checksum(path)
        return self._input_checksums[path]

    def get(self, record: dict) -> dict | None:
        """The stored metadata of ``record`` (a record about to be computed), if it is finished."""
        path = self.transfers / f"{record['output_id']}.json"
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if stored.get("error") or not stored.get("output"):
            return None
        if any(column not in stored for column in RECORD_COLUMNS):  # measured before a metric joined the scoreboard
            return None
        expected = {key: record.get(key) for key in ("pair_id", "method", "settings", "model")}
        if any(stored.get(key) != value for key, value in json.loads(json.dumps(expected, default=str)).items()):
            return None
        checksums = stored.get("checksums") or {}
        for role in ("content", "style"):
            if checksums.get(role) is None or checksums.get(role) != self._input_checksum(record[role]):
                return None
        output = self.transfers.parent / stored["output"]
        if not output.is_file() or sha256_file(output) != checksums.get("output"):
            return None
        return stored


def read_records(transfers: Path) -> list[dict]:
    """Every complete record under ``transfers``, sorted by pair and method."""
    records = [json.loads(path.read_text()) for path in finished_files(transfers, "*.json")]  # none without a folder
    return sorted(records, key=lambda record: (record["pair_id"], record["method"]))


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):  # NaN: the metric does not apply
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "; ".join(map(str, value))
    return str(value)


def results_rows(records: list[dict]) -> list[dict]:
    rows = []
    for record in records:
        row = {column: record.get(column) for column in RESULT_COLUMNS}
        row["seconds"] = (record.get("seconds") or {}).get("total")
        row["reference"] = bool(record.get("reference", False))
        rows.append(row)
    return rows


def write_results_csv(path: Path, records: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in results_rows(records):
        writer.writerow({column: _cell(row[column]) for column in RESULT_COLUMNS})
    write_text(path, buffer.getvalue())
