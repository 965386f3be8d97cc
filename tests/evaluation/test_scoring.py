"""Scoring methods on sets of pairs in-process: records, summaries, and scores kept by what they depend on."""

from __future__ import annotations

import shutil

import pytest
import torch
from project import REPO

from jukestyle.evaluation import scoring
from jukestyle.evaluation.pair_sets import Pair
from jukestyle.evaluation.scoreboard import FRAME_PERIODS, summarise
from jukestyle.evaluation.timbre import TimbreNet, save_metric

EXP1 = REPO / "data" / "exp1"
PAIRS = [Pair("piano-C4--flute-C4", str(EXP1 / "piano-C4.flac"), str(EXP1 / "flute-C4.flac"))]


def test_a_row_is_scored_once_and_kept_by_its_settings_and_files(tiny_model, tiny_decoders, tmp_path, monkeypatch):
    row = scoring.Row("adain L1", "adain", {"level": 1})
    (record,) = scoring.score_row(tiny_model, row, PAIRS, tmp_path)
    assert record["closer_to"] in ("source", "style") and record["pitch_accuracy"] is not None
    assert set(FRAME_PERIODS) == {int(key.rsplit("_", 1)[1]) for key in record if key.startswith("frame_")}
    monkeypatch.setattr(scoring, "measure", lambda *args, **kwargs: pytest.fail("scored again"))
    assert scoring.score_row(tiny_model, row, PAIRS, tmp_path) == [record]
    # a decoder file retrained in place is another row: its scores are not reused
    decoder = tmp_path / "decoder.pth.tar"
    shutil.copy(tiny_decoders[1], decoder)
    with_decoder = scoring.Row("adain + decoder", "adain", {"decoder": str(decoder)})
    monkeypatch.undo()
    scoring.score_row(tiny_model, with_decoder, PAIRS, tmp_path)
    shutil.copy(tiny_decoders[2], decoder)  # another file under the same name
    assert with_decoder.key() != scoring.Row("adain + decoder", "adain", {"decoder": str(tiny_decoders[1])}).key()
    # the same file copied where it ships is the same row: its scores carry over
    shipped = tmp_path / "shipped.pth.tar"
    shutil.copy(decoder, shipped)
    assert with_decoder.key() == scoring.Row("shipped", "adain", {"decoder": str(shipped)}).key()


def test_a_pair_a_row_cannot_render_is_left_out_of_its_summary(tiny_model, tiny_decoders, tmp_path):
    folder = tmp_path / "decoders"
    folder.mkdir()
    shutil.copy(tiny_decoders[2], folder / "violin.pth.tar")  # no flute decoder: the pair's style is a flute
    (record,) = scoring.score_row(tiny_model, scoring.Row("decoders", "decoder", {"checkpoint": str(folder)}), PAIRS)
    assert "no decoder for" in record["error"]
    assert summarise([record])["pairs"] == 0 and summarise([record])["style_win_rate"] is None


def test_a_timbre_metric_measures_the_kept_outputs_without_rendering_them_again(tiny_model, tmp_path, monkeypatch):
    torch.manual_seed(0)
    metric = tmp_path / "metric.pth.tar"
    save_metric(metric, TimbreNet())
    row = scoring.Row("identity L2", "identity", {"level": 2})
    pairs = [*PAIRS, Pair("flute-C4--piano-C4", PAIRS[0].style, PAIRS[0].content)]
    plain = scoring.Scorer(tiny_model, tmp_path / "work").score(row, pairs)
    assert plain[0]["timbre_style"] is None and (tmp_path / "work" / row.key() / f"{PAIRS[0].pair_id}.flac").is_file()
    monkeypatch.setattr(scoring.StyleTransfer, "__call__", lambda *args: pytest.fail("rendered again"))
    measured = scoring.Scorer(tiny_model, tmp_path / "work", metric).score(row, pairs)
    assert measured[0]["closer_to"] == plain[0]["closer_to"] and measured[0]["timbre_closer_to"] in ("source", "style")
    assert len(measured[0]["timbre_embedding"]) == 128 and measured[0]["timbre_style"] >= 0
    summary = summarise(measured)
    assert summary["timbre_win_rate"] is not None and summary["timbre_frechet"] is not None
