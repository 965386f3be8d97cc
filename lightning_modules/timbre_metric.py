"""Train the timbre metric (``jukestyle.evaluation.timbre.TimbreNet``) on a parallel corpus.

Two losses, the A/B of the metric's card:

- ``classification``: every crop of the triplet (anchor, positive, negative) is classified among the corpus's
  instruments by the cosine of its embedding with one learnt vector per instrument, times ``scale``
  (normalised softmax); the embedding layer is the metric;
- ``triplet``: the cosine distance of anchor to positive (the same instrument, other notes) must fall
  ``margin`` under that of anchor to negative (another instrument, the anchor's very notes).

Validation logs, beside the loss, the triplet accuracy on the corpus's held-out tails (instruments heard,
music not), and, with ``heldout`` (``scripts/render_data.py heldout``'s folder), on the programs no
training hears: anchor a program at one note, positive it at another, negative another program at the
anchor's note. ``export`` writes the network alone (``timbre.save_metric``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

from jukestyle.errors import ConfigError
from jukestyle.evaluation.cards.timbre_metric import held_out_clips, pitch_triplets, triplet_accuracy
from jukestyle.evaluation.timbre import TimbreNet, save_metric

LOSSES = ("classification", "triplet")


class TimbreMetricModule(pl.LightningModule):
    def __init__(
        self,
        loss: str = "classification",
        channels: tuple[int, ...] = (16, 32, 64, 128),
        dim: int = 128,
        lr: float = 1e-3,
        warmup_steps: int = 100,
        scale: float = 16.0,
        margin: float = 0.2,
        heldout: str | None = None,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ConfigError(f"task.module.loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        self.save_hyperparameters()
        self.network = TimbreNet(tuple(channels), dim)
        self.classes: nn.Parameter | None = None  # one vector per instrument: built when the data is known
        self._heldout = None
        self._started, self._seconds_before = time.monotonic(), 0.0

    def setup(self, stage: str) -> None:
        if self.classes is None and self.hparams.loss == "classification":
            count = self.trainer.datamodule.train_split.versions
            self.classes = nn.Parameter(F.normalize(torch.randn(count, self.hparams.dim), dim=-1))
        if self.hparams.heldout and self._heldout is None:
            self._heldout = held_out_clips(Path(self.hparams.heldout))

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=1e-4)
        warmup = max(int(self.hparams.warmup_steps), 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def _embeddings(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        crops = torch.cat([batch["anchor"], batch["positive"], batch["negative"]])
        return self.network(crops).chunk(3)

    def batch_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        anchor, positive, negative = self._embeddings(batch)
        near = 1 - (anchor * positive).sum(-1)
        far = 1 - (anchor * negative).sum(-1)
        terms = {"triplet_accuracy": (near < far).float().mean()}
        if self.hparams.loss == "triplet":
            terms["loss"] = F.relu(near - far + self.hparams.margin).mean()
        else:
            logits = self.hparams.scale * torch.cat([anchor, positive, negative]) @ F.normalize(self.classes, dim=-1).T
            labels = torch.cat([batch["label"], batch["label"], batch["negative_label"]])
            terms["loss"] = F.cross_entropy(logits, labels)
            terms["accuracy"] = (logits.argmax(-1) == labels).float().mean()
        return terms

    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        terms = self.batch_losses(batch)
        self.log_dict({f"train/{name}": value for name, value in terms.items()}, prog_bar=True)
        return terms["loss"]

    def validation_step(self, batch: dict, batch_index: int) -> None:
        terms = self.batch_losses(batch)
        self.log_dict({f"val/{name}": value for name, value in terms.items()}, prog_bar=True, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        if not self._heldout:
            return
        with torch.no_grad():
            embeddings = {clip.id: self.network(torch.from_numpy(clip.audio)[None].to(self.device))[0].cpu()
                          for clip in self._heldout}  # fmt: skip
        accuracy = triplet_accuracy(
            pitch_triplets(self._heldout), lambda a, b: 1 - float(embeddings[a] @ embeddings[b])
        )
        self.log("val/heldout_triplet_accuracy", accuracy, prog_bar=True)

    def on_train_start(self) -> None:
        self._started = time.monotonic()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["train_seconds"] = self._seconds_before + time.monotonic() - self._started

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._seconds_before = float(checkpoint.get("train_seconds", 0.0))
        if "classes" in checkpoint.get("state_dict", {}) and self.classes is None:
            self.classes = nn.Parameter(torch.empty_like(checkpoint["state_dict"]["classes"]))

    def export(self, path: str | Path) -> None:
        """The network alone, with what it was trained on (the metric ``timbre.embed`` loads)."""
        datamodule = self.trainer.datamodule
        save_metric(
            path,
            self.network,
            step=self.global_step,
            loss=self.hparams.loss,
            train_seconds=self._seconds_before + time.monotonic() - self._started,
            instruments=list(datamodule.versions),
            corpus=str(datamodule.root),
        )
