"""The timbre metric's own validation: triplets of held-out programs, the learned metric beside l2-mfcc.

A triplet (anchor, positive, negative) is right when the anchor is nearer the positive (the same program)
than the negative (another program). Three kinds, all on programs no training heard
(``scripts/render_data.py heldout``):

- *pitch*: a program at one note, it at another note, another program at the anchor's note;
- *loudness*: as *pitch*, the positive 12 dB louder or quieter than the anchor (in turn);
- *phrase*: a program's phrase, it playing a single note, another program's phrase.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jukestyle.audio.io import apply_gain, load_audio
from jukestyle.errors import JukestyleError
from jukestyle.evaluation.scoreboard import summarise
from jukestyle.evaluation.scoring import Row, Scorer
from jukestyle.jukebox import VQVAE

SAMPLE_RATE = 44100
LOUDNESS_DB = 12.0
Triplet = tuple[str, str, str]  # clip ids: anchor, positive, negative


@dataclass(frozen=True)
class Clip:
    id: str
    program: int
    pitch: str  # a MIDI note number, or "phrase"
    audio: np.ndarray


def held_out_clips(folder: Path) -> list[Clip]:
    """The clips of ``render_data.py heldout``'s folder (its ``manifest.csv``), at 44.1 kHz."""
    manifest = Path(folder) / "manifest.csv"
    if not manifest.is_file():
        raise JukestyleError(f"{manifest}: missing (render it: python scripts/render_data.py heldout --out {folder})")
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [Clip(row["id"], int(row["program"]), row["pitch"], load_audio(Path(folder) / row["file"], SAMPLE_RATE))
            for row in rows]  # fmt: skip


def _notes(clips: Sequence[Clip]) -> dict[tuple[int, str], Clip]:
    return {(clip.program, clip.pitch): clip for clip in clips if clip.pitch != "phrase"}


def pitch_triplets(clips: Sequence[Clip]) -> list[Triplet]:
    """(a at p1, a at p2, b at p1) for every program a, ordered pair of notes p1 != p2, and other program b."""
    notes = _notes(clips)
    programs = sorted({program for program, _ in notes})
    pitches = sorted({pitch for _, pitch in notes})
    return [
        (notes[a, p1].id, notes[a, p2].id, notes[b, p1].id)
        for a in programs
        for p1 in pitches
        for p2 in pitches
        for b in programs
        if p1 != p2 and a != b and {(a, p1), (a, p2), (b, p1)} <= notes.keys()
    ]


def phrase_triplets(clips: Sequence[Clip]) -> list[Triplet]:
    """(a's phrase, a at each note, b's phrase) for every program a and other program b."""
    phrases = {clip.program: clip for clip in clips if clip.pitch == "phrase"}
    notes = _notes(clips)
    return [
        (phrases[a].id, notes[a, pitch].id, phrases[b].id)
        for a in sorted(phrases)
        for (program, pitch) in sorted(notes)
        if program == a
        for b in sorted(phrases)
        if b != a
    ]


def loud(clip_id: str, index: int) -> str:
    """The id of a clip's louder (even ``index``) or quieter copy."""
    return f"{clip_id}@{'+' if index % 2 == 0 else '-'}{LOUDNESS_DB:g}dB"


def loudness_triplets(clips: Sequence[Clip]) -> list[Triplet]:
    """The pitch triplets with the positive 12 dB louder or quieter than the anchor, in turn."""
    return [(a, loud(p, index), n) for index, (a, p, n) in enumerate(pitch_triplets(clips))]


def with_loudness_copies(clips: Sequence[Clip]) -> dict[str, np.ndarray]:
    """Every clip's audio by id, with its copies 12 dB louder and quieter (``loud``'s ids)."""
    audio = {clip.id: clip.audio for clip in clips}
    for clip in clips:
        audio[loud(clip.id, 0)] = apply_gain(clip.audio, LOUDNESS_DB)
        audio[loud(clip.id, 1)] = apply_gain(clip.audio, -LOUDNESS_DB)
    return audio


def triplet_accuracy(triplets: Sequence[Triplet], distance: Callable[[str, str], float]) -> float:
    """The share of triplets whose anchor is strictly nearer its positive than its negative."""
    if not triplets:
        raise JukestyleError("no triplets to measure (are the held-out clips rendered?)")
    return float(np.mean([distance(a, p) < distance(a, n) for a, p, n in triplets]))


# -- the card ----------------------------------------------------------------------------------
TRIPLET_KINDS = {"pitch": pitch_triplets, "loudness": loudness_triplets, "phrase": phrase_triplets}


