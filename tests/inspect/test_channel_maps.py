"""Instrument channel maps: the map logic on known activities, and `experiment=channel_maps` end to end."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hydra_runs import run_config
from project import TINY_MODEL
from signals import harmonic_tone

from jukestyle.errors import JukestyleError
from jukestyle.inspect import frequency_response as probe
from jukestyle.inspect.channel_maps import CSV_COLUMNS, build_channel_map, write_channel_maps
from jukestyle.jukebox import build_vqvae

LAYERS = [probe.EncoderLayer(0, "first", 3, 2, 22050.0), probe.EncoderLayer(1, "second", 2, 4, 11025.0)]
# Layer 0: channel 0 fires for both, 1 for "reed" only, 2 for "string" only. Layer 1 is silent.
ACTIVITIES = {
    "string": {0: np.array([1.0, 0.01, 0.5]), 1: np.zeros(2)},
    "reed": {0: np.array([0.8, 0.9, 0.04]), 1: np.zeros(2)},
}


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_channels_active_for_some_instruments_are_selective():
    channel_map = build_channel_map("C4", 2, LAYERS, ACTIVITIES, threshold=0.05)
    assert channel_map.instruments == ["reed", "string"]
    assert channel_map.active(0).tolist() == [[True, True, False], [True, False, True]]
    assert channel_map.selective(0).tolist() == [False, True, True]
    assert not channel_map.active(1).any() and not channel_map.selective(1).any()
    assert channel_map.selective_channels() == [(0, 1), (0, 2)]
    assert channel_map.most_selective(1) == [(0, 1)]  # 0.01/0.9 vs 0.04/0.5: channel 1 differs most
    assert channel_map.layer_summary() == [
        {"layer": 0, "all": 1, "none": 0, "selective": 2},
        {"layer": 1, "all": 0, "none": 2, "selective": 0},
    ]
    rows = channel_map.rows()
    assert len(rows) == 5 and rows[1]["active_for"] == "reed" and rows[1]["selective"]
    assert rows[1]["activity_reed"] == 0.9 and rows[0]["active_for"] == "reed;string"


def test_threshold_is_relative_to_the_layer():
    strict = build_channel_map("C4", 2, LAYERS, ACTIVITIES, threshold=0.6)
    assert strict.active(0).tolist() == [[True, True, False], [True, False, False]]


@pytest.mark.parametrize(
    ("activities", "threshold", "problem"),
    [({"string": ACTIVITIES["string"]}, 0.05, "at least two instruments"), (ACTIVITIES, 1.5, "threshold")],
)
def test_bad_maps_are_refused(activities, threshold, problem):
    with pytest.raises(JukestyleError, match=problem):
        build_channel_map("C4", 2, LAYERS, activities, threshold)


def test_written_maps(tmp_path):
    maps = [build_channel_map(piece, 2, LAYERS, ACTIVITIES) for piece in ("C4", "G4")]
    written = write_channel_maps(tmp_path, maps)
    rows = read_csv(written["csv"])
    assert len(rows) == 10 and list(rows[0]) == [*CSV_COLUMNS, "activity_reed", "activity_string"]
    assert {row["piece"] for row in rows} == {"C4", "G4"}
    for piece in ("C4", "G4"):
        assert (tmp_path / "figures" / f"channel_map_{piece}.png").stat().st_size > 1000
        assert (tmp_path / "figures" / f"selective_channels_{piece}.png").stat().st_size > 1000
    assert "## C4: 2 selective channels (reed, string)" in written["report"].read_text()
    assert not list(tmp_path.rglob("*.part*"))


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    """A manifest of two instruments playing C4 and G4 (a harmonic tone, a square wave), and a missing file."""
    folder = tmp_path_factory.mktemp("recordings")
    rows = []
    for piece, frequency in (("C4", 261.63), ("G4", 392.0)):
        tone = harmonic_tone(frequency, 0.5)
        sf.write(folder / f"tone-{piece}.wav", tone, 44100)
        sf.write(folder / f"square-{piece}.wav", (0.3 * np.sign(tone)).astype(np.float32), 44100)
        rows += [("tone", piece, f"tone-{piece}.wav"), ("square", piece, f"square-{piece}.wav")]
    rows.append(("ghost", "C4", "ghost-C4.wav"))
    lines = ["instrument,piece,file", *(",".join(row) for row in rows)]
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder / "manifest.csv"


def test_channel_maps_run(recordings, tmp_path, capsys):
    out = tmp_path / "run"
    overrides = ["experiment=channel_maps", TINY_MODEL, f"data.manifest={recordings}", "data.root=null"]
    run_config([*overrides, "data.experiments=null", "trainer.enable_progress_bar=false"], out)
    assert "skipped: " in capsys.readouterr().out  # the missing file is reported, the others are mapped
    layers = probe.encoder_layers(build_vqvae("tiny"), 2)
    rows = read_csv(out / "channel_maps.csv")
    assert len(rows) == 2 * sum(layer.channels for layer in layers)
    assert {row["piece"] for row in rows} == {"C4", "G4"} and "activity_ghost" not in rows[0]
    assert {int(row["layer"]) for row in rows} == {layer.index for layer in layers}
    for row in rows:
        active = row["active_for"].split(";") if row["active_for"] else []
        assert int(row["active_count"]) == len(active) and (row["selective"] == "True") == (len(active) == 1)
    for piece in ("C4", "G4"):
        assert (out / "figures" / f"channel_map_{piece}.png").is_file()
    # logged to W&B (offline): the selective counts, the heatmaps and the per-layer table
    (run_dir,) = (out / "wandb").glob("offline-run-*")
    logged = next(run_dir.glob("run-*.wandb")).read_bytes()
    assert b"channel_maps/C4/selective" in logged and b"channel_maps/layers" in logged
    images = {
        path.name.split("_")[0] + "_" + path.name.split("_")[1] for path in run_dir.rglob("media/images/**/*.png")
    }
    assert {"map_C4", "map_G4"} <= images


def test_channel_maps_of_the_paper_notes(tmp_path):
    """The default data: Experiment 1's C4 and G4 of six instruments, on the 8x encoder, CSV logger."""
    out = tmp_path / "run"
    overrides = ["experiment=channel_maps", TINY_MODEL, "task.module.level=0", "logger=csv"]
    run_config([*overrides, "trainer.enable_progress_bar=false"], out)
    rows = read_csv(out / "channel_maps.csv")
    instruments = {"flute", "piano", "trumpet", "violin", "sine", "sawtooth"}
    assert {column.removeprefix("activity_") for column in rows[0] if column.startswith("activity_")} == instruments
    assert len(rows) == 2 * sum(layer.channels for layer in probe.encoder_layers(build_vqvae("tiny"), 0))
    (metrics,) = out.glob("csv/version_*/metrics.csv")
    assert "channel_maps/C4/selective" in metrics.read_text()
