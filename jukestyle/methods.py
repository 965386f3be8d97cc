"""The paper's four style-transfer methods (section II) and the reconstruction baseline.

Each method analyses a style once (``analyse``) and applies the analysis to any
number of contents (``apply``). Both take and return audio tensors (B, 1, T) at
the model's rate; ``apply`` returns the audio with information for the run's
metadata (e.g. the Gram loss curve). The constructor defaults are the project's
best settings for each method; ``configs/method/*.yaml`` hold the same values.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from jukestyle import gram, transforms
from jukestyle.errors import ConfigError
from jukestyle.hooks import LATENT, feature_hooks, measure_features, resolve_points
from jukestyle.jukebox import VQVAE
from jukestyle.jukebox.layers import conv1d_of_channel_map


@dataclass
class MethodOutput:
    audio: torch.Tensor  # (B, 1, T)
    info: dict = field(default_factory=dict)


class Method:
    """Base class: ``name`` identifies the method in results; ``level`` is the VQ-VAE level it works at."""

    name = "method"
    needs_grad = False  # True: ``apply`` optimises with gradients (cannot run under inference mode)

    def __init__(self, level: int = 2) -> None:
        self.level = int(level)

    def settings(self) -> dict:
        """Constructor arguments and their values, for metadata and cache keys."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {"name": self.name, **{n: getattr(self, n) for n in names}}

    def validate(self, model: VQVAE) -> None:
        """Raise a clear error for settings that do not fit ``model`` (before any audio is processed)."""
        model.hop_length(self.level)

    def analyse(self, model: VQVAE, style: torch.Tensor) -> object:
        return None

    def analyse_windows(self, model: VQVAE, windows: Iterable[torch.Tensor]) -> object:
        """The analysis of a style too long to process at once, heard as consecutive windows.

        Methods whose analysis is a statistic over time accumulate it over the windows; the
        base class analyses the first window only (for methods that need no analysis).
        """
        return self.analyse(model, next(iter(windows)))

    def apply(self, model: VQVAE, content: torch.Tensor, analysis: object) -> MethodOutput:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.settings().items() if k != 'name')})"


def _quantised_latent(model: VQVAE, audio: torch.Tensor, level: int) -> torch.Tensor:
    """The paper's F_pre: encoder, then quantisation to the nearest codes."""
    return model.dequantise(model.encode(audio, level), level)


class Identity(Method):
    """Plain reconstruction: the baseline every method is compared with."""

    name = "identity"

    def apply(self, model: VQVAE, content: torch.Tensor, analysis: object) -> MethodOutput:
        return MethodOutput(model.reconstruct(content, self.level))


class CodebookRestriction(Method):
    """Quantise the content's latents with only the codes the style uses (section II-B)."""

    name = "codebook"

    def analyse(self, model: VQVAE, style: torch.Tensor) -> torch.Tensor:
        return model.encode(style, self.level)

    def analyse_windows(self, model: VQVAE, windows: Iterable[torch.Tensor]) -> torch.Tensor:
        """Every code that the style uses in any window, (1, U)."""
        codes = torch.cat([self.analyse(model, window).reshape(-1) for window in windows])
        return codes.unique()[None]

    def apply(self, model: VQVAE, content: torch.Tensor, analysis: torch.Tensor) -> MethodOutput:
        latent = model.encode_latent(content, self.level)
        codes = transforms.codebook_restrict(
            latent, model.bottleneck[self.level].k, analysis.expand(content.shape[0], -1)
        )
        return MethodOutput(model.decode(codes, self.level), {"style_codes": int(analysis.unique().numel())})


