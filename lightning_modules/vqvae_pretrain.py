"""Pre-train or fine-tune the Jukebox VQ-VAE, or train its decoders alone.

Each selected level is an independent autoencoder trained on the same audio
crops with a reconstruction loss from the ``loss`` config group (Jukebox's,
multi-scale log-mel, or log-mel with a discriminator) plus the bottleneck's
commitment loss, with EMA codebooks and dead-code restarts in the bottleneck
(not in the optimiser). Codebook use is measured on the validation split.

What is trained, and how a batch becomes each level's output, is the ``stage``
(``stages.py``): the whole model, the decoder alone on the frozen encoder's codes
(RAVE's and AudioDec's second stage), or a decoder trained to render transferred
features. The codes a decoder learns to render stay the ones every transfer
method works on.

Checkpoints carry the EMA codebook state and the loss's own state (bandwidths,
a discriminator and its optimiser), so a resumed
run continues exactly; ``export`` writes the official checkpoint format, and
``export_decoder`` a decoder trained alone (its weights only, for ``method=decoder``).
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from jukestyle_lightning.datamodules.corpus import TrainingCorpus
from jukestyle_lightning.lightning_modules.stages import FullStage, make_stage

from jukestyle.errors import ConfigError
from jukestyle.jukebox import VQVAE, save_checkpoint
from jukestyle.jukebox.decoder_checkpoint import save_decoder
from jukestyle.jukebox.vqvae import LevelOutput
from jukestyle.losses import AdversarialLoss, JukeboxLoss, ReconstructionLoss

# Clips of the training set a loss may measure at the start of training (Jukebox's bandwidths).
_CALIBRATION_CLIPS = 256


class VQVAEPretrainModule(pl.LightningModule):
    def __init__(
        self,
        model: VQVAE,
        loss: ReconstructionLoss | None = None,
        levels: list[int] = (2,),
        stage: str | FullStage = "full",
        lr: float = 3e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        warmup_steps: int = 100,
        codebook_init: str = "data",
        commit_weight: float = 0.02,
        train_seconds: float = 0.0,
    ) -> None:
        """``stage``: a stage object (``stages.py``) or the name of one with its defaults. ``train_seconds``: wall
        time already spent, for a run resumed from a checkpoint that did not record it."""
        super().__init__()
        if codebook_init not in ("data", "keep"):
            raise ValueError(
                f"codebook_init must be 'data' (initialise from the first batch) or 'keep', got {codebook_init!r}"
            )
        self.save_hyperparameters(ignore=["model", "loss", "stage"])
        self.model = model.train()  # loaders return models in eval mode
        self.loss = JukeboxLoss() if loss is None else loss
        self.levels = [int(level) for level in levels]
        for level in self.levels:
            model.hop_length(level)  # validates the level
        self.stage = make_stage(stage)
        self.stage.attach(self.model, self.levels, codebook_init)
        self.resumed = False
        self._val_histograms: dict[int, torch.Tensor] = {}
        self._seconds_before = float(train_seconds)  # wall time of earlier runs of this training
        # A fine-tune continues the trainings of the checkpoint it starts from, and so does a run that trains
        # other levels from scratch beside levels trained before: its export lists those trainings.
        earlier = set(model.origin.trained_levels)
        kept = earlier if codebook_init == "keep" else earlier - set(self.levels)
        self.history = list(model.origin.lineage) if kept else []
        self.trained_levels = sorted(kept | set(self.levels))
        self._started = time.monotonic()

    # -- set-up ----------------------------------------------------------------
    def _corpus(self) -> TrainingCorpus | None:
        """The datamodule's training corpus (``training_corpus()``, e.g. ``CorpusDataModule``'s), if it has one."""
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        return datamodule.training_corpus() if hasattr(datamodule, "training_corpus") else None

    def on_fit_start(self) -> None:
        corpus = self._corpus()
        if corpus is None:
            raise ConfigError("pre-training needs a datamodule with training_corpus(), e.g. data=corpus")
        self.loss.calibrate(corpus.clips[:_CALIBRATION_CLIPS])
        self.stage.prepare(self, corpus)

    def on_train_start(self) -> None:
        self._started = time.monotonic()

    def train_seconds(self) -> float:
        """Wall time of this training so far, across resumed runs."""
        return self._seconds_before + time.monotonic() - self._started

    def training_info(self) -> dict:
        corpus = self._corpus()
        device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
        return {
            "batch_size": corpus.batch_size if corpus else None,
            "crop_seconds": corpus.crop_length / self.model.sample_rate if corpus else 0.0,
            "corpus": corpus.root if corpus else "",
            "corpus_seed": corpus.seed if corpus else None,
            "lr": self.hparams.lr,
            "levels": self.levels,
            **self.stage.info(),
            "loss": type(self.loss).__name__,
            "hardware": f"{platform.machine()} CPU, {torch.get_num_threads()} threads, {device}",
        }

    def _ema_states(self) -> dict[int, dict[str, torch.Tensor]]:
        return {level: self.model.bottleneck[level].ema_state() for level in range(self.model.levels)}

    def on_train_epoch_start(self) -> None:
        set_epoch = getattr(self.trainer.datamodule, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(self.current_epoch)

    def configure_optimizers(self):
        parameters = list(self.stage.parameters(self.model, self.levels))
        optimizer = torch.optim.Adam(
            parameters, lr=self.hparams.lr, betas=tuple(self.hparams.betas), weight_decay=self.hparams.weight_decay
        )
        warmup = max(int(self.hparams.warmup_steps), 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # -- steps -----------------------------------------------------------------
    def batch_losses(self, batch: dict, training: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict]:
        """The total loss, the logged terms and every level's outputs for one batch (training: codebook updates)."""
        outputs: dict[int, LevelOutput] = self.stage.outputs(self, batch, training)
        audio = batch["audio"]
        adversarial = isinstance(self.loss, AdversarialLoss)
        if adversarial:
            self.loss.step = self.global_step
        total, logged = audio.new_zeros(()), {}
        for level, output in outputs.items():
            if adversarial and training:  # first: the generator's terms then see the updated discriminator
                terms = self.loss.discriminator_step(audio, output.reconstruction)
                logged.update({f"L{level}/{name}": value for name, value in terms.items()})
            terms = self.loss(audio, output.reconstruction)
            total = total + terms.pop("loss")
            if self.stage.trains_encoder:
                total = total + self.hparams.commit_weight * output.commit_loss
            terms["commit"] = output.commit_loss.detach()
            logged.update({f"L{level}/{name}": value for name, value in {**terms, **output.metrics}.items()})
        return total, logged, outputs

    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        loss, logged, _ = self.batch_losses(batch, training=True)
        self.log("train/loss", loss, prog_bar=True)
        self.log_dict({f"train/{name}": value for name, value in logged.items()})
        return loss

    def validation_step(self, batch: dict, batch_index: int) -> None:
        loss, logged, outputs = self.batch_losses(batch, training=False)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True)
        self.log_dict({f"val/{name}": value for name, value in logged.items()}, sync_dist=True)
        for level, output in outputs.items():
            size = self.model.config.l_bins
            histogram = torch.bincount(output.codes.reshape(-1), minlength=size).to(torch.float64)
            self._val_histograms[level] = self._val_histograms.get(level, 0) + histogram

    def on_validation_epoch_end(self) -> None:
        for level, histogram in self._val_histograms.items():
            histogram = self.trainer.strategy.reduce(histogram, reduce_op="sum")
            probability = histogram / histogram.sum().clamp_min(1)
            entropy = -(probability * torch.log(probability.clamp_min(1e-12))).sum()
            self.log(f"val/L{level}/codes_used", (histogram > 0).sum().float())
            self.log(f"val/L{level}/perplexity", entropy.exp().float())
            codebook = self.model.bottleneck[level]
            self.log(f"val/L{level}/dead_codes", (codebook.k_elem < codebook.threshold).sum().float())
        self._val_histograms = {}

    # -- checkpoints -------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["codebook_ema"] = self._ema_states()
        checkpoint["train_seconds"] = self.train_seconds()
        if isinstance(self.loss, AdversarialLoss):
            checkpoint["discriminator_optimizer"] = self.loss.optimizer.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # runs before the state dict is loaded: checkpoints written before the VQ-VAE was called ``model`` resume too
        state = checkpoint.get("state_dict", {})
        for key in [key for key in state if key.startswith("vqvae.")]:
            state["model." + key.removeprefix("vqvae.")] = state.pop(key)
        for level, state in checkpoint.get("codebook_ema", {}).items():
            self.model.bottleneck[int(level)].load_ema_state(state)
        self._seconds_before = float(checkpoint.get("train_seconds", self._seconds_before))
        if isinstance(self.loss, AdversarialLoss) and "discriminator_optimizer" in checkpoint:
            self.loss.optimizer.load_state_dict(checkpoint["discriminator_optimizer"])
        self.resumed = True

    def export(self, path: str | Path) -> None:
        """Write the VQ-VAE in the official checkpoint format, with what is needed to continue training."""
        save_checkpoint(
            path,
            self.model,
            step=self.global_step,
            codebook_ema=self._ema_states(),
            loss=type(self.loss).__name__,
            trained_levels=self.trained_levels,
            train_seconds=self.train_seconds(),
            training=self.training_info(),
            history=self.history,
        )

    def check_decoder_export(self) -> None:
        """One line unless this training makes one decoder that can be exported alone (checked before training)."""
        if not self.stage.exports_decoder or len(self.levels) != 1:
            raise ConfigError(
                "a decoder is exported from a decoder stage (task.module.stage=decoder or transfer_decoder) with "
                f"one level, got stage {self.stage.name} and levels {self.levels}"
            )

    def export_decoder(self, path: str | Path) -> None:
        """Write the decoder trained alone (a decoder stage, one level): its weights, what it was trained on, and
        for a transfer decoder the transfer it renders (``transfer``: method, points, where styles are measured)."""
        self.check_decoder_export()
        info = self.training_info()
        save_decoder(
            path,
            self.model,
            self.levels[0],
            step=self.global_step,
            loss=type(self.loss).__name__,
            train_seconds=self.train_seconds(),
            training=info,
            transfer=info.get("transfer"),
        )
