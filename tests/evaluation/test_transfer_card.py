"""The transfer decoder's card, built from a run folder on the tiny model and one pair per set."""

from __future__ import annotations

import copy
import csv

import pytest
import soundfile as sf
import torch
from project import REPO

from jukestyle.errors import JukestyleError
from jukestyle.evaluation import timbre
from jukestyle.evaluation.cards import transfer_decoder as card
from jukestyle.evaluation.pair_sets import Pair
from jukestyle.jukebox.decoder_checkpoint import save_decoder

EXP1 = REPO / "data" / "exp1"
RECIPE = {"method": "adain", "points": "all", "eps": 1e-5, "style_source": "decoder", "detach_maps": False}


def decoder_run(folder, model, step: int, bias: float):
    """A run folder as experiment=train_transfer_decoder leaves it: decoder.pth.tar and its snapshots."""
    trained = copy.deepcopy(model)
    with torch.no_grad():
        trained.decoders[1].out.bias += bias
    (folder / "snapshots").mkdir(parents=True)
    extra = {"transfer": RECIPE, "training": {"batch_size": 8, "crop_seconds": 0.5, "hardware": "tests"}}
    save_decoder(folder / "decoder.pth.tar", trained, 1, step=step, train_seconds=60.0, **extra)
    save_decoder(folder / "snapshots" / f"step{step:07d}.pth.tar", trained, 1, step=step, **extra)
    return folder


def first_second(name: str, folder) -> str:
    """The first second of one of Experiment 1's notes (scoring time grows with the audio's length)."""
    audio, rate = sf.read(EXP1 / f"{name}.flac", dtype="float32")
    path = folder / f"{name}.wav"
    sf.write(path, audio[:rate], rate)
    return str(path)


def test_the_card_ships_the_decoder_and_measures_every_part(tiny_model, tmp_path):
    run = decoder_run(tmp_path / "run", tiny_model, 2, 0.05)
    arm = decoder_run(tmp_path / "arm", tiny_model, 2, -0.05)
    notes = {name: first_second(name, tmp_path) for name in ("piano-C4", "flute-C4", "violin-C4", "sine-G4")}
    sets = {
        "paper": [Pair("piano-C4--flute-C4", notes["piano-C4"], notes["flute-C4"])],
        "heldout": [Pair("violin-C4--sine-G4", notes["violin-C4"], notes["sine-G4"])],
    }
    out = tmp_path / "card"
    metric = tmp_path / "timbre_metric.pth.tar"
    timbre.save_metric(metric, timbre.TimbreNet(), step=0)
    messages = []
    path = card.build_card(tiny_model, run, sets, out, tmp_path / "work", "python scripts/transfer_card.py --run x",
                           steps=[2], arms=[card.Arm("other bias", arm.joinpath("decoder.pth.tar"))],
                           levels=card.level_rows(["identity"], [2]), timbre_metric=metric,
                           progress=messages.append)  # fmt: skip
    assert (out / card.DECODER_FILE).read_bytes() == (run / "decoder.pth.tar").read_bytes()
    text = path.read_text()
    for section in ("## Targets", "## The paper's 34 pairs", "## Held-out programs", "## Style = content itself",
                    "## Against training steps", "## A/B", "## Every zero-shot method",
                    "python scripts/transfer_card.py --run x"):  # fmt: skip
        assert section in text, section
    assert "| adain + transfer decoder | 1 |" in text and "| main run, step 2 |" in text
    assert "| heldout | identity L2 | 1 |" in text
    assert "held-out style wins >= 75%" in text and "paper pitch accuracy >= 87%" in text
    with open(out / "transfer_card.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert all(row["timbre_win_rate"] in ("0.0", "1.0") for row in rows)  # one pair per set: won or not, by timbre
    assert [(row["set"], row["row"]) for row in rows][:4] == [
        ("paper", "identity L1"), ("paper", "adain L1"), ("paper", "wct L1"), ("paper", "adain + transfer decoder")
    ]  # fmt: skip
    assert (out / "transfer_curve_heldout.png").stat().st_size > 0
    assert any("heldout / other bias" in message for message in messages)
    assert not any("paper / other bias" in message for message in messages)  # the A/B: held-out programs only


def test_a_run_without_a_decoder_is_one_line(tiny_model, tmp_path):
    with pytest.raises(JukestyleError, match=r"no decoder \(a finished experiment=train_transfer_decoder run folder\)"):
        card.build_card(tiny_model, tmp_path, {}, tmp_path / "out", tmp_path / "work", "")


def test_targets_say_which_are_met_with_the_numbers():
    table = [
        {"set": "heldout", "row": "identity L1", "style_win_rate": 0.2, "pitch_accuracy": 0.9},
        {"set": "heldout", "row": "adain L1", "style_win_rate": 0.5, "pitch_accuracy": 0.9},
        {"set": "heldout", "row": "decoder", "style_win_rate": 0.8, "pitch_accuracy": 0.85},
        {"set": "paper", "row": "decoder", "style_win_rate": 0.7, "pitch_accuracy": 0.8},
    ]
    lines = card.goals(table, "decoder", "identity L1", ["adain L1"])
    assert "- met: held-out style wins >= 75%: 80%" in lines
    assert "- met: held-out pitch accuracy >= 90% of identity L1's (90%): 85%" in lines
    assert "- **not met**: held-out pitch_accuracy above adain L1's (90%): 85%" in lines
    assert "- **not met**: paper pitch accuracy >= 87%: 80%" in lines


def test_a_baseline_with_nothing_scored_on_a_set_draws_no_line(tmp_path):
    """The per-instrument decoders have none for the held-out programs: their row is empty there."""
    curve = [{"set": "heldout", "step": step, "style_win_rate": 0.4, "pitch_accuracy": 0.9, "chroma_similarity": 0.9}
             for step in (1, 2)]  # fmt: skip
    baselines = {
        "decoders": {key: None for key in card.CURVE_METRICS},
        "identity": dict.fromkeys(card.CURVE_METRICS, 0.5),
    }
    path = card.curve_figure(curve, baselines, "heldout", tmp_path / "curve.png")
    assert path.stat().st_size > 0
