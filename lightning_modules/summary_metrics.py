"""Run-level summaries of style-transfer metrics as torchmetrics, correct under DDP.

States are sums and counts reduced with ``sum`` across processes, so ``compute``
gives the same value however the pairs were split between devices.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torchmetrics import Metric


class StyleWinRate(Metric):
    """Share of outputs closer (l2-mfcc) to the style than to the source."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("wins", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, closer_to: Iterable[str]) -> None:
        closer_to = list(closer_to)
        self.wins += sum(value == "style" for value in closer_to)
        self.total += len(closer_to)

    def compute(self) -> torch.Tensor:
        return self.wins / self.total if self.total > 0 else torch.tensor(float("nan"), dtype=torch.float64)


class FiniteMean(Metric):
    """Mean of the finite values given; None and NaN (a metric that does not apply) are skipped."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, values: Iterable[float | None]) -> None:
        finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        self.sum += sum(finite)
        self.count += len(finite)

    def compute(self) -> torch.Tensor:
        return self.sum / self.count if self.count > 0 else torch.tensor(float("nan"), dtype=torch.float64)


SUMMARY_METRICS = ("l2mfcc_source", "l2mfcc_style", "pitch_accuracy", "chroma_similarity")


def summary_metrics() -> torch.nn.ModuleDict:
    """One StyleWinRate and a FiniteMean per per-pair metric."""
    return torch.nn.ModuleDict({"style_win_rate": StyleWinRate(), **{name: FiniteMean() for name in SUMMARY_METRICS}})