class _FeatureTransfer(Method):
    """Transform the quantised latent and decoder block outputs with the style's statistics (II-D, II-E).

    ``points``: ``"all"`` (latent and every decoder block: the paper's multi-layer variant),
    ``"blocks"``, or a list such as ``["latent"]``; ``alpha`` blends with the untransformed features.

    Each transform is a channel map (matrix @ h + offset; diagonal for AdaIN). The last block's map is
    folded into the decoder's output convolution, which then reads the untransformed features once.
    """

    def __init__(
        self, level: int = 2, points: str | Sequence[str] = "all", alpha: float = 1.0, eps: float = 1e-5
    ) -> None:
        super().__init__(level)
        self.points = points if isinstance(points, str) else list(points)
        self.alpha, self.eps = float(alpha), float(eps)

    def validate(self, model: VQVAE) -> None:
        resolve_points(model, self.level, self.points)

    def _stats(self, moments: transforms.Moments) -> object:
        raise NotImplementedError

    def _transform(self, features: torch.Tensor, stats: object) -> torch.Tensor:
        raise NotImplementedError

    def _channel_map(self, features: torch.Tensor, stats: object) -> tuple[torch.Tensor, torch.Tensor]:
        """The transform of these features as matrix (B, C, C) @ h + offset (B, C, 1)."""
        raise NotImplementedError

    def _measure(self, features: torch.Tensor) -> transforms.Moments | transforms.ChannelMoments:
        """What a style's analysis keeps of its features at one point (summed over windows)."""
        raise NotImplementedError

    def _moments(self, model: VQVAE, style: torch.Tensor) -> dict[str, object]:
        points = resolve_points(model, self.level, self.points)
        latent = _quantised_latent(model, style, self.level)
        return measure_features(model, self.level, latent, {point: self._measure for point in points})

    def analyse(self, model: VQVAE, style: torch.Tensor) -> dict[str, object]:
        return self.analyse_windows(model, [style])

    def analyse_windows(self, model: VQVAE, windows: Iterable[torch.Tensor]) -> dict[str, object]:
        """Streaming mean and covariance at every point, summed over the windows."""
        total: dict[str, transforms.Moments] = {}
        for window in windows:
            for point, moments in self._moments(model, window).items():
                total[point] = total[point] + moments if point in total else moments
        return {point: self._stats(moments) for point, moments in total.items()}

    def apply(self, model: VQVAE, content: torch.Tensor, analysis: dict[str, object]) -> MethodOutput:
        def transform(point: str):
            def apply(features: torch.Tensor) -> torch.Tensor:
                # statistics in at least float32, also when the model runs under bf16 autocast
                original = features.float()
                return transforms.blend(self._transform(original, analysis[point]), original, self.alpha).to(
                    features.dtype
                )

            return apply

        latent = _quantised_latent(model, content, self.level)
        last = model.decoder_blocks(self.level)[-1]
        with feature_hooks(model, self.level, {point: transform(point) for point in analysis if point != last}):
            features = model.decode_features(latent, self.level)
        output = model.decoders[self.level].out
        if last in analysis:  # folded into the output convolution's weights
            matrix, offset = self._channel_map(features.float(), analysis[last])
            audio = conv1d_of_channel_map(output, features, *transforms.blend_map(matrix, offset, self.alpha))
        else:
            audio = output(features)
        return MethodOutput(audio, {"points": list(analysis)})


class AdaIN(_FeatureTransfer):
    """Swap channel means and standard deviations (eq. 9), at the latent and the decoder blocks."""

    name = "adain"

    def _measure(self, features: torch.Tensor) -> transforms.ChannelMoments:
        return transforms.channel_moments(features)

    def _stats(self, moments: transforms.ChannelMoments) -> transforms.MeanStd:
        return transforms.adain_stats(moments, self.eps)

    def _inplace(self, features: torch.Tensor) -> bool:
        """Overwrite a block's output when nothing else needs it: no blend with it, no autograd."""
        return self.alpha == 1.0 and not torch.is_grad_enabled() and features.dtype == torch.float32

    def _transform(self, features: torch.Tensor, stats: transforms.MeanStd) -> torch.Tensor:
        return transforms.adain(features, style_stats=stats, eps=self.eps, inplace=self._inplace(features))

    def _channel_map(self, features: torch.Tensor, stats: transforms.MeanStd) -> tuple[torch.Tensor, torch.Tensor]:
        scale, shift = transforms.adain_map(features, stats, self.eps)
        return torch.diag_embed(scale[..., 0]), shift


