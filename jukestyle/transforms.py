"""Feature transforms for style transfer: short pure functions on (B, C, T) tensors.

Statistics are taken over time, per batch element and channel. Each transform
accepts either the style features themselves or their precomputed statistics
(``adain_stats`` / ``wct_stats``), so that a style is analysed once and reused
for many contents. Blending with the original features (``alpha``) happens
outside the transforms, in ``blend``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jukestyle.jukebox.layers import channels_last_conv1d

# Frames per block when channels-last features are read or overwritten block by block
# (16384 x 64 floats = 4 MiB: the block stays in cache, and its temporaries are small).
_FRAME_BLOCK = 16384


def _channels_last(features: torch.Tensor) -> bool:
    """True for (B, C, T) features stored time-major, as the CPU model makes them (jukebox/layers.py)."""
    return features.stride(1) == 1 and features.stride(-1) != 1


# -- streaming statistics ----------------------------------------------------------------
@dataclass(frozen=True)
class Moments:
    """Sums over time of features (B, C, T), in float64: a style heard in windows is analysed
    by adding the windows' moments, so that its statistics never need the whole style at once."""

    count: int  # frames
    total: torch.Tensor  # (B, C) sum over time
    outer: torch.Tensor  # (B, C, C) sum over time of h h^T; its diagonal gives the variances

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.count + other.count, self.total + other.total, self.outer + other.outer)

    def mean(self) -> torch.Tensor:
        return (self.total / self.count)[..., None]  # (B, C, 1)

    def covariance(self) -> torch.Tensor:
        """(1/T) sum (h - mean)(h - mean)^T, the population covariance."""
        mean = self.total / self.count
        return self.outer / self.count - mean[:, :, None] * mean[:, None, :]


def _working(features: torch.Tensor) -> torch.Tensor:
    """Features in at least float32 (bf16 features from autocast are widened)."""
    return features if features.dtype == torch.float64 else features.float()


def moments(features: torch.Tensor) -> Moments:
    """Float64 sums; the long product over time is one matrix product in the features' precision,
    which is an order of magnitude faster than a float64 copy of features that can be tens of MB."""
    features = _working(features)
    with torch.autocast(features.device.type, enabled=False):  # bf16 autocast would round the product
        outer = (features @ features.transpose(1, 2)).double()
    # a float64 sum would first copy the features to float64; torch's float32 sum is cascaded
    return Moments(features.shape[-1], features.sum(dim=-1).double(), outer)


@dataclass(frozen=True)
class ChannelMoments:
    """Per-channel sums over time and sums of squares (B, C), in float64: all that AdaIN needs of
    a style, summed over windows like ``Moments``, without the C x C product."""

    count: int
    total: torch.Tensor  # (B, C)
    squares: torch.Tensor  # (B, C)

    def __add__(self, other: ChannelMoments) -> ChannelMoments:
        return ChannelMoments(self.count + other.count, self.total + other.total, self.squares + other.squares)


def channel_moments(features: torch.Tensor) -> ChannelMoments:
    working = _working(features)
    return ChannelMoments(working.shape[-1], *_channel_sums(working))


# -- AdaIN (Huang & Belongie 2017; the paper's eq. 9) ---------------------------------
@dataclass(frozen=True)
class MeanStd:
    mean: torch.Tensor  # (B, C, 1)
    std: torch.Tensor  # (B, C, 1)


def mean_std(features: torch.Tensor, eps: float = 1e-5) -> MeanStd:
    """Per-channel mean and standard deviation over time; ``eps`` keeps silent channels finite.

    From per-channel sums read block by block (``_channel_sums``): on the channels-last features
    of the CPU model, several times faster than torch.var_mean.
    """
    return _mean_std(channel_moments(features), eps, _working(features).dtype)


def _mean_std(sums: ChannelMoments, eps: float, dtype: torch.dtype) -> MeanStd:
    mean = sums.total / sums.count
    variance = (sums.squares / sums.count - mean**2).clamp_min(0.0)
    return MeanStd(mean[..., None].to(dtype), torch.sqrt(variance + eps)[..., None].to(dtype))


