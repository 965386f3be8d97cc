"""Codebook restriction (jukestyle.methods.codebook): only the style's codes, nearest first."""

from __future__ import annotations

import torch

from jukestyle.methods import codebook


def test_codebook_restriction_uses_only_style_codes():
    vectors = torch.randn(64, 8)
    style_codes = torch.tensor([[3, 3, 17, 42, 17], [5, 5, 5, 5, 5]])
    content = torch.randn(2, 8, 300)
    codes = codebook.codebook_restrict(content, vectors, style_codes)
    assert codes.shape == (2, 300)
    assert set(codes[0].tolist()) <= {3, 17, 42} and len(set(codes[0].tolist())) > 1
    assert set(codes[1].tolist()) == {5}
    # Among the allowed codes, each frame takes the nearest one.
    allowed = vectors[[3, 17, 42]]
    nearest = torch.cdist(content[0].t(), allowed).argmin(-1)
    assert torch.equal(codes[0], torch.tensor([3, 17, 42])[nearest])


def test_codebook_restriction_is_chunked_without_changing_the_result(monkeypatch):
    vectors, content = torch.randn(32, 4), torch.randn(1, 4, 1000)
    style_codes = torch.arange(0, 32, 3).view(1, -1)
    whole = codebook.codebook_restrict(content, vectors, style_codes)
    monkeypatch.setattr(codebook, "_RESTRICT_CHUNK", 64)
    assert torch.equal(codebook.codebook_restrict(content, vectors, style_codes), whole)
