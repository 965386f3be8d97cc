"""Hear a training run: at every validation, the reconstructions of a few validation clips, logged to W&B.

Does nothing unless the trainer has a ``WandbLogger``. The clips are the same every time (the
first of the validation split, cut to ``seconds``), so that the dashboard's audio panel steps
through how one recording sounds as training goes; the sources are logged with the first
validation. Where the data has other instruments' versions of its audio (``data.inputs``), the
model hears one of those, so the panel shows the translation into the target. Runs on rank 0
only; audio logged this way is kept in offline runs too.
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
        clips = getattr(trainer.datamodule, "val_clips", [])[: self.clips]
        versions = getattr(trainer.datamodule, "val_inputs", None)
        if versions:  # the last version, then the one before: other instruments, usually
            clips = [versions[-1 - index % len(versions)][index] for index in range(len(clips))]
        if logger is None or not trainer.is_global_zero or trainer.sanity_checking or not clips:
            return
        import wandb

        model, rate = module.model, module.model.sample_rate
        media = {}
        with torch.no_grad():
            for index, clip in enumerate(clips):
                for level in module.levels:
                    hop = model.hop_length(level)
                    piece = clip[: int(self.seconds * rate) // hop * hop]
                    if len(piece) == 0:
                        continue
                    audio = torch.from_numpy(piece).view(1, 1, -1).to(module.device)
                    output = model.reconstruct(audio, level).reshape(-1).float().cpu().numpy()
                    caption = f"clip {index}, level {level}, step {trainer.global_step}"
                    media[f"val_audio/L{level}/clip{index}"] = wandb.Audio(output, sample_rate=rate, caption=caption)
                if not self._sources_logged:
                    source = clip[: int(self.seconds * rate)]
                    caption = f"clip {index}"
                    media[f"val_audio/source/clip{index}"] = wandb.Audio(source, sample_rate=rate, caption=caption)
        self._sources_logged = True
        logger.experiment.log({**media, "trainer/global_step": trainer.global_step})
