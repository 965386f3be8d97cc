"""experiment=train_decoder through the real Hydra config on a folder of one instrument's audio, then the trained
decoder as a transfer method through the CLI and the API."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runs import run_cli
from hydra_runs import run_config
from jukestyle_lightning.datamodules.corpus import CorpusDataModule
from jukestyle_lightning.lightning_modules.stages import DecoderStage
from jukestyle_lightning.lightning_modules.vqvae_pretrain import VQVAEPretrainModule
from project import REPO, TINY_MODEL, script
from torch.utils.data import default_collate

import jukestyle
from jukestyle.errors import ConfigError
from jukestyle.jukebox import build_vqvae, read_checkpoint
from jukestyle.jukebox.decoder_checkpoint import codes_digest
from jukestyle.losses import MelLoss

CONTENT, STYLE = REPO / "data" / "exp1" / "piano-C4.flac", REPO / "data" / "exp1" / "flute-G4.flac"


def base_model():
    """The model that model=tiny_random builds (its seed is the run's, 0)."""
    return build_vqvae("tiny", seed=0)


def parallel_targets(root: Path, instruments=("flute", "violin")) -> Path:
    """``root/<instrument>/<note>.flac``: the same two notes played by each instrument (as ``render_data.py
    targets`` writes them)."""
    for instrument in instruments:
        (root / instrument).mkdir(parents=True)
        for note in ("C4", "G4"):
            shutil.copy(REPO / "data" / "exp1" / f"{instrument}-{note}.flac", root / instrument / f"{note}.flac")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    targets = parallel_targets(tmp_path_factory.mktemp("targets"))  # plain files, no splits
    out = tmp_path_factory.mktemp("train_decoder")
    overrides = ["experiment=train_decoder", TINY_MODEL, "logger=csv"]
    overrides += [f"data.root={targets / 'flute'}", f"data.inputs={targets}"]
    overrides += ["data.batch_size=2", "data.crops_per_epoch=4", "data.crop_seconds=0.1", "trainer.max_steps=3"]
    overrides += ["trainer.val_check_interval=2", "+trainer.limit_val_batches=2", "trainer.enable_progress_bar=false"]
    overrides += ["callbacks.model_checkpoint.every_n_train_steps=2", "task.module.warmup_steps=1"]
    run_config(overrides, out)
    return out


def test_a_training_that_cannot_export_one_decoder_stops_before_its_first_step(tmp_path):
    overrides = ["experiment=train_decoder", TINY_MODEL, "logger=csv", f"data.root={REPO / 'data' / 'exp1'}"]
    with pytest.raises(ConfigError, match=r"decoder is exported from a decoder stage .* with one level, got"):
        run_config([*overrides, "task.module.levels=[1,2]", "data.crop_seconds=0.1"], tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_the_export_holds_the_trained_decoder_alone(trained):
    saved = read_checkpoint(trained / "decoder.pth.tar")
    model = base_model()
    assert "model" not in saved and set(saved["decoder"]) == set(model.decoders[2].state_dict())
    assert saved["step"] == 3 and saved["level"] == 2 and saved["base_sha256"] == codes_digest(model, 2)
    assert any(not torch.equal(saved["decoder"][key], value) for key, value in model.decoders[2].state_dict().items())
    assert saved["training"]["stage"] == "decoder" and saved["loss"] == "MelLoss"
    # experiment=train_decoder trains the last block alone: the earlier ones leave as they came
    assert saved["training"]["trained_blocks"] == 1
    for key, value in model.decoders[2].state_dict().items():
        assert torch.equal(saved["decoder"][key], value) == (not key.startswith(("level_blocks.0.", "out."))), key
    assert not (trained / "vqvae.pth.tar").exists() and (trained / "checkpoints" / "last.ckpt").is_file()
    snapshots = sorted(path.name for path in (trained / "snapshots").iterdir())
    assert snapshots == ["step0000002.pth.tar", "step0000003.pth.tar"]  # each validation's, and the last
    assert read_checkpoint(trained / "snapshots" / snapshots[-1])["step"] == 3


def test_with_inputs_the_decoder_learns_from_the_other_instruments_codes(tmp_path):
    data = CorpusDataModule(
        str(parallel_targets(tmp_path) / "flute"), inputs=str(tmp_path), crop_seconds=0.1, batch_size=4
    )
    data.setup("fit")
    module = VQVAEPretrainModule(base_model(), MelLoss(), levels=[2], stage="decoder", codebook_init="keep")
    corpus = data.training_corpus()
    module.stage.prepare(module, corpus)
    items = [data.train_set[index] for index in range(20)]
    flute = next(item for item in items if item["input_clip"] < 2)  # versions sorted: flute's clips, then violin's
    violin = next(item for item in items if item["input_clip"] >= 2)
    batch = default_collate([flute, violin])
    assert not torch.equal(batch["input"], batch["audio"])  # the second crop hears the violin
    cached = module.stage.outputs(module, batch, training=True)[2].codes  # training: the inputs' codes, cached
    assert torch.equal(cached, module.stage.cache.crops(2, batch["input_clip"], batch["start"]))
    assert not torch.equal(cached, module.stage.cache.crops(2, batch["clip"], batch["start"]))
    validation = default_collate([data.val_set[index] for index in range(2)])
    with torch.no_grad():  # validation: the model hears the input and is scored against the target
        heard = module.stage.outputs(module, validation, training=False)[2].codes
        assert torch.equal(heard, module.model.encode(validation["input"], 2))
        loss, _, _ = module.batch_losses(validation, training=False)
        outputs = module.stage.outputs(module, validation, training=False)
        assert torch.allclose(loss, module.loss(validation["audio"], outputs[2].reconstruction)["loss"])


def test_the_trained_decoder_transfers_through_the_cli_and_the_api(trained, tmp_path):
    decoder = trained / "decoder.pth.tar"
    pair = ["data=pair", f"data.content={CONTENT}", f"data.style={STYLE}"]
    run_config([TINY_MODEL, "method=decoder", f"method.checkpoint={decoder}", *pair, "logger=csv"], tmp_path)
    with open(tmp_path / "results.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["reference"] == "false"]
    assert [(row["method"], row["error"]) for row in rows] == [("decoder", "")]
    out = jukestyle.transfer(CONTENT, STYLE, method="decoder", model=base_model(), checkpoint=decoder)
    assert np.isfinite(out).all() and out.std() > 0


@pytest.mark.slow
def test_a_decoder_of_another_base_model_is_one_line(trained, tmp_path):
    decoder = trained / "decoder.pth.tar"
    pair = ["data=pair", f"data.content={CONTENT}", f"data.style={STYLE}"]
    result = run_cli(
        TINY_MODEL, "model.seed=1", "method=decoder", f"method.checkpoint={decoder}", *pair, "logger=csv",
        f"hydra.run.dir={tmp_path / 'run'}", home=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"error: {decoder}: trained on the level-2 codes of another base model" in result.stderr


@pytest.mark.slow
def test_the_cli_run_logs_curves_and_validation_audio_to_an_offline_wandb_run(tmp_path):
    folder = tmp_path / "violin"
    folder.mkdir()
    shutil.copy(REPO / "data" / "exp1" / "violin-C4.flac", folder)
    out = tmp_path / "run"
    result = run_cli(
        "experiment=train_decoder", TINY_MODEL, f"data.root={folder}", "data.batch_size=2", "data.crops_per_epoch=4",
        "data.crop_seconds=0.1", "trainer.max_steps=2", "trainer.val_check_interval=2", "+trainer.limit_val_batches=1",
        "trainer.enable_progress_bar=false", f"hydra.run.dir={out}", home=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = (out / "wandb").glob("offline-run-*")
    audio = {path.parent.name for path in (run / "files" / "media" / "audio" / "val_audio").rglob("*.wav")}
    assert audio == {"L2", "source"}
    assert (out / "decoder.pth.tar").is_file()


def test_a_folder_of_decoders_serves_each_pair_the_decoder_of_its_styles_instrument(trained, tmp_path):
    folder = tmp_path / "decoders"
    folder.mkdir()
    shutil.copy(trained / "decoder.pth.tar", folder / "flute.pth.tar")
    manifest = tmp_path / "pairs.csv"
    exp1 = REPO / "data" / "exp1"
    manifest.write_text(
        f"content,style\n{exp1}/piano-C4.flac,{exp1}/flute-C4.flac\n{exp1}/piano-C4.flac,{exp1}/violin-C4.flac\n"
    )
    overrides = [
        TINY_MODEL,
        "method=decoder",
        f"method.checkpoint={folder}",
        "data=manifest",
        f"data.manifest={manifest}",
    ]
    run_config([*overrides, "logger=csv"], tmp_path / "run")
    with open(tmp_path / "run" / "results.csv", newline="") as handle:
        rows = {row["pair_id"]: row["error"] for row in csv.DictReader(handle) if row["reference"] == "false"}
    assert rows["piano-C4--flute-C4"] == ""
    assert "no decoder for" in rows["piano-C4--violin-C4"] and "instrument 'violin'" in rows["piano-C4--violin-C4"]


@pytest.mark.slow
def test_the_decoder_card_ships_the_decoders_and_measures_them_against_steps(trained, tmp_path):
    decoder_card = script("decoder_card")

    runs, out = tmp_path / "runs", tmp_path / "decoders"
    shutil.copytree(trained, runs / "flute")  # a run folder per instrument
    shutil.copytree(trained, runs / "violin")  # a run that did not finish (no run.json) is not shipped
    (runs / "flute" / "run.json").write_text('{"status": "completed"}')  # as the CLI records a finished run
    pair = [f"--set={TINY_MODEL}", "--set=data=pair", f"--set=data.content={CONTENT}", f"--set=data.style={STYLE}"]
    fewer = tmp_path / "fewer_minutes"  # a set of runs for the minutes figure: here the same run, once more
    shutil.copytree(runs / "flute", fewer / "flute")
    arguments = ["--runs", str(runs), "--out", str(out), "--work", str(tmp_path / "work"), "--minutes", str(fewer)]
    assert decoder_card.main([*arguments, *pair]) == 0
    assert sorted(path.name for path in out.glob("*.pth.tar")) == ["flute.pth.tar"]
    assert (out / "flute.pth.tar").read_bytes() == (trained / "decoder.pth.tar").read_bytes()
    with open(out / "decoder_curve.csv", newline="") as handle:
        curve = list(csv.DictReader(handle))
    assert [(row["step"], row["pairs"]) for row in curve] == [("2", "1"), ("3", "1")]
    assert all(0 <= float(row["pitch_accuracy"]) <= 1 for row in curve)
    with open(out / "decoder_minutes.csv", newline="") as handle:
        points = list(csv.DictReader(handle))
    assert [(row["set"], row["steps"], row["pairs"]) for row in points] == [
        ("shipped", "3", "1"),
        ("fewer_minutes", "3", "1"),
    ]
    assert points[0]["pitch_accuracy"] == points[1]["pitch_accuracy"] == curve[-1]["pitch_accuracy"]  # one decoder
    assert float(points[0]["target_minutes"]) == pytest.approx(2 * 3.2 / 60, rel=0.01)  # the two 3.2 s flute notes
    card = (out / "DECODERS.md").read_text()
    assert "| flute | 3 |" in card and "![decoder curve](decoder_curve.png)" in card
    assert "against minutes of target audio (styles flute)" in card
    assert (out / "decoder_curve.png").stat().st_size > 0 and (out / "decoder_minutes.png").stat().st_size > 0


def test_trained_blocks_freezes_the_decoders_earlier_blocks(tmp_path):
    model = base_model()
    stage = DecoderStage(trained_blocks=1)
    module = VQVAEPretrainModule(model, MelLoss(), levels=[2], stage=stage, codebook_init="keep")
    decoder = model.decoders[2]
    trained = {id(p) for p in module.configure_optimizers()["optimizer"].param_groups[0]["params"]}
    # the decoder runs level_blocks[2], [1], then [0] and ``out``: only the last block and ``out`` learn
    assert trained == {id(p) for p in [*decoder.level_blocks[0].parameters(), *decoder.out.parameters()]}
    assert not any(p.requires_grad for block in decoder.level_blocks[1:] for p in block.parameters())
    blocks = r"stage.trained_blocks must be between 1 and 3 \(level 2's decoder blocks\), got 4"
    with pytest.raises(ConfigError, match=blocks):
        VQVAEPretrainModule(base_model(), levels=[2], stage=DecoderStage(trained_blocks=4), codebook_init="keep")
