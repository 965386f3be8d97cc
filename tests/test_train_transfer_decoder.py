"""experiment=train_transfer_decoder: a decoder trained on AdaIN's transferred features, used by adain and wct."""

from __future__ import annotations

import copy
import csv
import shutil

import numpy as np
import pytest
import torch
from cli_runs import run_cli
from hydra_runs import run_config
from jukestyle_lightning.datamodules.transfer_corpus import TransferCorpusDataModule
from jukestyle_lightning.lightning_modules.stages import TransferDecoderStage
from jukestyle_lightning.lightning_modules.vqvae_pretrain import VQVAEPretrainModule
from project import REPO, TINY_MODEL
from torch.utils.data import default_collate

import jukestyle
from jukestyle.errors import CheckpointError
from jukestyle.jukebox import build_vqvae, load_vqvae, read_checkpoint
from jukestyle.jukebox.decoder_checkpoint import codes_digest, save_decoder
from jukestyle.losses import MelLoss
from jukestyle.methods import WCT, AdaIN

CONTENT, STYLE = REPO / "data" / "exp1" / "piano-C4.flac", REPO / "data" / "exp1" / "flute-G4.flac"
LEVEL = 1  # the level the experiment trains and the methods use: the model's transfer level (the bundled model's)
TINY = [TINY_MODEL, f"model.transfer_level={LEVEL}"]


def base_model():
    """The model that model=tiny_random builds (its seed is the run's, 0)."""
    return build_vqvae("tiny", seed=0)


def parallel_corpus(root):
    """``root/<instrument>/<note>.flac``: two notes played by three instruments (render_data.py transfer's layout)."""
    for instrument in ("flute", "violin", "trumpet"):
        (root / instrument).mkdir(parents=True)
        for note in ("C4", "G4"):
            shutil.copy(REPO / "data" / "exp1" / f"{instrument}-{note}.flac", root / instrument / f"{note}.flac")
    return root


