"""Instrument channel maps (the paper's supplementary II) as a ``trainer.predict`` run.

Each recording (one instrument playing one piece, e.g. the note C4) is brought to a
common loudness and goes through one level's encoder; every channel of every
encoder layer gets its mean rectified activation (``jukestyle.inspect.frequency_response``). The writer
callback then builds one map per piece (``jukestyle.inspect.channel_maps``) from all the
recordings. Nothing is trained.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl

from jukestyle.audio.io import normalize_loudness
from jukestyle.inspect.channel_maps import ChannelMap, build_channel_map
from jukestyle.inspect.frequency_response import channel_activity, encoder_layers
from jukestyle.jukebox import VQVAE


class ChannelMapModule(pl.LightningModule):
    def __init__(self, model: VQVAE, level: int = 2, threshold: float = 0.05, input_lufs: float | None = -20.0) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.layers = encoder_layers(self.model, level)  # also checks the level
        self.level, self.threshold, self.input_lufs = level, threshold, input_lufs

    def predict_step(self, batch: list[dict], batch_idx: int) -> list[dict]:
        results = []
        for item in batch:
            result = {key: item[key] for key in ("id", "instrument", "piece", "file", "error")}
            if item["error"] is None:
                audio = item["audio"]
                if self.input_lufs is not None:
                    audio, _ = normalize_loudness(audio, self.model.sample_rate, self.input_lufs)
                result["activity"] = channel_activity(self.model, audio, self.level)
            results.append(result)
        return results

    def build_maps(self, results: list[dict]) -> tuple[list[ChannelMap], list[str]]:
        """One map per piece from the readable recordings; also the problems (one line each)."""
        problems = [f"{result['file']}: {result['error']}" for result in results if result["error"]]
        by_piece: dict[str, dict[str, dict[int, np.ndarray]]] = {}
        for result in results:
            if result["error"] is None:
                by_piece.setdefault(result["piece"], {})[result["instrument"]] = result["activity"]
        maps = []
        for piece, activities in sorted(by_piece.items()):
            if len(activities) < 2:
                problems.append(f"piece {piece}: only {len(activities)} readable instrument(s), no map")
                continue
            maps.append(build_channel_map(piece, self.level, self.layers, activities, self.threshold))
        return maps, problems
