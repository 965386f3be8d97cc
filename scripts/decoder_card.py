"""Ship trained decoders with their card: the decoder row on the paper's pairs against training steps.

    python scripts/decoder_card.py --runs <folder of train_decoder runs, one per instrument>
        [--baseline <an experiment=paper_all run>] [--out checkpoints/decoders] [--work outputs/decoder_card]
        [--minutes <folder of runs trained on less audio>]...

Each run folder is named by its instrument (``<runs>/flute``: ``hydra.run.dir`` of
``experiment=train_decoder``). The script copies every run's ``decoder.pth.tar`` to
``<out>/<instrument>.pth.tar`` (the folder ``method=decoder`` reads), then, for every
training step all runs kept a snapshot of, runs ``method=decoder`` with that step's decoders
on the paper's 34 pairs (``scripts/run.py``, so finished pairs are not run again) and writes:

- ``decoder_curve.csv`` and ``decoder_curve.png``: style-win rate, pitch accuracy and chroma
  similarity over all pairs against the steps, with the baseline run's methods as lines;
- with ``--minutes`` (repeatable; each a folder of runs like ``--runs``, trained on another amount of
  each instrument's audio, or a repeat): ``decoder_minutes.csv`` and ``.png``, the decoder row of each set
  of runs (the shipped ones too) against the minutes of target audio, on the pairs whose style is an
  instrument every set has, with the baseline's methods on those pairs;
- ``DECODERS.md``: the card. Per decoder: its training (steps, wall time, minutes of target
  audio, validation loss), size and sha256; the curve; the comparison with the baseline run.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import soundfile as sf  # noqa: E402

from datamodules.corpus import audio_files  # noqa: E402
from jukestyle.audio.io import load_audio  # noqa: E402
from jukestyle.errors import JukestyleError  # noqa: E402
from jukestyle.evaluation.figures import metric_curves_figure, save_figure  # noqa: E402
from jukestyle.evaluation.metrics import frame_tone_level  # noqa: E402
from jukestyle.evaluation.records import read_records  # noqa: E402
from jukestyle.evaluation.report import format_metric, summarise  # noqa: E402
from jukestyle.fileio import sha256_file, write_text  # noqa: E402
from jukestyle.jukebox.decoder_checkpoint import read_decoder  # noqa: E402

DECODER_FILE = "decoder.pth.tar"
SUFFIX = ".pth.tar"
CURVE_METRICS = ("style_win_rate", "pitch_accuracy", "chroma_similarity", "frame_tone_db")
SAMPLE_RATE = 44100
SHIPPED_COLUMNS = (
    "instrument", "steps", "lr", "trained_blocks", "train_minutes", "target_minutes", "val_loss", "MB", "sha256",
)  # fmt: skip
MINUTES_COLUMNS = ("set", "target_minutes", "steps", *CURVE_METRICS, "l2mfcc_source", "l2mfcc_style", "pairs")
CURVE_COLUMNS = ("step", "train_minutes", *CURVE_METRICS, "l2mfcc_source", "l2mfcc_style", "pairs")
SIZE_LIMIT = 1.5e6  # bytes: a decoder ships in git up to this size; above it, ship the command and checksum


def decoder_runs(runs: Path) -> dict[str, Path]:
    """{instrument: run folder} of the runs under ``runs`` that finished (``run.json``) and exported a decoder."""
    found = {}
    for path in sorted(runs.glob(f"*/{DECODER_FILE}")):
        record = path.parent / "run.json"
        if record.is_file() and json.loads(record.read_text()).get("status") == "completed":
            found[path.parent.name] = path.parent
        else:
            print(f"{path.parent}: not finished, left out", file=sys.stderr)
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


def evaluate(decoders: Path, out: Path, threads: int, overrides: list[str]) -> list[dict]:
    """``method=decoder`` with the decoders in ``decoders`` on the paper's pairs (or what ``overrides`` set): the
    decoder's records (a pair whose style instrument has no decoder is a record with an error)."""
    command = [sys.executable, str(REPO / "scripts" / "run.py"), "method=decoder", f"method.checkpoint={decoders}"]
    command += ["logger=csv", f"runtime.threads={threads}", "trainer.enable_progress_bar=false", f"hydra.run.dir={out}"]
    command += overrides
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise JukestyleError(f"{out}: the decoder run failed: {result.stderr.strip().splitlines()[-1:]}")
    return [r for r in read_records(out / "transfers") if r["method"] == "decoder"]


