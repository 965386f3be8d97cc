"""Codes of a corpus computed once: crops slice the codes of their whole clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from signals import harmonic_tone

from jukestyle.jukebox.code_cache import CodeCache


@torch.no_grad()  # as the cache encodes: the inference kernels, whose rounding can flip a near tie of codes
def test_crops_slice_the_codes_of_the_whole_padded_clip(tiny_model):
    long, short = harmonic_tone(220.0, 0.2), harmonic_tone(330.0, 0.05)  # 8820 and 2205 samples
    crop = 4096
    cache = CodeCache(tiny_model, [long, short], levels=[1, 2], crop_length=crop)
    padded = np.pad(long, (0, -len(long) % 128))
    whole = tiny_model.encode(torch.from_numpy(padded).view(1, 1, -1), 2)[0]
    codes = cache.crops(2, torch.tensor([0, 0]), torch.tensor([0, 1280]))
    assert codes.shape == (2, crop // 128) and codes.dtype == torch.long
    assert torch.equal(codes[0], whole[: crop // 128]) and torch.equal(codes[1], whole[10 : 10 + crop // 128])
    # A clip shorter than a crop is padded with silence, as its audio crop is.
    silent_tail = np.pad(short, (0, crop - len(short)))
    expected = tiny_model.encode(torch.from_numpy(silent_tail).view(1, 1, -1), 1)[0]
    assert torch.equal(cache.crops(1, torch.tensor([1]), torch.tensor([0]))[0], expected)
    with pytest.raises(ValueError, match="multiple of 128"):
        cache.crops(2, torch.tensor([0]), torch.tensor([100]))
