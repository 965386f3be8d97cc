"""Every experiment config runs through the real Hydra composition, on a tiny model and short audio."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from hydra_runs import run_config
from project import REPO, TINY_MODEL, script
from signals import harmonic_tone

from jukestyle.jukebox import build_vqvae

EXPERIMENTS = sorted(path.stem for path in (REPO / "configs" / "experiment").glob("*.yaml"))
TINY_PARAMETERS = sum(p.numel() for p in build_vqvae("tiny").parameters())
TRANSFER_METHODS = {"paper_all": {"identity", "codebook", "gram", "adain", "wct", "decoder", "adain+decoder"}}


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pair")
    sf.write(folder / "flute-C4.wav", harmonic_tone(261.63, 0.6), 44100)
    square = (0.25 * np.sign(harmonic_tone(392.0, 0.6, 22050))).astype(np.float32)
    sf.write(folder / "square-G4.flac", np.stack([square, square], axis=1), 22050)  # stereo, another rate
    return folder / "flute-C4.wav", folder / "square-G4.flac"


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    main = script("render_data").main

    out = tmp_path_factory.mktemp("corpus")
    assert main(["corpus", "--out", str(out), "--programs", "oboe", "--scale", "0.1"]) == 0
    return out


def transfer_overrides(pair_files) -> list[str]:
    content, style = pair_files
    return [
        TINY_MODEL,
        "data=pair",
        f"data.content={content}",
        f"data.style={style}",
        "logger=csv",
        "trainer.enable_progress_bar=false",
    ]


def test_all_experiments_are_tested():
    expected = {"adain_latent", "adain_multilayer", "wct_latent", "wct_multilayer", "codebook", "gram_top_level",
                "gram_all_levels", "paper_all", "pretrain_vqvae", "channel_maps", "train_decoder",
                "train_transfer_decoder", "train_timbre_metric"}  # fmt: skip
    assert expected <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs(experiment, pair_files, tiny_corpus, tiny_decoders, tmp_path):
    out = tmp_path / "run"
    if experiment == "train_timbre_metric":  # a parallel corpus: two instruments playing the same two notes
        for instrument in ("flute", "violin"):
            (tmp_path / "parallel" / instrument).mkdir(parents=True)
            for note in ("C4", "G4"):
                source = REPO / "data" / "exp1" / f"{instrument}-{note}.flac"
                shutil.copy(source, tmp_path / "parallel" / instrument / f"{note}.flac")
        overrides = [f"experiment={experiment}", "logger=csv", f"data.root={tmp_path / 'parallel'}"]
        overrides += ["data.batch_size=2", "data.crops_per_epoch=4", "data.crop_seconds=0.2", "data.val_items=2"]
        overrides += ["trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.enable_progress_bar=false"]
        run_config([*overrides, "task.module.heldout=null"], out)
        assert (out / "checkpoints" / "last.ckpt").is_file() and (out / "timbre_metric.pth.tar").is_file()
        return
    if experiment in ("pretrain_vqvae", "train_decoder", "train_transfer_decoder"):
        # the decoders: a plain folder of one's recordings (the transfer decoder then learns self-supervised)
        root = tiny_corpus if experiment == "pretrain_vqvae" else pair_files[0].parent
        overrides = [f"experiment={experiment}", TINY_MODEL, "logger=csv", f"data.root={root}"]
        overrides += ["data.batch_size=2", "data.crops_per_epoch=4", "data.crop_seconds=0.1", "trainer.max_steps=2"]
        overrides += ["data.style_seconds=0.1"] if experiment == "train_transfer_decoder" else []
        overrides += [
            "trainer.val_check_interval=2",
            "+trainer.limit_val_batches=1",
            "trainer.enable_progress_bar=false",
        ]
        run_config(overrides, out)
        export = "vqvae.pth.tar" if experiment == "pretrain_vqvae" else "decoder.pth.tar"
        assert (out / "checkpoints" / "last.ckpt").is_file() and (out / export).is_file()
        return
    if experiment == "channel_maps":  # the paper's notes, encoder channels instead of transfers
        run_config([f"experiment={experiment}", TINY_MODEL, "logger=csv", "data.pieces=[C4]"], out)
        with open(out / "channel_maps.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert rows and {row["piece"] for row in rows} == {"C4"} and (out / "figures" / "channel_map_C4.png").is_file()
        return
    overrides = [f"experiment={experiment}", *transfer_overrides(pair_files)]
    if "gram" in experiment or experiment == "paper_all":
        key = "task.module.methods.gram" if experiment == "paper_all" else "method"
        overrides.append(f"{key}.lbfgs.max_iter=2")
    if experiment == "paper_all":  # the decoder row: the tiny model's own decoder for the style's instrument
        decoders = tmp_path / "decoders"
        decoders.mkdir()
        shutil.copy(tiny_decoders[2], decoders / "square.pth.tar")  # the style is square-G4
        overrides.append(f"task.module.methods.decoder.checkpoint={decoders}")
        # the transfer row: adain through a decoder of the tiny model (the bundled one fits the bundled model)
        overrides.append(f"task.module.methods.transfer.decoder={tiny_decoders[2]}")
    run_config(overrides, out)
    hparams = yaml.safe_load(next(out.glob("csv/version_*/hparams.yaml")).read_text())
    assert hparams["parameters/trainable"] == 0 and hparams["parameters/frozen"] == TINY_PARAMETERS
    with open(out / "results.csv", newline="") as handle:
        all_rows = list(csv.DictReader(handle))
    rows = [row for row in all_rows if row["reference"] == "false"]
    references = {row["method"] for row in all_rows if row["reference"] == "true"}
    expected_references = {"content_as_output", "style_as_output"} | (
        {"identity"} if experiment != "paper_all" else set()
    )
    assert references == expected_references and not any(row["error"] for row in all_rows)
    methods = TRANSFER_METHODS.get(experiment, {experiment.split("_")[0]})  # adain_latent -> adain
    assert len(rows) == len(methods) and all(not row["error"] for row in rows), rows
    for row in rows:
        audio, rate = sf.read(out / row["output"])
        assert rate == 44100 and np.isfinite(audio).all() and len(audio) > 0.5 * 44100
        assert row["closer_to"] in ("source", "style") and float(row["l2mfcc_source"]) >= 0
        record = json.loads((out / row["output"]).with_suffix(".json").read_text())
        assert len(record["checksums"]["output"]) == 64 and record["method"] == row["method"]
        assert set(record["seconds"]) == {"analyse", "apply", "total"}
    if experiment == "paper_all":
        assert {row["method"] for row in rows} == TRANSFER_METHODS["paper_all"]
        assert all(row["output"].startswith(f"transfers/{row['method']}/") for row in rows)
    else:
        assert rows[0]["method"] in methods and rows[0]["output"] == f"transfers/{rows[0]['pair_id']}.wav"


def test_paper_pairs_are_the_default_data(tmp_path):
    out = tmp_path / "run"
    run_config(["experiment=codebook", TINY_MODEL, "logger=csv", "data.experiments=[3]"], out)
    with open(out / "results.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["reference"] == "false"]
    assert sorted(row["pair_id"] for row in rows) == [
        "banjo-oh_susanna--organ-old_hundredth",
        "organ-old_hundredth--banjo-oh_susanna",
    ]
    assert all(row["experiment"] == "3" and not row["error"] for row in rows)
