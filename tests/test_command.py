"""The ``jukestyle`` console command, run through its entry point as a user does: installed (not editable) into
a folder of its own, from a folder outside the repository, on the tiny model."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import soundfile as sf
from project import REPO
from signals import harmonic_tone

from jukestyle import cli
from jukestyle.jukebox import build_vqvae, save_checkpoint

EXP1 = REPO / "data" / "exp1"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip install --target`` of the repository: the wheel's files and its console script, nothing editable."""
    target = tmp_path_factory.mktemp("installed")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target"]
    # setuptools builds in build/ of the source: a stale one would carry files the clone no longer has
    shutil.rmtree(REPO / "build", ignore_errors=True)
    try:
        subprocess.run([*pip, str(target), str(REPO)], check=True, capture_output=True, timeout=600)
    finally:
        shutil.rmtree(REPO / "build", ignore_errors=True)
    return target


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.pth.tar"
    save_checkpoint(path, build_vqvae("tiny", seed=0))
    return path


def jukestyle(installed: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(installed)}  # the installed copy, not the repository's
    command = [str(installed / "bin" / "jukestyle"), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_the_installed_copy_is_whole(installed, tmp_path):
    """Every module of the package comes from the installed copy, none from the clone (a sub-package left out of
    the wheel would be found in the clone through its editable install)."""
    probe = (
        "import json, sys, jukestyle.cli, jukestyle.evaluation.cards.model, jukestyle.inspect.channel_maps, "
        "jukestyle_lightning.scripts.run; "
        "print(json.dumps([getattr(m, '__file__', None) for n, m in sys.modules.items() if n.startswith('jukestyle')]))"
    )
    env = {**os.environ, "PYTHONPATH": str(installed)}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env)
    files = [file for file in json.loads(result.stdout) if file]
    assert len(files) > 20 and all(file.startswith(str(installed)) for file in files), result.stderr


def test_help_lists_the_methods_and_their_settings(capsys):
    with pytest.raises(SystemExit) as exit_code:
        cli.main(["transfer", "--help"])
    help_text = capsys.readouterr().out
    assert exit_code.value.code == 0
    for text in ("adain", "wct", "gram", "codebook", "decoder", "alpha (default 1.0): 0-1", "cutoff", "--set NAME"):
        assert text in help_text


def test_transfer_writes_the_output_from_any_folder(installed, tiny_checkpoint, tmp_path):
    content = tmp_path / "a.wav"
    sf.write(content, harmonic_tone(261.63, 1.0), 44100)
    out = tmp_path / "out" / "out.wav"
    result = jukestyle(
        installed, "transfer", "a.wav", str(EXP1 / "violin-C4.flac"), "-o", str(out), "--model", str(tiny_checkpoint),
        "--alpha", "0.5", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"wrote {out} (adain" in result.stdout
    audio, rate = sf.read(out)
    assert rate == 44100 and 44100 - 128 < len(audio) <= 44100  # whole codes of the content


def test_compare_writes_a_page_that_plays_every_method(installed, tiny_checkpoint, tmp_path):
    page = tmp_path / "page"
    result = jukestyle(
        installed, "compare", str(EXP1 / "flute-C4.flac"), str(EXP1 / "violin-C4.flac"), "-o", str(page),
        "--model", str(tiny_checkpoint), "--methods", "identity,adain,wct", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    moved = tmp_path / "moved"
    shutil.move(page, moved)  # the page links what it plays by paths relative to itself
    sources = re.findall(r'<audio controls preload="none" src="([^"]+)"', (moved / "index.html").read_text())
    assert sources == ["content/flute-C4.flac", "style/violin-C4.flac", "identity.wav", "adain.wav", "wct.wav"]
    assert all((moved / source).is_file() for source in sources)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["nowhere.wav", "x.wav", "-o", "out.wav"], "error: nowhere.wav: no such audio file"),
        (["a.wav", "a.wav", "-o", "out.flac"], "error: out.flac: the output is written as .wav"),
        (["a.wav", "a.wav", "-o", "out.wav", "--alpha", "2"], "error: adain: alpha must be"),
        (["a.wav", "a.wav", "-o", "out.wav", "--set", "alhpa=0.5"], "error: --set alhpa: not a setting of adain; its"),
        (
            ["a.wav", "a.wav", "-o", "out.wav", "--checkpoint", "x.pth.tar"],
            "error: --checkpoint: not a setting of adain",
        ),
        (["a.wav", "a.wav", "-o", "out.wav", "--set", "level=7"], "error: level must be one of [0, 1, 2], got 7"),
        (["a.wav", "a.wav", "-o", "out.wav", "--set", "level=0", "--level", "1"], "error: --level 1 and --set level=0"),
        ([".", "a.wav", "-o", "out.wav"], "error: .: a folder, not an audio file"),
        (["a.wav", "empty.wav", "-o", "out.wav"], "error: empty.wav: an empty file (0 bytes), not audio"),
        (["compare", "a.wav", "a.wav", "-o", "taken.wav"], "error: taken.wav: exists and is not a folder"),
        (["compare", "a.wav", "a.wav", "-o", "out.wav", "--methods", ","], "error: --methods: no method named"),
        (["compare", "a.wav", "empty.wav", "-o", "out.wav"], "error: empty.wav: an empty file (0 bytes), not audio"),
    ],
)
def test_a_bad_input_is_one_line_and_exit_code_1(tiny_checkpoint, tmp_path, monkeypatch, capsys, arguments, message):
    """In this process (the installed entry point's exit codes are the tests above's): main returns the code."""
    monkeypatch.chdir(tmp_path)
    sf.write(tmp_path / "a.wav", harmonic_tone(261.63, 0.5), 44100)
    (tmp_path / "empty.wav").touch()
    (tmp_path / "taken.wav").write_bytes(b"a file the user keeps")
    command = arguments if arguments[0] == "compare" else ["transfer", *arguments]
    assert cli.main([*command, "--model", str(tiny_checkpoint)]) == 1
    errors = capsys.readouterr().err
    assert errors.strip().splitlines()[-1].startswith(message), errors
    assert "Traceback" not in errors and not (tmp_path / "out.wav").exists()
    assert (tmp_path / "taken.wav").read_bytes() == b"a file the user keeps"


