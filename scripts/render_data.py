"""Render audio with FluidSynth and the FluidR3_GM sound font.

    python scripts/render_data.py corpus [--out data/corpus] [--seed 0] [--scale 1.0] [--programs violin,flute]

``corpus`` renders the self-supervised training corpus (about 86 minutes of
training audio at scale 1.0, plus a validation split of unseen (program,
pitch) combinations) as FLAC files with a ``manifest.csv``. Files are written
atomically and the manifest last, so an interrupted run leaves no partial
file; re-running skips files that already match the manifest's checksum.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jukestyle.audio import save_audio  # noqa: E402
from jukestyle.corpus import plan_corpus, program_list  # noqa: E402
from jukestyle.errors import JukestyleError  # noqa: E402
from jukestyle.fileio import sha256_file, write_text  # noqa: E402
from jukestyle.render import DEFAULT_SOUNDFONT, GM_PROGRAMS, Renderer  # noqa: E402

SAMPLE_RATE = 44100
PEAK = 0.89  # -1 dBFS
CORPUS_COLUMNS = ["file", "split", "program", "instrument", "kind", "pitches", "seconds", "sha256"]


def _read_manifest(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    with open(path, newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def render_corpus(out: Path, seed: int, scale: float, programs: list[int] | None, soundfont: Path) -> list[dict]:
    renderer = Renderer(soundfont, SAMPLE_RATE)
    manifest_path = out / "manifest.csv"
    previous = _read_manifest(manifest_path)
    rows, started = [], time.time()
    plan = plan_corpus(seed, scale, programs)
    for index, item in enumerate(plan):
        relative = f"{item.name}.flac"
        path = out / relative
        old = previous.get(relative)
        if old and path.is_file() and sha256_file(path) == old["sha256"]:
            rows.append(old)
            continue
        audio = renderer.render(item.notes, item.program)
        audio = (audio * (PEAK / max(float(np.abs(audio).max()), 1e-9))).astype(np.float32)
        save_audio(path, audio, SAMPLE_RATE, comment=f"jukestyle corpus seed={seed} scale={scale}")
        rows.append(
            {
                "file": relative,
                "split": item.split,
                "program": item.program,
                "instrument": GM_PROGRAMS[item.program],
                "kind": item.kind,
                "pitches": " ".join(map(str, item.pitches)),
                "seconds": f"{len(audio) / SAMPLE_RATE:.3f}",
                "sha256": sha256_file(path),
            }
        )
        if (index + 1) % 32 == 0:
            print(f"rendered {index + 1}/{len(plan)} files in {time.time() - started:.0f} s", file=sys.stderr)
    _write_csv(manifest_path, CORPUS_COLUMNS, rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--soundfont", type=Path, default=DEFAULT_SOUNDFONT)
    commands = parser.add_subparsers(dest="command", required=True)
    corpus = commands.add_parser("corpus", help="the self-supervised training corpus")
    corpus.add_argument("--out", type=Path, default=REPO / "data" / "corpus")
    corpus.add_argument("--seed", type=int, default=0)
    corpus.add_argument("--scale", type=float, default=1.0, help="1.0 gives about 86 minutes of training audio")
    corpus.add_argument("--programs", default=None, help="comma-separated GM program names or numbers (default: all)")
    args = parser.parse_args(argv)
    try:
        if args.command == "corpus":
            rows = render_corpus(args.out, args.seed, args.scale, program_list(args.programs), args.soundfont)
            for split in ("train", "val"):
                minutes = sum(float(row["seconds"]) for row in rows if row["split"] == split) / 60
                print(f"{split}: {sum(row['split'] == split for row in rows)} files, {minutes:.1f} minutes")
    except (JukestyleError, ValueError) as error:
        print(f"render_data: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
