"""Write every transfer to disk, with any logger or none: audio, JSON metadata, results.csv, report."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch

from jukestyle.evaluation.records import read_records, write_record, write_results_csv
from jukestyle.evaluation.report import write_report
from jukestyle.fileio import PARTIAL_PATTERN


class ResultWriter(pl.Callback):
    """Each rank writes the records of its own pairs as they finish; rank 0 then builds results.csv and the report.

    Re-running into the same folder resumes: the module reuses the records that an earlier run finished
    (same inputs, settings and model, audio intact; ``task.module.resume_dir``) and this writer keeps them.
    It observes and writes files; it never changes the module.
    """

    def __init__(self, output_dir: str) -> None:
        self.output_dir = Path(output_dir)
        self.transfers = self.output_dir / "transfers"

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.resumed = 0
        if trainer.is_global_zero and self.transfers.is_dir():
            for stale in self.transfers.rglob(PARTIAL_PATTERN):  # left by a run killed while writing
                stale.unlink(missing_ok=True)
        trainer.strategy.barrier()  # the module reads the finished records (task.module.resume_dir) next

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        run_config = Path(".hydra") / "config.yaml"  # relative to the run folder, which may move
        for record in outputs or []:
            if record.get("resumed"):
                self.resumed += 1
                continue
            write_record(self.transfers, record, str(run_config) if (self.output_dir / run_config).is_file() else None)

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Collective calls on every rank: the count of reused records, then every rank's records are on disk.
        resumed = int(trainer.strategy.reduce(torch.tensor(float(self.resumed)), reduce_op="sum"))
        trainer.strategy.barrier()
        if trainer.is_global_zero:
            records = read_records(self.transfers)
            write_results_csv(self.output_dir / "results.csv", records)
            failed = [record for record in records if record.get("error")]
            results = self.output_dir / "results.csv"
            report = write_report(self.output_dir, records)
            if resumed:
                print(f"resumed: {resumed} records finished by an earlier run were kept, not computed again")
            print(f"wrote {len(records) - len(failed)} records to {self.transfers}")
            print(f"results: {results}, report: {report}")
            for record in failed:
                print(f"  failed: {record['pair_id']} ({record['method']}): {record['error']}")
