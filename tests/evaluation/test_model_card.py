"""The model card's logic: a tiny checkpoint evaluated on a tiny corpus, the card's tables and what a new card
reuses of the previous one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from project import REPO
from signals import harmonic_tone

from jukestyle.evaluation.cards import model as card
from jukestyle.evaluation.model_quality import IdentityResult
from jukestyle.jukebox.checkpoint import save_checkpoint

SR = 44100


@pytest.fixture
def tiny_corpus(tmp_path):
    """Two 1 s notes in each split, with the manifest that ``corpus_minutes`` reads."""
    rows = ["file,split,seconds"]
    for split, pitches in (("train", (220.0, 330.0)), ("val", (262.0, 392.0))):
        (tmp_path / "corpus" / split).mkdir(parents=True)
        for pitch in pitches:
            name = f"{split}/{int(pitch)}.flac"
            sf.write(tmp_path / "corpus" / name, harmonic_tone(pitch, 1.0), SR)
            rows.append(f"{name},{split},1.0")
    (tmp_path / "corpus" / "manifest.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "corpus"


def inputs_for(tmp_path, tiny_model, corpus) -> card.CardInputs:
    checkpoint = tmp_path / "model" / "model.pth.tar"
    checkpoint.parent.mkdir()
    save_checkpoint(checkpoint, tiny_model, step=5, trained_levels=[2])
    return card.CardInputs(
        checkpoint, tmp_path / "no-run", corpus, REPO / "data" / "exp1", cache=tmp_path / "cache", probe=False
    )


def test_a_card_carries_the_scoreboards_timbre_metrics_and_reuses_its_evaluations(tiny_model, tiny_corpus, tmp_path):
    inputs = inputs_for(tmp_path, tiny_model, tiny_corpus)
    checks = card.write_model_card(inputs)
    assert any("keep the instrument of all six C4 recordings" in text for text, _ in checks)
    text = (inputs.checkpoint.parent / "MODEL_CARD.md").read_text()
    numbers = json.loads((inputs.checkpoint.parent / "model_card.json").read_text())
    timbre = numbers["levels"]["2"]["timbre"]["values"]
    assert 0 <= timbre["timbre_source"] <= 2 and timbre["frame_tones_db"] < 0 and 0 <= timbre["timbre_kept"] <= 6
    level_row = next(line for line in text.splitlines() if line.startswith("| 2 |"))
    assert f"| {timbre['timbre_source']:.3f} | {timbre['frame_tones_db']:.1f} |" in level_row
    assert f"by the timbre metric (nearest its own source's embedding): **{timbre['timbre_kept']}/6**" in text
    assert "## Validation split (2 files" in text and "## What the codes know" not in text  # no probe asked

    # a new card reads every evaluation back from the previous card: nothing is computed again
    for path in inputs.cache.iterdir():
        path.unlink()
    numbers["levels"]["2"]["metrics"]["snr_db"] = 123.4  # a value no evaluation gives
    (inputs.checkpoint.parent / "model_card.json").write_text(json.dumps(numbers))
    card.write_model_card(inputs)
    assert "| 123.4 |" in (inputs.checkpoint.parent / "MODEL_CARD.md").read_text()
    assert not any(inputs.cache.iterdir())


def test_evaluate_only_fills_the_cache_once_per_weights(tiny_model, tiny_corpus, tmp_path):
    inputs = inputs_for(tmp_path, tiny_model, tiny_corpus)
    inputs.ab = [("same weights", inputs.checkpoint)]
    assert "1 A/B checkpoints" in card.evaluate_only(inputs)
    assert sorted(path.name.split("-")[0] for path in inputs.cache.iterdir()) == ["level2", "timbre2"]
    assert not (inputs.checkpoint.parent / "MODEL_CARD.md").exists()


def test_the_tables_print_each_level_and_mark_the_nearest_source():
    identity = IdentityResult(["flute", "piano"], np.array([[1.0, 2.0], [3.0, 2.5]]), [0.95, None])
    table = card.identity_table(identity)
    assert table[2] == "| flute | **1.0** | 2.0 | 95% |" and table[3] == "| piano | 3.0 | **2.5** | - |"
    assert card.pitch_count(identity) == 1
    values = {
        "mse": 1e-3, "snr_db": 10.0, "log_mel": 1.5, "l2mfcc_to_source": 20.0, "band_db": [0.5, -1.0, 2.0, -3.0],
        "pitch_kept": 0.9, "codes_used": 512, "codes_used_share": 0.25, "perplexity": 300.0,
    }  # fmt: skip
    rows = card.metrics_rows({2: values}, {2: {"timbre_source": 0.1234, "frame_tones_db": -41.26}})
    assert rows[2].endswith("| 90% | 512 (25%) | 300 | 0.123 | -41.3 |")
    assert card.metrics_rows({2: values})[2].endswith("| 300 | - | - |")  # a level not measured by timbre
    checks = dict(card.card_checks({2: values}, {2: identity}))
    assert checks["level 2 uses at least 25% of its 2048 codes on the validation split: 25%"] is True
    assert checks["level 2: every band within 2 dB of the source: worst 3.0 dB"] is False
