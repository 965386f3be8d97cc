"""Hydra callback: at the end of a multirun, the sweep summary table, and a failing exit if a job failed."""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.experimental.callback import Callback

from jukestyle.evaluation.sweep_summary import write_sweep_summary


class SweepSummary(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        path, rows = write_sweep_summary(Path(config.hydra.sweep.dir))
        jobs = {row["job"]: row for row in rows}
        failed = [row for row in jobs.values() if row["status"] != "completed"]
        print(f"sweep summary ({len(jobs)} jobs): {path}")
        if failed:  # the jobs ran to the end (each job catches its own error); the sweep still reports failure
            for row in failed:
                print(f"  job {row['job']} ({row['overrides']}) {row['status']}: {row['error']}", file=sys.stderr)
            print(f"error: {len(failed)} of {len(jobs)} sweep jobs failed; see {path}", file=sys.stderr)
            sys.exit(1)
