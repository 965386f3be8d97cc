"""Checkpoints that survive interruption, and export of trained VQ-VAEs (official format) and trained decoders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from weakref import proxy

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint


class AtomicModelCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose files appear only when complete.

    Lightning writes through a temporary file in the system temp folder and then
    moves it, which is a plain copy (and can be cut short) when that folder is on
    another file system. Here the checkpoint is written next to its target and
    renamed, so a run killed mid-write keeps its previous ``last.ckpt`` intact.
    """

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        partial = f"{filepath}.part"
        trainer.save_checkpoint(partial, self.save_weights_only)
        if trainer.is_global_zero:
            os.replace(partial, filepath)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Also keep the final steps: Lightning saves at the end only if nothing was saved before."""
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class ExportVQVAE(pl.Callback):
    """After every validation (and at the end), write the VQ-VAE being trained in the official format; with
    ``snapshots``, also keep each of these exports there as ``step<N>`` (to measure a model against its steps)."""

    def __init__(self, path: str, snapshots: str | None = None) -> None:
        self.path = Path(path)
        self.snapshots = None if snapshots is None else Path(snapshots)

    def _write(self, module: pl.LightningModule) -> None:
        module.export(self.path)

    def _export(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.is_global_zero and not trainer.sanity_checking:
            self._write(module)
            if self.snapshots is not None:
                self.snapshots.mkdir(parents=True, exist_ok=True)
                snapshot = self.snapshots / f"step{trainer.global_step:07d}{''.join(self.path.suffixes)}"
                shutil.copyfile(self.path, f"{snapshot}.part")
                os.replace(f"{snapshot}.part", snapshot)  # whole or absent

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._export(trainer, module)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._export(trainer, module)


class ExportDecoder(ExportVQVAE):
    """After every validation (and at the end), write the decoder being trained alone: its weights only."""

    def on_fit_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        module.check_decoder_export()  # before any step: a run that could not export would train for nothing

    def _write(self, module: pl.LightningModule) -> None:
        module.export_decoder(self.path)
