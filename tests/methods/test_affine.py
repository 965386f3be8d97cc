"""Properties of the statistics and affine maps of AdaIN and WCT (jukestyle.methods.affine)."""

from __future__ import annotations

import pytest
import torch

from jukestyle.jukebox import layers
from jukestyle.methods import affine as transforms

torch.manual_seed(0)


def correlated(batch: int, channels: int, frames: int, seed: int) -> torch.Tensor:
    """Features with a random (full-rank) channel covariance and non-zero means."""
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(batch, channels, channels, generator=generator)
    offsets = torch.randn(batch, channels, 1, generator=generator)
    return mixing @ torch.randn(batch, channels, frames, generator=generator) + offsets


def covariance(x: torch.Tensor) -> torch.Tensor:
    centred = x.double() - x.double().mean(-1, keepdim=True)
    return centred @ centred.transpose(1, 2) / x.shape[-1]


def test_adain_gives_the_style_channel_statistics():
    content, style = correlated(2, 16, 300, 1), correlated(2, 16, 200, 2) * 3
    out = transforms.adain(content, style, eps=0.0)
    torch.testing.assert_close(out.mean(-1), style.mean(-1), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.std(-1, unbiased=False), style.std(-1, unbiased=False), atol=1e-4, rtol=1e-4)


def test_wct_gives_the_style_covariance_for_full_rank_content():
    content, style = correlated(2, 12, 400, 3), correlated(2, 12, 250, 4)
    out = transforms.wct(content, style, eps=0.0, cutoff=1e-12)
    assert out.dtype == content.dtype
    torch.testing.assert_close(covariance(out), covariance(style), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.mean(-1), style.mean(-1), atol=1e-4, rtol=1e-4)


def test_wct_keeps_the_contents_temporal_structure():
    """Whitening and colouring are linear maps of the centred content, applied frame by frame."""
    content, style = correlated(1, 8, 300, 5), correlated(1, 8, 300, 6)
    out = transforms.wct(content, style)
    map_ = torch.linalg.lstsq((content - content.mean(-1, keepdim=True)).transpose(1, 2), out.transpose(1, 2)).solution
    residual = (content - content.mean(-1, keepdim=True)).transpose(1, 2) @ map_ - out.transpose(1, 2)
    assert residual.std(1).max() < 0.05 * out.std()  # out = M (content - mean) + const


def test_precomputed_statistics_give_the_same_result():
    content, style = correlated(1, 8, 100, 7), correlated(1, 8, 80, 8)
    assert torch.equal(
        transforms.adain(content, style), transforms.adain(content, style_stats=transforms.adain_stats(style))
    )
    assert torch.equal(transforms.wct(content, style), transforms.wct(content, style_stats=transforms.wct_stats(style)))
    with pytest.raises(ValueError, match="either the style features or their precomputed statistics"):
        transforms.adain(content)


