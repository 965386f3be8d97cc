"""Evaluate a pre-trained VQ-VAE and write its model card (``jukestyle.evaluation.cards.model``).

    python scripts/model_card.py [--checkpoint checkpoints/jukestyle_gm.pth.tar] [--run outputs/pretrain_vqvae/main]
        [--ab "loss=jukebox=PATH" --ab "loss=mel=PATH" --ab-start "bundled step 4000=PATH"]

Writes ``MODEL_CARD.md``, ``loss_curves.png`` and ``model_card.json`` next to the checkpoint. ``model_card.json``
keeps every evaluation with the digest of the weights it measured: a new card reuses the previous card's
evaluation of each level whose weights did not change, and keeps its A/B rows (an ``--ab`` with the same label
replaces one); the checkpoints behind them need not exist any more.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from jukestyle.errors import JukestyleError
from jukestyle.evaluation.cards.model import CardInputs, evaluate_only, write_model_card
from jukestyle.evaluation.timbre import BUNDLED

REPO = Path(__file__).resolve().parents[1]


def named_path(text: str) -> tuple[str, Path]:
    """``label=path`` (the label may itself hold '=')."""
    label, _, path = text.rpartition("=")
    if not label:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label, Path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "jukestyle_gm.pth.tar")
    parser.add_argument("--run", type=Path, default=REPO / "outputs" / "pretrain_vqvae" / "main")
    parser.add_argument("--corpus", type=Path, default=REPO / "data" / "corpus")
    parser.add_argument("--recordings", type=Path, default=REPO / "data" / "exp1", help="the six C4 recordings")
    parser.add_argument("--timbre-metric", type=Path, default=BUNDLED, help="the timbre metric's checkpoint")
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
    inputs = CardInputs(
        args.checkpoint, args.run, args.corpus, args.recordings, args.cache, args.probe, args.ab, args.ab_start,
        args.timbre_metric,
    )  # fmt: skip
    try:
        if args.evaluate_only:  # fill the cache for a later card
            print(evaluate_only(inputs))
            return 0
        checks = write_model_card(inputs)
    except JukestyleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    card = args.checkpoint.parent / "MODEL_CARD.md"
    print(f"wrote {card}: " + "; ".join(f"{text}: {'ok' if ok else 'not met'}" for text, ok in checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
