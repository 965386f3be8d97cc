"""The timbre metric's triplets of held-out programs, and their accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from jukestyle.errors import JukestyleError
from jukestyle.evaluation.cards import timbre_metric as card


def clips(programs=(1, 2, 3), pitches=("50", "62")):
    tone = np.ones(100, np.float32)
    notes = [card.Clip(f"p{p}-{pitch}", p, pitch, tone * (p + int(pitch))) for p in programs for pitch in pitches]
    return notes + [card.Clip(f"p{p}-phrase", p, "phrase", tone * p) for p in programs]


def test_pitch_triplets_hold_a_program_at_two_notes_against_another_at_the_anchors_note():
    triplets = card.pitch_triplets(clips())
    assert len(triplets) == 3 * 2 * 2  # programs x ordered note pairs x other programs
    assert ("p1-50", "p1-62", "p2-50") in triplets and all(a.split("-")[0] == p.split("-")[0] for a, p, _ in triplets)


def test_phrase_and_loudness_triplets():
    phrases = card.phrase_triplets(clips())
    assert ("p1-phrase", "p1-50", "p2-phrase") in phrases and len(phrases) == 3 * 2 * 2
    loudness = card.loudness_triplets(clips())
    assert loudness[0][1].endswith("@+12dB") and loudness[1][1].endswith("@-12dB")
    audio = card.with_loudness_copies(clips())
    np.testing.assert_allclose(audio["p1-50@+12dB"], audio["p1-50"] * 10 ** (12 / 20), rtol=1e-6)


def test_triplet_accuracy_counts_strictly_nearer_positives():
    distance = {("a", "p"): 1.0, ("a", "n"): 2.0, ("b", "p"): 2.0, ("b", "n"): 2.0}
    assert card.triplet_accuracy([("a", "p", "n"), ("b", "p", "n")], lambda x, y: distance[x, y]) == 0.5
    with pytest.raises(JukestyleError, match="no triplets"):
        card.triplet_accuracy([], lambda x, y: 0.0)


def test_the_held_out_folder_must_be_rendered(tmp_path):
    with pytest.raises(JukestyleError, match=r"manifest.csv: missing \(render it: python scripts/render_data.py"):
        card.held_out_clips(tmp_path)


def test_the_card_ships_the_metric_with_its_triplets_and_references(tiny_model, tmp_path):
    import shutil

    import soundfile as sf
    import torch
    from project import REPO

    from jukestyle.evaluation.pair_sets import Pair
    from jukestyle.evaluation.timbre import TimbreNet, save_metric

    torch.manual_seed(0)
    metric = tmp_path / "run" / "metric.pth.tar"
    metric.parent.mkdir()
    save_metric(metric, TimbreNet(), step=7, loss="classification", train_seconds=36.0, instruments=["a", "b"])
    heldout = tmp_path / "heldout"
    heldout.mkdir()
    rows = ["id,program,instrument,pitch,file,sha256"]
    for program, instrument in ((1, "sine"), (2, "sawtooth"), (3, "flute")):
        for note, pitch in (("C4", 60), ("G4", 67)):
            audio, rate = sf.read(REPO / "data" / "exp1" / f"{instrument}-{note}.flac", dtype="float32")
            sf.write(heldout / f"{instrument}-{note}.wav", audio[: rate // 2], rate)
            rows.append(f"{instrument}-{note},{program},{instrument},{pitch},{instrument}-{note}.wav,x")
        shutil.copy(heldout / f"{instrument}-C4.wav", heldout / f"{instrument}-phrase.wav")
        rows.append(f"{instrument}-phrase,{program},{instrument},phrase,{instrument}-phrase.wav,x")
    (heldout / "manifest.csv").write_text("\n".join(rows) + "\n")
    exp1 = REPO / "data" / "exp1"
    pairs = [Pair("piano-C4--flute-C4", str(exp1 / "piano-C4.flac"), str(exp1 / "flute-C4.flac"))]
    path = card.build_metric_card(metric, heldout, pairs, tmp_path / "out", "python x", {"same": metric}, tiny_model)
    text = path.read_text()
    assert (tmp_path / "out" / card.METRIC_FILE).read_bytes() == metric.read_bytes()
    assert "| timbre metric (classification, 7 steps) |" in text and "| same |" in text and "| l2-mfcc" in text
    assert "| the style's instrument, another note | 1 |" in text and "| content as output | 1 | 0.0% | 0.0% |" in text
    assert "content as output wins <= 5%: 0.0%" in text and "0.01 h" in text
    reconstruction = next(line for line in text.splitlines() if line.startswith("| the plain reconstruction"))
    assert reconstruction.startswith(f"| the plain reconstruction (level {tiny_model.transfer_level}) | 1 |")
