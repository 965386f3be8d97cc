"""Run scripts/run.py as a user does: a real process, real Hydra, real (offline) W&B."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from project import REPO


def cli_environment(home: Path) -> dict[str, str]:
    """No W&B login (runs must go offline by themselves) and no downloads, whatever the machine's network."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1", JUKESTYLE_OFFLINE="1")
    return env


def cli_command(*overrides: str) -> list[str]:
    return [sys.executable, str(REPO / "scripts" / "run.py"), *overrides]


def run_cli(*overrides: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli_command(*overrides), capture_output=True, text=True, env=cli_environment(home), cwd=home, timeout=timeout
    )