def triplet_accuracies(clips: Sequence[Clip], distance_between: Callable[[np.ndarray, np.ndarray], float]) -> dict:
    """Each kind's triplet accuracy under a distance of two clips' audio (computed once per pair of clips)."""
    audio = with_loudness_copies(clips)
    cache: dict[tuple[str, str], float] = {}

    def distance(a: str, b: str) -> float:
        if (a, b) not in cache:
            cache[a, b] = distance_between(audio[a], audio[b])
        return cache[a, b]

    return {kind: triplet_accuracy(build(clips), distance) for kind, build in TRIPLET_KINDS.items()}


def embedding_distance(metric: Path) -> Callable[[np.ndarray, np.ndarray], float]:
    """The timbre metric's cosine distance between two clips (each clip embedded once)."""
    from jukestyle.evaluation.timbre import embed, timbre_distance

    vectors: dict[int, np.ndarray] = {}

    def vector(audio: np.ndarray) -> np.ndarray:
        if id(audio) not in vectors:
            vectors[id(audio)] = embed(audio, SAMPLE_RATE, metric)
        return vectors[id(audio)]

    return lambda a, b: timbre_distance(vector(a), vector(b))


def mfcc_distance() -> Callable[[np.ndarray, np.ndarray], float]:
    """The paper's l2-mfcc between two clips (each clip's mean MFCCs computed once)."""
    from jukestyle.evaluation.metrics import mean_mfcc

    means: dict[int, np.ndarray] = {}

    def mean(audio: np.ndarray) -> np.ndarray:
        if id(audio) not in means:
            means[id(audio)] = mean_mfcc(audio, SAMPLE_RATE)
        return means[id(audio)]

    return lambda a, b: float(np.linalg.norm(mean(a) - mean(b)))


def another_note(path: str) -> Path | None:
    """The style's instrument playing another note, where the data has it: Experiment 1's G4 for its C4."""
    other = Path(path).with_name(Path(path).name.replace("-C4.", "-G4."))
    return other if other != Path(path) and other.is_file() else None


def reference_rows(pairs: Sequence, metric: Path) -> list[dict]:
    """Style-win rates, by the timbre metric and by l2-mfcc, of two outputs no method made: the style's instrument
    playing another note (on the pairs where the data has one) and the content itself."""
    loaded: dict[str, np.ndarray] = {}

    def audio(path) -> np.ndarray:
        if str(path) not in loaded:
            loaded[str(path)] = load_audio(path, SAMPLE_RATE)
        return loaded[str(path)]

    learned, mfcc = embedding_distance(metric), mfcc_distance()
    rows = []
    for label, output_of in (("the style's instrument, another note", lambda p: another_note(p.style)),
                             ("content as output", lambda p: Path(p.content))):  # fmt: skip
        chosen = [(pair, output_of(pair)) for pair in pairs if output_of(pair) is not None]
        wins = {"timbre metric": [], "l2-mfcc": []}
        for pair, output in chosen:
            out, content, style = audio(output), audio(pair.content), audio(pair.style)
            for name, distance in (("timbre metric", learned), ("l2-mfcc", mfcc)):
                wins[name].append(distance(out, style) < distance(out, content))
        rates = {name: float(np.mean(values)) if values else None for name, values in wins.items()}
        rows.append({"row": label, "pairs": len(chosen), **rates})
    return rows


def reconstruction_row(model: VQVAE, pairs: Sequence, metric: Path) -> dict:
    """The plain reconstruction (identity at the model's transfer level) as the output: its style-win rates by
    the timbre metric and by l2-mfcc, from the scoreboard's summaries."""
    row = Row("identity", "identity", {"level": model.transfer_level})
    summary = summarise(Scorer(model, timbre_metric=metric).score(row, pairs))
    return {
        "row": f"the plain reconstruction (level {model.transfer_level})",
        "pairs": summary["pairs"],
        "timbre metric": summary["timbre_win_rate"],
        "l2-mfcc": summary["style_win_rate"],
    }


METRIC_FILE = "timbre_metric.pth.tar"
CARD_FILE = "TIMBRE_METRIC.md"
MAX_MEGABYTES = 2.0


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def metric_facts(path: Path) -> dict:
    import torch

    from jukestyle.fileio import sha256_file

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return {
        "MB": path.stat().st_size / 1e6,
        "sha256": sha256_file(path),
        "steps": checkpoint.get("step"),
        "loss": checkpoint.get("loss"),
        "hours": (checkpoint.get("train_seconds") or 0.0) / 3600,
        "instruments": len(checkpoint.get("instruments") or []),
        "channels": checkpoint.get("channels"),
        "dim": checkpoint.get("dim"),
    }


