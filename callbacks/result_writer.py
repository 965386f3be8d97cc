"""Write every transfer to disk, with any logger or none: audio, JSON metadata, results.csv, report."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl

from jukestyle.report import write_report
from jukestyle.results import read_records, write_record, write_results_csv


class ResultWriter(pl.Callback):
    """Each rank writes the records of its own pairs as they finish; rank 0 then builds results.csv and the report."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir = Path(output_dir)
        self.transfers = self.output_dir / "transfers"

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        run_config = Path(".hydra") / "config.yaml"  # relative to the run folder, which may move
        for record in outputs or []:
            write_record(self.transfers, record, str(run_config) if (self.output_dir / run_config).is_file() else None)

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.strategy.barrier()  # every rank's records are on disk
        if trainer.is_global_zero:
            records = read_records(self.transfers)
            write_results_csv(self.output_dir / "results.csv", records)
            failed = [record for record in records if record.get("error")]
            results = self.output_dir / "results.csv"
            report = write_report(self.output_dir, records)
            print(f"wrote {len(records) - len(failed)} records to {self.transfers}")
            print(f"results: {results}, report: {report}")
            for record in failed:
                print(f"  failed: {record['pair_id']} ({record['method']}): {record['error']}")
