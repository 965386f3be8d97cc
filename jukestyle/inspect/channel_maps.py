"""Instrument channel maps: which encoder channels fire for some instruments and stay silent for others.

The paper (supplementary II) plays the same note on several instruments and finds
channels that are active only for some of them, evidence that the encoder codes
timbre. Here, for one note, each instrument's recording gives every channel's mean
rectified activation (``probe.channel_activity``). A channel is *active* for an
instrument when that value exceeds ``threshold`` times the largest value of its
layer over all instruments and channels (a relative test, because layers work at
very different scales), and *selective* when it is active for some instruments but
not all.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jukestyle.errors import JukestyleError
from jukestyle.evaluation.figures import channel_map_figure, save_figure, selective_channels_figure
from jukestyle.fileio import write_text
from jukestyle.inspect.frequency_response import EncoderLayer

CSV_COLUMNS = ["piece", "level", "layer", "layer_name", "hop", "channel", "active_for", "active_count", "selective"]


@dataclass(frozen=True)
class ChannelMap:
    """One note: ``activity[layer]`` is (instruments, channels), rows in the order of ``instruments``."""

    piece: str
    level: int
    instruments: list[str]
    layers: list[EncoderLayer]
    activity: dict[int, np.ndarray]
    threshold: float

    def active(self, layer: int) -> np.ndarray:
        """(instruments, channels) booleans: the channel's activity is above the layer's threshold
        (activities are rectified means, never negative, so a silent layer has no active channel)."""
        values = self.activity[layer]
        return values > self.threshold * values.max()

    def active_count(self, layer: int) -> np.ndarray:
        """(channels,) how many instruments each channel is active for."""
        return self.active(layer).sum(axis=0)

    def selective(self, layer: int) -> np.ndarray:
        """(channels,) booleans: active for at least one instrument and silent for at least one."""
        count = self.active_count(layer)
        return (count > 0) & (count < len(self.instruments))

    def selective_channels(self) -> list[tuple[int, int]]:
        """Every selective (layer, channel), in layer order."""
        return [(layer.index, int(c)) for layer in self.layers for c in np.flatnonzero(self.selective(layer.index))]

    def most_selective(self, count: int) -> list[tuple[int, int]]:
        """The ``count`` selective channels whose activity differs most between instruments (standard
        deviation of the activity scaled to its largest value), in layer order."""
        chosen = self.selective_channels()
        scores = [np.std(self.activity[layer][:, c] / self.activity[layer][:, c].max()) for layer, c in chosen]
        keep = sorted(np.argsort(scores)[::-1][:count])
        return [chosen[i] for i in keep]

    def layer_summary(self) -> list[dict]:
        """Per layer: how many channels are active for every instrument, for none, and for some only."""
        rows = []
        for layer in self.layers:
            count = self.active_count(layer.index)
            rows.append(
                {
                    "layer": layer.index,
                    "all": int((count == len(self.instruments)).sum()),
                    "none": int((count == 0).sum()),
                    "selective": int(self.selective(layer.index).sum()),
                }
            )
        return rows

    def rows(self) -> list[dict]:
        """One CSV row per (layer, channel), with each instrument's activity (``activity_<instrument>``)."""
        rows = []
        for layer in self.layers:
            active, values = self.active(layer.index), self.activity[layer.index]
            for channel in range(layer.channels):
                on = [name for name, flag in zip(self.instruments, active[:, channel], strict=True) if flag]
                row = {
                    "piece": self.piece,
                    "level": self.level,
                    "layer": layer.index,
                    "layer_name": layer.name,
                    "hop": layer.hop,
                    "channel": channel,
                    "active_for": ";".join(on),
                    "active_count": len(on),
                    "selective": 0 < len(on) < len(self.instruments),
                }
                row.update({f"activity_{name}": float(values[i, channel]) for i, name in enumerate(self.instruments)})
                rows.append(row)
        return rows


def build_channel_map(
    piece: str,
    level: int,
    layers: Sequence[EncoderLayer],
    activities: Mapping[str, Mapping[int, np.ndarray]],
    threshold: float = 0.05,
) -> ChannelMap:
    """``activities[instrument][layer]``: (channels,) from ``probe.channel_activity`` on that instrument's note."""
    if len(activities) < 2:
        raise JukestyleError(f"channel map of {piece}: needs at least two instruments, got {len(activities)}")
    if not 0 < threshold < 1:
        raise JukestyleError(f"channel map threshold must be in (0, 1), got {threshold}")
    instruments = sorted(activities)
    stacked = {
        layer.index: np.stack([np.asarray(activities[name][layer.index], dtype=np.float64) for name in instruments])
        for layer in layers
    }
    return ChannelMap(piece, level, instruments, list(layers), stacked, threshold)


def write_channel_maps(output_dir: str | Path, maps: Sequence[ChannelMap], max_columns: int = 96) -> dict[str, Path]:
    """``channel_maps.csv`` (every layer and channel of every piece), ``channel_maps.md`` (per-layer counts)
    and, per piece, ``figures/channel_map_<piece>.png`` and ``figures/selective_channels_<piece>.png``."""
    output_dir = Path(output_dir)
    written: dict[str, Path] = {}
    rows = [row for channel_map in maps for row in channel_map.rows()]
    instruments = sorted({name for channel_map in maps for name in channel_map.instruments})
    columns = CSV_COLUMNS + [f"activity_{name}" for name in instruments]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    written["csv"] = output_dir / "channel_maps.csv"
    write_text(written["csv"], buffer.getvalue())

    lines = ["# Instrument channel maps", ""]
    for channel_map in maps:
        title = f"{channel_map.piece}, level {channel_map.level} encoder, threshold {channel_map.threshold:g}"
        counts = [channel_map.active_count(layer.index) for layer in channel_map.layers]
        figure = channel_map_figure(counts, len(channel_map.instruments), title)
        written[f"map_{channel_map.piece}"] = save_figure(
            figure, output_dir / "figures" / f"channel_map_{channel_map.piece}.png"
        )
        selective = channel_map.selective_channels()
        if selective:
            shown = channel_map.most_selective(max_columns)
            activity = np.stack([channel_map.activity[layer][:, channel] for layer, channel in shown], axis=1)
            labels = [f"{layer}:{channel}" for layer, channel in shown]
            subtitle = f"{len(shown)} most selective channels, {title}"
            figure = selective_channels_figure(activity, channel_map.instruments, labels, subtitle)
            path = output_dir / "figures" / f"selective_channels_{channel_map.piece}.png"
            written[f"selective_{channel_map.piece}"] = save_figure(figure, path)
        summary = channel_map.layer_summary()
        lines += [
            f"## {channel_map.piece}: {len(selective)} selective channels ({', '.join(channel_map.instruments)})",
            "",
            f"![channel map](figures/channel_map_{channel_map.piece}.png)",
            "",
            "| layer | name | active for all | silent for all | selective |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {row['layer']} | {layer.name} | {row['all']} | {row['none']} | {row['selective']} |"
            for row, layer in zip(summary, channel_map.layers, strict=True)
        ]
        lines.append("")
    written["report"] = output_dir / "channel_maps.md"
    write_text(written["report"], "\n".join(lines))
    return written
