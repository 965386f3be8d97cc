"""experiment=train_timbre_metric: the metric trains, resumes and exports a network that timbre.embed loads."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from hydra_runs import run_config
from project import REPO
from test_train_transfer_decoder import parallel_corpus

from jukestyle.audio.io import load_audio
from jukestyle.evaluation import timbre


def overrides(corpus, heldout, steps: int, loss: str = "classification") -> list[str]:
    settings = ["experiment=train_timbre_metric", "logger=csv", f"data.root={corpus}", f"task.module.heldout={heldout}"]
    settings += ["data.batch_size=4", "data.crops_per_epoch=8", "data.crop_seconds=0.2", "data.val_items=4"]
    settings += [f"trainer.max_steps={steps}", "trainer.val_check_interval=2", "trainer.enable_progress_bar=false"]
    settings += ["callbacks.model_checkpoint.every_n_train_steps=1", "task.module.warmup_steps=1"]
    return [*settings, f"task.module.loss={loss}", "trainer.log_every_n_steps=1"]


def held_out(folder):
    """Two programs at two notes: a held-out folder as render_data.py heldout writes it (its manifest)."""
    folder.mkdir()
    rows = ["id,program,instrument,pitch,file,sha256"]
    for program, instrument in ((1, "sine"), (2, "sawtooth")):
        for note, pitch in (("C4", 60), ("G4", 67)):
            shutil.copy(REPO / "data" / "exp1" / f"{instrument}-{note}.flac", folder / f"{instrument}-{note}.flac")
            rows.append(f"{instrument}-{note},{program},{instrument},{pitch},{instrument}-{note}.flac,x")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    corpus = parallel_corpus(tmp_path_factory.mktemp("corpus"))
    heldout = held_out(tmp_path_factory.mktemp("h") / "heldout")
    out = tmp_path_factory.mktemp("timbre_metric")
    run_config(overrides(corpus, heldout, 3), out)
    return out, corpus, heldout


def test_the_export_is_the_metric_that_embed_loads(trained):
    out, _, _ = trained
    network = timbre.load_metric(out / "timbre_metric.pth.tar")
    assert (out / "timbre_metric.pth.tar").stat().st_size < 2e6
    flute = load_audio(REPO / "data" / "exp1" / "flute-C4.flac", 44100)
    vector = timbre.embed(flute, 44100, out / "timbre_metric.pth.tar")
    assert vector.shape == (network.dim,) and np.isfinite(vector).all()


def test_validation_logs_the_held_out_triplet_accuracy(trained):
    out, _, _ = trained
    with open(next(out.glob("csv/version_*/metrics.csv")), newline="") as handle:
        rows = list(csv.DictReader(handle))
    for key in ("val/heldout_triplet_accuracy", "val/triplet_accuracy", "val/accuracy", "train/loss"):
        values = [float(row[key]) for row in rows if row.get(key)]
        assert values and all(value >= 0 for value in values), key


def test_rerunning_resumes_and_the_triplet_loss_trains_too(trained, tmp_path):
    out, corpus, heldout = trained
    resumed = tmp_path / "resumed"
    shutil.copytree(out, resumed)
    run_config(overrides(corpus, heldout, 4), resumed)
    assert timbre.load_metric(resumed / "timbre_metric.pth.tar") is not None
    import torch

    assert torch.load(resumed / "timbre_metric.pth.tar", weights_only=True)["step"] == 4
    run_config(overrides(corpus, heldout, 2, loss="triplet"), tmp_path / "triplet")
    assert (tmp_path / "triplet" / "timbre_metric.pth.tar").is_file()
