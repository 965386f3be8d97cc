"""scripts/benchmark.py: the peak memory of a probe process is its own, not its parent's."""

from __future__ import annotations

import subprocess
import sys

import torch

from tests.cli_runs import REPO

PROBE = f"import sys; sys.path.insert(0, {str(REPO / 'scripts')!r}); import benchmark; print(benchmark.peak_rss_mib())"


def test_a_probe_reports_its_own_peak_memory_not_its_parents():
    held = torch.ones(1024 * 2**20 // 4)  # this process holds 1 GiB when it starts the probe
    own = float(subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout)
    assert held.sum() > 0
    # the probe imports torch and the project (a few hundred MiB); Linux's ru_maxrss would report over 1 GiB here
    assert 50 < own < 1024
