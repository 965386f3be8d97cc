"""AdaIN and WCT at the quantised latent and the decoder blocks (the paper's sections II-D and II-E).

At every chosen point the transform is one affine map of the features (``affine.AffineMap``), blended
with the untransformed features by ``alpha``. A hook applies it; at the last decoder block it is folded
into the decoder's output convolution, which then reads the untransformed features once.

``decoder``: a decoder trained to render these transferred features (``experiment=train_transfer_decoder``)
renders them instead of the model's own, the same method with another decoder (``decoder="bundled"``: the bundled
model's, ``checkpoints/transfer_decoder``). The style is measured with
the decoder its training measured styles with (the file's ``transfer.style_source``: itself, or the base
model's frozen decoder).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from jukestyle.jukebox import VQVAE
from jukestyle.methods import affine
from jukestyle.methods.base import Method, MethodOutput, StyleAudio, in_range, quantised_latent, style_windows
from jukestyle.methods.hooks import feature_hooks, measure_features, resolve_points
from jukestyle.methods.rendering import DecoderFiles, transfer_decoder_file

DEFAULT_LEVEL = 2  # the paper's: the 128x level


class FeatureTransfer(Method):
    """Map the features at each point with the style's statistics.

    ``points``: ``"all"`` (latent and every decoder block: the paper's multi-layer variant),
    ``"blocks"``, or a list such as ``["latent"]``; ``alpha`` blends with the untransformed features.
    Subclasses say what a style's analysis keeps (``measure``, ``statistics``) and the map (``affine_map``).
    """

    def __init__(
        self,
        level: int | None = None,
        points: str | Sequence[str] = "all",
        alpha: float = 1.0,
        eps: float = 1e-5,
        decoder: str | None = None,
    ) -> None:
        self.decoder = None if decoder is None else str(transfer_decoder_file(decoder))
        self._decoders = DecoderFiles({} if decoder is None else {"": Path(self.decoder)}, self.name)
        super().__init__(self._decoders.level_for(self.name, level, DEFAULT_LEVEL))
        self.points = points if isinstance(points, str) else list(points)
        self.alpha = in_range(self.name, "alpha", alpha, 0.0, 1.0)
        self.eps = in_range(self.name, "eps", eps, 0.0, above_low=True)

    @property
    def label(self) -> str:
        return self.name if self.decoder is None else f"{self.name}+decoder"

    def validate(self, model: VQVAE) -> None:
        resolve_points(model, self.level, self.points)
        self._decoders.validate(model)

    def rendering_model(self, model: VQVAE) -> VQVAE:
        """The model whose decoder renders the transfer: ``model``, or it with the trained decoder."""
        return model if self.decoder is None else self._decoders.rendering_model(model, Path(self.decoder))

    def analysing_model(self, model: VQVAE) -> VQVAE:
        """The model whose decoder measures a style: the rendering one, unless its training measured styles with
        the base model's frozen decoder."""
        if self.decoder is None:
            return model
        transfer = self._decoders.contents[Path(self.decoder)].get("transfer") or {}
        return model if transfer.get("style_source") == "frozen" else self.rendering_model(model)

    def measure(self, features: torch.Tensor) -> affine.Moments | affine.ChannelMoments:
        """What a style's analysis keeps of its features at one point (summed over windows)."""
        raise NotImplementedError

    def statistics(self, moments: affine.Moments | affine.ChannelMoments) -> object:
        raise NotImplementedError

    def affine_map(self, features: torch.Tensor, stats: object) -> affine.AffineMap:
        """The transform of these content features toward the style's statistics."""
        raise NotImplementedError

    def _moments(self, model: VQVAE, latent: torch.Tensor) -> dict[str, object]:
        """What the analysis keeps of a latent's features at every point (per batch element)."""
        points = resolve_points(model, self.level, self.points)
        return measure_features(model, self.level, latent, dict.fromkeys(points, self.measure))

    def analyse(self, model: VQVAE, style: StyleAudio, style_name: str = "style") -> dict[str, object]:
        """Streaming moments at every point, summed over the windows, then the style's statistics."""
        total: dict[str, object] = {}
        measuring = self.analysing_model(model)
        for window in style_windows(style):
            for point, moments in self._moments(measuring, quantised_latent(model, window, self.level)).items():
                total[point] = total[point] + moments if point in total else moments
        return {point: self.statistics(moments) for point, moments in total.items()}

    def analyse_latent(self, model: VQVAE, latent: torch.Tensor) -> dict[str, object]:
        """The statistics of each batch element's quantised latent (B styles at once, e.g. in training)."""
        return {point: self.statistics(moments) for point, moments in self._moments(model, latent).items()}

    def blended_map(self, features: torch.Tensor, stats: object) -> affine.AffineMap:
        """The map at one point, blended by ``alpha``; statistics in at least float32 (also under bf16 autocast)."""
        return self.affine_map(features.float(), stats).blended(self.alpha)

    def decode(
        self, model: VQVAE, latent: torch.Tensor, analysis: dict[str, object], *, detach_maps: bool = False
    ) -> torch.Tensor:
        """Decode a content's quantised latent with the map toward ``analysis`` at each of its points.

        ``detach_maps``: the maps' coefficients are computed without gradients (a decoder trained on WCT's
        outputs: eigendecompositions have no stable gradient); the features keep theirs."""

        def map_at(point: str, features: torch.Tensor) -> affine.AffineMap:
            if not detach_maps:
                return self.blended_map(features, analysis[point])
            with torch.no_grad():
                return self.blended_map(features.detach(), analysis[point])

        def transform(point: str):
            def apply(features: torch.Tensor) -> torch.Tensor:
                working = features.float()
                # the block's output is held by nothing else: a diagonal map may overwrite it (without autograd)
                mapped = map_at(point, working).apply(working, inplace=not torch.is_grad_enabled())
                return mapped.to(features.dtype)

            return apply

        last = model.decoder_blocks(self.level)[-1]
        with feature_hooks(model, self.level, {point: transform(point) for point in analysis if point != last}):
            features = model.decode_features(latent, self.level)
        output = model.decoders[self.level].out
        return map_at(last, features).fold_into(output, features) if last in analysis else output(features)

    def apply(self, model: VQVAE, content: torch.Tensor, analysis: dict[str, object]) -> MethodOutput:
        audio = self.decode(self.rendering_model(model), quantised_latent(model, content, self.level), analysis)
        info = {"points": list(analysis)} | ({"decoder": self.decoder} if self.decoder else {})
        return MethodOutput(audio, info)


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
        level: int | None = None,
        points: str | Sequence[str] = "all",
        alpha: float = 1.0,
        eps: float = 1e-5,
        cutoff: float = 1e-5,
        decoder: str | None = None,
    ) -> None:
        super().__init__(level, points, alpha, eps, decoder)
        self.cutoff = in_range(self.name, "cutoff", cutoff, 0.0, 1.0, below_high=True)

    def measure(self, features: torch.Tensor) -> affine.Moments:
        return affine.moments(features)

    def statistics(self, moments: affine.Moments) -> affine.ColourStats:
        return affine.wct_stats(moments, self.eps, self.cutoff)

    def affine_map(self, features: torch.Tensor, stats: affine.ColourStats) -> affine.AffineMap:
        return affine.wct_map(features, stats, self.eps, self.cutoff)
