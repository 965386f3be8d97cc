"""Ship a transfer decoder with its card: the decoder against the zero-shot methods and the per-instrument
decoders, on the paper's pairs and on the held-out programs' pairs, with its curve and its A/B.

    python scripts/render_data.py heldout                    # the held-out programs' notes and pairs
    python scripts/transfer_card.py --run outputs/transfer_decoder [--steps 500,1000,2000]
        [--ab "frozen styles=outputs/ab/frozen"] [--ab "wct=outputs/ab/wct:wct"] [--levels identity,adain,wct:2,1]
        [--out checkpoints/transfer_decoder] [--work outputs/transfer_card]

The logic is ``jukestyle.evaluation.cards.transfer_decoder``; scores are kept under ``--work``, so a
re-run measures only what changed.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from jukestyle.errors import JukestyleError
from jukestyle.evaluation.cards.transfer_decoder import LEVELS, ZERO_SHOT, Arm, build_card, level_rows
from jukestyle.evaluation.pair_sets import read_manifest
from jukestyle.jukebox import load_vqvae
from jukestyle.runtime import configure_cpu

REPO = Path(__file__).resolve().parents[1]


def arm(text: str) -> Arm:
    """``label=run folder[:method]`` -> the arm of that run's decoder."""
    label, _, rest = text.partition("=")
    folder, _, method = rest.partition(":")
    if not label or not folder:
        raise argparse.ArgumentTypeError(f"--ab takes label=<run folder>[:method], got {text!r}")
    return Arm(label, Path(folder) / "decoder.pth.tar", method or "adain")


def level_table(text: str) -> list:
    """``identity,adain:2,1`` -> those methods at those levels on the frozen model; ``all``: every one."""
    if text == "all":
        return level_rows()
    methods, _, levels = text.partition(":")
    unknown = sorted(set(methods.split(",")) - set(ZERO_SHOT))
    if unknown:
        known = ", ".join(ZERO_SHOT)
        raise argparse.ArgumentTypeError(f"--levels: no zero-shot method {', '.join(unknown)} (one of {known})")
    try:
        return level_rows(methods.split(","), [int(level) for level in levels.split(",")] if levels else LEVELS)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--levels takes METHODS[:LEVELS], got {text!r}") from error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="an experiment=train_transfer_decoder run folder")
    parser.add_argument("--heldout", type=Path, default=REPO / "data" / "heldout", help="render_data.py heldout's")
    parser.add_argument("--steps", default="", help="comma-separated snapshot steps for the curve")
    parser.add_argument("--ab", type=arm, action="append", default=[], help="label=<run folder>[:method]")
    parser.add_argument(
        "--levels",
        type=level_table,
        default=(),
        help="zero-shot methods at levels: METHODS[:LEVELS] (identity,adain,wct:2,1), or all",
    )
    parser.add_argument("--timbre-metric", type=Path, default=None, help="a timbre metric: timbre wins too")
    parser.add_argument("--out", type=Path, default=REPO / "checkpoints" / "transfer_decoder")
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "transfer_card")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    configure_cpu(args.threads)
    try:
        sets = {"paper": read_manifest(REPO / "data" / "pairs.csv", REPO)}
        sets["heldout"] = read_manifest(args.heldout / "pairs.csv")
        command = f"python scripts/transfer_card.py {shlex.join(argv if argv is not None else sys.argv[1:])}"
        steps = [int(step) for step in args.steps.split(",") if step]
        card = build_card(load_vqvae("bundled"), args.run, sets, args.out, args.work, command, steps, args.ab,
                          REPO / "checkpoints" / "decoders", args.levels, args.timbre_metric)  # fmt: skip
    except JukestyleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
