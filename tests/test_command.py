"""The ``jukestyle`` console command, run through its entry point as a user does: installed (not editable) into
a folder of its own, from a folder outside the repository, on the tiny model."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from project import REPO
from signals import harmonic_tone

from jukestyle.jukebox import build_vqvae, save_checkpoint

EXP1 = REPO / "data" / "exp1"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip install --target`` of the repository: the wheel's files and its console script, nothing editable."""
    target = tmp_path_factory.mktemp("installed")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target"]
    subprocess.run([*pip, str(target), str(REPO)], check=True, capture_output=True, timeout=600)
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


def test_help_lists_the_methods_and_their_settings(installed, tmp_path):
    result = jukestyle(installed, "transfer", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for text in ("adain", "wct", "gram", "codebook", "decoder", "alpha (default 1.0): 0-1", "cutoff", "--set NAME"):
        assert text in result.stdout
    assert jukestyle(installed, "--help", cwd=tmp_path).returncode == 0


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
        (["a.wav", "a.wav", "-o", "out.wav", "--set", "alhpa=0.5"], "error: bad option for method 'adain'"),
    ],
)
def test_a_bad_input_is_one_line_and_exit_code_1(installed, tiny_checkpoint, tmp_path, arguments, message):
    sf.write(tmp_path / "a.wav", harmonic_tone(261.63, 0.5), 44100)
    result = jukestyle(installed, "transfer", *arguments, "--model", str(tiny_checkpoint), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.wav").exists()


def test_input_beyond_full_scale_gives_a_sound_result_with_its_warning(installed, tiny_checkpoint, tmp_path):
    sf.write(tmp_path / "loud.wav", 50 * harmonic_tone(261.63, 0.5), 44100, subtype="FLOAT")
    result = jukestyle(
        installed, "transfer", "loud.wav", str(EXP1 / "violin-C4.flac"), "-o", "out.wav", "--model",
        str(tiny_checkpoint), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "warning: loud.wav: peak 25 (+28.0 dBFS) is above full scale" in result.stderr


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