def _channel_sums(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel sums and sums of squares over time (B, C), in float64.

    Channels-last features (the CPU model's) are read in blocks of frames that stay in cache,
    one pass for both sums; each block's float32 sums are added in float64.
    """
    if not _channels_last(features):
        return features.sum(dim=-1).double(), features.square().sum(dim=-1).double()
    frames = features.transpose(1, 2)  # (B, T, C), contiguous
    total = torch.zeros(frames.shape[0], frames.shape[2], dtype=torch.float64, device=features.device)
    squares = torch.zeros_like(total)
    for start in range(0, frames.shape[1], _FRAME_BLOCK):
        block = frames[:, start : start + _FRAME_BLOCK]
        total += block.sum(dim=1)
        squares += block.square().sum(dim=1)
    return total, squares


def adain_stats(style: torch.Tensor | Moments | ChannelMoments, eps: float = 1e-5) -> MeanStd:
    """The style's channel means and standard deviations, from its features or their moments."""
    if isinstance(style, ChannelMoments):
        return _mean_std(style, eps, torch.float32)
    if not isinstance(style, Moments):
        return mean_std(style, eps)
    variance = style.covariance().diagonal(dim1=-2, dim2=-1).clamp_min(0.0)[..., None]
    return MeanStd(style.mean().float(), torch.sqrt(variance + eps).float())


def adain_map(content: torch.Tensor, style_stats: MeanStd, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """AdaIN as content * scale + shift: the (B, C, 1) scale and shift for these content features."""
    source = mean_std(content, eps)
    scale = (style_stats.std / source.std).to(content.dtype)
    return scale, (style_stats.mean - source.mean * scale).to(content.dtype)


def adain(
    content: torch.Tensor,
    style: torch.Tensor | None = None,
    *,
    style_stats: MeanStd | None = None,
    eps: float = 1e-5,
    inplace: bool = False,
) -> torch.Tensor:
    """sigma_s * (content - mu_c) / sigma_c + mu_s, channel by channel.

    Computed as content * scale + shift, in one pass over the features (tens of MB per decoder
    block). ``inplace`` overwrites ``content`` (no autograd): a fresh tensor that size costs
    more in page faults than the arithmetic.
    """
    target = style_stats if style_stats is not None else adain_stats(_required(style), eps)
    scale, shift = adain_map(content, target, eps)
    return torch.addcmul(shift, content, scale, out=content if inplace else None)


# -- WCT (Li et al. 2017; the paper's eqs. 12-16) --------------------------------------
@dataclass(frozen=True)
class ColourStats:
    """What WCT needs of a style: its mean and its colouring matrix E A^(1/2) E^T (float64)."""

    mean: torch.Tensor  # (B, C, 1)
    colouring: torch.Tensor  # (B, C, C)


def _matrix_power(covariance: torch.Tensor, power: float, eps: float, cutoff: float) -> torch.Tensor:
    """E A^power E^T of a regularised covariance, dropping directions with negligible variance.

    ``eps`` adds eps * (mean variance) to the diagonal, so the regularisation scales with
    the features; eigenvalues below ``cutoff`` * (largest eigenvalue) are treated as zero
    (their directions are neither whitened nor coloured), which keeps rank-deficient or
    silent features from producing huge or NaN values.
    """
    channels = covariance.shape[-1]
    scale = covariance.diagonal(dim1=-2, dim2=-1).mean(dim=-1).clamp_min(1e-30)  # (B,)
    identity = torch.eye(channels, dtype=covariance.dtype, device=covariance.device)
    regularised = covariance + eps * scale[:, None, None] * identity
    eigenvalues, eigenvectors = torch.linalg.eigh(regularised)
    largest = eigenvalues.amax(dim=-1, keepdim=True)
    kept = eigenvalues > cutoff * largest
    powered = torch.where(kept, eigenvalues.clamp_min(1e-300) ** power, torch.zeros_like(eigenvalues))
    powered = torch.where(largest > 1e-30, powered, torch.zeros_like(powered))  # silence: nothing to keep
    return eigenvectors @ torch.diag_embed(powered) @ eigenvectors.transpose(1, 2)


def wct_stats(style: torch.Tensor | Moments, eps: float = 1e-5, cutoff: float = 1e-5) -> ColourStats:
    """The style's mean and colouring matrix, from its features or their moments."""
    stats = style if isinstance(style, Moments) else moments(style)
    return ColourStats(stats.mean(), _matrix_power(stats.covariance(), 0.5, eps, cutoff))


def wct_map(
    content: torch.Tensor, style_stats: ColourStats, eps: float = 1e-5, cutoff: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """WCT as matrix @ content + offset: the (B, C, C) matrix and (B, C, 1) offset, in float64.

    Whitening and colouring combine into one matrix and one offset:
    colouring @ whitening @ (h - mean_c) + mean_s = transform @ h + (mean_s - transform @ mean_c),
    so the long features are read once, in their own precision, and never centred in a copy.
    """
    stats = moments(content)
    transform = style_stats.colouring @ _matrix_power(stats.covariance(), -0.5, eps, cutoff)
    return transform, style_stats.mean - transform @ stats.mean()


def wct(
    content: torch.Tensor,
    style: torch.Tensor | None = None,
    *,
    style_stats: ColourStats | None = None,
    eps: float = 1e-5,
    cutoff: float = 1e-5,
) -> torch.Tensor:
    """Whiten the content's channel covariance, colour it with the style's, add the style mean.

    Statistics and eigendecompositions in float64; returned in the content's dtype.
    """
    target = style_stats if style_stats is not None else wct_stats(_required(style), eps, cutoff)
    transform, offset = wct_map(content, target, eps, cutoff)
    features = _working(content)
    return _channel_map(transform.to(features.dtype), offset.to(features.dtype), features).to(content.dtype)


def _channel_map(matrix: torch.Tensor, offset: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """matrix @ features + offset, frame by frame, in the features' memory layout.

    Channels-last float32 features on CPU (the model's) go through oneDNN as a 1x1 convolution,
    one per batch element: 1.6x faster than the same product as a matrix multiplication (31 vs
    49 ms for 64 channels x 441,000 frames), and the output stays channels-last for the next layer.
    """
    if not (_channels_last(features) and features.device.type == "cpu" and features.dtype == torch.float32):
        return torch.baddbmm(offset, matrix, features)
    with torch.autocast("cpu", enabled=False):  # in the statistics' precision, also under bf16 autocast
        mapped = [
            channels_last_conv1d(features[index : index + 1], matrix[index, :, :, None], offset[index, :, 0])
            for index in range(features.shape[0])
        ]
    if len(mapped) == 1:
        return mapped[0]
    joined = torch.empty_like(features)  # keeps the channels-last layout, which torch.cat would not
    for index, element in enumerate(mapped):
        joined[index].copy_(element[0])
    return joined


# -- shared ----------------------------------------------------------------------------
def blend(transformed: torch.Tensor, original: torch.Tensor, alpha: float) -> torch.Tensor:
    """alpha * transformed + (1 - alpha) * original: alpha = 0 keeps the content's features."""
    if alpha == 1.0:
        return transformed
    return alpha * transformed + (1.0 - alpha) * original


def blend_map(matrix: torch.Tensor, offset: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The channel map h -> blend(matrix @ h + offset, h, alpha), itself a channel map."""
    if alpha == 1.0:
        return matrix, offset
    identity = torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)
    return alpha * matrix + (1.0 - alpha) * identity, alpha * offset


# Latent frames per distance matrix in codebook_restrict (4096 x 2048 floats = 32 MiB per batch element).
_RESTRICT_CHUNK = 4096


def codebook_restrict(latent: torch.Tensor, codebook: torch.Tensor, style_codes: torch.Tensor) -> torch.Tensor:
    """Quantise a content latent (B, C, T) using only the codes that the style uses.

    ``style_codes`` (B, T') are the style's codes under the full codebook (K, C); each
    batch element is restricted to its own style's codes. Vectorised: one masked
    distance matrix per batch, no loop over codes.
    """
    batch = latent.shape[0]
    allowed = torch.zeros(batch, codebook.shape[0], dtype=torch.bool, device=latent.device)
    allowed.scatter_(1, style_codes.reshape(batch, -1), True)
    forbidden = ~allowed[:, None, :]
    k = codebook.float()
    k_norm = (k**2).sum(-1)[None, None, :]
    codes = []
    for chunk in latent.float().transpose(1, 2).split(_RESTRICT_CHUNK, dim=1):  # (B, t, C): bounded memory
        distance = (chunk**2).sum(-1, keepdim=True) - 2 * chunk @ k.t() + k_norm  # (B, t, K)
        codes.append(distance.masked_fill(forbidden, float("inf")).argmin(dim=-1))
    return torch.cat(codes, dim=1)


def _required(style: torch.Tensor | None) -> torch.Tensor:
    if style is None:
        raise ValueError("pass either the style features or their precomputed statistics")
    return style
