"""Log a run's transfers to Weights & Biases: audio, mel spectrograms and a results table.

Does nothing unless the trainer has a ``WandbLogger``. Logging happens once, at the end,
on rank 0, from the records on disk, so a multi-device run logs every pair.

Each transfer gets its own step with the content, style and output audio and the
output's mel spectrogram (media logged this way are saved in offline runs too). The
results table is logged directly (rendered by the W&B app) and inside an artifact:
W&B keeps table cells' media only in artifacts when a run is offline
(wandb/wandb#4611), and ``wandb sync`` uploads the artifact with the run.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger

from jukestyle.audio.io import load_audio
from jukestyle.evaluation.figures import loss_curve_figure, mel_spectrogram_figure
from jukestyle.evaluation.records import read_records
from jukestyle.evaluation.report import TABLE_COLUMNS as SUMMARY_COLUMNS
from jukestyle.evaluation.report import experiments, summaries
from jukestyle.evaluation.scoreboard import RECORD_COLUMNS, summarise

TABLE_COLUMNS = ["pair_id", "method", "content", "style", "output", "output_mel", *RECORD_COLUMNS, "error"]


class WandbMediaLogger(pl.Callback):
    def __init__(self, output_dir: str, max_rows: int = 200) -> None:
        self.output_dir, self.max_rows = Path(output_dir), max_rows

    def _report(self, records: list[dict], wandb) -> dict:
        """The report's figures and its per-experiment summary table, as in report.md."""
        logged = {
            f"report/{path.stem}": wandb.Image(str(path))
            for path in sorted((self.output_dir / "figures").glob("*.png"))
        }
        table = wandb.Table(columns=["experiment", "method", *SUMMARY_COLUMNS])
        for experiment, rows in experiments(records).items():
            for method, values in summaries(rows).items():
                table.add_data(experiment or "all", method, *(values[column] for column in SUMMARY_COLUMNS))
        logged["report/summary"] = table
        return logged

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = next((logger for logger in trainer.loggers if isinstance(logger, WandbLogger)), None)
        if logger is None or not trainer.is_global_zero:
            return
        import wandb

        run, rate = logger.experiment, pl_module.model.sample_rate
        records = read_records(self.output_dir / "transfers")
        inputs: dict[str, wandb.Audio | None] = {}

        def input_audio(path: str) -> wandb.Audio | None:
            if path not in inputs:
                try:
                    inputs[path] = wandb.Audio(load_audio(path, rate), sample_rate=rate, caption=Path(path).name)
                except Exception:  # an unreadable input is reported in the error column
                    inputs[path] = None
            return inputs[path]

        table = wandb.Table(columns=TABLE_COLUMNS)
        for record in records[: self.max_rows]:
            content, style = input_audio(record["content"]), input_audio(record["style"])
            output = mel = None
            if record.get("output"):
                samples = load_audio(self.output_dir / record["output"], rate)
                caption = f"{record['method']}: {record['pair_id']}"
                output = wandb.Audio(samples, sample_rate=rate, caption=caption)
                figure = mel_spectrogram_figure(samples, rate, caption)
                mel = wandb.Image(figure, caption=caption)
                plt.close(figure)
                media = {"transfer/content": content, "transfer/style": style, "transfer/output": output}
                media = {key: value for key, value in media.items() if value is not None}
                media["transfer/output_mel"] = mel
                curve = (record.get("info") or {}).get("loss_curve")
                if curve:  # input optimisation (gram): how the style loss fell
                    figure = loss_curve_figure(curve, caption)
                    media["transfer/loss_curve"] = wandb.Image(figure, caption=caption)
                    plt.close(figure)
                run.log(media)
            row = [record["pair_id"], record["method"], content, style, output, mel]
            table.add_data(*row, *(record.get(column) for column in RECORD_COLUMNS), record.get("error"))
        done = [record for record in records if not record.get("error")]
        summary = {"transfers": table, "pairs_done": len(done), "pairs_failed": len(records) - len(done)}
        if done:  # over every method's records, as before the scoreboard: the run's headline rates
            totals = summarise(done)
            summary.update(
                {key: totals[key] for key in ("style_win_rate", "timbre_win_rate") if totals[key] is not None}
            )
        summary.update(self._report(records, wandb))
        run.log(summary)
        artifact = wandb.Artifact(f"transfers-{run.id}", type="transfers")
        artifact.add(table, "transfers")
        run.log_artifact(artifact)
