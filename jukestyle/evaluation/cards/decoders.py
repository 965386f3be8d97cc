"""The per-instrument decoders' card: the decoder row on the paper's pairs against training steps.

Each run folder is named by its instrument (``<runs>/flute``: ``hydra.run.dir`` of ``experiment=train_decoder``).
``build_decoder_card`` copies every run's ``decoder.pth.tar`` to ``<out>/<instrument>.pth.tar`` (the folder
``method=decoder`` reads), then, for every training step all runs kept a snapshot of, has ``render`` run
``method=decoder`` with that step's decoders (the script passes ``scripts/run.py``) and writes:

- ``decoder_curve.csv`` and ``decoder_curve.png``: the scoreboard's summaries over all pairs against the steps,
  with the baseline run's methods as lines;
- with ``minutes`` (each a folder of runs trained on another amount of each instrument's audio, or a repeat):
  ``decoder_minutes.csv`` and ``.png``, the decoder row of each set of runs (the shipped ones too) against the
  minutes of target audio, on the pairs whose style is an instrument every set has;
- ``DECODERS.md``: the card. Per decoder: its training (steps, wall time, minutes of target audio, validation
  loss), size and sha256; the curve; the comparison with the baseline run.

Every metric is the scoreboard's (``scoreboard.summarise`` of the run's records), printed by its format.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from jukestyle.audio.files import audio_files
from jukestyle.errors import JukestyleError
from jukestyle.evaluation.figures import metric_curves_figure, save_figure
from jukestyle.evaluation.records import read_records
from jukestyle.evaluation.report import summaries
from jukestyle.evaluation.scoreboard import SUMMARY_NAMES, markdown_table, print_value, summarise
from jukestyle.fileio import sha256_file, write_text
from jukestyle.jukebox.decoder_checkpoint import read_decoder

DECODER_FILE = "decoder.pth.tar"
SUFFIX = ".pth.tar"
CURVE_METRICS = ("style_win_rate", "timbre_win_rate", "pitch_accuracy", "chroma_similarity", "frame_tones_32")
SHIPPED_COLUMNS = (
    "instrument", "steps", "lr", "trained_blocks", "train_minutes", "target_minutes", "val_loss", "MB", "sha256",
)  # fmt: skip
MINUTES_COLUMNS = ("set", "target_minutes", "steps", "pairs", *SUMMARY_NAMES)  # every summary of the scoreboard
CURVE_COLUMNS = ("step", "train_minutes", "pairs", *SUMMARY_NAMES)
SIZE_LIMIT = 1.5e6  # bytes: a decoder ships in git up to this size; above it, ship the command and checksum

# (folder of decoders, run folder) -> the run's records of method=decoder on the pairs
Render = Callable[[Path, Path], list[dict]]


def decoder_runs(runs: Path, warn: Callable[[str], None] = print) -> dict[str, Path]:
    """{instrument: run folder} of the runs under ``runs`` that finished (``run.json``) and exported a decoder."""
    found = {}
    for path in sorted(runs.glob(f"*/{DECODER_FILE}")):
        record = path.parent / "run.json"
        if record.is_file() and json.loads(record.read_text()).get("status") == "completed":
            found[path.parent.name] = path.parent
        else:
            warn(f"{path.parent}: not finished, left out")
    if not found:
        raise JukestyleError(f"{runs}: no finished run folder with a {DECODER_FILE} (experiment=train_decoder)")
    return found


def snapshot_steps(runs: dict[str, Path]) -> list[int]:
    """The steps every run kept a snapshot of (``snapshots/step<N>.pth.tar``)."""
    steps = None
    for run in runs.values():
        found = {
            int(m.group(1)) for p in (run / "snapshots").glob(f"step*{SUFFIX}") if (m := re.search(r"(\d+)", p.name))
        }
        steps = found if steps is None else steps & found
    return sorted(steps or ())


def target_minutes(corpus: str) -> float:
    """Minutes of audio in a decoder's training folder (its validation tails included); NaN if unknown."""
    if not corpus or not Path(corpus).is_dir():
        return math.nan
    return sum(sf.info(path).duration for path in audio_files(Path(corpus))) / 60


def last_validation_loss(run: Path) -> float:
    """The run's last ``val/loss`` in its CSV log (NaN without one)."""
    value = math.nan
    for path in sorted(run.glob("csv/version_*/metrics.csv")):
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("val/loss"):
                    value = float(row["val/loss"])
    return value


def decoder_summary(records: list[dict]) -> dict:
    """The scoreboard's summaries of the decoder row (``method=decoder``) of a run's records."""
    return summarise([r for r in records if r["method"] == "decoder"])


