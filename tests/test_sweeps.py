"""Sweeps: Hydra multirun with the basic and joblib launchers, one W&B group, a summary table."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import soundfile as sf
from cli_runs import run_cli
from hydra import compose, initialize_config_dir
from project import REPO, TINY_MODEL, script
from signals import harmonic_tone


@pytest.fixture
def pair(tmp_path) -> dict[str, Path]:
    paths = {"content": tmp_path / "piano.wav", "style": tmp_path / "organ.wav"}
    sf.write(paths["content"], harmonic_tone(261.63, 0.6), 44100)
    sf.write(paths["style"], harmonic_tone(196.0, 0.6, partials=3), 44100)
    manifest = tmp_path / "pairs.csv"
    manifest.write_text(f"content,style\n{paths['content']},{paths['style']}\n")
    return {**paths, "manifest": manifest}


def summary(sweep: Path) -> list[dict]:
    with open(sweep / "sweep_summary.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow  # a Hydra sweep in processes of its own
def test_the_ablation_sweep_runs_every_job_and_writes_one_summary(pair, tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        "sweep=ablation",
        TINY_MODEL,
        "data=pair",
        f"data.content={pair['content']}",
        f"data.style={pair['style']}",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={sweep}",
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = summary(sweep)
    assert [row["job"] for row in rows] == [str(n) for n in range(8)]
    assert {row["status"] for row in rows} == {"completed"}
    assert sorted(row["method"] for row in rows) == ["adain"] * 4 + ["wct"] * 4
    # only what varies is listed per job: method x points x alpha
    assert rows[0]["overrides"] == "method=adain method.points=all method.alpha=0.5"
    assert rows[7]["overrides"] == "method=wct method.points=[latent] method.alpha=1.0"
    assert all(float(row["l2mfcc_source"]) > 0 and row["pairs"] == "1" for row in rows)
    (common,) = [line for line in (sweep / "sweep_summary.md").read_text().splitlines() if line.startswith("Common")]
    assert "`model=tiny_random`" in common and "alpha" not in common


@pytest.mark.slow  # a Hydra sweep in processes of its own
def test_parallel_jobs_share_a_wandb_group_and_a_failed_job_fails_the_sweep(pair, tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "experiment=adain_latent",
        TINY_MODEL,
        "data=manifest",
        f"data.manifest={pair['manifest']},{tmp_path / 'missing.csv'}",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={sweep}",
        home=tmp_path,
    )
    assert result.returncode == 1  # the sweep ran to the end, and says that a job failed
    assert f"error: 1 of 2 sweep jobs failed; see {sweep / 'sweep_summary.csv'}" in result.stderr
    rows = summary(sweep)
    assert [(row["job"], row["status"]) for row in rows] == [("0", "completed"), ("1", "failed")]
    assert rows[1]["error"] == f"{tmp_path / 'missing.csv'}: no such pairs manifest"
    assert (sweep / "0" / "results.csv").is_file()
    for job in ("0", "1"):  # each job has its own W&B run, in the sweep's group, and closed
        (run_dir,) = (sweep / job / "wandb").glob("offline-run-*")
        assert b"adain_latent-sweep" in next(run_dir.glob("run-*.wandb")).read_bytes()
        assert "finishing run" in (run_dir / "logs" / "debug.log").read_text()


def test_slurm_launcher_gives_each_job_the_trainers_devices_and_nodes():

    script("run")  # sets the environment configs/paths reads, as a run does
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose(
            "run",
            overrides=["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.max_num_timeout > 0  # re-queued jobs resume in their folder