def build_metric_card(
    metric: Path,
    heldout: Path,
    paper_pairs: Sequence,
    out: Path,
    command: str,
    arms: dict[str, Path] | None = None,
    model: VQVAE | None = None,
) -> Path:
    """Ship ``metric`` to ``out`` with its card: held-out triplet accuracy (learned metric, A/B arms, l2-mfcc),
    the reference rows on the paper's pairs, and the targets. ``model``: also the row of its plain
    reconstruction (``reconstruction_row``)."""
    import shutil

    from jukestyle.fileio import write_text

    if not Path(metric).is_file():
        raise JukestyleError(f"{metric}: no timbre metric (a finished experiment=train_timbre_metric run's export)")
    if Path(metric).stat().st_size > MAX_MEGABYTES * 1e6:
        raise JukestyleError(f"{metric}: over the {MAX_MEGABYTES} MB a timbre metric ships")
    out.mkdir(parents=True, exist_ok=True)
    shipped = out / METRIC_FILE
    if Path(metric).resolve() != shipped.resolve():
        shutil.copyfile(metric, shipped)
    facts = metric_facts(shipped)
    clips = held_out_clips(heldout)
    table = [{"metric": f"timbre metric ({facts['loss']}, {facts['steps']} steps)",
              **triplet_accuracies(clips, embedding_distance(shipped))}]  # fmt: skip
    for label, path in (arms or {}).items():
        table.append({"metric": label, **triplet_accuracies(clips, embedding_distance(path))})
    table.append({"metric": "l2-mfcc (the paper's)", **triplet_accuracies(clips, mfcc_distance())})
    references = reference_rows(paper_pairs, shipped)
    if model is not None:
        references.append(reconstruction_row(model, paper_pairs, shipped))
    learned = table[0]
    another = next(row for row in references if row["row"].startswith("the style's instrument"))
    content = next(row for row in references if row["row"] == "content as output")
    programs = len({clip.program for clip in clips})
    lines = [
        "# The timbre metric",
        "",
        f"`{METRIC_FILE}`: {facts['MB']:.2f} MB, sha256 `{facts['sha256'][:16]}...`; a convolutional network on "
        f"log-mel frames (channels {facts['channels']}, a {facts['dim']}-dimensional unit embedding), trained "
        f"{facts['steps']} steps with the {facts['loss']} loss on {facts['instruments']} instruments of the "
        f"transfer corpus, {facts['hours']:.2f} h on this project's 2-core CPU. "
        "`jukestyle.evaluation.timbre.embed(audio, sample_rate)` gives the embedding; the timbre distance is the "
        "cosine distance of two embeddings.",
        "",
        "```",
        command,
        "```",
        "",
        "## Targets",
        "",
        f"- {'met' if learned['pitch'] >= 0.95 else '**not met**'}: triplet accuracy on held-out programs >= 95%: "
        f"{_percent(learned['pitch'])} (l2-mfcc {_percent(table[-1]['pitch'])})",
        f"- {'met' if (another['timbre metric'] or 0) >= 0.9 else '**not met**'}: the style's instrument playing "
        f"another note wins by timbre >= 90%: {_percent(another['timbre metric'])} (l2-mfcc "
        f"{_percent(another['l2-mfcc'])}), on the {another['pairs']} pairs where the data has it",
        f"- {'met' if (content['timbre metric'] or 0) <= 0.05 else '**not met**'}: content as output wins <= 5%: "
        f"{_percent(content['timbre metric'])}",
        "",
        f"## Triplet accuracy on held-out programs ({programs} programs no training heard)",
        "",
        "A triplet is right when the anchor is nearer the positive (its program) than the negative (another "
        "program). *pitch*: anchor a program at one of D3, A3, D4, F4, D5, positive it at another of them, negative "
        "another program at the anchor's note; *loudness*: the same, the positive 12 dB louder or quieter; "
        "*phrase*: anchor a program's phrase, positive it playing one note, negative another program's phrase.",
        "",
        "| metric | pitch | loudness (±12 dB) | phrase vs note |",
        "|---|---|---|---|",
        *(
            f"| {row['metric']} | {_percent(row['pitch'])} | {_percent(row['loudness'])} | {_percent(row['phrase'])} |"
            for row in table
        ),
        "",
        "## Style-win rates of reference outputs on the paper's pairs",
        "",
        "The output is nearer the style than the content, by each measure.",
        "",
        "| output | pairs | timbre metric | l2-mfcc |",
        "|---|---|---|---|",
        *(
            f"| {row['row']} | {row['pairs']} | {_percent(row['timbre metric'])} | {_percent(row['l2-mfcc'])} |"
            for row in references
        ),
        "",
    ]
    write_text(out / CARD_FILE, "\n".join(lines))
    return out / CARD_FILE