def test_style_statistics_summed_over_windows_equal_those_of_the_whole():
    style = correlated(1, 8, 300, 9) + 3.0
    whole = transforms.adain_stats(style)
    windows = [style[..., :100], style[..., 100:220], style[..., 220:]]
    for measure in (transforms.channel_moments, transforms.moments):  # adain's analysis, and wct's
        summed = measure(windows[0]) + measure(windows[1]) + measure(windows[2])
        torch.testing.assert_close(transforms.adain_stats(summed).mean, whole.mean, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(transforms.adain_stats(summed).std, whole.std, rtol=1e-4, atol=1e-5)


def test_alpha_zero_returns_the_content_features():
    content, style = correlated(1, 8, 100, 9), correlated(1, 8, 80, 10)
    wct_map = transforms.wct_map(content, transforms.wct_stats(style))
    torch.testing.assert_close(wct_map.blended(0.0).apply(content), content, rtol=0, atol=1e-6)
    adain_map = transforms.adain_map(content, transforms.adain_stats(style))
    halfway = adain_map.blended(0.5).apply(content)
    torch.testing.assert_close(halfway, 0.5 * transforms.adain(content, style) + 0.5 * content)
    torch.testing.assert_close(
        wct_map.blended(0.5).apply(content), 0.5 * transforms.wct(content, style) + 0.5 * content
    )


@pytest.mark.parametrize("which", ["content", "style", "both"])
def test_silence_gives_finite_features(which):
    content, style = correlated(1, 8, 100, 11), correlated(1, 8, 100, 12)
    if which in ("content", "both"):
        content = torch.zeros_like(content)
    if which in ("style", "both"):
        style = torch.zeros_like(style)
    for out in (transforms.adain(content, style), transforms.wct(content, style)):
        assert torch.isfinite(out).all()
    if which == "style":  # a silent style has no variance to give: the output is its (zero) mean
        assert transforms.wct(content, style).abs().max() < 1e-6


def test_rank_deficient_style_is_coloured_within_its_span():
    content = correlated(1, 16, 300, 13)
    style = correlated(1, 4, 300, 14).repeat(1, 4, 1)  # 16 channels, rank 4
    out = transforms.wct(content, style)
    assert torch.isfinite(out).all()
    assert torch.linalg.matrix_rank(covariance(out)[0], rtol=1e-6) <= 4


def test_transforms_of_channels_last_features_equal_the_float64_ones():
    """The CPU model's features are channels-last: adain can overwrite them block by block, wct maps them with
    a 1x1 convolution per batch element; both keep the layout and equal the float64 result."""
    generator = torch.Generator().manual_seed(3)
    style = torch.randn(2, 8, 500, generator=generator) * 2.0 + 1.0
    content = (torch.randn(2, 500, 8, generator=generator) * 0.5 + 5.0).transpose(1, 2)  # mean >> std
    assert content.stride(1) == 1  # channels-last, as the model makes them
    for transform in (transforms.adain, transforms.wct):
        truth = transform(content.double(), style.double())  # float64 throughout
        # float32 features with a mean ten times their deviation: within 1e-4 of the features' scale (10)
        result = transform(content, style)
        assert result.stride() == content.stride()
        torch.testing.assert_close(result.double(), truth, rtol=0, atol=1e-3)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # the model's precision option leaves the transform as is
            torch.testing.assert_close(transform(content, style).double(), truth, rtol=0, atol=1e-3)
    overwritten = content.clone(memory_format=torch.preserve_format)
    result = transforms.adain_map(overwritten, transforms.adain_stats(style)).apply(overwritten, inplace=True)
    assert result.data_ptr() == overwritten.data_ptr()
    torch.testing.assert_close(result.double(), transforms.adain(content.double(), style.double()), rtol=0, atol=1e-3)
    torch.testing.assert_close(
        transforms.adain(content, style).std(-1, unbiased=False), style.std(-1, unbiased=False), rtol=1e-3, atol=1e-3
    )


@pytest.mark.parametrize(("taps", "padding", "dilation"), [(3, 1, 1), (3, 2, 2), (1, 0, 1), (4, 0, 1), (5, 3, 1)])
@pytest.mark.parametrize("diagonal", [False, True])
def test_a_map_folded_into_a_convolution_equals_mapping_then_convolving(taps, padding, dilation, diagonal):
    """The map folded into the weights, the offset's share restored at frames whose taps read the zero padding."""
    torch.manual_seed(0)
    conv = layers.Conv1d(6, 2, kernel_size=taps, padding=padding, dilation=dilation)
    x = torch.randn(2, 6, 40)
    offset = torch.randn(2, 6, 1, dtype=torch.float64)
    if diagonal:
        affine_map = transforms.AffineMap(offset.float(), scale=torch.randn(2, 6, 1))
    else:
        affine_map = transforms.AffineMap(offset, matrix=torch.randn(2, 6, 6, dtype=torch.float64))
    expected = conv(affine_map.apply(x.double()).float())
    torch.testing.assert_close(affine_map.fold_into(conv, x), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="stride-1"):
        affine_map.fold_into(layers.Conv1d(6, 2, kernel_size=3, stride=2), x)