def ship(runs: dict[str, Path], out: Path) -> list[dict]:
    """Copy each run's decoder to ``<out>/<instrument>.pth.tar``: the card's rows (training, size, sha256)."""
    shipped = []
    for instrument, run in runs.items():
        source, target = run / DECODER_FILE, out / f"{instrument}{SUFFIX}"
        contents = read_decoder(source)
        if source.stat().st_size > SIZE_LIMIT:
            raise JukestyleError(f"{source}: {source.stat().st_size / 1e6:.1f} MB, over the {SIZE_LIMIT / 1e6} MB")
        shutil.copyfile(source, target)
        training = contents.get("training", {})
        shipped.append(
            {
                "instrument": instrument,
                "steps": contents["step"],
                "lr": training.get("lr", math.nan),
                # decoders written before trained_blocks existed trained every block
                "trained_blocks": training.get("trained_blocks") or "all",
                "train_minutes": contents.get("train_seconds", math.nan) / 60,
                "target_minutes": target_minutes(training.get("corpus", "")),
                "val_loss": last_validation_loss(run),
                "MB": target.stat().st_size / 1e6,
                "sha256": sha256_file(target)[:16],
            }
        )
    return shipped


def steps_curve(
    runs: dict[str, Path], work: Path, render: Render, only: Sequence[int] | None = None, progress=print
) -> list[dict]:
    """The decoder row at each snapshot step every run kept (``only``: the steps to keep)."""
    curve = []
    steps = [step for step in snapshot_steps(runs) if only is None or step in set(only)]
    for step in steps:
        decoders = work / f"step{step:07d}" / "decoders"
        decoders.mkdir(parents=True, exist_ok=True)
        train_minutes = []
        for instrument, run in runs.items():
            snapshot = run / "snapshots" / f"step{step:07d}{SUFFIX}"
            shutil.copyfile(snapshot, decoders / f"{instrument}{SUFFIX}")
            train_minutes.append(read_decoder(snapshot).get("train_seconds", math.nan) / 60)
        summary = decoder_summary(render(decoders, work / f"step{step:07d}"))
        curve.append({"step": step, "train_minutes": sum(train_minutes) / len(train_minutes), **summary})
        progress(f"step {step}: " + ", ".join(f"{m} {print_value(summary[m], m)}" for m in CURVE_METRICS))
    return curve


def minutes_points(
    sets: Sequence[Path], runs: dict[str, Path], work: Path, render: Render
) -> tuple[list[dict], set[str]]:
    """The decoder row against minutes of target audio: the finished decoders of the shipped runs and of each set of
    runs in ``sets`` (trained on less audio, or repeats), each point on the instruments every set has, so that each
    covers the same pairs. Returns the points and the pair ids they cover."""
    run_sets = {"shipped": runs}
    for path in sets:
        if path.name in run_sets:
            raise JukestyleError(f"--minutes {path}: two sets of runs named {path.name!r}; rename one folder")
        run_sets[path.name] = decoder_runs(path)
    common = sorted(set.intersection(*(set(found) for found in run_sets.values())))
    if not common:
        raise JukestyleError("--minutes: no instrument has a finished run in every set")
    points, covered = [], set()
    for label, found in run_sets.items():
        decoders = work / "minutes" / label / "decoders"
        decoders.mkdir(parents=True, exist_ok=True)
        trainings = []
        for instrument in common:
            shutil.copyfile(found[instrument] / DECODER_FILE, decoders / f"{instrument}{SUFFIX}")
            trainings.append(read_decoder(decoders / f"{instrument}{SUFFIX}"))
        records = [r for r in render(decoders, work / "minutes" / label) if not r.get("error")]
        covered |= {r["pair_id"] for r in records}
        minutes = [target_minutes(training.get("training", {}).get("corpus", "")) for training in trainings]
        points.append(
            {
                "set": label,
                "instruments": " ".join(common),
                "target_minutes": sum(minutes) / len(minutes),
                "steps": min(training["step"] for training in trainings),
                **decoder_summary(records),
            }
        )
    return sorted(points, key=lambda point: point["target_minutes"]), covered


def save_curves(rows: list[dict], x: str, baseline: dict, path: Path, xlabel: str, title: str) -> None:
    """The decoder row's metrics against ``rows[i][x]``, with the baseline's methods as dashed lines."""
    figure = metric_curves_figure(
        [row[x] for row in rows],
        {metric: [row[metric] for row in rows] for metric in CURVE_METRICS},
        {method: {m: values[m] for m in CURVE_METRICS} for method, values in baseline.items()},
        xlabel=xlabel,
        title=title,
    )
    save_figure(figure, path)


