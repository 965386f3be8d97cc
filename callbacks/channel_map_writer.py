"""Write the channel maps of a ``ChannelMapModule`` run and log them to every logger.

Files (any logger or none): ``channel_maps.csv``, ``channel_maps.md`` and the heatmaps
under ``figures/``. Loggers get the number of selective channels per piece; a W&B
run also gets the heatmaps and the per-layer table. With several devices each rank
holds its own recordings; rank 0 gathers them and writes.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch.distributed as dist
from pytorch_lightning.loggers import WandbLogger

from jukestyle.errors import JukestyleError
from jukestyle.inspect.channel_maps import write_channel_maps


class ChannelMapWriter(pl.Callback):
    def __init__(self, output_dir: str) -> None:
        self.output_dir = Path(output_dir)
        self.results: list[dict] = []

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.results = []

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.results.extend(outputs or [])

    def _gathered(self) -> list[dict]:
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self.results
        parts: list[list[dict] | None] = [None] * dist.get_world_size()
        dist.all_gather_object(parts, self.results)
        return [result for part in parts for result in part or []]

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        results = self._gathered()
        if not trainer.is_global_zero:
            return
        maps, problems = pl_module.build_maps(results)
        for problem in problems:
            print(f"  skipped: {problem}")
        if not maps:
            raise JukestyleError("channel maps: no piece has two readable recordings; nothing written")
        written = write_channel_maps(self.output_dir, maps)
        print(f"channel maps: {written['csv']}, {written['report']}, figures in {self.output_dir / 'figures'}")
        metrics = {f"channel_maps/{m.piece}/selective": len(m.selective_channels()) for m in maps}
        for logger in trainer.loggers:
            logger.log_metrics(metrics)
            if isinstance(logger, WandbLogger):
                self._log_wandb(logger, maps, written)

    @staticmethod
    def _log_wandb(logger: WandbLogger, maps, written: dict[str, Path]) -> None:
        import wandb

        media = {
            f"channel_maps/{key}": wandb.Image(str(path)) for key, path in written.items() if path.suffix == ".png"
        }
        table = wandb.Table(columns=["piece", "layer", "name", "hop", "active_for_all", "silent_for_all", "selective"])
        for channel_map in maps:
            for row, layer in zip(channel_map.layer_summary(), channel_map.layers, strict=True):
                table.add_data(
                    channel_map.piece, layer.index, layer.name, layer.hop, row["all"], row["none"], row["selective"]
                )
        media["channel_maps/layers"] = table
        logger.experiment.log(media)
