"""VQ-VAE pre-training through the real Hydra config: a few steps on a tiny rendered corpus, then resume."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch
from cli_runs import cli_environment, run_cli
from hydra_runs import run_config
from jukestyle_lightning.lightning_modules.vqvae_pretrain import VQVAEPretrainModule
from project import TINY_MODEL, script

from jukestyle.errors import ConfigError
from jukestyle.fileio import write_json
from jukestyle.inspect.instrument_probe import VIEWS
from jukestyle.jukebox import load_vqvae, read_checkpoint
from jukestyle.jukebox.checkpoint import training_stages


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    main = script("render_data").main

    out = tmp_path_factory.mktemp("corpus")
    assert main(["corpus", "--out", str(out), "--programs", "flute,cello", "--scale", "0.1"]) == 0
    return out


def overrides(corpus, steps: int) -> list[str]:
    return [
        "experiment=pretrain_vqvae",
        TINY_MODEL,
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
    assert set(first["codebook_ema"]) == {0, 1, 2} and float(first["state_dict"]["loss.bandwidth"][0]) > 0
    exported = load_vqvae(out / "vqvae.pth.tar")
    assert exported.origin.step == 3
    assert torch.equal(exported.bottleneck[2].k, first["state_dict"]["model.bottleneck.level_blocks.2.k"])
    with open(next(out.glob("csv/version_*/metrics.csv")), newline="") as handle:
        rows = list(csv.DictReader(handle))
    used = [float(row["val/L2/codes_used"]) for row in rows if row.get("val/L2/codes_used")]
    assert used and all(0 < value <= 32 for value in used)
    assert any(row.get("train/L2/multispectral") for row in rows)

    # Re-running the same command continues from last.ckpt, with the same bandwidths and codebook state,
    # also from a checkpoint written when the module called the VQ-VAE ``vqvae``.
    old_names = {key.replace("model.", "vqvae.", 1): value for key, value in first["state_dict"].items()}
    torch.save({**first, "state_dict": old_names}, last)
    run_config(overrides(tiny_corpus, 5), out)
    resumed = torch.load(last, weights_only=True, map_location="cpu")
    assert resumed["global_step"] == 5
    assert torch.equal(resumed["state_dict"]["loss.bandwidth"], first["state_dict"]["loss.bandwidth"])
    assert load_vqvae(out / "vqvae.pth.tar").origin.step == 5

    # Fine-tuning the export continues its training: the new export lists the first run as its history.
    tuned = tmp_path / "tuned"
    model = ["model=bundled", f"model.source={out / 'vqvae.pth.tar'}", "task.module.codebook_init=keep"]
    run_config([item for item in overrides(tiny_corpus, 2) if item != TINY_MODEL] + model, tuned)
    stages = training_stages(read_checkpoint(tuned / "vqvae.pth.tar"))
    assert [stage["step"] for stage in stages] == [5, 2]
    assert stages[0] == training_stages(read_checkpoint(out / "vqvae.pth.tar"))[0]
    assert all(stage["training"]["batch_size"] == 2 and stage["train_seconds"] > 0 for stage in stages)


def test_decoder_stage_with_a_discriminator_trains_the_decoder_alone(tiny_corpus, tmp_path, capsys):
    base = tmp_path / "base"
    run_config([*overrides(tiny_corpus, 2), "loss=mel"], base)
    stage = tmp_path / "decoder"
    settings = [item for item in overrides(tiny_corpus, 3) if item != TINY_MODEL] + [
        "model=bundled",
        f"model.source={base / 'vqvae.pth.tar'}",
        "task.module.codebook_init=keep",
        "task.module.stage=decoder",
        "loss=mel_adversarial",
        "loss.discriminator.filters=4",
    ]
    run_config(settings, stage)
    assert "encoded the training corpus once" in capsys.readouterr().out  # steps ran the decoder alone
    before, after = load_vqvae(base / "vqvae.pth.tar"), load_vqvae(stage / "vqvae.pth.tar")

    def same(module_before, module_after) -> bool:
        return all(
            torch.equal(a, b)
            for a, b in zip(module_before.state_dict().values(), module_after.state_dict().values(), strict=True)
        )

    assert same(before.encoders[2], after.encoders[2]) and same(before.bottleneck, after.bottleneck)
    assert not same(before.decoders[2], after.decoders[2])
    assert same(before.decoders[1], after.decoders[1])  # levels not chosen are untouched
    checkpoint = torch.load(stage / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert checkpoint["discriminator_optimizer"]["state"]  # the discriminator's Adam state resumes too
    assert any(key.startswith("loss.discriminator.") for key in checkpoint["state_dict"])
    with open(next(stage.glob("csv/version_*/metrics.csv")), newline="") as handle:
        rows = list(csv.DictReader(handle))
    for term in ("mel", "adversarial", "feature_matching", "discriminator"):
        assert any(row.get(f"train/L2/{term}") for row in rows), term
    assert read_checkpoint(stage / "vqvae.pth.tar")["training"]["stage"] == "decoder"


def test_decoder_stage_needs_a_trained_codebook(tiny_model):

    with pytest.raises(ConfigError, match="codebook_init=keep"):
        VQVAEPretrainModule(tiny_model, stage="decoder", codebook_init="data")
    with pytest.raises(ConfigError, match="stage must be one of full, decoder, transfer_decoder"):
        VQVAEPretrainModule(tiny_model, stage="encoder")


@pytest.mark.slow
def test_resume_training_stops_at_its_time_limit_and_collects_the_checkpoint(tiny_corpus, tmp_path, monkeypatch):
    """The command prepared for a borrowed GPU, run here on the CPU with a limit of seconds."""
    resume_training = script("resume_training")

    run = tmp_path / "run"
    first = run_cli(*overrides(tiny_corpus, 2), f"hydra.run.dir={run}", home=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    out = tmp_path / "out"
    argv = ["--run", str(run), "--minutes", "0.1", "--margin", "0", "--out", str(out), "trainer.max_steps=100000"]
    monkeypatch.setenv("JUKESTYLE_OFFLINE", cli_environment(tmp_path)["JUKESTYLE_OFFLINE"])
    assert resume_training.main(argv) == 0
    assert {"last.ckpt", "vqvae.pth.tar", "metrics_version_0.csv", "metrics_version_1.csv"} <= {
        path.name for path in out.iterdir()
    }
    assert not list(out.glob(".*part*"))
    step = torch.load(out / "last.ckpt", weights_only=True, map_location="cpu")["global_step"]
    assert 2 < step < 100000  # resumed, then stopped by the time limit, not by max_steps
    assert load_vqvae(out / "vqvae.pth.tar").origin.step == step
    assert resume_training.main(["--run", str(tmp_path / "nothing"), "--minutes", "1", "--out", str(out)]) == 2


def test_training_other_levels_from_scratch_keeps_the_trained_ones_in_the_record(tiny_corpus, tmp_path):
    base = tmp_path / "base"
    run_config(overrides(tiny_corpus, 2), base)
    low = tmp_path / "low"
    settings = [item for item in overrides(tiny_corpus, 2) if item != TINY_MODEL]
    run_config([*settings, "model=bundled", f"model.source={base / 'vqvae.pth.tar'}", "task.module.levels=[1]"], low)
    before, after = load_vqvae(base / "vqvae.pth.tar"), load_vqvae(low / "vqvae.pth.tar")
    checkpoint = read_checkpoint(low / "vqvae.pth.tar")
    assert checkpoint["trained_levels"] == [1, 2]
    assert [stage["training"]["levels"] for stage in training_stages(checkpoint)] == [[2], [1]]
    assert all(
        torch.equal(a, b) for a, b in zip(before.decoders[2].parameters(), after.decoders[2].parameters(), strict=True)
    )


@pytest.mark.slow
def test_model_card_of_a_trained_export(tiny_corpus, tmp_path):
    model_card = script("model_card")

    run = tmp_path / "run"
    run_config(overrides(tiny_corpus, 2), run)
    shutil.copy(run / "vqvae.pth.tar", tmp_path / "model.pth.tar")
    argv = ["--checkpoint", str(tmp_path / "model.pth.tar"), "--run", str(run), "--corpus", str(tiny_corpus)]
    argv += ["--ab", f"a=b={run / 'vqvae.pth.tar'}", "--cache", str(tmp_path / "cache")]
    assert model_card.main([*argv, "--evaluate-only"]) == 0
    assert not (tmp_path / "MODEL_CARD.md").exists()
    cached = sorted(path.name.split("-")[0] for path in (tmp_path / "cache").iterdir())
    assert cached == ["level2", "probe2", "timbre2"]  # the A/B checkpoint has the same level-2 weights: evaluated once
    assert model_card.main(argv) == 0
    card = (tmp_path / "MODEL_CARD.md").read_text()
    for heading in ("## Validation split", "## What the codes know", "## A/B at level 2", "## Experiment 1 at level 2"):
        assert heading in card
    assert "| a=b | 2 |" in card  # the label may hold '='
    numbers = json.loads((tmp_path / "model_card.json").read_text())
    level2 = numbers["levels"]["2"]
    assert len(level2["metrics"]["band_db"]) == 4 and len(level2["identity"]["distances"]) == 6
    assert 0 <= level2["probe"]["codes"]["family"] <= 1
    assert [row["label"] for row in numbers["ab"]] == ["a=b"]


@pytest.mark.slow
def test_a_new_card_reuses_the_evaluations_of_unchanged_levels_and_keeps_the_ab_rows(tiny_corpus, tmp_path):
    """The previous card's evaluation stands for the same weights; changed weights are evaluated again."""
    model_card = script("model_card")

    run = tmp_path / "run"
    run_config(overrides(tiny_corpus, 2), run)
    checkpoint = tmp_path / "model.pth.tar"
    shutil.copy(run / "vqvae.pth.tar", checkpoint)
    argv = ["--checkpoint", str(checkpoint), "--run", str(run), "--corpus", str(tiny_corpus), "--no-probe"]
    argv += ["--cache", str(tmp_path / "cache")]  # weights evaluated once (the A/B rows share them); the card wins
    assert model_card.main([*argv, "--ab", f"start={checkpoint}", "--ab", f"other={checkpoint}"]) == 0
    card_json = tmp_path / "model_card.json"
    numbers = json.loads(card_json.read_text())
    numbers["levels"]["2"]["metrics"]["snr_db"] = 123.4  # a value no evaluation gives: shows where the row came from
    numbers["levels"]["2"]["probe"] = {view: {"program": 0.5, "family": 0.75} for view in VIEWS}
    write_json(card_json, numbers)

    assert model_card.main([*argv, "--ab", f"other={checkpoint}"]) == 0  # same weights, one A/B row measured again
    card = (tmp_path / "MODEL_CARD.md").read_text()
    level_row = next(line for line in card.splitlines() if line.startswith("| 2 |"))
    assert "| 123.4 |" in level_row and "| 50% | 75% |" in card  # the level and its probe were carried
    assert card.index("| start |") < card.index("| other |")  # the earlier rows kept, in their order

    saved = torch.load(checkpoint, weights_only=True)
    weight = next(key for key in saved["model"] if key.startswith("decoders.2."))
    saved["model"][weight] = saved["model"][weight] + 0.01
    torch.save(saved, checkpoint)
    assert model_card.main(argv) == 0
    card = (tmp_path / "MODEL_CARD.md").read_text()
    level_row = next(line for line in card.splitlines() if line.startswith("| 2 |"))
    assert "| 123.4 |" not in level_row and "## What the codes know" not in card  # new weights: evaluated, no probe
    assert "| start |" in card and "| other | 2 | 123.4 |" in card  # A/B rows stay what they measured
