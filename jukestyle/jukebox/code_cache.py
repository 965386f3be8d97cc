"""The codes of a whole corpus, computed once, for training decoders on a frozen encoder.

With the encoder and codebook frozen, a crop's codes never change: encoding them at every
step repeats the encoder's forward pass (about a fifth of a decoder-only step at level 2).
Each clip is encoded whole, zero-padded as its crops are (to at least one crop and to whole
top-level frames), and a crop that starts on a frame boundary takes its codes by slicing.

The codes are kept on disk too (``$JUKESTYLE_CACHE/codes``, keyed by the sha256 of the encoder and
codebook, the clips' samples and the padding), so that a resumed run, or another run on the same
corpus, does not encode it again: minutes for an hour of audio on a CPU.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from jukestyle.fileio import atomic_path
from jukestyle.jukebox.decoder_checkpoint import codes_digest
from jukestyle.jukebox.download import cache_dir
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
        path = cache_dir() / "codes" / f"{_key(model, clips, levels, crop_length, frame)}.pt"
        if path.is_file():
            self.codes = torch.load(path, weights_only=True)
            return
        self._encode(model, clips, levels)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save(self.codes, tmp)

    def _encode(self, model: VQVAE, clips: list[np.ndarray], levels: list[int]) -> None:
        frame, crop_length = self.frame, self.crop_length
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

    def crops(self, level: int, clips: torch.Tensor, starts: torch.Tensor, frames: int | None = None) -> torch.Tensor:
        """Codes (B, frames) of the crops that start at ``starts`` (samples) of ``clips`` (indices); ``frames``
        defaults to a crop's (``crop_length // hop``), and a crop may not reach past its padded clip."""
        hop = self.hops[level]
        frames = self.crop_length // hop if frames is None else int(frames)
        rows = []
        for clip, start in zip(clips.tolist(), starts.tolist(), strict=True):
            if start % self.frame:
                raise ValueError(f"crop start {start} is not a multiple of {self.frame} samples")
            row = self.codes[level][clip][start // hop : start // hop + frames]
            if len(row) < frames:
                raise ValueError(f"a crop of {frames} frames from frame {start // hop} reaches past clip {clip}")
            rows.append(row)
        return torch.stack(rows).long()


def _key(model: VQVAE, clips: list[np.ndarray], levels: list[int], crop_length: int, frame: int) -> str:
    """What the codes depend on: each level's encoder and codebook, every clip's samples, and the padding."""
    digest = hashlib.sha256(f"{sorted(levels)} {crop_length} {frame}".encode())
    for level in sorted(levels):
        digest.update(codes_digest(model, level).encode())
    for clip in clips:
        digest.update(np.ascontiguousarray(clip, dtype=np.float32).tobytes())
    return digest.hexdigest()
