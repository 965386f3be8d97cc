"""AdaIN and WCT at the quantised latent and the decoder blocks (the paper's sections II-D and II-E).

At every chosen point the transform is one affine map of the features (``affine.AffineMap``), blended
with the untransformed features by ``alpha``. A hook applies it; at the last decoder block it is folded
into the decoder's output convolution, which then reads the untransformed features once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from jukestyle.jukebox import VQVAE
from jukestyle.methods import affine
from jukestyle.methods.base import Method, MethodOutput, in_range, quantised_latent
from jukestyle.methods.hooks import feature_hooks, measure_features, resolve_points


class FeatureTransfer(Method):
    """Map the features at each point with the style's statistics.

    ``points``: ``"all"`` (latent and every decoder block: the paper's multi-layer variant),
    ``"blocks"``, or a list such as ``["latent"]``; ``alpha`` blends with the untransformed features.
    Subclasses say what a style's analysis keeps (``measure``, ``statistics``) and the map (``affine_map``).
    """

    def __init__(
        self, level: int = 2, points: str | Sequence[str] = "all", alpha: float = 1.0, eps: float = 1e-5
    ) -> None:
        super().__init__(level)
        self.points = points if isinstance(points, str) else list(points)
        self.alpha = in_range(self.name, "alpha", alpha, 0.0, 1.0)
        self.eps = in_range(self.name, "eps", eps, 0.0, above_low=True)

    def validate(self, model: VQVAE) -> None:
        resolve_points(model, self.level, self.points)

    def measure(self, features: torch.Tensor) -> affine.Moments | affine.ChannelMoments:
        """What a style's analysis keeps of its features at one point (summed over windows)."""
        raise NotImplementedError

    def statistics(self, moments: affine.Moments | affine.ChannelMoments) -> object:
        raise NotImplementedError

    def affine_map(self, features: torch.Tensor, stats: object) -> affine.AffineMap:
        """The transform of these content features toward the style's statistics."""
        raise NotImplementedError

    def analyse(self, model: VQVAE, style: torch.Tensor) -> dict[str, object]:
        return self.analyse_windows(model, [style])

    def analyse_windows(self, model: VQVAE, windows: Iterable[torch.Tensor]) -> dict[str, object]:
        """Streaming moments at every point, summed over the windows, then the style's statistics."""
        points = resolve_points(model, self.level, self.points)
        total: dict[str, object] = {}
        for window in windows:
            latent = quantised_latent(model, window, self.level)
            measured = measure_features(model, self.level, latent, dict.fromkeys(points, self.measure))
            for point, moments in measured.items():
                total[point] = total[point] + moments if point in total else moments
        return {point: self.statistics(moments) for point, moments in total.items()}

    def blended_map(self, features: torch.Tensor, stats: object) -> affine.AffineMap:
        """The map at one point, blended by ``alpha``; statistics in at least float32 (also under bf16 autocast)."""
        return self.affine_map(features.float(), stats).blended(self.alpha)

    def apply(self, model: VQVAE, content: torch.Tensor, analysis: dict[str, object]) -> MethodOutput:
        def transform(point: str):
            def apply(features: torch.Tensor) -> torch.Tensor:
                working = features.float()
                # the block's output is held by nothing else: a diagonal map may overwrite it (without autograd)
                mapped = self.blended_map(working, analysis[point]).apply(working, inplace=not torch.is_grad_enabled())
                return mapped.to(features.dtype)

            return apply

        latent = quantised_latent(model, content, self.level)
        last = model.decoder_blocks(self.level)[-1]
        with feature_hooks(model, self.level, {point: transform(point) for point in analysis if point != last}):
            features = model.decode_features(latent, self.level)
        output = model.decoders[self.level].out
        if last in analysis:
            audio = self.blended_map(features, analysis[last]).fold_into(output, features)
        else:
            audio = output(features)
        return MethodOutput(audio, {"points": list(analysis)})


class AdaIN(FeatureTransfer):
    """Swap channel means and standard deviations (eq. 9), at the latent and the decoder blocks."""

    name = "adain"

    def measure(self, features: torch.Tensor) -> affine.ChannelMoments:
        return affine.channel_moments(features)

    def statistics(self, moments: affine.ChannelMoments) -> affine.MeanStd:
        return affine.adain_stats(moments, self.eps)

    def affine_map(self, features: torch.Tensor, stats: affine.MeanStd) -> affine.AffineMap:
        return affine.adain_map(features, stats, self.eps)


class WCT(FeatureTransfer):
    """Whitening and colouring of the channel covariance (eq. 16), at the latent and the decoder blocks."""

    name = "wct"

    def __init__(
        self,
        level: int = 2,
        points: str | Sequence[str] = "all",
        alpha: float = 1.0,
        eps: float = 1e-5,
        cutoff: float = 1e-5,
    ) -> None:
        super().__init__(level, points, alpha, eps)
        self.cutoff = in_range(self.name, "cutoff", cutoff, 0.0, 1.0, below_high=True)

    def measure(self, features: torch.Tensor) -> affine.Moments:
        return affine.moments(features)

    def statistics(self, moments: affine.Moments) -> affine.ColourStats:
        return affine.wct_stats(moments, self.eps, self.cutoff)

    def affine_map(self, features: torch.Tensor, stats: affine.ColourStats) -> affine.AffineMap:
        return affine.wct_map(features, stats, self.eps, self.cutoff)
