"""Process settings: threads and glibc's malloc keeping freed feature maps (jukestyle/runtime.py)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest
import torch

from jukestyle.errors import ConfigError
from jukestyle.runtime import configure_cpu

# Allocates, fills and frees a 64 MiB tensor (above glibc's largest mmap threshold, like the last
# decoder block's feature map) six times, as passes over audio do; prints each one's page faults.
FAULTS = """
import resource, torch
from jukestyle.runtime import keep_freed_memory
print(keep_freed_memory() if {keep} else False)
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(16 * 2**20).fill_(1.0)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(keep: bool) -> tuple[str, list[int]]:
    script = FAULTS.format(keep=keep)
    applied, *faults = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    return applied, [int(count) for count in faults]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator setting is for glibc's malloc")
@pytest.mark.slow  # probe processes
def test_freed_feature_maps_are_reused_without_page_faults():
    pages = 64 * 2**20 // 4096
    applied, faults = _faults(keep=False)
    assert applied == "False" and min(faults) > pages // 2  # the default: mmapped, unmapped on free, faulted again
    applied, faults = _faults(keep=True)
    # the heap grows on the first passes (alignment padding), then serves the block from what was freed
    assert applied == "True" and sum(faults[3:]) < pages // 20


def test_threads_are_set_and_reported():
    before = torch.get_num_threads()
    try:
        assert configure_cpu(threads=1, keep_freed=False) == {"threads": 1, "keep_freed_memory": False}
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_bad_thread_count_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"runtime\.threads must be at least 1"):
        configure_cpu(threads=0)
