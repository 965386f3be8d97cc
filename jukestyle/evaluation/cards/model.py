"""The bundled VQ-VAE's card (``MODEL_CARD.md``, ``loss_curves.png``, ``model_card.json``).

The training data and settings, steps, hardware and wall time (as recorded in the checkpoint), the loss curves
from the run's CSV log, per-level reconstruction metrics (MSE, SNR, log-mel distance, l2-mfcc, energy per band
against the source, pYIN pitch over voiced frames) and codebook use on the corpus's validation split (unseen
(program, pitch) pairs), the scoreboard's timbre distance and frame-tone level of the reconstructions, what
the codes know of the instrument (``jukestyle.inspect.instrument_probe``), the paper's Experiment 1 check per
level (do reconstructions of the six C4 recordings keep their instrument, by l2-mfcc and by the timbre metric,
and their pitch?), and an A/B table of other checkpoints evaluated the same way at level 2.

Every evaluation is kept with the digest of the weights it measured (``Evaluations``): a new card reuses the
previous card's evaluation of each level whose weights did not change, and keeps its A/B rows.
"""

from __future__ import annotations

import csv
import json
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from jukestyle.audio.files import corpus_files
from jukestyle.audio.io import load_audio
from jukestyle.evaluation.figures import save_figure
from jukestyle.evaluation.model_quality import (
    BANDS_HZ,
    IdentityResult,
    instrument_identity,
    timbre_metrics,
    validation_metrics,
)
from jukestyle.evaluation.scoreboard import print_value
from jukestyle.evaluation.timbre import BUNDLED
from jukestyle.fileio import sha256_file, write_json, write_text
from jukestyle.inspect.instrument_probe import VIEWS, instrument_probe
from jukestyle.jukebox import load_vqvae, read_checkpoint
from jukestyle.jukebox.checkpoint import training_stages
from jukestyle.jukebox.decoder_checkpoint import weights_digest

SR = 44100
C4_FILES = ["flute", "piano", "trumpet", "violin", "sine", "sawtooth"]
VAL_SECONDS = 4.0  # each validation file contributes its first seconds (the held-out notes)
PITCH_TARGET = 0.9
BAND_TARGET_DB = 2.0
L2MFCC_BEFORE = 56.9  # level 2 of the bundled model before the loss change (step 4000, Jukebox's loss)


def band_label(low: float, high: float) -> str:
    return f"{low / 1000:g}-{high / 1000:g} kHz"


def metrics_rows(per_level: dict[int, dict], timbre: dict[int, dict] | None = None) -> list[str]:
    """The validation table: a row per level; the timbre columns where ``timbre`` has the level."""
    timbre = timbre or {}
    bands = " | ".join(f"{band_label(*band)} (dB)" for band in BANDS_HZ)
    lines = [
        f"| level | MSE | SNR (dB) | log-mel | l2-mfcc to source | {bands} | pitch kept | codes used | perplexity | "
        "timbre_source | frame tones (dB) |",
        "|---|" + "---|" * (9 + len(BANDS_HZ)),
    ]
    for level, values in per_level.items():
        band_cells = " | ".join(f"{v:+.1f}" for v in values["band_db"])
        scored = timbre.get(level, {})
        lines.append(
            f"| {level} | {values['mse']:.2e} | {values['snr_db']:.1f} | {values['log_mel']:.2f} | "
            f"{values['l2mfcc_to_source']:.1f} | {band_cells} | {values['pitch_kept']:.0%} | "
            f"{values['codes_used']} ({values['codes_used_share']:.0%}) | {values['perplexity']:.0f} | "
            f"{print_value(scored.get('timbre_source'), 'timbre_source')} | "
            f"{print_value(scored.get('frame_tones_db'), 'frame_tones_32')} |"
        )
    return lines


