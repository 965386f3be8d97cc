"""Evaluate a pre-trained VQ-VAE and write its model card.

    python scripts/model_card.py [--checkpoint checkpoints/jukestyle_gm.pth.tar] [--run outputs/pretrain_vqvae/main]
        [--ab "loss=jukebox=PATH" --ab "loss=mel=PATH" --ab-start "bundled step 4000=PATH"]

Writes ``MODEL_CARD.md`` and ``loss_curves.png`` next to the checkpoint: the training
data and settings, steps, hardware and wall time (as recorded in the checkpoint), the
loss curves from the run's CSV log, per-level reconstruction metrics (MSE, SNR, log-mel
distance, l2-mfcc, energy per band against the source, pYIN pitch over voiced frames) and
codebook use on the corpus's validation split (unseen (program, pitch) pairs), what the
codes know of the instrument (``jukestyle.inspect.instrument_probe``), the paper's Experiment 1
check per level (do reconstructions of the six C4 recordings keep their instrument and
pitch?), and an A/B table of other checkpoints (e.g. two losses at equal steps from the
same start) evaluated the same way at level 2.

``model_card.json`` keeps every evaluation with the digest of the weights it measured. A new
card reuses the previous card's evaluation of each level whose weights did not change (a
level trained later is the only one evaluated again), and keeps its A/B rows (an ``--ab``
with the same label replaces one): the checkpoints behind them need not exist any more.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from datamodules.corpus import corpus_files  # noqa: E402
from jukestyle.audio.io import load_audio  # noqa: E402
from jukestyle.evaluation.model_quality import BANDS_HZ, IdentityResult, instrument_identity, validation_metrics  # noqa: E402
from jukestyle.fileio import atomic_path, write_json, write_text  # noqa: E402
from jukestyle.inspect.instrument_probe import VIEWS, instrument_probe  # noqa: E402
from jukestyle.jukebox import load_vqvae, read_checkpoint  # noqa: E402
from jukestyle.jukebox.checkpoint import training_stages  # noqa: E402
from jukestyle.jukebox.decoder_checkpoint import weights_digest  # noqa: E402

SR = 44100
C4_FILES = ["flute", "piano", "trumpet", "violin", "sine", "sawtooth"]
VAL_SECONDS = 4.0
PITCH_TARGET = 0.9  # each validation file contributes its first seconds (the held-out notes)
BAND_TARGET_DB = 2.0
L2MFCC_BEFORE = 56.9  # level 2 of the bundled model before the loss change (step 4000, Jukebox's loss)


def band_label(low: float, high: float) -> str:
    return f"{low / 1000:g}-{high / 1000:g} kHz"


def metrics_rows(per_level: dict[int, dict]) -> list[str]:
    bands = " | ".join(f"{band_label(*band)} (dB)" for band in BANDS_HZ)
    lines = [
        f"| level | MSE | SNR (dB) | log-mel | l2-mfcc to source | {bands} | pitch kept | codes used | perplexity |",
        "|---|" + "---|" * (7 + len(BANDS_HZ)),
    ]
    for level, values in per_level.items():
        band_cells = " | ".join(f"{v:+.1f}" for v in values["band_db"])
        lines.append(
            f"| {level} | {values['mse']:.2e} | {values['snr_db']:.1f} | {values['log_mel']:.2f} | "
            f"{values['l2mfcc_to_source']:.1f} | {band_cells} | {values['pitch_kept']:.0%} | "
            f"{values['codes_used']} ({values['codes_used_share']:.0%}) | {values['perplexity']:.0f} |"
        )
    return lines


def identity_table(identity) -> list[str]:
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


def pitch_count(identity) -> int:
    return sum(p is not None and p >= PITCH_TARGET for p in identity.pitch)


def level_digest(model, level: int) -> str:
    """sha256 of one level's weights and codebook: an evaluation depends on nothing else of the checkpoint."""
    return weights_digest(model.encoders[level], model.decoders[level], model.bottleneck[level])


class Evaluations:
    """A level's validation metrics, Experiment 1 and probe, computed once per level's weights: kept in ``cache``
    (a folder, or None) under the weights' digest, so that re-running the card, or evaluating candidates while
    training runs (``--evaluate-only``), never repeats an evaluation. ``known`` holds evaluations under the same
    keys from elsewhere (the previous card)."""

    def __init__(self, corpus: Path, cache: Path | None, known: dict[str, dict] | None = None) -> None:
        self.corpus, self.cache, self.known = corpus, cache, dict(known or {})
        self.val_clips = [load_audio(p, SR)[: int(VAL_SECONDS * SR)] for p in corpus_files(corpus, "val")]
        self.recordings = {name: load_audio(REPO / "data" / "exp1" / f"{name}-C4.flac", SR) for name in C4_FILES}

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
    return known, {row["label"]: row for row in card.get("ab", [])}  # a list: the rows keep their order


def experiment1_counts(identity: IdentityResult) -> dict[str, int]:
    return {"kept": int(sum(identity.kept)), "pitch": pitch_count(identity)}


def identity_of(evaluation: dict) -> IdentityResult:
    saved = evaluation["identity"]
    return IdentityResult(saved["names"], np.array(saved["distances"]), saved["pitch"])


def named_path(text: str) -> tuple[str, Path]:
    """``label=path`` (the label may itself hold '=')."""
    label, _, path = text.rpartition("=")
    if not label:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label, Path(path)


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
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100)
    plt.close(figure)
    return path


