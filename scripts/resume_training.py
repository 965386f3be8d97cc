"""Resume a training run for a limited wall time and copy what it saved into a folder.

    python scripts/resume_training.py --run outputs/pretrain_vqvae/main --minutes 8 --out $OUT \\
        [--corpus /path/to/corpus] [override ...]

Made for a borrowed GPU machine: the run's own settings (``<run>/.hydra/overrides.yaml``)
are replayed with the given overrides after them (e.g. ``trainer=gpu data.batch_size=64
runtime.threads=null``), training stops ``--margin`` minutes before ``--minutes`` so that the
final checkpoint and export are written in time, and ``last.ckpt``, the exported
``vqvae.pth.tar`` and the CSV logs are copied into ``--out``. Bring that folder back, put
``last.ckpt`` into ``<run>/checkpoints/`` and re-run to continue here, or use the export as is.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from jukestyle.fileio import atomic_path

REPO = Path(__file__).resolve().parents[1]
# Overrides of the original run that this script sets itself.
_OWN = ("hydra.run.dir=", "+trainer.max_time=", "trainer.max_time=")


def _max_time(seconds: float) -> str:
    seconds = max(int(seconds), 1)
    return f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def resume_command(run: Path, seconds: float, corpus: Path | None, overrides: list[str]) -> list[str]:
    saved = run / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise FileNotFoundError(f"{saved}: not found (is {run} the folder of a scripts/run.py training run?)")
    own = _OWN + (("data.root=",) if corpus is not None else ())
    replayed = [item for item in yaml.safe_load(saved.read_text()) or [] if not item.startswith(own)]
    if corpus is not None:
        replayed.append(f"data.root={corpus}")
    return [
        sys.executable,
        str(REPO / "scripts" / "run.py"),
        *replayed,
        *overrides,
        f"hydra.run.dir={run}",
        f"+trainer.max_time={_max_time(seconds)}",
    ]


def collect(run: Path, out: Path) -> list[Path]:
    """Copy the run's last checkpoint, export and CSV logs into ``out`` (each file complete or absent)."""
    out.mkdir(parents=True, exist_ok=True)
    wanted = [run / "checkpoints" / "last.ckpt", run / "vqvae.pth.tar"]
    wanted += sorted(run.glob("csv/version_*/metrics.csv"))
    copied = []
    for source in wanted:
        if not source.is_file():
            continue
        name = source.name if source.parent.parent.name != "csv" else f"metrics_{source.parent.name}.csv"
        with atomic_path(out / name) as tmp:
            shutil.copyfile(source, tmp)
        copied.append(out / name)
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="the training run's folder (its hydra.run.dir)")
    parser.add_argument("--minutes", type=float, required=True, help="wall-time limit of this command")
    parser.add_argument("--out", type=Path, required=True, help="folder that receives the checkpoint and export")
    parser.add_argument("--corpus", type=Path, default=None, help="where the corpus is on this machine")
    parser.add_argument("--margin", type=float, default=1.0, help="minutes kept for start-up and saving")
    args, overrides = parser.parse_known_args(argv)
    started = time.monotonic()
    training_seconds = (args.minutes - args.margin) * 60
    if training_seconds <= 0:
        print(f"resume_training: --minutes {args.minutes} leaves no time after the {args.margin} min margin")
        return 2
    try:
        command = resume_command(args.run, training_seconds, args.corpus, overrides)
    except FileNotFoundError as error:
        print(f"resume_training: {error}", file=sys.stderr)
        return 2
    print("running:", " ".join(command), flush=True)
    code = subprocess.call(command)
    copied = collect(args.run, args.out)
    print(
        f"training exited with {code} after {time.monotonic() - started:.0f} s; copied to {args.out}: "
        + ", ".join(path.name for path in copied)
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
