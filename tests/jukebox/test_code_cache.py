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


def test_the_codes_are_kept_on_disk_for_the_next_run_on_the_same_clips(tiny_model, monkeypatch):
    clips = [harmonic_tone(220.0, 0.1), harmonic_tone(330.0, 0.1)]
    first = CodeCache(tiny_model, clips, levels=[2], crop_length=1024)
    monkeypatch.setattr(CodeCache, "_encode", lambda *args: pytest.fail("encoded again"))
    second = CodeCache(tiny_model, clips, levels=[2], crop_length=1024)
    assert all(torch.equal(a, b) for a, b in zip(first.codes[2], second.codes[2], strict=True))
    for changed in ({"clips": [clips[0], clips[1] * 0.5]}, {"crop_length": 2048}, {"levels": [1, 2]}):
        settings = {"clips": clips, "levels": [2], "crop_length": 1024, **changed}
        with pytest.raises(pytest.fail.Exception, match="encoded again"):  # anything else: encoded, not read
            CodeCache(tiny_model, **settings)