def minutes_points(
    sets: list[Path], runs: dict[str, Path], work: Path, threads: int, overrides: list[str]
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
        run = work / "minutes" / label
        records = [r for r in evaluate(decoders, run, threads, overrides) if not r.get("error")]
        covered |= {r["pair_id"] for r in records}
        minutes = [target_minutes(training.get("training", {}).get("corpus", "")) for training in trainings]
        points.append(
            {
                "set": label,
                "instruments": " ".join(common),
                "target_minutes": sum(minutes) / len(minutes),
                "steps": min(training["step"] for training in trainings),
                **card_summary(records, run)["decoder"],
            }
        )
    return sorted(points, key=lambda point: point["target_minutes"]), covered


@functools.cache
def output_frame_tone(path: Path) -> float:
    """``frame_tone_level`` of an output file, read once (the baseline's outputs serve two tables)."""
    return frame_tone_level(load_audio(path, SAMPLE_RATE), SAMPLE_RATE)


def card_summary(records: list[dict], run: Path) -> dict[str, dict[str, float]]:
    """``summarise`` per method, plus the mean frame-tone level of its outputs in dB (the comb a fine-tuned decoder
    leaks at its last block's frame rate; NaN for rows without output audio)."""
    summary = summarise(records)
    for method, values in summary.items():
        levels = [
            output_frame_tone(run / r["output"])
            for r in records
            if r["method"] == method and r.get("output") and not r.get("error")
        ]
        values["frame_tone_db"] = sum(levels) / len(levels) if levels else math.nan
    return summary


def _cell(value: object, name: str) -> str:
    return value if isinstance(value, str) else format_metric(value, name)


def table(rows: list[dict], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(_cell(row[c], c) for c in columns) + " |" for row in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, required=True, help="folder of train_decoder runs named by instrument")
    parser.add_argument("--baseline", type=Path, help="an experiment=paper_all run to compare with")
    parser.add_argument("--out", type=Path, default=REPO / "checkpoints" / "decoders")
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "decoder_card")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", help="comma-separated steps to evaluate (default: every snapshot step)")
    parser.add_argument(
        "--minutes",
        type=Path,
        action="append",
        default=[],
        help="a folder of runs trained on another amount of target audio (or repeats): a point of the minutes figure",
    )
    parser.add_argument("--set", action="append", default=[], help="a Hydra override for the evaluation runs")
    args = parser.parse_args(argv)
    try:
        runs = decoder_runs(args.runs)
        args.out.mkdir(parents=True, exist_ok=True)
        shipped = ship(runs, args.out)
        curve = steps_curve(runs, args.work, args.steps, args.threads, args.set)
        write_csv(args.out / "decoder_curve.csv", curve, CURVE_COLUMNS)
        baseline_records = []
        if args.baseline is not None:
            baseline_records = [r for r in read_records(args.baseline / "transfers") if r["method"] != "decoder"]
        baseline = card_summary(baseline_records, args.baseline) if baseline_records else {}
        save_curves(
            curve,
            "step",
            baseline,
            args.out / "decoder_curve.png",
            "training steps (batch 8 of 0.5 s)",
            "decoder row on the paper's pairs",
        )
        minutes = []
        if args.minutes:
            minutes, covered = minutes_points(args.minutes, runs, args.work, args.threads, args.set)
            write_csv(args.out / "decoder_minutes.csv", minutes, MINUTES_COLUMNS)
            # the zero-shot methods on the pairs the points cover
            on_pairs = [r for r in baseline_records if r["pair_id"] in covered]
            on_pairs = card_summary(on_pairs, args.baseline) if on_pairs else {}
            title = f"decoder row on the {len(covered)} pairs with a {minutes[0]['instruments']} style"
            save_curves(
                minutes,
                "target_minutes",
                on_pairs,
                args.out / "decoder_minutes.png",
                "minutes of target audio per instrument",
                title,
            )
        write_text(args.out / "DECODERS.md", "\n".join(card_lines(shipped, curve, baseline, minutes, args)))
    except JukestyleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out / 'DECODERS.md'}")
    return 0


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


