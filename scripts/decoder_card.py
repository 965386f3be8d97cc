"""Ship trained decoders with their card (``jukestyle.evaluation.cards.decoders``): the decoder row on the paper's
pairs against training steps.

    python scripts/decoder_card.py --runs <folder of train_decoder runs, one per instrument>
        [--baseline <an experiment=paper_all run>] [--out checkpoints/decoders] [--work outputs/decoder_card]
        [--minutes <folder of runs trained on less audio>]...

The evaluations run ``method=decoder`` through ``scripts/run.py`` (finished pairs are not run again).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from jukestyle.errors import JukestyleError
from jukestyle.evaluation.cards.decoders import DecoderCardInputs, build_decoder_card
from jukestyle.evaluation.records import read_records

REPO = Path(__file__).resolve().parents[1]


def run_decoders(threads: int, overrides: list[str]):
    """``method=decoder`` with a folder of decoders on the paper's pairs (or what ``overrides`` set), into a run
    folder: the run's records."""

    def render(decoders: Path, out: Path) -> list[dict]:
        command = [sys.executable, str(REPO / "scripts" / "run.py"), "method=decoder", f"method.checkpoint={decoders}"]
        command += ["logger=csv", f"runtime.threads={threads}", "trainer.enable_progress_bar=false"]
        command += [f"hydra.run.dir={out}", *overrides]
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        if result.returncode != 0:
            raise JukestyleError(f"{out}: the decoder run failed: {result.stderr.strip().splitlines()[-1:]}")
        return [record for record in read_records(out / "transfers") if record["method"] == "decoder"]

    return render


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
    steps = [int(step) for step in args.steps.split(",")] if args.steps else None
    inputs = DecoderCardInputs(args.runs, args.out, args.work, args.baseline, steps, args.minutes)
    try:
        card = build_decoder_card(inputs, run_decoders(args.threads, args.set), progress=print)
    except JukestyleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {card}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
