"""Evaluate a pre-trained VQ-VAE and write its model card.

    python scripts/model_card.py [--checkpoint checkpoints/jukestyle_gm.pth.tar] [--run outputs/pretrain_vqvae/main]

Writes ``MODEL_CARD.md`` and ``loss_curves.png`` next to the checkpoint: the training
data and settings, steps, hardware and wall time (as recorded in the checkpoint), the
loss curves from the run's CSV log, per-level reconstruction metrics and codebook use
on the corpus's validation split (unseen (program, pitch) pairs), and the paper's
Experiment 1 check: do level-2 reconstructions of the six C4 recordings keep their
instrument (closest to their own source) and their pitch?
"""

from __future__ import annotations

import argparse
import csv
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
from jukestyle.audio import load_audio  # noqa: E402
from jukestyle.evaluation import instrument_identity, validation_metrics  # noqa: E402
from jukestyle.fileio import atomic_path, write_text  # noqa: E402
from jukestyle.jukebox import load_vqvae, read_checkpoint  # noqa: E402
from jukestyle.jukebox.checkpoint import training_stages  # noqa: E402

SR = 44100
C4_FILES = ["flute", "piano", "trumpet", "violin", "sine", "sawtooth"]
VAL_SECONDS = 4.0
PITCH_TARGET = 0.9  # each validation file contributes its first seconds (the held-out notes)


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
    losses.set(xlabel="step", ylabel="loss (level 2)", yscale="log", title="loss")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "jukestyle_gm.pth.tar")
    parser.add_argument("--run", type=Path, default=REPO / "outputs" / "pretrain_vqvae" / "main")
    parser.add_argument("--corpus", type=Path, default=REPO / "data" / "corpus")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)

    checkpoint = read_checkpoint(args.checkpoint)
    model = load_vqvae(args.checkpoint)
    levels = [int(level) for level in checkpoint.get("trained_levels", [2])]
    info = checkpoint.get("training", {})
    out = args.checkpoint.parent

    figure = loss_figure(read_metrics(args.run, int(checkpoint.get("step", 0))), out / "loss_curves.png")

    val_clips = [load_audio(p, SR)[: int(VAL_SECONDS * SR)] for p in corpus_files(args.corpus, "val")]
    per_level = {level: validation_metrics(model, val_clips, level, SR) for level in levels}
    recordings = {name: load_audio(REPO / "data" / "exp1" / f"{name}-C4.flac", SR) for name in C4_FILES}
    identity = instrument_identity(model, recordings, 2, SR)

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
        "(validation included); Adam, Jukebox's losses; each stage after the first continues the previous one "
        "(`model=<its checkpoint> task.module.codebook_init=keep`):",
    ]
    for number, stage in enumerate(stages, 1):
        about = stage["training"]
        lines.append(
            f"  {number}. {stage['step']} steps of batch {about.get('batch_size', '?')} crops of "
            f"{about.get('crop_seconds', 1.0):.2f} s, lr {about.get('lr', '?')}, on "
            f"{about.get('hardware', platform.processor() or platform.machine())}: "
            f"{stage['train_seconds'] / 3600:.2f} h"
        )
    lines.append("")
    if figure:
        lines += [
            f"Loss curves of stage {len(stages)} (the run given by `--run`):",
            "",
            "![loss curves](loss_curves.png)",
            "",
        ]
    lines += [
        f"## Validation split ({len(val_clips)} files of unseen (program, pitch) pairs, "
        f"first {VAL_SECONDS:.0f} s of each)",
        "",
        "| level | MSE | SNR (dB) | multispectral | l2-mfcc to source | codes used | perplexity |",
        "|---|---|---|---|---|---|---|",
    ]
    for level, values in per_level.items():
        lines.append(
            f"| {level} | {values['mse']:.2e} | {values['snr_db']:.1f} | {values['multispectral']:.1f} | "
            f"{values['l2mfcc_to_source']:.1f} | {values['codes_used']} ({values['codes_used_share']:.0%}) | "
            f"{values['perplexity']:.0f} |"
        )
    lines.append("")
    kept = identity.kept
    pitch_ok = [p is not None and p >= PITCH_TARGET for p in identity.pitch]
    usage = per_level.get(2, {}).get("codes_used_share", 0.0)
    checks = [
        (f"level-2 reconstructions keep the instrument of all six C4 recordings: {sum(kept)}/6", all(kept)),
        (
            f"... and their pitch (>= {PITCH_TARGET:.0%} of voiced frames within 50 cents): {sum(pitch_ok)}/6",
            all(pitch_ok),
        ),
        (f"level 2 uses at least 25% of its 2048 codes on the validation split: {usage:.0%}", usage >= 0.25),
    ]
    lines += ["## Checks", ""] + [f"- [{'x' if ok else ' '}] {text}" for text, ok in checks] + [""]
    lines += [
        "",
        "## Experiment 1: do level-2 reconstructions keep instrument and pitch?",
        "",
        f"Each row: the reconstruction of one C4 recording, its l2-mfcc to each source (closest in bold). "
        f"Instrument kept: **{sum(kept)}/{len(kept)}**.",
        "",
        "| reconstruction | " + " | ".join(identity.names) + " | pitch within 50 cents |",
        "|---|" + "---|" * (len(identity.names) + 1),
    ]
    for i, name in enumerate(identity.names):
        best = int(np.argmin(identity.distances[i]))
        cells = [f"**{d:.1f}**" if j == best else f"{d:.1f}" for j, d in enumerate(identity.distances[i])]
        pitch = identity.pitch[i]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'-' if pitch is None else f'{pitch:.0%}'} |")
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
    print(f"wrote {out / 'MODEL_CARD.md'}; instrument kept {sum(kept)}/{len(kept)}, pitch {identity.pitch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