def write_csv(path: Path, rows: list[dict], columns: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


@dataclass
class DecoderCardInputs:
    runs: Path  # a folder of train_decoder runs named by instrument
    out: Path  # where the decoders and the card go
    work: Path  # where the evaluation runs go (finished pairs are not run again)
    baseline: Path | None = None  # an experiment=paper_all run to compare with
    steps: Sequence[int] | None = None  # the snapshot steps to evaluate (default: all)
    minutes: Sequence[Path] = field(default_factory=list)  # folders of runs trained on other amounts of audio


def build_decoder_card(inputs: DecoderCardInputs, render: Render, progress=print) -> Path:
    """Ship the decoders, measure the curve (and the minutes), write the card; returns ``DECODERS.md``'s path."""
    runs = decoder_runs(inputs.runs, progress)
    inputs.out.mkdir(parents=True, exist_ok=True)
    shipped = ship(runs, inputs.out)
    curve = steps_curve(runs, inputs.work, render, inputs.steps, progress)
    write_csv(inputs.out / "decoder_curve.csv", curve, CURVE_COLUMNS)
    baseline_records = []
    if inputs.baseline is not None:
        baseline_records = [r for r in read_records(inputs.baseline / "transfers") if r["method"] != "decoder"]
    baseline = summaries(baseline_records)
    title = "decoder row on the paper's pairs"
    save_curves(curve, "step", baseline, inputs.out / "decoder_curve.png", "training steps (batch 8 of 0.5 s)", title)
    minutes = []
    if inputs.minutes:
        minutes, covered = minutes_points(inputs.minutes, runs, inputs.work, render)
        write_csv(inputs.out / "decoder_minutes.csv", minutes, MINUTES_COLUMNS)
        on_pairs = summaries([r for r in baseline_records if r["pair_id"] in covered])  # the zero-shot methods there
        title = f"decoder row on the {len(covered)} pairs with a {minutes[0]['instruments']} style"
        path = inputs.out / "decoder_minutes.png"
        save_curves(minutes, "target_minutes", on_pairs, path, "minutes of target audio per instrument", title)
    baseline_name = inputs.baseline.name if inputs.baseline is not None else ""
    write_text(inputs.out / "DECODERS.md", "\n".join(card_lines(shipped, curve, baseline, minutes, baseline_name)))
    return inputs.out / "DECODERS.md"


def card_lines(shipped: list[dict], curve: list[dict], baseline: dict, minutes: list[dict], baseline_name: str):
    lines = [
        "# Trained decoders",
        "",
        "Level-2 decoders of the bundled model (`checkpoints/jukestyle_gm.pth.tar`), one per instrument of the "
        "paper's experiments, each trained with its encoder and codebook frozen on the same scores played by every "
        "instrument (`scripts/render_data.py targets`: notes, chords and phrases, never C4 or G4 nor the "
        "experiments' pieces): it hears the codes of any instrument's version and learns to render its own "
        "instrument's. `method=decoder` picks the decoder of the style's instrument (the part of the style file's "
        "name before '-').",
        "",
        "    python scripts/render_data.py targets --out data/targets",
        "    python scripts/run.py experiment=train_decoder data.root=data/targets/<instrument> "
        "data.inputs=data/targets",
        "    python scripts/decoder_card.py --runs <folder of the runs> --baseline <paper_all run>  # this card",
        "",
        "## Decoders",
        "",
        *markdown_table(shipped, SHIPPED_COLUMNS),
        "",
        "trained_blocks: the decoder's last level blocks trained (with its output convolution), the earlier ones "
        "kept from the bundled decoder; train_minutes: wall time of the training (one CPU thread here); "
        "target_minutes: audio of the instrument "
        "(a tenth held out for validation); val_loss: the last validation's training loss (multi-scale log-mel, plus "
        "the other terms the loss config turns on), the input being another instrument's version in turn. "
        "The metrics are the scoreboard's (`jukestyle/evaluation/scoreboard.py`): frame_tones_32, the comb at the "
        "last decoder block's frame rate in the outputs (dB under their strongest peak); timbre_win_rate, the "
        "share of outputs nearer the style than the content by the timbre metric.",
        "",
        "## The decoder row against training steps (the paper's 34 pairs)",
        "",
        *markdown_table(curve, ["step", "train_minutes", *CURVE_METRICS, "l2mfcc_source", "l2mfcc_style", "pairs"]),
        "",
        "![decoder curve](decoder_curve.png)",
        "",
    ]
    if baseline and curve:
        rows = [{"method": "decoder (last step)", **curve[-1]}]
        rows += [{"method": method, **values} for method, values in baseline.items()]
        lines += [
            f"## Beside the zero-shot methods ({baseline_name}, all 34 pairs)",
            "",
            *markdown_table(rows, ["method", "pairs", *CURVE_METRICS, "l2mfcc_source", "l2mfcc_style"]),
            "",
        ]
    if minutes:
        lines += [
            f"## The decoder row against minutes of target audio (styles {minutes[0]['instruments']})",
            "",
            "Each set of runs trained on another amount of each instrument's audio (the same settings otherwise), "
            "measured on the pairs whose style is one of these instruments.",
            "",
            *markdown_table(minutes, ["set", "target_minutes", "steps", *CURVE_METRICS, "pairs"]),
            "",
            "![decoder against minutes](decoder_minutes.png)",
            "",
        ]
    return lines