def identity_table(identity: IdentityResult) -> list[str]:
    lines = [
        "| reconstruction | " + " | ".join(identity.names) + " | pitch within 50 cents |",
        "|---|" + "---|" * (len(identity.names) + 1),
    ]
    for i, name in enumerate(identity.names):
        best = int(np.argmin(identity.distances[i]))
        cells = [f"**{d:.1f}**" if j == best else f"{d:.1f}" for j, d in enumerate(identity.distances[i])]
        pitch = identity.pitch[i]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'-' if pitch is None else f'{pitch:.0%}'} |")
    return lines


def pitch_count(identity: IdentityResult) -> int:
    return sum(p is not None and p >= PITCH_TARGET for p in identity.pitch)


def level_digest(model, level: int) -> str:
    """sha256 of one level's weights and codebook: an evaluation depends on nothing else of the checkpoint."""
    return weights_digest(model.encoders[level], model.decoders[level], model.bottleneck[level])


class Evaluations:
    """A level's validation metrics, Experiment 1, timbre metrics and probe, computed once per level's weights:
    kept in ``cache`` (a folder, or None) under the weights' digest, so that re-running the card, or evaluating
    candidates while training runs (``evaluate_only``), never repeats an evaluation. ``known`` holds evaluations
    under the same keys from elsewhere (the previous card)."""

    def __init__(
        self,
        corpus: Path,
        recordings: Path,
        cache: Path | None,
        known: dict[str, dict] | None = None,
        timbre_metric: Path = BUNDLED,
    ) -> None:
        self.corpus, self.cache, self.known = corpus, cache, dict(known or {})
        self.timbre_metric, self.timbre_sha = timbre_metric, sha256_file(timbre_metric)[:16]
        self.val_clips = [load_audio(p, SR)[: int(VAL_SECONDS * SR)] for p in corpus_files(corpus, "val")]
        self.recordings = {name: load_audio(recordings / f"{name}-C4.flac", SR) for name in C4_FILES}

    def _cached(self, key: str, compute) -> dict | None:
        """The evaluation under ``key``: known, cached, or computed now (unless ``compute`` is None)."""
        if key in self.known:
            return self.known[key]
        path = self.cache / f"{key}.json" if self.cache is not None else None
        if path is not None and path.is_file():
            return json.loads(path.read_text())
        if compute is None:
            return None
        result = compute()
        if path is not None:
            write_json(path, result)
        return result

    def level(self, model, level: int) -> dict:
        def compute() -> dict:
            identity = instrument_identity(model, self.recordings, level, SR)
            return {
                "metrics": validation_metrics(model, self.val_clips, level, SR),
                "identity": {
                    "names": identity.names,
                    "distances": identity.distances.tolist(),
                    "pitch": identity.pitch,
                },
            }

        return self._cached(f"level{level}-{level_digest(model, level)}", compute)

    def timbre(self, model, level: int) -> dict:
        """The timbre metrics of a level's reconstructions, kept by the weights and the timbre metric."""
        return self._cached(
            f"timbre{level}-{level_digest(model, level)}-{self.timbre_sha}",
            lambda: timbre_metrics(model, self.val_clips, self.recordings, level, SR, self.timbre_metric),
        )

    def probe(self, model, level: int, compute: bool = True) -> dict | None:
        """The probe's accuracies; with ``compute`` False, only one already known or cached (else None)."""
        return self._cached(
            f"probe{level}-{level_digest(model, level)}",
            (lambda: instrument_probe(model, self.corpus, level)) if compute else None,
        )