def steps_curve(runs: dict[str, Path], work: Path, only: str | None, threads: int, overrides: list[str]) -> list[dict]:
    """The decoder row at each snapshot step every run kept (``only``: comma-separated steps to keep)."""
    curve = []
    steps = snapshot_steps(runs)
    if only:
        steps = [step for step in steps if step in {int(s) for s in only.split(",")}]
    for step in steps:
        decoders = work / f"step{step:07d}" / "decoders"
        decoders.mkdir(parents=True, exist_ok=True)
        train_minutes = []
        for instrument, run in runs.items():
            snapshot = run / "snapshots" / f"step{step:07d}{SUFFIX}"
            shutil.copyfile(snapshot, decoders / f"{instrument}{SUFFIX}")
            train_minutes.append(read_decoder(snapshot).get("train_seconds", math.nan) / 60)
        run = work / f"step{step:07d}"
        summary = card_summary(evaluate(decoders, run, threads, overrides), run)["decoder"]
        curve.append({"step": step, "train_minutes": sum(train_minutes) / len(train_minutes), **summary})
        print(f"step {step}: " + ", ".join(f"{m} {_cell(summary[m], m)}" for m in CURVE_METRICS), flush=True)
    return curve


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


def write_csv(path: Path, rows: list[dict], columns: tuple[str, ...]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def card_lines(
    shipped: list[dict], curve: list[dict], baseline: dict, minutes: list[dict], args: argparse.Namespace
) -> list[str]:
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
        *table(shipped, list(SHIPPED_COLUMNS)),
        "",
        "trained_blocks: the decoder's last level blocks trained (with its output convolution), the earlier ones "
        "kept from the bundled decoder; train_minutes: wall time of the training (one CPU thread here); "
        "target_minutes: audio of the instrument "
        "(a tenth held out for validation); val_loss: the last validation's training loss (multi-scale log-mel, plus "
        "the other terms the loss config turns on), the input being another instrument's version in turn; "
        "frame_tone_db: the comb at the last decoder block's frame rate in the outputs (dB under their strongest "
        "peak; `jukestyle.evaluation.metrics.frame_tone_level`).",
        "",
        "## The decoder row against training steps (the paper's 34 pairs)",
        "",
        *table(curve, list(CURVE_COLUMNS)),
        "",
        "![decoder curve](decoder_curve.png)",
        "",
    ]
    if baseline and curve:
        rows = [{"method": "decoder (last step)", **curve[-1]}]
        rows += [{"method": method, **values} for method, values in baseline.items()]
        lines += [
            f"## Beside the zero-shot methods ({args.baseline.name}, all 34 pairs)",
            "",
            *table(rows, ["method", "pairs", *CURVE_METRICS, "l2mfcc_source", "l2mfcc_style"]),
            "",
        ]
    if minutes:
        lines += [
            f"## The decoder row against minutes of target audio (styles {minutes[0]['instruments']})",
            "",
            "Each set of runs trained on another amount of each instrument's audio (the same settings otherwise), "
            "measured on the pairs whose style is one of these instruments.",
            "",
            *table(minutes, list(MINUTES_COLUMNS)),
            "",
            "![decoder against minutes](decoder_minutes.png)",
            "",
        ]
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
