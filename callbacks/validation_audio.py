"""Hear a training run: at every validation, how a few validation clips come out, logged to W&B.

Does nothing unless the trainer has a ``WandbLogger``. The examples are the same every time, so
that the dashboard's audio panel steps through how one recording sounds as training goes; what they
are is the training stage's to say (``examples``): the reconstructions of the first validation clips
(or their translation, where the data has other instruments' versions), or a transfer decoder's
output beside its content, style and target. What the model hears and is asked for (``source/``) is
logged with the first validation. Runs on rank 0 only; audio logged this way is kept in offline runs too.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger


class ValidationAudio(pl.Callback):
    def __init__(self, clips: int = 2, seconds: float = 4.0) -> None:
        self.clips, self.seconds = int(clips), float(seconds)
        self._sources_logged = False

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        logger = next((logger for logger in trainer.loggers if isinstance(logger, WandbLogger)), None)
        if logger is None or not trainer.is_global_zero or trainer.sanity_checking:
            return
        with torch.no_grad():
            outputs, sources = module.stage.examples(module, trainer.datamodule, self.clips, self.seconds)
        if not outputs:
            return
        import wandb

        rate, step = module.model.sample_rate, trainer.global_step
        media = {f"val_audio/{name}": wandb.Audio(audio, sample_rate=rate, caption=f"{name}, step {step}")
                 for name, audio in outputs.items()}  # fmt: skip
        if not self._sources_logged:
            media.update({f"val_audio/source/{name}": wandb.Audio(audio, sample_rate=rate, caption=name)
                          for name, audio in sources.items()})  # fmt: skip
        self._sources_logged = True
        logger.experiment.log({**media, "trainer/global_step": step})
