"""trainer=ddp: two CPU processes (gloo) split the pairs and give the same results as one process."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import soundfile as sf
from cli_runs import run_cli
from project import TINY_MODEL
from signals import harmonic_tone

# every test here runs scripts/run.py in a process of its own: `make test-fast` skips them
pytestmark = pytest.mark.slow

METRICS = ("l2mfcc_source", "l2mfcc_style", "pitch_accuracy", "chroma_similarity")


def read_results(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def read_summary(out: Path) -> dict[str, float]:
    """The run-level metrics the CSV logger got (rank 0 only), reduced over every process."""
    (metrics,) = out.glob("csv/**/metrics.csv")
    with open(metrics, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: float(value) for row in rows for key, value in row.items() if key.startswith("summary/") and value}


@pytest.fixture
def manifest(tmp_path) -> Path:
    """Five pairs: an odd number, so the two processes get different numbers of pairs."""
    tones = {"a": 220.0, "b": 261.63, "c": 330.0}
    for name, frequency in tones.items():
        sf.write(tmp_path / f"{name}.wav", harmonic_tone(frequency, 0.8, partials=2 + 2 * len(tones)), 44100)
    pairs = [("a", "b"), ("a", "c"), ("b", "a"), ("b", "c"), ("c", "a")]
    path = tmp_path / "pairs.csv"
    path.write_text("content,style\n" + "".join(f"{c}.wav,{s}.wav\n" for c, s in pairs))
    return path


def test_two_processes_give_the_results_of_one(manifest, tmp_path):
    common = [
        "experiment=wct_multilayer",
        TINY_MODEL,
        "data=manifest",
        f"data.manifest={manifest}",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        # One thread in every process, so that both runs sum in the same order: wct whitens the tiny random
        # model's nearly singular covariances, where sums split differently over threads moved metrics by ~0.3%.
        "runtime.threads=1",
    ]
    one, two = tmp_path / "one", tmp_path / "two"
    single = run_cli(*common, f"hydra.run.dir={one}", home=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = run_cli(
        *common, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", f"hydra.run.dir={two}", home=tmp_path
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in ddp.stderr + ddp.stdout

    expected, merged = read_results(one), read_results(two)
    keys = [(row["pair_id"], row["method"]) for row in merged]
    assert len(keys) == len(set(keys)) == 5 * 4  # wct, identity, content and style as output; no duplicates
    assert keys == [(row["pair_id"], row["method"]) for row in expected]  # none missing, same order
    for got, want in zip(merged, expected, strict=True):
        assert got["error"] == want["error"] == ""
        assert got["closer_to"] == want["closer_to"]
        for metric in METRICS:
            if want[metric]:
                assert float(got[metric]) == pytest.approx(float(want[metric]), rel=1e-3, abs=1e-4), metric
    summary_one, summary_two = read_summary(one), read_summary(two)
    assert summary_one.keys() == summary_two.keys() and "summary/wct/style_win_rate" in summary_one
    assert summary_two == pytest.approx(summary_one, rel=1e-3, abs=1e-4)
