"""Run-level summaries of the scoreboard (``jukestyle.evaluation.scoreboard.SUMMARIES``) as torchmetrics,
correct under DDP.

One torchmetric per aggregate kind. Win rates and means keep sums and counts reduced with ``sum``, the
Fréchet distance keeps the embeddings gathered with ``cat``, so ``compute`` gives the same value however the
pairs were split between devices, and the same value as ``scoreboard.summarise`` on all the records.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from jukestyle.evaluation.scoreboard import SUMMARIES
from jukestyle.evaluation.timbre import frechet_distance

NAN = float("nan")


class _SumCount(Metric):
    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def compute(self) -> torch.Tensor:
        return self.sum / self.count if self.count > 0 else torch.tensor(NAN, dtype=torch.float64)


class WinRate(_SumCount):
    """Share of 'style' among the values given (None: not measured, skipped)."""

    def update(self, closer_to: Iterable[str | None]) -> None:
        given = [value for value in closer_to if value]
        self.sum += sum(value == "style" for value in given)
        self.count += len(given)


class FiniteMean(_SumCount):
    """Mean of the finite values given; None and NaN (a metric that does not apply) are skipped."""

    def update(self, values: Iterable[float | None]) -> None:
        finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        self.sum += sum(finite)
        self.count += len(finite)


class Frechet(Metric):
    """Fréchet distance between two sets of embeddings, given as pairs (output, style) of vectors."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("outputs", default=[], dist_reduce_fx="cat")
        self.add_state("styles", default=[], dist_reduce_fx="cat")

    def update(self, outputs: Iterable[list | None], styles: Iterable[list | None]) -> None:
        for output, style in zip(outputs, styles, strict=True):
            if output and style:
                self.outputs.append(torch.tensor([output], dtype=torch.float64))
                self.styles.append(torch.tensor([style], dtype=torch.float64))

    def compute(self) -> torch.Tensor:
        if len(self.outputs) == 0:
            return torch.tensor(NAN, dtype=torch.float64)
        outputs, styles = dim_zero_cat(self.outputs).numpy(), dim_zero_cat(self.styles).numpy()
        value = frechet_distance(outputs, styles) if len(outputs) > 1 else NAN
        return torch.tensor(value, dtype=torch.float64)


KINDS = {"win_rate": WinRate, "mean": FiniteMean, "frechet": Frechet}


def summary_metrics() -> torch.nn.ModuleDict:
    """A torchmetric per entry of the scoreboard's summaries."""
    return torch.nn.ModuleDict({summary.name: KINDS[summary.kind]() for summary in SUMMARIES})


def update(metrics: torch.nn.ModuleDict, record: dict) -> None:
    """Add one successful record to every summary."""
    for summary in SUMMARIES:
        metrics[summary.name].update(*([record.get(key)] for key in summary.reads))