def overrides(corpus, steps: int) -> list[str]:
    settings = ["experiment=train_transfer_decoder", *TINY, "logger=csv", f"data.root={corpus}"]
    settings += ["data.batch_size=2", "data.crops_per_epoch=4", "data.crop_seconds=0.1", "data.style_seconds=0.1"]
    settings += [f"trainer.max_steps={steps}", "trainer.val_check_interval=2", "data.val_items=2"]
    settings += ["trainer.enable_progress_bar=false", "callbacks.model_checkpoint.every_n_train_steps=1"]
    settings += ["trainer.log_every_n_steps=1"]
    return [*settings, "task.module.warmup_steps=1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    corpus = parallel_corpus(tmp_path_factory.mktemp("transfer"))
    out = tmp_path_factory.mktemp("train_transfer_decoder")
    run_config(overrides(corpus, 3), out)
    return out, corpus


def test_the_export_holds_the_decoder_alone_with_the_transfer_it_renders(trained):
    out, _ = trained
    saved = read_checkpoint(out / "decoder.pth.tar")
    model = base_model()
    assert "model" not in saved and set(saved["decoder"]) == set(model.decoders[LEVEL].state_dict())
    assert saved["level"] == LEVEL and saved["step"] == 3 and saved["base_sha256"] == codes_digest(model, LEVEL)
    assert saved["transfer"] == {
        "method": "adain",
        "points": "all",
        "eps": 1e-5,
        "style_source": "frozen",
        "detach_maps": False,
    }
    changed = [k for k, v in model.decoders[LEVEL].state_dict().items() if not torch.equal(saved["decoder"][k], v)]
    assert any(key.startswith("level_blocks.1.") for key in changed)  # every block trains, the code-rate one too


def test_every_loss_term_is_logged_at_validation(trained):
    out, _ = trained
    with open(next(out.glob("csv/version_*/metrics.csv")), newline="") as handle:
        rows = list(csv.DictReader(handle))
    for term in ("mel", "frame_tones", "waveform"):
        assert any(row.get(f"val/L{LEVEL}/{term}") for row in rows), term
        assert any(row.get(f"train/L{LEVEL}/{term}") for row in rows), term


def test_rerunning_the_command_resumes(trained, tmp_path):
    out, corpus = trained
    resumed = tmp_path / "resumed"
    shutil.copytree(out, resumed)
    run_config(overrides(corpus, 4), resumed)
    assert read_checkpoint(resumed / "decoder.pth.tar")["step"] == 4  # 3 before, one more


def test_the_stage_trains_on_what_the_method_does_at_transfer_time(tmp_path):
    """An item's output is adain with the decoder, on the content crop and the style excerpt, each item with its
    own style. (Validation encodes the crops, as the method does; training slices the same codes from the clips'
    codes, which differ at the crops' edges.) On the bundled model: the tiny random one renders every style alike."""
    data = TransferCorpusDataModule(str(parallel_corpus(tmp_path)), crop_seconds=0.1, style_seconds=0.1, batch_size=2)
    data.setup("fit")
    model = load_vqvae("bundled").train()
    module = VQVAEPretrainModule(model, MelLoss(), levels=[LEVEL], stage="transfer_decoder", codebook_init="keep")
    module.stage.prepare(module, data.training_corpus())
    batch = default_collate([data.train_set[index] for index in range(2)])
    with torch.no_grad():
        trained = module.stage.outputs(module, batch, training=False)[LEVEL].reconstruction
        path = tmp_path / "decoder.pth.tar"
        save_decoder(path, model, LEVEL)
        method = AdaIN(decoder=str(path))
        for index in range(2):
            analysis = method.analyse(model, batch["style"][index : index + 1])
            expected = method.apply(model, batch["input"][index : index + 1], analysis).audio
            plain = model.reconstruct(batch["input"][index : index + 1], LEVEL)
            torch.testing.assert_close(trained[index : index + 1], expected, rtol=1e-3, atol=1e-3)
            assert float((expected - plain).abs().max()) > 0.01  # the transfer is far from the reconstruction


def test_wct_and_frozen_style_statistics_train_too(tmp_path):
    data = TransferCorpusDataModule(str(parallel_corpus(tmp_path)), crop_seconds=0.1, style_seconds=0.1, batch_size=2)
    data.setup("fit")
    batch = default_collate([data.train_set[index] for index in range(2)])
    for stage in (
        TransferDecoderStage(method="wct", detach_maps=True),
        TransferDecoderStage(style_source="frozen"),
    ):
        module = VQVAEPretrainModule(base_model(), MelLoss(), levels=[LEVEL], stage=stage, codebook_init="keep")
        module.stage.prepare(module, data.training_corpus())
        loss, _, _ = module.batch_losses(batch, training=True)
        loss.backward()
        grads = [p.grad for p in module.model.decoders[LEVEL].parameters()]
        assert torch.isfinite(loss) and all(g is not None and torch.isfinite(g).all() for g in grads)
        assert all(p.grad is None for p in module.model.encoders[LEVEL].parameters())  # the encoder stays frozen


def test_adain_and_wct_take_the_decoder_through_the_cli_and_the_api(trained, tmp_path):
    out, _ = trained
    decoder = out / "decoder.pth.tar"
    pair = ["data=pair", f"data.content={CONTENT}", f"data.style={STYLE}", "logger=csv"]
    run_config([*TINY, "method=adain", f"method.decoder={decoder}", *pair], tmp_path / "cli")
    with open(tmp_path / "cli" / "results.csv", newline="") as handle:
        (row,) = [row for row in csv.DictReader(handle) if row["method"] == "adain+decoder"]
    assert not row["error"]
    model = base_model()
    with_decoder = jukestyle.transfer(CONTENT, STYLE, method="adain", model=model, decoder=decoder)
    without = jukestyle.transfer(CONTENT, STYLE, method="adain", model=model, level=LEVEL)
    assert with_decoder.shape == without.shape and not np.allclose(with_decoder, without, atol=1e-4)
    assert WCT(decoder=str(decoder)).level == LEVEL  # the decoder's level when none is given


def test_a_base_model_whose_codes_differ_is_one_line(trained):
    out, _ = trained
    other = build_vqvae("tiny", seed=1)
    method = AdaIN(decoder=str(out / "decoder.pth.tar"))
    with pytest.raises(CheckpointError, match=r"decoder.pth.tar: trained on the level-1 codes of another base model"):
        method.validate(other)
    with pytest.raises(Exception, match=r"is a level-1 decoder, not level 2"):
        AdaIN(level=2, decoder=str(out / "decoder.pth.tar"))
    assert copy.deepcopy(method).decoder == str(out / "decoder.pth.tar")


@pytest.mark.slow
def test_the_cli_run_logs_the_transfer_its_content_style_and_target_to_wandb(tmp_path):
    corpus = parallel_corpus(tmp_path / "transfer")
    out = tmp_path / "run"
    settings = [s for s in overrides(corpus, 2) if s != "logger=csv"]
    result = run_cli(*settings, f"hydra.run.dir={out}", home=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = (out / "wandb").glob("offline-run-*")
    media = run / "files" / "media" / "audio" / "val_audio"
    assert {path.parent.name for path in (media / "L1").rglob("*.wav")} == {"L1"}
    sources = {path.parent.name for path in (media / "source").rglob("*.wav")}
    assert sources == {"item0", "item1"} and len(list((media / "source").rglob("*.wav"))) == 6
