"""Resume: re-running into the same folder keeps what an earlier (interrupted) run finished."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import soundfile as sf
from cli_runs import cli_command, cli_environment, run_cli
from project import TINY_MODEL
from signals import harmonic_tone

from jukestyle.fileio import finished_files

# every test here runs scripts/run.py in a process of its own: `make test-fast` skips them
pytestmark = pytest.mark.slow

FREQUENCIES = {"low": 196.0, "mid": 261.63, "high": 392.0, "top": 523.25}


@pytest.fixture
def manifest(tmp_path) -> Path:
    """12 ordered pairs of four 1-second tones."""
    for name, frequency in FREQUENCIES.items():
        sf.write(tmp_path / f"{name}.wav", harmonic_tone(frequency, 1.0, partials=3 + len(name)), 44100)
    rows = [(c, s) for c in FREQUENCIES for s in FREQUENCIES if c != s]
    path = tmp_path / "pairs.csv"
    path.write_text("content,style\n" + "".join(f"{c}.wav,{s}.wav\n" for c, s in rows))
    return path


def overrides(manifest: Path, out: Path, *extra: str) -> list[str]:
    return [
        "experiment=adain_multilayer",
        TINY_MODEL,
        "data=manifest",
        f"data.manifest={manifest}",
        f"hydra.run.dir={out}",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        *extra,
    ]


def finished_outputs(out: Path) -> dict[str, float]:
    """JSON records that have output audio, with their modification times."""
    records = {}
    for path in finished_files(out / "transfers", "*.json"):  # a record being written is not finished
        if json.loads(path.read_text()).get("output"):
            records[str(path.relative_to(out))] = path.stat().st_mtime_ns
    return records


def results(out: Path) -> list[tuple[str, str]]:
    with open(out / "results.csv", newline="") as handle:
        return [(row["pair_id"], row["method"]) for row in csv.DictReader(handle) if not row["error"]]


def test_a_killed_run_resumes_without_losing_or_repeating_pairs(manifest, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(
        cli_command(*overrides(manifest, out)),
        env=cli_environment(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while len(finished_outputs(out)) < 4 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # no clean-up of any kind, as when a node or a session dies
    process.wait()
    before = finished_outputs(out)
    adain_before = [name for name in before if not name.startswith("transfers/reference/")]
    assert 2 <= len(adain_before) < 12, "the run must be killed part-way for this test to mean anything"
    assert not (out / "results.csv").exists()

    result = run_cli(*overrides(manifest, out), home=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    after = finished_outputs(out)
    assert {name: after[name] for name in before} == before  # finished records were kept, not rewritten
    assert f"resumed: {len(before)} records finished by an earlier run" in result.stdout
    rows = results(out)
    assert len(rows) == len(set(rows))  # every (pair, method) once
    adain = sorted(pair for pair, method in rows if method == "adain")
    assert adain == sorted(f"{c}--{s}" for c in FREQUENCIES for s in FREQUENCIES if c != s)
    assert not list((out / "transfers").rglob(".*.part.*"))  # the killed run's temporary files are gone


def test_changed_settings_or_inputs_are_computed_again(manifest, tmp_path):
    out = tmp_path / "run"
    small = tmp_path / "small.csv"
    small.write_text("content,style\nlow.wav,mid.wav\nmid.wav,high.wav\n")
    assert run_cli(*overrides(small, out), home=tmp_path).returncode == 0
    first = finished_outputs(out)

    sf.write(tmp_path / "high.wav", harmonic_tone(400.0, 1.0), 44100)  # an input file changes
    changed = run_cli(*overrides(small, out, "method.alpha=0.5"), home=tmp_path)
    # Only the identity reference of low--mid is unchanged: adain changed its settings, mid--high its style.
    assert "resumed: 1 records" in changed.stdout
    record = json.loads((out / "transfers" / "low--mid.json").read_text())
    assert record["settings"]["alpha"] == 0.5
    reference = "transfers/reference/identity/low--mid.json"
    assert finished_outputs(out)[reference] == first[reference]
    assert all(finished_outputs(out)[name] != first[name] for name in first if name != reference)