def previous_card(path: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    """The evaluations (under ``Evaluations``' keys) and A/B rows of the card at ``path``, if there is one."""
    if not path.is_file():
        return {}, {}
    card = json.loads(path.read_text())
    known = {}
    for level, entry in card.get("levels", {}).items():
        if "digest" not in entry:  # a card from before the digests: nothing to tell which weights it measured
            continue
        known[f"level{level}-{entry['digest']}"] = {"metrics": entry["metrics"], "identity": entry["identity"]}
        if "probe" in entry:
            known[f"probe{level}-{entry['digest']}"] = entry["probe"]
        if "timbre" in entry:
            known[f"timbre{level}-{entry['digest']}-{entry['timbre']['metric']}"] = entry["timbre"]["values"]
    return known, {row["label"]: row for row in card.get("ab", [])}  # a list: the rows keep their order


def experiment1_counts(identity: IdentityResult) -> dict[str, int]:
    return {"kept": int(sum(identity.kept)), "pitch": pitch_count(identity)}


def identity_of(evaluation: dict) -> IdentityResult:
    saved = evaluation["identity"]
    return IdentityResult(saved["names"], np.array(saved["distances"]), saved["pitch"])


def read_metrics(run: Path, last_step: int) -> list[dict]:
    """The rows of every CSV log of a run up to the checkpoint's step, in order (a resumed run writes a
    new version_<n>; the log may run ahead of the checkpoint being described)."""
    rows = []
    files = sorted(run.glob("csv/version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    for path in files:
        with open(path, newline="") as handle:
            rows += [row for row in csv.DictReader(handle) if int(row["step"]) <= last_step]
    return rows


def loss_figure(rows: list[dict], path: Path) -> Path | None:
    if not rows:
        return None

    def series(key: str) -> tuple[list[int], list[float]]:
        points = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
        return [p[0] for p in points], [p[1] for p in points]

    figure, (losses, codes) = plt.subplots(1, 2, figsize=(10, 3.6))
    steps, values = series("train/loss")
    if steps:  # single batches are noisy: faint, with a moving average over 10 logged steps
        losses.plot(steps, values, color="C0", alpha=0.25)
        window = min(10, len(values))
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        losses.plot(steps[window - 1 :], smooth, color="C0", label=f"train (mean of {window} logged batches)")
    steps, values = series("val/loss")
    if steps:
        losses.plot(steps, values, color="C1", marker=".", label="validation")
    losses.set(xlabel="step", ylabel="loss (levels of this stage)", yscale="log", title="loss")
    losses.legend()
    for key in sorted({k for row in rows for k in row if k.endswith("/codes_used")}):
        steps, values = series(key)
        codes.plot(steps, values, marker=".", label=key.split("/")[1])
    codes.set(xlabel="step", ylabel="codes used on validation", title="codebook use (of 2048)")
    codes.legend()
    figure.tight_layout()
    return save_figure(figure, path, dpi=100)


def corpus_minutes(root: Path, split: str) -> float:
    with open(root / "manifest.csv", newline="") as handle:
        return sum(float(row["seconds"]) for row in csv.DictReader(handle) if row["split"] == split) / 60


@dataclass
class CardInputs:
    """What a model card is written from: the checkpoint, its run's log, the corpus and the C4 recordings."""

    checkpoint: Path
    run: Path
    corpus: Path
    recordings: Path
    cache: Path | None = None
    probe: bool = True  # run new instrument probes (known ones are shown either way)
    ab: Sequence[tuple[str, Path]] = field(default_factory=list)  # (label, checkpoint): compared at level 2
    ab_start: tuple[str, Path] | None = None  # the A/B's common start
    timbre_metric: Path = BUNDLED


def _ab_rows(inputs: CardInputs, evaluations: Evaluations, compared: dict[str, dict]) -> dict[str, dict]:
    for label, path in ([inputs.ab_start] if inputs.ab_start else []) + list(inputs.ab):
        evaluation = evaluations.level(load_vqvae(path), 2)
        compared[label] = {
            "label": label,
            "step": int(read_checkpoint(path).get("step", 0)),
            "metrics": evaluation["metrics"],
            "experiment1": experiment1_counts(identity_of(evaluation)),
        }
    return compared


@torch.no_grad()
def evaluate_only(inputs: CardInputs) -> str:
    """Fill the cache for a later card (every level, the probes unless turned off, the A/B checkpoints)."""
    model, checkpoint = load_vqvae(inputs.checkpoint), read_checkpoint(inputs.checkpoint)
    levels = [int(level) for level in checkpoint.get("trained_levels", [2])]
    known, _ = previous_card(inputs.checkpoint.parent / "model_card.json")
    evaluations = Evaluations(inputs.corpus, inputs.recordings, inputs.cache, known, inputs.timbre_metric)
    _ab_rows(inputs, evaluations, {})
    for level in levels:
        evaluations.level(model, level)
        evaluations.timbre(model, level)
        if inputs.probe:
            evaluations.probe(model, level)
    compared = len(inputs.ab) + bool(inputs.ab_start)
    return f"evaluated {inputs.checkpoint} at levels {levels} and {compared} A/B checkpoints"


@torch.no_grad()  # a decorator, not a global switch: called in-process (tests)
def write_model_card(inputs: CardInputs) -> list[tuple[str, bool]]:
    """Write ``MODEL_CARD.md``, ``loss_curves.png`` and ``model_card.json`` next to the checkpoint; returns the
    card's checks (text, met)."""
    checkpoint = read_checkpoint(inputs.checkpoint)
    model = load_vqvae(inputs.checkpoint)
    levels = [int(level) for level in checkpoint.get("trained_levels", [2])]
    out = inputs.checkpoint.parent
    logged = read_metrics(inputs.run, int(checkpoint.get("step", 0)))
    figure = loss_figure(logged, out / "loss_curves.png")

    known, compared = previous_card(out / "model_card.json")
    evaluations = Evaluations(inputs.corpus, inputs.recordings, inputs.cache, known, inputs.timbre_metric)
    compared = _ab_rows(inputs, evaluations, compared)
    per_level, identities, timbre, card = {}, {}, {}, {}
    for level in levels:
        evaluation = evaluations.level(model, level)
        per_level[level], identities[level] = evaluation["metrics"], identity_of(evaluation)
        timbre[level] = evaluations.timbre(model, level)
        card[str(level)] = {
            "digest": level_digest(model, level),
            **evaluation,
            "timbre": {"metric": evaluations.timbre_sha, "values": timbre[level]},
        }
    probes = {}
    for level in levels:
        accuracy = evaluations.probe(model, level, compute=inputs.probe)
        if accuracy is not None:
            probes[level] = card[str(level)]["probe"] = accuracy
    write_json(out / "model_card.json", {"levels": card, "ab": list(compared.values())})

    checks = card_checks(per_level, identities)
    lines = [
        *training_lines(checkpoint, levels, inputs.corpus, logged if figure else []),
        *validation_lines(per_level, timbre, len(evaluations.val_clips)),
        *probe_lines(probes, levels),
        *ab_lines(compared),
        "## Checks",
        "",
        *(f"- [{'x' if ok else ' '}] {text}" for text, ok in checks),
        "",
        *experiment1_lines(identities, timbre),
        *limits_lines(checkpoint),
    ]
    write_text(out / "MODEL_CARD.md", "\n".join(lines))
    return checks


def _stages(checkpoint: dict) -> list[dict]:
    return training_stages(checkpoint) or [
        {"step": int(checkpoint.get("step", 0)), "train_seconds": 0.0, "training": {}}
    ]


def training_lines(checkpoint: dict, levels: list[int], corpus: Path, logged: list[dict]) -> list[str]:
    info, stages = checkpoint.get("training", {}), _stages(checkpoint)
    hours = sum(stage["train_seconds"] for stage in stages) / 3600
    lines = [
        "# jukestyle_gm: the bundled VQ-VAE",
        "",
        "Jukebox's VQ-VAE architecture (3 levels, hops 8/32/128, 2048 x 64 codebooks, 1,485,763 parameters), "
        "trained from scratch by this project's own pipeline (`experiment=pretrain_vqvae`) on audio rendered "
        'with FluidSynth. Official checkpoint format: `load_vqvae("bundled")`, `model=bundled`.',
        "",
        "## Training",
        "",
        f"- data: `python scripts/render_data.py corpus` (seed {info.get('corpus_seed', 0)}): all 128 melodic "
        "General MIDI programs of FluidR3_GM: notes across each instrument's range at 4 velocities and 4 durations, "
        f"random chords and scale phrases; {corpus_minutes(corpus, 'train'):.1f} minutes of training audio. "
        "The files of `data/` (the paper's experiments) are not in it, and C4/G4 of the experiments' instruments "
        "are validation-only.",
        f"- levels trained: {', '.join(map(str, levels))} (the others keep their random initialisation)",
        f"- {len(stages)} training stage{'s' if len(stages) > 1 else ''}, {hours:.1f} h of training in all "
        "(validation included), Adam; each stage starts from the checkpoint of the one before "
        "(`model=<its checkpoint>`) and trains the levels it lists, continuing them (`codebook_init=keep`) "
        "or from scratch:",
    ]
    for number, stage in enumerate(stages, 1):
        about = stage["training"]
        lines.append(
            f"  {number}. level {', '.join(map(str, about.get('levels', [2])))}: "
            f"{stage['step']} steps of batch {about.get('batch_size', '?')} crops of "
            f"{about.get('crop_seconds', 1.0):.2f} s, lr {about.get('lr', '?')}, "
            f"{about.get('stage', 'full')} model, loss {about.get('loss', 'JukeboxLoss')}, on "
            f"{about.get('hardware', platform.processor() or platform.machine())}: "
            f"{stage['train_seconds'] / 3600:.2f} h"
        )
    lines.append("")
    if logged:
        lines += [
            f"Loss curves of stage {len(stages)} (the run given by `--run`), steps {logged[0]['step']}-"
            f"{logged[-1]['step']} as its CSV log holds them:",
            "",
            "![loss curves](loss_curves.png)",
            "",
        ]
    return lines


def validation_lines(per_level: dict[int, dict], timbre: dict[int, dict], clips: int) -> list[str]:
    return [
        f"## Validation split ({clips} files of unseen (program, pitch) pairs, first {VAL_SECONDS:.0f} s of each)",
        "",
        "Bands: median over the files of the reconstruction's energy in the band minus the source's. "
        "Pitch kept: the share of the sources' pYIN-voiced frames where the reconstruction's pitch is within "
        "50 cents. log-mel: the sum over DAC's 7 scales of the mean L1 distance of log10 mel energies. "
        "timbre_source: the scoreboard's timbre distance of the reconstruction to its source (the shipped timbre "
        "metric's cosine distance; `jukestyle/evaluation/scoreboard.py`). frame tones: the comb at the level's "
        "own code rate (sample rate / hop) in the reconstructions, dB under their strongest peak.",
        "",
        *metrics_rows(per_level, timbre),
        "",
    ]


def probe_lines(probes: dict[int, dict], levels: list[int]) -> list[str]:
    if not probes:
        return []
    lines = [
        "## What the codes know of the instrument",
        "",
        "A logistic regression per view, fit on 2 s segments of the training split and scored on the "
        "validation split's (unseen (program, pitch) pairs): General MIDI program (128 classes) and family "
        "(16). `source`: MFCC statistics of the audio; `codes`: the histogram of the codes (bag of codes); "
        "`reconstruction`: MFCC statistics of the decoded audio. Codes close to the source and a "
        "reconstruction far below them put the blur in the decoder.",
        "",
        "| level | " + " | ".join(f"{view}: program | {view}: family" for view in VIEWS) + " |",
        "|---|" + "---|" * (2 * len(VIEWS)),
    ]
    for level, accuracy in probes.items():
        cells = " | ".join(f"{accuracy[v]['program']:.0%} | {accuracy[v]['family']:.0%}" for v in VIEWS)
        lines.append(f"| {level} | {cells} |")
    unprobed = [str(level) for level in levels if level not in probes]
    if unprobed:
        lines += ["", f"Not probed: level {', '.join(unprobed)} (the card was written with `--no-probe`)."]
    return [*lines, ""]


def ab_lines(compared: dict[str, dict]) -> list[str]:
    if not compared:
        return []
    lines = [
        "## A/B at level 2",
        "",
        "Each checkpoint evaluated as above (validation split, Experiment 1).",
        "",
        "| checkpoint | step | SNR (dB) | log-mel | l2-mfcc to source | "
        + " | ".join(band_label(*band) for band in BANDS_HZ)
        + " | pitch kept | Exp. 1 instrument | Exp. 1 pitch |",
        "|---|" + "---|" * (7 + len(BANDS_HZ)),
    ]
    for label, item in compared.items():
        values, counts = item["metrics"], item["experiment1"]
        lines.append(
            f"| {label} | {item['step']} | {values['snr_db']:.1f} | {values['log_mel']:.2f} | "
            f"{values['l2mfcc_to_source']:.1f} | "
            + " | ".join(f"{v:+.1f}" for v in values["band_db"])
            + f" | {values['pitch_kept']:.0%} | {counts['kept']}/6 | {counts['pitch']}/6 |"
        )
    return [*lines, ""]


def card_checks(per_level: dict[int, dict], identities: dict[int, IdentityResult]) -> list[tuple[str, bool]]:
    checks = []
    for level, values in per_level.items():
        worst = max(abs(v) for v in values["band_db"])
        kept = identities[level].kept
        checks += [
            (
                f"level {level}: reconstructions keep the instrument of all six C4 recordings: {sum(kept)}/6",
                all(kept),
            ),
            (
                f"level {level}: ... and their pitch (>= {PITCH_TARGET:.0%} of voiced frames within 50 cents): "
                f"{pitch_count(identities[level])}/6",
                pitch_count(identities[level]) == 6,
            ),
            (
                f"level {level}: pitch kept on >= {PITCH_TARGET:.0%} of the validation split's voiced frames: "
                f"{values['pitch_kept']:.0%}",
                values["pitch_kept"] >= PITCH_TARGET,
            ),
            (
                f"level {level}: every band within {BAND_TARGET_DB:g} dB of the source: worst {worst:.1f} dB",
                worst <= BAND_TARGET_DB,
            ),
        ]
    if 2 in per_level:
        level2 = per_level[2]
        usage = level2.get("codes_used_share", 0.0)
        checks += [
            (
                f"level-2 l2-mfcc to source at most half of {L2MFCC_BEFORE} (before the loss change): "
                f"{level2['l2mfcc_to_source']:.1f}",
                level2["l2mfcc_to_source"] <= L2MFCC_BEFORE / 2,
            ),
            (f"level 2 uses at least 25% of its 2048 codes on the validation split: {usage:.0%}", usage >= 0.25),
        ]
    return checks


def experiment1_lines(identities: dict[int, IdentityResult], timbre: dict[int, dict]) -> list[str]:
    lines = []
    for level, identity in identities.items():
        by_timbre = timbre.get(level) or {}
        lines += [
            "",
            f"## Experiment 1 at level {level}: do reconstructions keep instrument and pitch?",
            "",
            f"Each row: the reconstruction of one C4 recording, its l2-mfcc to each source (closest in bold). "
            f"Instrument kept: **{sum(identity.kept)}/{len(identity.kept)}**; by the timbre metric (nearest "
            f"its own source's embedding): **{by_timbre.get('timbre_kept', '-')}/{len(identity.kept)}**.",
            "",
            *identity_table(identity),
        ]
    return lines


def limits_lines(checkpoint: dict) -> list[str]:
    stages = _stages(checkpoint)
    hours = sum(stage["train_seconds"] for stage in stages) / 3600
    return [
        "",
        "## Known limits",
        "",
        "- Trained on synthesised General MIDI instruments only: real recordings, voices, drums and mixes are "
        "outside its training data.",
        f"- {hours:.1f} h of training in {len(stages)} stage{'s' if len(stages) > 1 else ''}, far from Jukebox's "
        "scale (1.2 million songs, many GPUs): reconstructions are coarse, most at level 2 (128x).",
        "- Levels not listed under 'levels trained' are random and should not be used.",
        "",
    ]
