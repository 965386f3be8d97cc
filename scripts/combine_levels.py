"""Combine levels trained in separate runs into one checkpoint (official format).

    python scripts/combine_levels.py BASE --level 2=other.pth.tar [--level 1=...] --out combined.pth.tar

Every level listed is taken from its checkpoint (weights, codebook, EMA state); the rest from
BASE. The result lists the training stages of every part, so that the model card describes them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jukestyle.errors import JukestyleError
from jukestyle.jukebox.checkpoint import combine_levels

REPO = Path(__file__).resolve().parents[1]


def level_source(text: str) -> tuple[int, Path]:
    level, separator, path = text.partition("=")
    if not separator or not level.isdigit():
        raise argparse.ArgumentTypeError(f"expected LEVEL=PATH, got {text!r}")
    return int(level), Path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", type=Path)
    parser.add_argument("--level", type=level_source, action="append", required=True, help="LEVEL=CHECKPOINT")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        combine_levels(args.base, dict(args.level), args.out)
    except JukestyleError as error:
        print(f"combine_levels: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
