"""VQ-VAE pre-training through the real Hydra config: a few steps on a tiny rendered corpus, then resume."""

from __future__ import annotations

import csv

import pytest
import torch
from hydra_runs import run_config

from jukestyle.jukebox import load_vqvae, read_checkpoint
from jukestyle.jukebox.checkpoint import training_stages


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    from render_data import main

    out = tmp_path_factory.mktemp("corpus")
    assert main(["corpus", "--out", str(out), "--programs", "flute,cello", "--scale", "0.1"]) == 0
    return out


def overrides(corpus, steps: int) -> list[str]:
    return [
        "experiment=pretrain_vqvae",
        "model=tiny_random",
        "logger=csv",
        f"data.root={corpus}",
        "data.batch_size=2",
        "data.crops_per_epoch=8",
        "data.crop_seconds=0.1",
        f"trainer.max_steps={steps}",
        "trainer.val_check_interval=2",
        "+trainer.limit_val_batches=2",
        "trainer.enable_progress_bar=false",
        "trainer.log_every_n_steps=1",
        "callbacks.model_checkpoint.every_n_train_steps=2",
        "task.module.warmup_steps=1",
    ]


def test_pretraining_runs_exports_and_resumes(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    run_config(overrides(tiny_corpus, 3), out)
    last = out / "checkpoints" / "last.ckpt"
    first = torch.load(last, weights_only=True, map_location="cpu")  # loadable without unpickling code
    assert first["global_step"] == 3
    assert set(first["codebook_ema"]) == {0, 1, 2} and float(first["state_dict"]["bandwidth"][0]) > 0
    exported = load_vqvae(out / "vqvae.pth.tar")
    assert exported.step == 3
    assert torch.equal(exported.bottleneck[2].k, first["state_dict"]["vqvae.bottleneck.level_blocks.2.k"])
    with open(next(out.glob("csv/version_*/metrics.csv")), newline="") as handle:
        rows = list(csv.DictReader(handle))
    used = [float(row["val/L2/codes_used"]) for row in rows if row.get("val/L2/codes_used")]
    assert used and all(0 < value <= 32 for value in used)
    assert any(row.get("train/L2/multispectral") for row in rows)

    # Re-running the same command continues from last.ckpt, with the same bandwidths and codebook state.
    run_config(overrides(tiny_corpus, 5), out)
    resumed = torch.load(last, weights_only=True, map_location="cpu")
    assert resumed["global_step"] == 5
    assert torch.equal(resumed["state_dict"]["bandwidth"], first["state_dict"]["bandwidth"])
    assert load_vqvae(out / "vqvae.pth.tar").step == 5

    # Fine-tuning the export continues its training: the new export lists the first run as its history.
    tuned = tmp_path / "tuned"
    model = ["model=bundled", f"model.source={out / 'vqvae.pth.tar'}", "task.module.codebook_init=keep"]
    run_config([item for item in overrides(tiny_corpus, 2) if item != "model=tiny_random"] + model, tuned)
    stages = training_stages(read_checkpoint(tuned / "vqvae.pth.tar"))
    assert [stage["step"] for stage in stages] == [5, 2]
    assert stages[0] == training_stages(read_checkpoint(out / "vqvae.pth.tar"))[0]
    assert all(stage["training"]["batch_size"] == 2 and stage["train_seconds"] > 0 for stage in stages)
