"""Style transfer over (content, style) pairs with a frozen VQ-VAE, in ``trainer.predict``.

Running in predict means several devices split the pairs (each rank gets its own,
none twice). The module has no trainable parameters; each method runs through
``jukestyle.pipeline.StyleTransfer``, the same path as ``jukestyle.transfer``.
Every (pair, method) gives one record: the output audio with its timings and
metrics, or the error that stopped it, so one bad pair never stops a run.
"""

from __future__ import annotations

import logging
import traceback

import pytorch_lightning as pl
import torch

from jukestyle.errors import JukestyleError
from jukestyle.jukebox import VQVAE
from jukestyle.methods import Method
from jukestyle.metrics import timbre_scores
from jukestyle.pipeline import StyleTransfer

log = logging.getLogger(__name__)


class StyleTransferModule(pl.LightningModule):
    def __init__(self, model: VQVAE, methods: dict[str, Method | None], input_lufs: float | None = -20.0) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        chosen = [method for method in methods.values() if method is not None]
        if not chosen:
            raise JukestyleError("no style-transfer method configured")
        names = [method.name for method in chosen]
        if len(set(names)) != len(names):
            raise JukestyleError(f"methods in one run need distinct names, got {names}")
        self.engines = [StyleTransfer(self.model, method, input_lufs) for method in chosen]
        self.input_lufs = input_lufs

    @property
    def methods(self) -> list[Method]:
        return [engine.method for engine in self.engines]

    @property
    def needs_grad(self) -> bool:
        """True if a method optimises with gradients: the trainer must not use inference mode."""
        return any(method.needs_grad for method in self.methods)

    def parameter_counts(self) -> dict[str, int]:
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in self.parameters() if not p.requires_grad)
        return {"parameters/trainable": trainable, "parameters/frozen": frozen}

    def on_predict_start(self) -> None:
        if self.needs_grad and torch.is_inference_mode_enabled():
            needing = [method.name for method in self.methods if method.needs_grad]
            raise JukestyleError(
                f"method(s) {', '.join(needing)} optimise with gradients: set trainer.inference_mode=false"
            )
        counts = self.parameter_counts()
        for logger in self.loggers:
            logger.log_hyperparams(counts)
        log.info("frozen VQ-VAE: %(parameters/frozen)d frozen, %(parameters/trainable)d trainable parameters", counts)

    def predict_step(self, batch: list[dict], batch_idx: int) -> list[dict]:
        return [self._transfer(item, engine) for item in batch for engine in self.engines]

    def output_id(self, pair_id: str, method: Method) -> str:
        """Where the output goes under transfers/: the pair id, prefixed by the method when a run has several."""
        return pair_id if len(self.engines) == 1 else f"{method.name}/{pair_id}"

    def _transfer(self, item: dict, engine: StyleTransfer) -> dict:
        method = engine.method
        record = {
            "pair_id": item["pair_id"],
            "output_id": self.output_id(item["pair_id"], method),
            "experiment": item.get("experiment", ""),
            "content": item["content"],
            "style": item["style"],
            "method": method.name,
            "settings": method.settings(),
            "model": getattr(self.model, "source", "unknown"),
            "error": item["error"],
        }
        if record["error"] is not None:
            return record
        try:
            result = engine(item["content_audio"], item["style_audio"])
            scores = timbre_scores(result.audio, item["content_audio"], item["style_audio"], result.sample_rate)
        except Exception as error:  # one pair's failure is reported in results.csv; the run goes on
            record["error"] = f"{type(error).__name__}: {error}".splitlines()[0]
            if not isinstance(error, JukestyleError):
                log.warning("pair %s, method %s failed:\n%s", item["pair_id"], method.name, traceback.format_exc())
            return record
        record.update(
            audio=result.audio, sample_rate=result.sample_rate, seconds=result.seconds, info=result.info, **scores
        )
        return record
