"""Style transfer by input optimisation (Gatys et al.; the paper's section II-C).

The waveform, initialised from the content, is optimised with L-BFGS so that
the Gram matrices of chosen encoder blocks match the style's. Gram matrices
are time-normalised, G = F F^T / T', so that signals of different lengths
compare. Each layer's loss is the squared Frobenius distance relative to the
style's Gram, ||G_x - G_y||^2 / ||G_y||^2: scale-free, so layers of very
different magnitudes can share one weight and L-BFGS stays well conditioned.
(The paper's eq. 8 writes the outer products frame by frame, which would
compare time-aligned frames; the time-averaged Gram is the statistic the cited
method uses.) An optional content term, off by default as in the paper, keeps
the features close to the content's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import torch

from jukestyle.errors import ConfigError
from jukestyle.jukebox import VQVAE
from jukestyle.jukebox.hooks import forward_hooks, select_names
from jukestyle.methods.base import Method, MethodOutput, StyleAudio, in_range, require_gradients, style_windows

Layers = Mapping[int, Sequence[str]]  # level -> encoder block names


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, T) -> (B, C, C), normalised by the number of frames."""
    return features @ features.transpose(1, 2) / features.shape[-1]


def resolve_layers(model: VQVAE, layers: Mapping[int, str | Sequence[str]]) -> dict[int, list[str]]:
    """``{level: "all" | [names]}`` -> ``{level: [names in execution order]}``; unknown names list the valid ones."""
    resolved = {}
    for level, names in layers.items():
        valid = model.encoder_blocks(int(level))
        resolved[int(level)] = select_names(names, valid, f"encoder block {{!r}} at level {level}", {"all": valid})
    return resolved


def encoder_features(
    model: VQVAE, audio: torch.Tensor, layers: dict[int, list[str]]
) -> dict[tuple[int, str], torch.Tensor]:
    """Outputs of the chosen encoder blocks for ``audio`` (B, 1, T); only the needed levels run."""
    features: dict[tuple[int, str], torch.Tensor] = {}
    hooks = {
        model.encoder_block(level, name): lambda output, key=(level, name): features.__setitem__(key, output)
        for level, names in layers.items()
        for name in names
    }
    with forward_hooks(hooks):
        for level in layers:
            model.encode_latent(audio, level)
    return features


@dataclass
class OptimisationResult:
    audio: torch.Tensor  # (B, 1, T), clipped to [-1, 1]
    losses: list[float] = field(default_factory=list)  # loss at every evaluation, the first at the content


@dataclass(frozen=True)
class LBFGS:
    """The L-BFGS settings of the input optimisation (torch.optim.LBFGS, strong-Wolfe line search)."""

    max_iter: int = 30
    tolerance_grad: float = 1e-7
    tolerance_change: float = 1e-9
    history_size: int = 20

    @classmethod
    def from_options(cls, options: LBFGS | Mapping[str, object] | None) -> LBFGS:
        """From a mapping (a config's ``lbfgs``), where a missing or null value takes the default here."""
        if isinstance(options, cls):
            return options
        try:
            settings = cls(**{key: value for key, value in (options or {}).items() if value is not None})
        except TypeError as error:
            raise ConfigError(f"gram: bad L-BFGS setting: {error}") from None
        for name, low, whole in (("max_iter", 1, True), ("history_size", 1, True), ("tolerance_grad", 0, False),
                                 ("tolerance_change", 0, False)):  # fmt: skip
            value = getattr(settings, name)
            if in_range("gram", f"lbfgs.{name}", value, low) != int(value) and whole:
                raise ConfigError(f"gram: lbfgs.{name} must be a whole number, got {value!r}")
        return settings


def optimise_input(
    model: VQVAE,
    content: torch.Tensor,
    grams: Mapping[tuple[int, str], torch.Tensor],
    layers: dict[int, list[str]],
    weights: Mapping[tuple[int, str], float] | None = None,
    content_weight: float = 0.0,
    lbfgs: LBFGS | None = None,
) -> OptimisationResult:
    """L-BFGS on the waveform, starting at the content; needs gradients (not inference mode)."""
    weights = dict(weights or {})
    waveform = content.detach().clone().requires_grad_(True)
    content_features = {}
    if content_weight > 0:
        with torch.no_grad():
            content_features = encoder_features(model, content, layers)
    optimiser = torch.optim.LBFGS([waveform], lr=1.0, line_search_fn="strong_wolfe", **asdict(lbfgs or LBFGS()))
    losses: list[float] = []
    norms = {key: (gram**2).sum().clamp_min(1e-20) for key, gram in grams.items()}

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        features = encoder_features(model, waveform, layers)
        loss = waveform.new_zeros(())
        for key, value in features.items():
            loss = loss + weights.get(key, 1.0) * ((gram_matrix(value) - grams[key]) ** 2).sum() / norms[key]
            if content_weight > 0:
                loss = loss + content_weight * torch.mean((value - content_features[key]) ** 2)
        loss.backward()
        losses.append(float(loss.detach()))
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    return OptimisationResult(waveform.detach().clamp(-1.0, 1.0), losses)


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
        lbfgs: LBFGS | Mapping[str, object] | None = None,
        output: str = "decoded",
    ) -> None:
        super().__init__(level)
        if output not in ("raw", "decoded"):
            raise ConfigError(f"gram output must be 'raw' or 'decoded', got {output!r}")
        self.layers = {int(k): v for k, v in (layers or {self.level: "all"}).items()}
        weights = dict(layer_weights or {})  # "level:block" -> weight (default 1)
        self.layer_weights = {key: in_range("gram", f"layer_weights[{key!r}]", w, 0.0) for key, w in weights.items()}
        self.content_weight, self.output = in_range("gram", "content_weight", content_weight, 0.0), output
        self.lbfgs = LBFGS.from_options(lbfgs)

    def validate(self, model: VQVAE) -> None:
        super().validate(model)
        resolve_layers(model, self.layers)

    def analyse(self, model: VQVAE, style: StyleAudio, style_name: str = "style") -> dict:
        """Gram matrices of the whole style: sums of h h^T over the windows, divided by all their frames."""
        layers = resolve_layers(model, self.layers)
        sums: dict[tuple[int, str], torch.Tensor] = {}
        frames: dict[tuple[int, str], int] = {}
        with torch.no_grad():
            for window in style_windows(style):
                for key, features in encoder_features(model, window, layers).items():
                    outer = features @ features.transpose(1, 2)
                    sums[key] = sums[key] + outer if key in sums else outer
                    frames[key] = frames.get(key, 0) + features.shape[-1]
        return {"layers": layers, "grams": {key: sums[key] / frames[key] for key in sums}}

    def apply(self, model: VQVAE, content: torch.Tensor, analysis: dict) -> MethodOutput:
        weights = {(level, name): self.layer_weights.get(f"{level}:{name}", 1.0) for level, name in analysis["grams"]}
        require_gradients([self])
        result = optimise_input(
            model, content, analysis["grams"], analysis["layers"], weights, self.content_weight, self.lbfgs
        )
        audio = result.audio
        if self.output == "decoded":
            with torch.no_grad():
                audio = model.reconstruct(audio, self.level)
        return MethodOutput(audio, {"loss_curve": result.losses})