class WCT(_FeatureTransfer):
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
        self.cutoff = float(cutoff)

    def _measure(self, features: torch.Tensor) -> transforms.Moments:
        return transforms.moments(features)

    def _stats(self, moments: transforms.Moments) -> transforms.ColourStats:
        return transforms.wct_stats(moments, self.eps, self.cutoff)

    def _transform(self, features: torch.Tensor, stats: transforms.ColourStats) -> torch.Tensor:
        return transforms.wct(features, style_stats=stats, eps=self.eps, cutoff=self.cutoff)

    def _channel_map(self, features: torch.Tensor, stats: transforms.ColourStats) -> tuple[torch.Tensor, torch.Tensor]:
        return transforms.wct_map(features, stats, self.eps, self.cutoff)


class GramOptimisation(Method):
    """Optimise the waveform so that encoder Gram matrices match the style's (section II-C).

    ``layers``: ``{level: "all" | [encoder block names]}``; ``output``: ``"raw"`` returns the
    optimised waveform itself, ``"decoded"`` its reconstruction through the VQ-VAE at ``level``.
    """

    name = "gram"
    needs_grad = True

    def __init__(
        self,
        level: int = 2,
        layers: Mapping[int, str | Sequence[str]] | None = None,
        layer_weights: Mapping[str, float] | None = None,
        content_weight: float = 0.0,
        max_iter: int = 30,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 20,
        output: str = "decoded",
    ) -> None:
        super().__init__(level)
        if output not in ("raw", "decoded"):
            raise ConfigError(f"gram output must be 'raw' or 'decoded', got {output!r}")
        self.layers = {int(k): v for k, v in (layers or {self.level: "all"}).items()}
        self.layer_weights = dict(layer_weights or {})  # "level:block" -> weight (default 1)
        self.content_weight, self.max_iter, self.output = float(content_weight), int(max_iter), output
        self.tolerance_grad, self.tolerance_change, self.history_size = tolerance_grad, tolerance_change, history_size

    def validate(self, model: VQVAE) -> None:
        super().validate(model)
        gram.resolve_layers(model, self.layers)

    def analyse(self, model: VQVAE, style: torch.Tensor) -> dict:
        layers = gram.resolve_layers(model, self.layers)
        return {"layers": layers, "grams": gram.style_grams(model, style, layers)}

    def analyse_windows(self, model: VQVAE, windows: Iterable[torch.Tensor]) -> dict:
        """Gram matrices of the whole style: sums of h h^T over the windows, divided by all their frames."""
        layers = gram.resolve_layers(model, self.layers)
        sums: dict[tuple[int, str], torch.Tensor] = {}
        frames: dict[tuple[int, str], int] = {}
        with torch.no_grad():
            for window in windows:
                for key, features in gram.encoder_features(model, window, layers).items():
                    outer = features @ features.transpose(1, 2)
                    sums[key] = sums[key] + outer if key in sums else outer
                    frames[key] = frames.get(key, 0) + features.shape[-1]
        return {"layers": layers, "grams": {key: sums[key] / frames[key] for key in sums}}

    def apply(self, model: VQVAE, content: torch.Tensor, analysis: dict) -> MethodOutput:
        weights = {(level, name): self.layer_weights.get(f"{level}:{name}", 1.0) for level, name in analysis["grams"]}
        result = gram.optimise_input(
            model,
            content,
            analysis["grams"],
            analysis["layers"],
            weights,
            self.content_weight,
            self.max_iter,
            self.tolerance_grad,
            self.tolerance_change,
            self.history_size,
        )
        audio = result.audio
        if self.output == "decoded":
            with torch.no_grad():
                audio = model.reconstruct(audio, self.level)
        return MethodOutput(audio, {"loss_curve": result.losses})


METHODS: dict[str, type[Method]] = {
    method.name: method for method in (Identity, CodebookRestriction, GramOptimisation, AdaIN, WCT)
}


def make_method(name: str, **options) -> Method:
    """A method by its name in ``METHODS`` (the names of configs/method/), with the given settings."""
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; methods: {', '.join(METHODS)}")
    try:
        return METHODS[name](**options)
    except TypeError as error:
        raise ConfigError(f"bad option for method {name!r}: {error}") from None


__all__ = ["LATENT", "METHODS", "Method", "MethodOutput", "make_method"]
