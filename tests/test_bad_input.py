"""Bad input and faults, as a user meets them: each ends in one clear line or a sound result, nothing
finished is lost, no partial file stays. Through the CLI (tiny model, real processes) and the API."""

from __future__ import annotations

import csv
import json
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_runs import run_cli
from project import TINY_MODEL, script
from signals import harmonic_tone

import jukestyle
from jukestyle.audio.io import AudioWarning
from jukestyle.errors import ConfigError, JukestyleError
from jukestyle.evaluation import records
from jukestyle.evaluation.records import write_record
from jukestyle.jukebox import save_checkpoint

RATE = 44100


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    tone = harmonic_tone(261.63, 0.5)
    paths = {name: folder / f"{name}.wav" for name in ("content", "style", "silent", "opposite", "loud", "short")}
    sf.write(paths["content"], tone, RATE)
    sf.write(paths["style"], harmonic_tone(392.0, 0.5, partials=3), RATE)
    sf.write(paths["silent"], np.zeros(RATE // 2, np.float32), RATE)
    sf.write(paths["opposite"], np.stack([tone, -tone], axis=1), RATE)  # the downmix cancels
    sf.write(paths["loud"], 50.0 * tone / np.abs(tone).max(), RATE, subtype="FLOAT")  # peak 50
    sf.write(paths["short"], tone[:50], RATE)  # 50 samples: less than one 128x frame
    return paths


def cli(tmp_path: Path, *overrides: str, experiment: str = "experiment=adain_latent"):
    return run_cli(experiment, TINY_MODEL, "logger=csv", "trainer.enable_progress_bar=false", *overrides, home=tmp_path)


def rows_of(run: Path) -> dict[str, dict]:
    with open(run / "results.csv", newline="") as handle:
        return {row["pair_id"]: row for row in csv.DictReader(handle) if row["reference"] == "false"}


# -- one CLI run with every bad pair: each row of the results says what happened ---------------------------
@pytest.mark.slow
def test_bad_pairs_each_end_as_a_row_with_its_error_or_warning(inputs, tmp_path):
    manifest = tmp_path / "pairs.csv"
    pairs = [
        ("good", "content", "style"),
        ("dup", "content", "style"),
        ("dup", "style", "content"),
        ("dup-2", "content", "content"),
        ("silent", "silent", "style"),
        ("opposite", "opposite", "style"),
        ("loud", "loud", "style"),
        ("short", "short", "style"),
    ]
    manifest.write_text("pair_id,content,style\n" + "".join(f"{i},{inputs[c]},{inputs[s]}\n" for i, c, s in pairs))
    run = tmp_path / "run"
    result = cli(tmp_path, "data=manifest", f"data.manifest={manifest}", f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = rows_of(run)
    # ids unique after renaming: 8 rows give 8 results, the explicit dup-2 keeps its id
    assert sorted(rows) == ["dup", "dup-2", "dup-3", "good", "loud", "opposite", "short", "silent"]
    assert rows["dup-2"]["content"] == rows["dup-2"]["style"] == str(inputs["content"])
    assert rows["good"]["error"] == "" and rows["good"]["warnings"] == ""
    # silence: a warning, silence out, no NaN anywhere in the CSV
    assert f"{inputs['silent']}: silent (below -70 LUFS)" in rows["silent"]["warnings"]
    assert not np.any(sf.read(run / "transfers" / "silent.wav")[0])
    assert "nan" not in (run / "results.csv").read_text().lower()
    assert f"{inputs['opposite']}: the mono downmix lost" in rows["opposite"]["warnings"]
    # beyond full scale: the input named, the output brought back to full scale and said so
    assert f"{inputs['loud']}: peak 50 (+34.0 dBFS) is above full scale" in rows["loud"]["warnings"]
    assert "output: peak" in rows["loud"]["warnings"] and "scaled down" in rows["loud"]["warnings"]
    assert np.abs(sf.read(run / "transfers" / "loud.wav")[0]).max() <= 1.0
    assert rows["short"]["error"].startswith(f"AudioError: {inputs['short']}: 50 samples is shorter than one latent")
    status = json.loads((run / "run.json").read_text())
    assert status["status"] == "completed" and status["transfers"] == {"succeeded": 7, "failed": 1}
    assert not list(run.rglob("*.part*")), "no temporary file stays"


@pytest.mark.slow
def test_a_run_where_every_pair_fails_exits_non_zero_and_says_so(inputs, tmp_path):
    manifest = tmp_path / "pairs.csv"
    manifest.write_text(f"pair_id,content,style\nmissing,{tmp_path / 'nowhere.wav'},{inputs['style']}\n")
    manifest.write_text(manifest.read_text() + f"short,{inputs['short']},{inputs['style']}\n")
    run = tmp_path / "run"
    result = cli(tmp_path, "data=manifest", f"data.manifest={manifest}", f"hydra.run.dir={run}")
    assert result.returncode == 1
    assert f"error: no transfer succeeded: all 2 failed (their errors: {run / 'results.csv'})" in result.stderr
    status = json.loads((run / "run.json").read_text())
    assert status["status"] == "failed" and status["transfers"] == {"succeeded": 0, "failed": 2}
    assert set(rows_of(run)) == {"missing", "short"}  # the errors are kept


# -- settings and command lines: one line, exit code 1, nothing written ------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        # one out-of-range setting through the process; every range is checked in-process (the API's test below)
        (["method.alpha=2"], "error: adain: alpha must be in [0, 1], got 2"),
        (["method=foo"], "error: unknown method 'foo'; choose one of: adain, codebook, decoder, gram, identity, wct"),
        (["hydra.run.dir=/proc/jukestyle/run"], "error: /proc/jukestyle/run: the run folder cannot be written"),
        (["method.decoder=/nowhere/transfer.pth.tar"], "error: /nowhere/transfer.pth.tar: no such checkpoint file"),
    ],
)
def test_bad_settings_end_in_one_line(inputs, tmp_path, overrides, line):
    pair = ["data=pair", f"data.content={inputs['content']}", f"data.style={inputs['style']}"]
    run = [] if any(item.startswith("hydra.run.dir") for item in overrides) else [f"hydra.run.dir={tmp_path / 'run'}"]
    result = cli(tmp_path, *pair, *run, *overrides)
    assert result.returncode == 1
    assert line in result.stderr and "Traceback" not in result.stderr
    assert len([text for text in result.stderr.splitlines() if text.startswith("error:")]) == 1
    assert not list((tmp_path / "run").glob("transfers/*.wav"))


@pytest.mark.parametrize(
    ("argument", "line"),
    [
        ("trainer.max_steps", "error: trainer.max_steps: not an override Hydra can parse (missing EQUAL at '<EOF>')"),
        ("method.alpha=[1,", "error: method.alpha=[1,: not an override Hydra can parse (no viable alternative at"),
    ],
)
def test_an_override_hydra_cannot_parse_is_one_line(capsys, argument, line):
    command_line = script("run")._command_line
    assert command_line(["--cfg", "job", "method=wct"]) == ["--cfg", "job", "method=wct"]  # flags' values pass
    with pytest.raises(SystemExit) as ended:
        command_line(["method=wct", argument])
    assert ended.value.code == 1 and capsys.readouterr().err.startswith(line)


@pytest.mark.slow
def test_a_checkpoint_path_is_accepted_as_model(inputs, tiny_model, tmp_path):
    checkpoint = tmp_path / "mine.pth.tar"
    save_checkpoint(checkpoint, tiny_model)
    run = tmp_path / "run"
    pair = ["data=pair", f"data.content={inputs['content']}", f"data.style={inputs['style']}"]
    result = run_cli(
        "experiment=adain_latent", f"model={checkpoint}", "logger=csv", *pair, f"hydra.run.dir={run}", home=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(next((run / "transfers").glob("*.json")).read_text())
    assert record["model"] == str(checkpoint)


@pytest.mark.slow
def test_a_plain_pickle_given_as_model_is_named_in_one_line(inputs, tmp_path):
    notes = tmp_path / "notes.pth.tar"
    notes.write_bytes(pickle.dumps({"notes": [1, 2, 3]}, protocol=4))
    pair = ["data=pair", f"data.content={inputs['content']}", f"data.style={inputs['style']}"]
    result = run_cli(
        "experiment=adain_latent", f"model={notes}", *pair, f"hydra.run.dir={tmp_path / 'run'}", home=tmp_path
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"error: {notes}: not a torch checkpoint (a pickle that torch.load cannot read safely)" in result.stderr


# -- the API ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "line"),
    [
        ({"alpha": -1.0}, "adain: alpha must be in [0, 1], got -1.0"),
        ({"alpha": 2.0}, "adain: alpha must be in [0, 1], got 2.0"),
        ({"alpha": float("nan")}, "adain: alpha must be in [0, 1], got nan"),
        ({"eps": -1.0}, "adain: eps must be in (0, inf), got -1.0"),
    ],
)
def test_api_settings_are_validated_before_any_audio(inputs, tiny_model, options, line):
    with pytest.raises(ConfigError) as raised:
        jukestyle.transfer(inputs["content"], inputs["style"], model=tiny_model, **options)
    assert str(raised.value) == line


def test_a_whole_vqvae_given_as_a_transfer_decoder_is_one_line(inputs, tiny_model, tmp_path):
    checkpoint = tmp_path / "vqvae.pth.tar"
    save_checkpoint(checkpoint, tiny_model)
    with pytest.raises(JukestyleError, match=r"vqvae.pth.tar: not a trained decoder .* a whole VQ-VAE is model=<file>"):
        jukestyle.transfer(inputs["content"], inputs["style"], method="wct", model=tiny_model, decoder=checkpoint)


def test_api_warns_about_silence_and_levels_beyond_full_scale(inputs, tiny_model):
    with pytest.warns(AudioWarning, match=r"silent\.wav: silent \(below -70 LUFS\)"):
        silent = jukestyle.transfer(inputs["silent"], inputs["style"], model=tiny_model)
    assert not np.any(silent)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loud = jukestyle.transfer(inputs["loud"], inputs["style"], model=tiny_model)
    messages = [str(warning.message) for warning in caught if warning.category is AudioWarning]
    assert any(message.startswith(f"{inputs['loud']}: peak 50") for message in messages)
    assert np.abs(loud).max() <= 1.0
    with pytest.warns(AudioWarning, match=r"opposite\.wav: the mono downmix lost"):
        jukestyle.transfer(inputs["opposite"], inputs["style"], model=tiny_model)


@pytest.mark.parametrize(
    ("content", "style", "expected"),
    [
        ("loud", "style", r"loud\.wav: peak 50 \(\+34\.0 dBFS\) is above full scale"),
        ("content", "loud", r"loud\.wav: peak 50 \(\+34\.0 dBFS\) is above full scale"),
        ("opposite", "style", r"opposite\.wav: the mono downmix lost"),
    ],
)
def test_transfer_file_warns_as_transfer_does(inputs, tiny_model, tmp_path, content, style, expected):
    """Files read in blocks get the checks of whole files: beyond full scale (content or style), and a stereo
    downmix whose channels cancel; each once, however many passes read the file."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jukestyle.transfer_file(inputs[content], inputs[style], tmp_path / "out.wav", model=tiny_model)
    messages = [str(warning.message) for warning in caught if warning.category is AudioWarning]
    assert len([message for message in messages if re.search(expected, message)]) == 1, messages
    assert (tmp_path / "out.wav").is_file()


def test_transfer_file_checks_its_output_folder_before_the_work(inputs, tiny_model):
    with pytest.raises(JukestyleError, match=r"^/proc/jukestyle/out\.wav: cannot write here"):
        jukestyle.transfer_file(inputs["content"], inputs["style"], "/proc/jukestyle/out.wav", model=tiny_model)


def test_transfer_file_removes_what_a_killed_run_left_beside_its_output(inputs, tiny_model, tmp_path):
    output = tmp_path / "out.wav"
    leftover = tmp_path / ".out.k1ll3d.part.wav"  # atomic_path's temporary name, as kill -9 leaves it
    leftover.write_bytes(b"RIFF half a file")
    other = tmp_path / ".other.k1ll3d.part.wav"  # another output's: not ours to remove
    other.write_bytes(b"RIFF")
    jukestyle.transfer_file(inputs["content"], inputs["style"], output, model=tiny_model)
    assert output.is_file() and not leftover.exists() and other.exists()


def test_an_unreadable_input_does_not_stop_the_writer(inputs, tmp_path, monkeypatch):
    """chmod 000 as a non-root user: the pair's error is recorded, its record written, the run goes on."""

    def unreadable(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(records, "sha256_file", unreadable)
    record = {"pair_id": "p", "output_id": "p", "content": str(inputs["content"]), "style": str(inputs["style"])}
    record.update(method="adain", error=f"AudioError: {inputs['content']}: unreadable audio (Permission denied)")
    metadata = write_record(tmp_path, record)
    assert metadata["checksums"] == {"content": None, "style": None}
    assert json.loads((tmp_path / "p.json").read_text())["error"] == record["error"]
