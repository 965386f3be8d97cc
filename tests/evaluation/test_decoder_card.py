"""The decoder card's logic: which runs ship, the steps every run kept, and the card from records of the tiny
model's real decoder transfers (rendered in this process, as ``scripts/run.py`` would in its own)."""

from __future__ import annotations

import csv
import shutil

import pytest
from project import REPO

from jukestyle.errors import JukestyleError
from jukestyle.evaluation.cards import decoders as card
from jukestyle.evaluation.pair_sets import Pair
from jukestyle.evaluation.scoring import Row, Scorer
from jukestyle.evaluation.timbre import BUNDLED
from jukestyle.jukebox.decoder_checkpoint import save_decoder

EXP1 = REPO / "data" / "exp1"
PAIRS = [Pair("piano-C4--flute-C4", str(EXP1 / "piano-C4.flac"), str(EXP1 / "flute-C4.flac"), "1")]


def make_run(folder, tiny_model, steps=(2, 3), finished=True):
    """A train_decoder run folder: its decoder, snapshots at ``steps`` and (if finished) its run.json."""
    (folder / "snapshots").mkdir(parents=True)
    for step in steps:
        save_decoder(folder / "snapshots" / f"step{step:07d}.pth.tar", tiny_model, 2, step=step)
    save_decoder(folder / card.DECODER_FILE, tiny_model, 2, step=steps[-1])
    (folder / "csv" / "version_0").mkdir(parents=True)
    (folder / "csv" / "version_0" / "metrics.csv").write_text("step,val/loss\n2,0.5\n3,\n3,0.25\n")
    if finished:
        (folder / "run.json").write_text('{"status": "completed"}')


def test_only_finished_runs_ship_and_the_curve_takes_the_steps_they_all_kept(tiny_model, tmp_path):
    make_run(tmp_path / "runs" / "flute", tiny_model, steps=(2, 3))
    make_run(tmp_path / "runs" / "organ", tiny_model, steps=(1, 3))
    make_run(tmp_path / "runs" / "violin", tiny_model, finished=False)
    left_out = []
    runs = card.decoder_runs(tmp_path / "runs", left_out.append)
    assert list(runs) == ["flute", "organ"] and "violin: not finished" in left_out[0]
    assert card.snapshot_steps(runs) == [3]
    assert card.last_validation_loss(runs["flute"]) == 0.25
    with pytest.raises(JukestyleError, match="no finished run folder"):
        card.decoder_runs(tmp_path / "nothing")


def test_the_card_summarises_the_decoder_rows_by_the_scoreboard(tiny_model, tmp_path):
    make_run(tmp_path / "runs" / "flute", tiny_model)
    scorer = Scorer(tiny_model, tmp_path / "scores", BUNDLED)

    def render(decoders, out):  # method=decoder on the pair, scored as run.py scores it
        records = scorer.score(Row("decoder", "decoder", {"checkpoint": str(decoders)}), PAIRS)
        return [{**record, "method": "decoder"} for record in records]

    fewer = tmp_path / "fewer"
    shutil.copytree(tmp_path / "runs" / "flute", fewer / "flute")
    inputs = card.DecoderCardInputs(tmp_path / "runs", tmp_path / "out", tmp_path / "work", minutes=[fewer])
    path = card.build_decoder_card(inputs, render, progress=lambda text: None)
    assert (tmp_path / "out" / "flute.pth.tar").is_file()
    with open(tmp_path / "out" / "decoder_curve.csv", newline="") as handle:
        curve = list(csv.DictReader(handle))
    assert [(row["step"], row["pairs"]) for row in curve] == [("2", "1"), ("3", "1")]
    assert all(row["timbre_win_rate"] in ("0.0", "1.0") and float(row["frame_tones_32"]) < 0 for row in curve)
    with open(tmp_path / "out" / "decoder_minutes.csv", newline="") as handle:
        assert [row["set"] for row in csv.DictReader(handle)] == ["shipped", "fewer"]
    text = path.read_text()
    assert "| flute | 3 |" in text and "| step | train_minutes | style_win_rate | timbre_win_rate |" in text
    last = next(line for line in text.splitlines() if line.startswith("| 3 |"))
    assert f"| {float(curve[-1]['frame_tones_32']):.1f} |" in last  # printed by the scoreboard's format


def test_a_decoder_over_the_size_limit_is_not_shipped(tiny_model, tmp_path, monkeypatch):
    make_run(tmp_path / "runs" / "flute", tiny_model)
    monkeypatch.setattr(card, "SIZE_LIMIT", 10)
    with pytest.raises(JukestyleError, match="over the"):
        card.ship(card.decoder_runs(tmp_path / "runs"), tmp_path)