def test_input_beyond_full_scale_gives_a_sound_result_with_its_warning(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    sf.write(tmp_path / "loud.wav", 50 * harmonic_tone(261.63, 0.5), 44100, subtype="FLOAT")
    arguments = ["transfer", "loud.wav", str(EXP1 / "violin-C4.flac"), "-o", "out.wav", "--model", str(tiny_checkpoint)]
    assert cli.main(arguments) == 0
    assert "warning: loud.wav: peak 25 (+28.0 dBFS) is above full scale" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="mounting a small disk needs root")
def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(installed, tiny_checkpoint, tmp_path):
    """A 48 KiB file system in a mount namespace of the command's own: the output does not fit."""
    disk = tmp_path / "disk"
    disk.mkdir()
    command = (
        f"mount -t tmpfs -o size=48k tmpfs {disk} && PYTHONPATH={installed} {installed / 'bin' / 'jukestyle'} "
        f"transfer {EXP1 / 'flute-C4.flac'} {EXP1 / 'violin-C4.flac'} -o {disk / 'out.wav'} --model {tiny_checkpoint}"
        f"; echo exit=$?; ls -A {disk}"
    )
    result = subprocess.run(["unshare", "-m", "sh", "-c", command], capture_output=True, text=True, timeout=600)
    assert f"error: {disk / 'out.wav'}: no space left on the device" in result.stderr, result.stderr
    assert "exit=1" in result.stdout and result.stdout.strip().endswith("exit=1")  # and the disk holds nothing
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # run.py in a process of its own
def test_run_is_run_py_from_an_install_in_any_folder(installed, tmp_path):
    """The configs and the paper's recordings come with the package; the run lands in outputs/ of the folder."""
    overrides = ["experiment=adain_latent", "model=tiny_random", "data.experiments=[3]", "logger=csv"]
    result = jukestyle(installed, "run", *overrides, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = (tmp_path / "outputs" / "adain_latent" / "runs").iterdir()
    assert json.loads((run / "run.json").read_text())["transfers"] == {"succeeded": 2, "failed": 0}
    with open(run / "results.csv", newline="") as handle:
        contents = {row["content"] for row in csv.DictReader(handle)}
    packaged = installed / "jukestyle_lightning" / "data" / "exp3"  # the install's recordings, not the clone's
    assert contents == {str(packaged / "banjo-oh_susanna.flac"), str(packaged / "organ-old_hundredth.flac")}
    assert not (installed / "jukestyle_lightning" / "outputs").exists()  # nothing is written into the install


@pytest.mark.slow  # training runs in processes of their own
def test_train_decoder_stops_on_sigterm_resumes_and_writes_the_decoder(installed, tmp_path):
    """SIGTERM to the command (a job system's, or ``kill``) stops the training it runs, which saves a checkpoint and
    says so in one line; nothing is left running and no decoder is written. The same command resumes and writes it."""
    recordings = tmp_path / "flute"
    recordings.mkdir()
    for note in ("C4", "G4"):
        shutil.copy(EXP1 / f"flute-{note}.flac", recordings)
    speed = ["model=tiny_random", "logger=csv", "data.batch_size=2", "data.crops_per_epoch=4", "data.crop_seconds=0.1"]
    speed += ["trainer.val_check_interval=2", "+trainer.limit_val_batches=1", "trainer.enable_progress_bar=false"]
    speed += ["task.module.warmup_steps=1"]
    command = [str(installed / "bin" / "jukestyle"), "train-decoder", str(recordings), "-o", "flute.pth.tar", "--"]
    env = {**os.environ, "PYTHONPATH": str(installed)}
    run = tmp_path / "flute_run"
    endless = subprocess.Popen([*command, *speed, "trainer.max_steps=100000"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while not (run / "checkpoints" / "last.ckpt").is_file() and endless.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    endless.terminate()
    _, errors = endless.communicate(timeout=120)
    assert endless.returncode == 1, errors[-2000:]
    stopped = re.fullmatch(r"error: stopped by SIGTERM at step (\d+); the last checkpoint is (\S+); run the same "
                           r"command to resume", errors.strip().splitlines()[-1])  # fmt: skip
    assert stopped and Path(stopped.group(2)) == run / "checkpoints" / "last.ckpt", errors[-2000:]
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert not (tmp_path / "flute.pth.tar").exists()
    assert str(run) not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout  # no orphan
    step = int(stopped.group(1)) + 2
    result = subprocess.run([*command, *speed, f"trainer.max_steps={step}"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming from" in result.stdout
    from jukestyle.jukebox.decoder_checkpoint import read_decoder

    assert read_decoder(tmp_path / "flute.pth.tar")["step"] == step


@pytest.mark.slow  # a Streamlit server
def test_explore_serves_the_app(installed, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(installed / "bin" / "jukestyle"), "explore", "--server.headless=true"]
    command += ["--browser.gatherUsageStats=false", f"--server.port={port}"]
    env = {**os.environ, "PYTHONPATH": str(installed)}
    server = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, env=env)
    try:
        deadline, page = time.monotonic() + 120, None
        while time.monotonic() < deadline and page is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
            except OSError:
                time.sleep(0.5)
        assert page is not None and "<title>Streamlit</title>" in page
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_install_has_no_generic_top_level_names_and_ships_what_the_clone_ships(installed):
    top_level = {path.name for path in installed.iterdir() if not path.name.endswith(".dist-info")}
    assert top_level == {"jukestyle", "jukestyle_lightning", "bin"}
    assert sorted(path.name for path in (installed / "jukestyle_lightning").iterdir() if path.is_dir()) == [
        "callbacks", "configs", "data", "datamodules", "lightning_modules", "scripts",
    ]  # fmt: skip
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for folder, copied in [
        ("checkpoints", installed / "jukestyle" / "checkpoints"),
        ("configs", installed / "jukestyle_lightning" / "configs"),
        ("data", installed / "jukestyle_lightning" / "data"),  # the paper's recordings, nothing rendered since
    ]:
        shipped = {file.removeprefix(f"{folder}/") for file in tracked if file.startswith(f"{folder}/")}
        assert shipped and shipped == {str(path.relative_to(copied)) for path in copied.rglob("*") if path.is_file()}


def test_setup_lists_every_package_of_the_clone():
    listed = set(re.search(r"\npackages =\n((?:    \S+\n)+)", (REPO / "setup.cfg").read_text()).group(1).split())
    found = {".".join(path.parent.relative_to(REPO).parts) for path in (REPO / "jukestyle").rglob("__init__.py")}
    found |= {
        f"jukestyle.checkpoints{'.' + path.name if path != REPO / 'checkpoints' else ''}"
        for path in [REPO / "checkpoints", *(p for p in (REPO / "checkpoints").iterdir() if p.is_dir())]
    }
    framework = ("lightning_modules", "datamodules", "callbacks", "scripts", "configs", "data")
    found |= {f"jukestyle_lightning.{name}" for name in framework}
    assert listed == found


def test_the_installed_command_transfers_with_the_bundled_model(installed, tmp_path):
    result = jukestyle(installed, "transfer", str(EXP1 / "flute-C4.flac"), str(EXP1 / "violin-C4.flac"), "-o",
                       "out.wav", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sf.info(tmp_path / "out.wav").duration > 1.0
