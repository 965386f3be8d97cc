"""scripts/run.py as a user runs it: a real process, real Hydra, real (offline) W&B."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_runs import cli_command, cli_environment, run_cli
from project import TINY_MODEL
from signals import harmonic_tone

# every test here runs scripts/run.py in a process of its own: `make test-fast` skips them
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("audio")
    paths = {
        "content": folder / "piano-C4.wav",
        "style": folder / "violin-C4.flac",
        "silence": folder / "silence.wav",
        "short": folder / "click.wav",
        "broken": folder / "broken.wav",
        "noise": folder / "noise.wav",
    }
    sf.write(paths["content"], harmonic_tone(261.63, 0.6), 44100)
    sf.write(paths["style"], harmonic_tone(261.63, 0.6, partials=3), 44100)
    sf.write(paths["silence"], np.zeros(30000, np.float32), 44100)
    sf.write(paths["short"], harmonic_tone(1000, 0.001), 44100)  # 44 samples: less than one 128x frame
    paths["broken"].write_bytes(b"RIFF....WAVEfmt not really")
    sf.write(paths["noise"], (0.3 * np.random.default_rng(0).standard_normal(30000)).astype(np.float32), 44100)
    return paths


def test_one_pair_writes_transfers_results_and_an_offline_wandb_run(files, tmp_path):
    out = tmp_path / "run"
    result = run_cli(
        "experiment=adain_multilayer",
        TINY_MODEL,
        "data=pair",
        f"data.content={files['content']}",
        f"data.style={files['style']}",
        f"hydra.run.dir={out}",
        "trainer.enable_progress_bar=false",
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "transfers" / "piano-C4--violin-C4.wav").is_file()
    assert (out / "transfers" / "piano-C4--violin-C4.json").is_file()
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["pair_id"], row["method"], row["error"]) for row in rows if row["reference"] == "false"] == [
        ("piano-C4--violin-C4", "adain", "")
    ]
    references = {row["method"]: row for row in rows if row["reference"] == "true"}
    assert set(references) == {"identity", "content_as_output", "style_as_output"}
    assert float(references["content_as_output"]["l2mfcc_source"]) == 0.0
    assert float(references["style_as_output"]["l2mfcc_style"]) == 0.0
    assert references["style_as_output"]["closer_to"] == "style"
    offline_runs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline_runs) == 1  # everything of the run, W&B included, is under hydra.run.dir
    assert f"wandb sync {offline_runs[0].parent}" in result.stdout
    media = offline_runs[0].parent / "files" / "media"
    # one step per transfer with audio, adain's and the identity reference's (W&B stores identical media once)
    kinds = sorted(p.name.split("_")[0] for p in (media / "audio" / "transfer").glob("*.wav"))
    assert kinds == ["content", "output", "output", "style"]
    assert len(list((media / "images" / "transfer").glob("output_mel_*.png"))) == 2
    assert list((media / "table").glob("transfers_*.table.json"))
    assert list(
        (out / "wandb" / "data" / "artifacts" / "staging").iterdir()
    )  # the table with its media, for wandb sync
    assert (out / ".hydra" / "config.yaml").is_file()


def test_gram_loss_curve_is_logged(files, tmp_path):
    out = tmp_path / "run"
    result = run_cli(
        "experiment=gram_top_level",
        "method.lbfgs.max_iter=3",
        TINY_MODEL,
        "data=pair",
        f"data.content={files['content']}",
        f"data.style={files['noise']}",
        f"hydra.run.dir={out}",
        "trainer.enable_progress_bar=false",
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "transfers" / "piano-C4--noise.json").read_text())
    curve = record["info"]["loss_curve"]
    assert len(curve) >= 2 and curve[-1] < curve[0]
    media = next((out / "wandb").glob("offline-run-*/files/media/images/transfer"))
    assert len(list(media.glob("loss_curve_*.png"))) == 1


def test_bad_pairs_are_reported_and_the_run_goes_on(files, tmp_path):
    manifest = tmp_path / "pairs.csv"
    rows = [
        ("good", files["content"], files["style"]),
        ("missing", tmp_path / "nowhere.wav", files["style"]),
        ("broken", files["content"], files["broken"]),
        ("short", files["short"], files["style"]),
        ("silent", files["silence"], files["style"]),
    ]
    manifest.write_text("pair_id,content,style\n" + "".join(f"{i},{c},{s}\n" for i, c, s in rows))
    out = tmp_path / "run"
    result = run_cli(
        "experiment=wct_latent",
        TINY_MODEL,
        "data=manifest",
        f"data.manifest={manifest}",
        f"hydra.run.dir={out}",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "results.csv", newline="") as handle:
        errors = {row["pair_id"]: row["error"] for row in csv.DictReader(handle) if row["method"] == "wct"}
    assert errors["good"] == "" and errors["silent"] == ""
    assert "nowhere.wav: no such audio file" in errors["missing"]
    assert "broken.wav: unreadable audio" in errors["broken"]
    assert "shorter than one latent frame at level 2" in errors["short"]
    assert sorted(p.name for p in (out / "transfers").glob("*.wav")) == ["good.wav", "silent.wav"]
    identity = out / "transfers" / "reference" / "identity"
    assert sorted(p.name for p in identity.glob("*.wav")) == ["good.wav", "silent.wav"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "method.points=[nope]",
            "error: unknown hook point 'nope' at level 2; valid: all, blocks, latent, level_blocks",
        ),
        ("method.level=4", "error: level must be one of [0, 1, 2], got 4"),
        ("model=jukebox_5b", "put vqvae.pth.tar (7.4 MB, sha256 69745413"),
        (
            "experiment=paper_all method.alpha=0.5",
            "error: method.alpha=0.5: this experiment runs several methods (identity, codebook, gram, adain, wct, "
            "decoder, transfer) and ignores `method`; set task.module.methods.<name>.alpha instead",
        ),
        (  # a mistyped appended setting: the API's line, not Hydra's page
            "+method.alhpa=0.5",
            "error: bad option at task.module.methods.main of jukestyle.methods.features.AdaIN: "
            "FeatureTransfer.__init__() got an unexpected keyword argument 'alhpa'",
        ),
    ],
)
def test_bad_settings_end_with_one_clear_line(files, tmp_path, override, message, monkeypatch):
    experiment, *more = (
        override.split() if override.startswith("experiment=") else ("experiment=adain_latent", override)
    )
    result = run_cli(
        experiment,
        TINY_MODEL,
        *more,
        "data=pair",
        f"data.content={files['content']}",
        f"data.style={files['style']}",
        f"hydra.run.dir={tmp_path / 'run'}",
        "logger=csv",
        home=tmp_path,
    )
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "Error in call to target" not in result.stderr
    if (tmp_path / "run" / "run.json").is_file():  # the run started: its record holds the same line
        assert message.removeprefix("error: ") in (tmp_path / "run" / "run.json").read_text()


def test_unknown_method_lists_the_methods(tmp_path):
    result = run_cli("method=style", f"hydra.run.dir={tmp_path / 'run'}", home=tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "error: unknown method 'style'; choose one of: adain, codebook, decoder, gram, identity, wct"
    )


def test_a_sweep_keeps_each_jobs_outputs_and_wandb_run_in_its_own_folder(files, tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        "-m",
        "experiment=adain_latent",
        "method.alpha=0.0,1.0",
        TINY_MODEL,
        "data=pair",
        f"data.content={files['content']}",
        f"data.style={files['style']}",
        f"hydra.sweep.dir={sweep}",
        "trainer.enable_progress_bar=false",
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for job, alpha in (("0", 0.0), ("1", 1.0)):
        record = json.loads((sweep / job / "transfers" / "piano-C4--violin-C4.json").read_text())
        assert record["settings"]["alpha"] == alpha
        assert len(list((sweep / job / "wandb").glob("offline-run-*/run-*.wandb"))) == 1
        assert (sweep / job / "results.csv").is_file() and (sweep / job / "report.md").is_file()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="mounting a small disk needs root")
def test_a_full_disk_ends_the_run_with_one_line(files, tmp_path):
    """The run folder on a 200 KiB file system of a mount namespace of its own: the first output does not fit."""
    disk = tmp_path / "disk"
    disk.mkdir()
    run = " ".join(
        cli_command(
            "experiment=adain_latent", TINY_MODEL, "data=pair", f"data.content={files['content']}",
            f"data.style={files['style']}", "logger=csv", f"hydra.run.dir={disk / 'run'}",
        )
    )  # fmt: skip
    script = f"mount -t tmpfs -o size=200k tmpfs {disk} && {run}; echo exit=$?; cd {disk / 'run'} && find transfers"
    environment = cli_environment(tmp_path)
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, env=environment)
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in result.stderr
    assert "no space left on the device; nothing was written under its name" in result.stderr
    assert "exit=1" in result.stdout
    left = result.stdout.split("exit=1")[1].split()
    assert not [name for name in left if ".part" in name]  # nothing half-written
    assert all(name.removesuffix(".wav") + ".json" in left for name in left if name.endswith(".wav"))  # complete
