"""Style transfer over (content, style) pairs with a frozen VQ-VAE, in ``trainer.predict``.

Running in predict means several devices split the pairs (each rank gets its own,
none twice). The module has no trainable parameters; each method runs through
``jukestyle.pipeline.StyleTransfer``, the same path as ``jukestyle.transfer``.

Every (pair, method) gives one record: the output audio with its timings and
metrics, or the error that stopped it, so one bad pair never stops a run. Each
pair also gets reference records that show the scale of the metrics: the plain
reconstruction (``identity``), and the content and the style themselves taken as
the output. Run summaries (style-win rate and mean metrics per method) are
torchmetrics, reduced across devices.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import pytorch_lightning as pl
import torch
from jukestyle_lightning.lightning_modules.summary_metrics import summary_metrics, update

from jukestyle.audio.io import collected_warnings
from jukestyle.errors import JukestyleError
from jukestyle.evaluation.metrics import ReferenceCache
from jukestyle.evaluation.records import FinishedRecords
from jukestyle.evaluation.scoreboard import Measurement, measure
from jukestyle.evaluation.timbre import metric_file
from jukestyle.jukebox import VQVAE
from jukestyle.methods import Identity, Method, require_gradients
from jukestyle.pipeline import StyleTransfer, audio_hash

log = logging.getLogger(__name__)

# Reference "methods": the inputs themselves scored as if they were outputs.
AS_OUTPUT = {"content_as_output": "content_audio", "style_as_output": "style_audio"}


class StyleTransferModule(pl.LightningModule):
    def __init__(
        self,
        model: VQVAE,
        methods: dict[str, Method | None],
        input_lufs: float | None = -20.0,
        references: bool = True,
        window_seconds: float | None = 10.0,
        overlap_seconds: float = 0.5,
        precision: str = "fp32",
        resume_dir: str | None = None,
        timbre_metric: str | None = "bundled",
    ) -> None:
        """``resume_dir``: a folder of an earlier run's records (``transfers/``); those it finished are reused.
        ``timbre_metric``: the timbre network of the scoreboard's timbre metrics ("bundled", a checkpoint, or
        None to leave them out)."""
        super().__init__()
        self.resume_dir = Path(resume_dir) if resume_dir else None
        self.model = model.eval().requires_grad_(False)
        chosen = [method for method in methods.values() if method is not None]
        if not chosen:
            raise JukestyleError("no style-transfer method configured")
        names = [method.label for method in chosen]
        if len(set(names)) != len(names):
            raise JukestyleError(f"methods in one run need distinct names, got {names}")
        engine = {"window_seconds": window_seconds, "overlap_seconds": overlap_seconds, "precision": precision}
        self.engines = [StyleTransfer(self.model, method, input_lufs, **engine) for method in chosen]
        self.reference_engines = []
        if references and "identity" not in names:
            level = chosen[0].level
            self.reference_engines.append(StyleTransfer(self.model, Identity(level=level), input_lufs, **engine))
        self.references = references
        self.timbre_metric = metric_file(timbre_metric)
        self.reference_cache = ReferenceCache(timbre_metric=self.timbre_metric)
        reported = names + [engine.method.label for engine in self.reference_engines]
        reported += list(AS_OUTPUT) if references else []
        self.summaries = torch.nn.ModuleDict({name: summary_metrics() for name in reported})
        self.finished: FinishedRecords | None = None  # read from resume_dir when the run starts

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
        require_gradients(self.methods)
        if self.resume_dir is not None and self.resume_dir.is_dir():
            self.finished = FinishedRecords(self.resume_dir)
        counts = self.parameter_counts()
        for logger in self.loggers:
            logger.log_hyperparams(counts)
        log.info("frozen VQ-VAE: %(parameters/frozen)d frozen, %(parameters/trainable)d trainable parameters", counts)

    # -- per pair ----------------------------------------------------------------------
    def predict_step(self, batch: list[dict], batch_idx: int) -> list[dict]:
        records = []
        for item in batch:
            records += [self._transfer(item, engine) for engine in self.engines]
            records += [self._transfer(item, engine, reference=True) for engine in self.reference_engines]
            if self.references:
                records += [self._as_output(item, name, key) for name, key in AS_OUTPUT.items()]
        for record in records:
            self._update_summary(record)
        return records

    def output_id(self, pair_id: str, method: str, reference: bool = False) -> str:
        """Where a record goes under transfers/: the pair id, prefixed by the method when a run
        has several methods; references go under reference/<method>/."""
        if reference:
            return f"reference/{method}/{pair_id}"
        return pair_id if len(self.engines) == 1 else f"{method}/{pair_id}"

    def _record(self, item: dict, method: str, settings: dict, reference: bool) -> dict:
        return {
            "pair_id": item["pair_id"],
            "output_id": self.output_id(item["pair_id"], method, reference),
            "experiment": item.get("experiment", ""),
            "content": item["content"],
            "style": item["style"],
            "method": method,
            "reference": reference,
            "settings": settings,
            "model": self.model.origin.source,
            "error": item["error"],
        }

    def _references(self, item: dict):
        rate = self.model.sample_rate
        return tuple(
            self.reference_cache.get(audio_hash(item[key]), item[key], rate) for key in ("content_audio", "style_audio")
        )

    def _transfer(self, item: dict, engine: StyleTransfer, reference: bool = False) -> dict:
        method = engine.method
        record = self._record(item, method.label, method.settings(), reference)
        if record["error"] is not None:
            return record
        finished = self.finished.get(record) if self.finished is not None else None
        if finished is not None:  # resuming: this pair was done by an earlier, interrupted run
            return {**finished, "resumed": True}
        record["warnings"] = list(item.get("warnings", []))
        try:
            with collected_warnings() as warnings:
                result = engine(item["content_audio"], item["style_audio"], item["content"], item["style"])
            record["warnings"] += warnings
            scores = self._measure(result.audio, item)
        except Exception as error:  # one pair's failure is reported in results.csv; the run goes on
            record["error"] = f"{type(error).__name__}: {error}".splitlines()[0]
            if not isinstance(error, JukestyleError):
                log.warning("pair %s, method %s failed:\n%s", item["pair_id"], method.label, traceback.format_exc())
            return record
        record.update(
            audio=result.audio, sample_rate=result.sample_rate, seconds=result.seconds, info=result.info, **scores
        )
        return record

    def _as_output(self, item: dict, name: str, key: str) -> dict:
        record = self._record(item, name, {"name": name}, reference=True)
        if record["error"] is None:
            try:
                record.update(self._measure(item[key], item))
            except Exception as error:  # as for a transfer: one pair's failure is a row, the run goes on
                record["error"] = f"{type(error).__name__}: {error}".splitlines()[0]
                log.warning("pair %s, %s failed:\n%s", item["pair_id"], name, traceback.format_exc())
        return record

    def _measure(self, output, item: dict) -> dict:
        """The scoreboard's pair metrics of ``output`` against the item's content and style."""
        rate = self.model.sample_rate
        return measure(Measurement(output, *self._references(item), rate, self.timbre_metric))

    def _update_summary(self, record: dict) -> None:
        if record.get("error") or record["method"] not in self.summaries:
            return
        update(self.summaries[record["method"]], record)

    # -- per run -----------------------------------------------------------------------
    def summary(self) -> dict[str, float]:
        """Run-level metrics per method, reduced over every device (a collective call)."""
        values = {}
        for method, metrics in self.summaries.items():
            for name, metric in metrics.items():
                values[f"summary/{method}/{name}"] = float(metric.compute())
        return values

    def on_predict_end(self) -> None:
        values = self.summary()
        if self.trainer.is_global_zero:
            for logger in self.loggers:
                logger.log_metrics(values)
