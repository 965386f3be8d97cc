"""Ship a timbre metric with its card: triplet accuracy on held-out programs beside l2-mfcc, the reference
rows on the paper's pairs, and the A/B of its training.

    python scripts/render_data.py heldout
    python scripts/timbre_metric_card.py --metric outputs/timbre_metric/timbre_metric.pth.tar
        [--ab "triplet loss=outputs/timbre_triplet/snapshots/step0001500.pth.tar"] [--out checkpoints/timbre_metric]

The logic is ``jukestyle.evaluation.cards.timbre_metric``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from jukestyle.errors import JukestyleError
from jukestyle.evaluation.cards.timbre_metric import build_metric_card
from jukestyle.evaluation.pair_sets import read_manifest
from jukestyle.jukebox import load_vqvae
from jukestyle.runtime import configure_cpu

REPO = Path(__file__).resolve().parents[1]


def arm(text: str) -> tuple[str, Path]:
    label, _, path = text.partition("=")
    if not label or not path:
        raise argparse.ArgumentTypeError(f"--ab takes label=<metric file>, got {text!r}")
    return label, Path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metric", type=Path, required=True, help="an experiment=train_timbre_metric export")
    parser.add_argument("--heldout", type=Path, default=REPO / "data" / "heldout", help="render_data.py heldout's")
    parser.add_argument("--ab", type=arm, action="append", default=[], help="label=<metric file>")
    parser.add_argument("--out", type=Path, default=REPO / "checkpoints" / "timbre_metric")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--model", default="bundled", help="the VQ-VAE whose plain reconstruction is a reference row ('none': no row)"
    )
    args = parser.parse_args(argv)
    configure_cpu(args.threads)
    command = f"python scripts/timbre_metric_card.py {shlex.join(argv if argv is not None else sys.argv[1:])}"
    try:
        pairs = read_manifest(REPO / "data" / "pairs.csv", REPO)
        model = None if args.model == "none" else load_vqvae(args.model)
        card = build_metric_card(args.metric, args.heldout, pairs, args.out, command, dict(args.ab), model)
    except JukestyleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
