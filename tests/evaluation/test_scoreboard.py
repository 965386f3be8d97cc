"""The scoreboard: every pair metric measured, every summary aggregated and printed, the same in torchmetrics
(across processes too) as in numpy, and the table feeding results.csv and the reports."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp
from jukestyle_lightning.lightning_modules.summary_metrics import FiniteMean, Frechet, WinRate, summary_metrics, update
from signals import harmonic_tone

from jukestyle.evaluation import metrics, scoreboard
from jukestyle.evaluation.cards import decoders as decoder_card
from jukestyle.evaluation.cards import transfer_decoder as transfer_card
from jukestyle.evaluation.records import RESULT_COLUMNS
from jukestyle.evaluation.report import TABLE_COLUMNS
from jukestyle.evaluation.sweep_summary import SUMMARY_COLUMNS
from jukestyle.evaluation.timbre import BUNDLED

SR = 44100


def square_tone(frequency: float, seconds: float = 1.0) -> np.ndarray:
    return (0.3 * np.sign(harmonic_tone(frequency, seconds))).astype(np.float32)


@pytest.fixture(scope="module")
def references():
    """A C4 harmonic tone (content) and a C4 square wave (style), with the shipped timbre metric's embeddings."""
    content = metrics.analyse_reference(harmonic_tone(261.63, 1.0), SR, timbre_metric=BUNDLED)
    style = metrics.analyse_reference(square_tone(261.63), SR, timbre_metric=BUNDLED)
    return content, style


def test_every_pair_metric_is_measured_and_the_style_itself_wins_both_ways(references):
    content, style = references
    row = scoreboard.measure(scoreboard.Measurement(square_tone(261.63), content, style, SR, BUNDLED))
    assert list(row) == [metric.name for metric in scoreboard.PAIR_METRICS]
    assert row["closer_to"] == "style" and row["l2mfcc_style"] == 0.0
    assert row["timbre_closer_to"] == "style" and row["timbre_style"] == pytest.approx(0.0, abs=1e-6)
    assert row["timbre_source"] > 0.01 and row["pitch_accuracy"] > 0.9
    assert all(level < 0 for level in (row[f"frame_tones_{p}"] for p in scoreboard.FRAME_PERIODS))
    assert len(row["timbre_embedding"]) == len(row["style_timbre_embedding"]) == 128


def test_without_a_timbre_metric_its_metrics_are_none_and_the_rest_unchanged(references):
    content, style = references
    output = harmonic_tone(261.63, 1.0)
    with_metric = scoreboard.measure(scoreboard.Measurement(output, content, style, SR, BUNDLED))
    without = scoreboard.measure(scoreboard.Measurement(output, content, style, SR, None))
    timbre = scoreboard.TIMBRE_METRICS
    assert all(without[name] is None for name in timbre)
    assert {k: v for k, v in without.items() if k not in timbre} == {
        k: v for k, v in with_metric.items() if k not in timbre
    }
    assert with_metric["timbre_closer_to"] == "source"  # the content itself, as the output
    only = scoreboard.measure(scoreboard.Measurement(output, content, style, SR, BUNDLED), timbre)
    assert tuple(only) == timbre and only["timbre_source"] == with_metric["timbre_source"]


def _records() -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        rows.append(
            {
                "closer_to": "style" if i % 3 == 0 else "source",
                "timbre_closer_to": None if i == 5 else ("style" if i < 3 else "source"),
                "pitch_accuracy": None if i == 0 else i / 10,
                "l2mfcc_source": float(i),
                "frame_tones_32": float("nan") if i == 1 else -30.0 - i,
                "timbre_embedding": rng.normal(size=4).tolist(),
                "style_timbre_embedding": rng.normal(size=4).tolist(),
            }
        )
    return [*rows, {"error": "AudioError: silent", "closer_to": "style"}]


