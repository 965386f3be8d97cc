"""(content, style) pairs: read from a manifest CSV, and the evaluation sets the cards measure methods on.

A manifest has columns ``content`` and ``style`` and optionally ``pair_id`` and ``experiment``; relative
paths are taken from ``root`` (by default the manifest's folder). Two sets ship with the project: the
paper's 34 pairs (``data/pairs.csv``) and the held-out programs' pairs (``scripts/render_data.py heldout``:
instruments no transfer decoder or timbre metric trains on, contents at D4, styles at other notes).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jukestyle.errors import JukestyleError


@dataclass(frozen=True)
class Pair:
    pair_id: str
    content: str
    style: str
    experiment: str = ""


def make_pair_id(content: str | Path, style: str | Path) -> str:
    return f"{Path(content).stem}--{Path(style).stem}"


def _safe_id(pair_id: str) -> str:
    """File-name-safe id: letters, digits, '.', '_', '-' and '+' only."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", pair_id).strip("._") or "pair"


def unique_ids(pairs: list[Pair]) -> list[Pair]:
    """Pair ids made unique: a repeated id gets the first free suffix (``-2``, ``-3``, ...) that no row of the
    manifest uses, so that a renamed row never takes an id given explicitly to another."""
    ids = [_safe_id(pair.pair_id) for pair in pairs]
    taken = set(ids)
    used: set[str] = set()
    unique = []
    for pair, pair_id in zip(pairs, ids, strict=True):
        if pair_id in used:
            base, number = pair_id, 2
            while f"{base}-{number}" in taken:
                number += 1
            pair_id = f"{base}-{number}"
            taken.add(pair_id)
        used.add(pair_id)
        unique.append(Pair(pair_id, pair.content, pair.style, pair.experiment))
    return unique


def read_manifest(
    manifest: str | Path, root: str | Path | None = None, experiments: Sequence | None = None
) -> list[Pair]:
    manifest = Path(manifest)
    if not manifest.is_file():
        raise JukestyleError(f"{manifest}: no such pairs manifest")
    base = Path(root) if root is not None else manifest.parent
    with open(manifest, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"content", "style"} - set(reader.fieldnames or [])
        if missing:
            raise JukestyleError(f"{manifest}: missing column(s) {', '.join(sorted(missing))} (needs content, style)")
        rows = list(reader)
    wanted = None if experiments is None else {str(e) for e in experiments}
    pairs = []
    for row in rows:
        if wanted is not None and str(row.get("experiment", "")) not in wanted:
            continue
        content, style = (str(p if Path(p).is_absolute() else base / p) for p in (row["content"], row["style"]))
        pair_id = row.get("pair_id") or make_pair_id(content, style)
        pairs.append(Pair(pair_id, content, style, str(row.get("experiment", ""))))
    if not pairs:
        raise JukestyleError(f"{manifest}: no pairs" + (f" in experiments {sorted(wanted)}" if wanted else ""))
    return pairs
