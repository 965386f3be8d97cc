"""The codes of a whole corpus, computed once, for training decoders on a frozen encoder.

With the encoder and codebook frozen, a crop's codes never change: encoding them at every
step repeats the encoder's forward pass (about a fifth of a decoder-only step at level 2).
Each clip is encoded whole, zero-padded as its crops are (to at least one crop and to whole
top-level frames), and a crop that starts on a frame boundary takes its codes by slicing.
"""

from __future__ import annotations

import numpy as np
import torch

from jukestyle.jukebox.vqvae import VQVAE

# Clips are encoded in pieces of at most this many samples (about 24 s), to bound the memory of the feature maps.
_PIECE = 2**20


class CodeCache:
    def __init__(
        self, model: VQVAE, clips: list[np.ndarray], levels: list[int], crop_length: int, frame: int = 128
    ) -> None:
        """``frame``: the crops' alignment, a multiple of every level's hop; ``crop_length`` a multiple of it."""
        self.codes: dict[int, list[torch.Tensor]] = {level: [] for level in levels}
        self.hops = {level: model.hop_length(level) for level in levels}
        self.frame, self.crop_length = frame, crop_length
        piece = _PIECE // frame * frame
        with torch.no_grad():
            for clip in clips:
                length = max(len(clip), crop_length)
                padded = np.pad(clip, (0, length - len(clip) + (-length % frame))).astype(np.float32)
                audio = torch.from_numpy(padded).view(1, 1, -1)
                for level in levels:
                    parts = [
                        model.encode(audio[..., i : i + piece], level)[0] for i in range(0, audio.shape[-1], piece)
                    ]
                    self.codes[level].append(torch.cat(parts).to(torch.int16))  # 2048 codes fit in int16

    def crops(self, level: int, clips: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """Codes (B, crop_length // hop) of the crops that start at ``starts`` (samples) of ``clips`` (indices)."""
        hop = self.hops[level]
        frames = self.crop_length // hop
        rows = []
        for clip, start in zip(clips.tolist(), starts.tolist(), strict=True):
            if start % self.frame:
                raise ValueError(f"crop start {start} is not a multiple of {self.frame} samples")
            rows.append(self.codes[level][clip][start // hop : start // hop + frames])
        return torch.stack(rows).long()