def test_summaries_aggregate_win_rates_finite_means_and_the_frechet_distance():
    summary = scoreboard.summarise(_records())
    assert summary["pairs"] == 6  # the failed record left out
    assert summary["style_win_rate"] == pytest.approx(2 / 6)
    assert summary["timbre_win_rate"] == pytest.approx(3 / 5)  # of the five measured
    assert summary["pitch_accuracy"] == pytest.approx(np.mean([0.1, 0.2, 0.3, 0.4, 0.5]))
    assert summary["frame_tones_32"] == pytest.approx(np.mean([-30.0, -32, -33, -34, -35]))
    assert summary["chroma_similarity"] is None and summary["timbre_frechet"] > 0
    assert scoreboard.summarise([])["style_win_rate"] is None


def test_each_summary_prints_by_its_format():
    assert scoreboard.print_value(0.456, "style_win_rate") == "46%"
    assert scoreboard.print_value(-41.26, "frame_tones_32") == "-41.3"
    assert scoreboard.print_value(None, "timbre_frechet") == scoreboard.print_value(float("nan"), "l2mfcc_style") == "-"
    assert scoreboard.print_value(34, "pairs") == "34" and scoreboard.print_value("adain", "method") == "adain"
    assert scoreboard.markdown_table([{"method": "a|b", "pairs": 2}], ["method", "pairs"])[2] == "| a\\|b | 2 |"


def test_the_run_tables_and_the_cards_take_their_columns_from_the_scoreboard():
    for metric in scoreboard.PAIR_METRICS:
        assert (metric.name in RESULT_COLUMNS) == metric.column
    assert ("pairs", *scoreboard.SUMMARY_NAMES) == TABLE_COLUMNS
    for columns in (SUMMARY_COLUMNS, transfer_card.COLUMNS, decoder_card.CURVE_COLUMNS, decoder_card.MINUTES_COLUMNS):
        assert all(name in columns for name in scoreboard.SUMMARY_NAMES)  # a new summary reaches every table


def test_torchmetrics_summaries_agree_with_the_scoreboard():
    records = _records()
    metrics_ = summary_metrics()
    assert set(metrics_) == set(scoreboard.SUMMARY_NAMES)
    for record in records:
        if not record.get("error"):
            update(metrics_, record)
    expected = scoreboard.summarise(records)
    for name, metric in metrics_.items():
        value = float(metric.compute())
        assert np.isnan(value) if expected[name] is None else value == pytest.approx(expected[name]), name


def test_win_rate_and_finite_mean_skip_what_was_not_measured():
    wins, mean = WinRate(), FiniteMean()
    wins.update(["style", "source", "style", None])
    wins.update(["source"])
    mean.update([1.0, None, float("nan"), 3.0])
    assert float(wins.compute()) == 0.5 and float(mean.compute()) == 2.0
    assert np.isnan(float(FiniteMean().compute())) and np.isnan(float(Frechet().compute()))


def _ddp_worker(rank: int, world: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    wins, mean, frechet = WinRate(), FiniteMean(), Frechet()
    wins.update(["style"] * (rank + 1) + ["source"] * 2)  # rank 0: 1 of 3, rank 1: 2 of 4
    mean.update([float(rank + 1)] * (rank + 1))  # rank 0: [1], rank 1: [2, 2]
    vectors = np.random.default_rng(rank).normal(size=(3, 2, 4))  # three (output, style) pairs per rank
    frechet.update(vectors[:, 0].tolist(), vectors[:, 1].tolist())
    results[rank] = (float(wins.compute()), float(mean.compute()), float(frechet.compute()))
    dist.destroy_process_group()


def test_summaries_reduce_across_processes():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_ddp_worker, args=(2, port, results), nprocs=2, join=True)
        values = dict(results)
    both = np.concatenate([np.random.default_rng(rank).normal(size=(3, 2, 4)) for rank in range(2)])
    records = [{"timbre_embedding": o.tolist(), "style_timbre_embedding": s.tolist()} for o, s in both]
    frechet = scoreboard.frechet(records, "timbre_embedding", "style_timbre_embedding")
    assert values[0] == values[1] == pytest.approx((3 / 7, 5 / 3, frechet))  # the same global values on every rank