def corpus_minutes(root: Path, split: str) -> float:
    with open(root / "manifest.csv", newline="") as handle:
        return sum(float(row["seconds"]) for row in csv.DictReader(handle) if row["split"] == split) / 60


@torch.no_grad()  # a decorator, not a global switch: main is also called in-process (tests)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "jukestyle_gm.pth.tar")
    parser.add_argument("--run", type=Path, default=REPO / "outputs" / "pretrain_vqvae" / "main")
    parser.add_argument("--corpus", type=Path, default=REPO / "data" / "corpus")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: one per core)")
    parser.add_argument("--cache", type=Path, default=None, help="folder that keeps evaluations between runs")
    parser.add_argument("--evaluate-only", action="store_true", help="fill --cache without writing the card")
    parser.add_argument(
        "--no-probe", dest="probe", action="store_false", help="run no new instrument probe (known ones are shown)"
    )
    parser.add_argument("--ab", type=named_path, action="append", default=[], help="LABEL=PATH: compare at level 2")
    parser.add_argument("--ab-start", type=named_path, default=None, help="LABEL=PATH: the A/B's common start")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = read_checkpoint(args.checkpoint)
    model = load_vqvae(args.checkpoint)
    levels = [int(level) for level in checkpoint.get("trained_levels", [2])]
    info = checkpoint.get("training", {})
    out = args.checkpoint.parent

    logged = read_metrics(args.run, int(checkpoint.get("step", 0)))
    figure = loss_figure(logged, out / "loss_curves.png")

    known, compared = previous_card(out / "model_card.json")
    evaluations = Evaluations(args.corpus, args.cache, known)
    for label, path in ([args.ab_start] if args.ab_start else []) + args.ab:
        evaluation = evaluations.level(load_vqvae(path), 2)
        compared[label] = {
            "label": label,
            "step": int(read_checkpoint(path).get("step", 0)),
            "metrics": evaluation["metrics"],
            "experiment1": experiment1_counts(identity_of(evaluation)),
        }
    if args.evaluate_only:  # fill the cache for a later card
        for level in levels:
            evaluations.level(model, level)
            if args.probe:
                evaluations.probe(model, level)
        compared_now = len(args.ab) + bool(args.ab_start)
        print(f"evaluated {args.checkpoint} at levels {levels} and {compared_now} A/B checkpoints")
        return 0
    val_clips = evaluations.val_clips
    per_level, identities, card = {}, {}, {}
    for level in levels:
        evaluation = evaluations.level(model, level)
        per_level[level], identities[level] = evaluation["metrics"], identity_of(evaluation)
        card[str(level)] = {"digest": level_digest(model, level), **evaluation}
    probes = {}
    for level in levels:
        accuracy = evaluations.probe(model, level, compute=args.probe)
        if accuracy is not None:
            probes[level] = card[str(level)]["probe"] = accuracy
    write_json(out / "model_card.json", {"levels": card, "ab": list(compared.values())})

    stages = training_stages(checkpoint) or [
        {"step": int(checkpoint.get("step", 0)), "train_seconds": 0.0, "training": {}}
    ]
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
        f"random chords and scale phrases; {corpus_minutes(args.corpus, 'train'):.1f} minutes of training audio. "
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
    if figure:
        lines += [
            f"Loss curves of stage {len(stages)} (the run given by `--run`), steps {logged[0]['step']}-"
            f"{logged[-1]['step']} as its CSV log holds them:",
            "",
            "![loss curves](loss_curves.png)",
            "",
        ]
    lines += [
        f"## Validation split ({len(val_clips)} files of unseen (program, pitch) pairs, "
        f"first {VAL_SECONDS:.0f} s of each)",
        "",
        "Bands: median over the files of the reconstruction's energy in the band minus the source's. "
        "Pitch kept: the share of the sources' pYIN-voiced frames where the reconstruction's pitch is within "
        "50 cents. log-mel: the sum over DAC's 7 scales of the mean L1 distance of log10 mel energies.",
        "",
        *metrics_rows(per_level),
        "",
    ]
    if probes:
        lines += [
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
        lines.append("")
    if compared:
        lines += [
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
        lines.append("")
    level2 = per_level.get(2, {})
    usage = level2.get("codes_used_share", 0.0)
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
        checks += [
            (
                f"level-2 l2-mfcc to source at most half of {L2MFCC_BEFORE} (before the loss change): "
                f"{level2['l2mfcc_to_source']:.1f}",
                level2["l2mfcc_to_source"] <= L2MFCC_BEFORE / 2,
            ),
            (f"level 2 uses at least 25% of its 2048 codes on the validation split: {usage:.0%}", usage >= 0.25),
        ]
    lines += ["## Checks", ""] + [f"- [{'x' if ok else ' '}] {text}" for text, ok in checks] + [""]
    for level, identity in identities.items():
        lines += [
            "",
            f"## Experiment 1 at level {level}: do reconstructions keep instrument and pitch?",
            "",
            f"Each row: the reconstruction of one C4 recording, its l2-mfcc to each source (closest in bold). "
            f"Instrument kept: **{sum(identity.kept)}/{len(identity.kept)}**.",
            "",
            *identity_table(identity),
        ]
    lines += [
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
    write_text(out / "MODEL_CARD.md", "\n".join(lines))
    print(f"wrote {out / 'MODEL_CARD.md'}: " + "; ".join(f"{text}: {'ok' if ok else 'not met'}" for text, ok in checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
