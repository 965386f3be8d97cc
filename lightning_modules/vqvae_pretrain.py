"""Pre-train or fine-tune the Jukebox VQ-VAE with Jukebox's own losses.

Each selected level is an independent autoencoder trained on the same audio
crops: reconstruction (l2 + top-k linf), multi-resolution spectral loss and
commitment loss, with EMA codebooks and dead-code restarts in the bottleneck
(not in the optimiser). Codebook use is measured on the validation split.

Checkpoints carry the EMA codebook state and the loss bandwidths, so a resumed
run continues exactly; ``export`` writes the official checkpoint format.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from jukestyle.jukebox import VQVAE, save_checkpoint
from jukestyle.jukebox.losses import Bandwidth, LossWeights, level_loss, measure_bandwidth

# Clips of the training set used to measure the loss bandwidths at the start of training.
_BANDWIDTH_CLIPS = 256


class VQVAEPretrainModule(pl.LightningModule):
    def __init__(
        self,
        vqvae: VQVAE,
        levels: list[int] = (2,),
        lr: float = 3e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        warmup_steps: int = 100,
        codebook_init: str = "data",
        linf_weight: float = 0.02,
        multispectral_weight: float = 1.0,
        commit_weight: float = 0.02,
        train_seconds: float = 0.0,
    ) -> None:
        """``train_seconds``: wall time already spent, for a run resumed from a checkpoint that did not record it."""
        super().__init__()
        if codebook_init not in ("data", "keep"):
            raise ValueError(
                f"codebook_init must be 'data' (initialise from the first batch) or 'keep', got {codebook_init!r}"
            )
        self.save_hyperparameters(ignore=["vqvae"])
        self.vqvae = vqvae.train()  # loaders return models in eval mode
        self.levels = [int(level) for level in levels]
        for level in self.levels:
            vqvae.hop_length(level)  # validates the level
        self.weights = LossWeights(linf=linf_weight, multispectral=multispectral_weight, commit=commit_weight)
        self.register_buffer("bandwidth", torch.zeros(2))  # (l2, spec); measured on the corpus at fit start
        self._resumed = False
        self._val_histograms: dict[int, torch.Tensor] = {}
        self._seconds_before = float(train_seconds)  # wall time of earlier runs of this training
        # A fine-tune continues the trainings of the checkpoint it starts from: its export lists them.
        self.history = list(getattr(vqvae, "lineage", [])) if codebook_init == "keep" else []
        self._started = time.monotonic()

    # -- set-up ----------------------------------------------------------------
    def on_fit_start(self) -> None:
        if not bool(self.bandwidth.any()):
            clips = [torch.from_numpy(clip) for clip in self.trainer.datamodule.train_clips[:_BANDWIDTH_CLIPS]]
            measured = measure_bandwidth(clips)
            self.bandwidth.copy_(torch.tensor([measured.l2, measured.spec]))
        if not self._resumed:
            frames_per_batch = self.trainer.datamodule.batch_size * self.trainer.datamodule.crop_length
            for level in self.levels:
                codebook = self.vqvae.bottleneck[level]
                if self.hparams.codebook_init == "data":
                    codebook.initialised.fill_(False)  # Jukebox's init_k: the first batch seeds the codebook
                else:
                    codebook.resume_ema(frames_per_batch // self.vqvae.hop_length(level))  # Jukebox's restore_k

    def on_train_start(self) -> None:
        self._started = time.monotonic()

    def train_seconds(self) -> float:
        """Wall time of this training so far, across resumed runs."""
        return self._seconds_before + time.monotonic() - self._started

    def training_info(self) -> dict:
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
        return {
            "batch_size": getattr(datamodule, "batch_size", None),
            "crop_seconds": getattr(datamodule, "crop_length", 0) / self.vqvae.sample_rate,
            "corpus": str(getattr(datamodule, "root", "")),
            "corpus_seed": getattr(datamodule, "seed", None),
            "lr": self.hparams.lr,
            "hardware": f"{platform.machine()} CPU, {torch.get_num_threads()} threads, {device}",
        }

    def _ema_states(self) -> dict[int, dict[str, torch.Tensor]]:
        return {level: self.vqvae.bottleneck[level].ema_state() for level in range(self.vqvae.levels)}

    def on_train_epoch_start(self) -> None:
        set_epoch = getattr(self.trainer.datamodule, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(self.current_epoch)

    def configure_optimizers(self):
        parameters = [
            p
            for level in self.levels
            for stack in (self.vqvae.encoders, self.vqvae.decoders)
            for p in stack[level].parameters()
        ]
        optimizer = torch.optim.Adam(
            parameters, lr=self.hparams.lr, betas=tuple(self.hparams.betas), weight_decay=self.hparams.weight_decay
        )
        warmup = max(int(self.hparams.warmup_steps), 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # -- steps -----------------------------------------------------------------
    def _losses(self, batch: torch.Tensor, update_codebook: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict]:
        bandwidth = Bandwidth(l2=float(self.bandwidth[0]), spec=float(self.bandwidth[1]))
        outputs = self.vqvae(batch, levels=self.levels, update_codebook=update_codebook)
        total, logged = batch.new_zeros(()), {}
        for level, output in outputs.items():
            terms = level_loss(batch, output.reconstruction, output.commit_loss, bandwidth, self.weights)
            total = total + terms.pop("loss")
            logged.update({f"L{level}/{name}": value for name, value in {**terms, **output.metrics}.items()})
        return total, logged, outputs

    def training_step(self, batch: torch.Tensor, batch_index: int) -> torch.Tensor:
        loss, logged, _ = self._losses(batch, update_codebook=True)
        self.log("train/loss", loss, prog_bar=True)
        self.log_dict({f"train/{name}": value for name, value in logged.items()})
        return loss

    def validation_step(self, batch: torch.Tensor, batch_index: int) -> None:
        loss, logged, outputs = self._losses(batch, update_codebook=False)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True)
        keep = ("reconstruction", "multispectral", "commit", "l2")
        self.log_dict({f"val/{n}": v for n, v in logged.items() if n.split("/")[-1] in keep}, sync_dist=True)
        for level, output in outputs.items():
            size = self.vqvae.config.l_bins
            histogram = torch.bincount(output.codes.reshape(-1), minlength=size).to(torch.float64)
            self._val_histograms[level] = self._val_histograms.get(level, 0) + histogram

    def on_validation_epoch_end(self) -> None:
        for level, histogram in self._val_histograms.items():
            histogram = self.trainer.strategy.reduce(histogram, reduce_op="sum")
            probability = histogram / histogram.sum().clamp_min(1)
            entropy = -(probability * torch.log(probability.clamp_min(1e-12))).sum()
            self.log(f"val/L{level}/codes_used", (histogram > 0).sum().float())
            self.log(f"val/L{level}/perplexity", entropy.exp().float())
            codebook = self.vqvae.bottleneck[level]
            self.log(f"val/L{level}/dead_codes", (codebook.k_elem < codebook.threshold).sum().float())
        self._val_histograms = {}

    # -- checkpoints -------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["codebook_ema"] = self._ema_states()
        checkpoint["train_seconds"] = self.train_seconds()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        for level, state in checkpoint.get("codebook_ema", {}).items():
            self.vqvae.bottleneck[int(level)].load_ema_state(state)
        self._seconds_before = float(checkpoint.get("train_seconds", self._seconds_before))
        self._resumed = True

    def export(self, path: str | Path) -> None:
        """Write the VQ-VAE in the official checkpoint format, with what is needed to continue training."""
        save_checkpoint(
            path,
            self.vqvae,
            step=self.global_step,
            codebook_ema=self._ema_states(),
            bandwidth={"l2": float(self.bandwidth[0]), "spec": float(self.bandwidth[1])},
            trained_levels=self.levels,
            train_seconds=self.train_seconds(),
            training=self.training_info(),
            history=self.history,
        )
