"""A run's records: what a resumed run reuses, and results.csv's columns from the scoreboard."""

from __future__ import annotations

import csv

import numpy as np
from signals import harmonic_tone

from jukestyle.evaluation.records import RESULT_COLUMNS, FinishedRecords, read_records, write_record, write_results_csv
from jukestyle.evaluation.scoreboard import RECORD_COLUMNS

SR = 44100


def _record(tmp_path, **metrics) -> dict:
    content, style = tmp_path / "content.wav", tmp_path / "style.wav"
    for path in (content, style):
        path.write_bytes(b"audio")  # only their checksums are read
    return {
        "pair_id": "a--b",
        "output_id": "a--b",
        "method": "adain",
        "settings": {"alpha": 1.0},
        "model": "bundled",
        "content": str(content),
        "style": str(style),
        "error": None,
        "audio": harmonic_tone(261.63, 0.2).astype(np.float32),
        "sample_rate": SR,
        **metrics,
    }


def test_a_finished_record_is_reused_only_with_every_metric_of_the_scoreboard(tmp_path):
    transfers = tmp_path / "transfers"
    transfers.mkdir()
    measured = dict.fromkeys(RECORD_COLUMNS, None) | {"closer_to": "style", "l2mfcc_style": 1.0}
    record = _record(tmp_path, **measured)
    write_record(transfers, record)
    assert FinishedRecords(transfers).get(record)["closer_to"] == "style"
    older = _record(tmp_path, **{k: v for k, v in measured.items() if not k.startswith("timbre")})
    write_record(transfers, older)  # written before the timbre metric joined: measured again on resume
    assert FinishedRecords(transfers).get(older) is None


def test_results_csv_has_a_column_per_pair_metric(tmp_path):
    transfers = tmp_path / "transfers"
    transfers.mkdir()
    write_record(transfers, _record(tmp_path, **dict.fromkeys(RECORD_COLUMNS, 0.5), timbre_embedding=[0.1, 0.2]))
    write_results_csv(tmp_path / "results.csv", read_records(transfers))
    with open(tmp_path / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == RESULT_COLUMNS and "timbre_embedding" not in rows[0]
    assert all(rows[0][column] == "0.5" for column in RECORD_COLUMNS)


def test_a_record_being_written_is_not_read(tmp_path):
    """atomic_path's temporary of a record (empty while written, or left by a killed run) is skipped."""
    transfers = tmp_path / "transfers"
    transfers.mkdir()
    write_record(transfers, _record(tmp_path, **dict.fromkeys(RECORD_COLUMNS, 0.5)))
    (transfers / ".b--c.k2j3h4.part.json").touch()
    assert [record["pair_id"] for record in read_records(transfers)] == ["a--b"]
