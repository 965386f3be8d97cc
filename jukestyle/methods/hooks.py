"""Transform features inside a level's decoder through forward hooks.

Hook points are ``"latent"`` (the decoder's input) and the named decoder blocks
of ``VQVAE.decoder_blocks(level)``, in execution order. Installed together,
the transforms act iteratively, as the paper's F_1, ..., F_{N-1}: the output
of block i is transformed before block i+1 sees it. The final ``out``
convolution (F_N, the waveform) is never a hook point.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch

from jukestyle.jukebox import VQVAE
from jukestyle.jukebox.hooks import StopForward, forward_hooks, select_names

LATENT = "latent"
FeatureMap = Callable[[torch.Tensor], torch.Tensor]


def hook_points(model: VQVAE, level: int) -> list[str]:
    """Every hook point of a level's decoder, in execution order."""
    return [LATENT, *model.decoder_blocks(level)]


def resolve_points(model: VQVAE, level: int, points: str | Sequence[str]) -> list[str]:
    """``"all"`` (latent and every block), ``"blocks"`` (every block) or a list of names -> names in execution order."""
    valid = hook_points(model, level)
    return select_names(points, valid, f"hook point {{!r}} at level {level}", {"all": valid, "blocks": valid[1:]})


@contextlib.contextmanager
def feature_hooks(model: VQVAE, level: int, transforms: Mapping[str, FeatureMap]) -> Iterator[None]:
    """Within the block, decoding at ``level`` applies ``transforms[point]`` at each named point."""
    resolve_points(model, level, list(transforms))  # fail early on unknown names
    decoder = model.decoders[level]
    outputs = {model.decoder_block(level, point): f for point, f in transforms.items() if point != LATENT}
    # the latent is the input of the first level block that runs (the decoder runs them in reverse)
    inputs = {decoder.level_blocks[-1]: transforms[LATENT]} if LATENT in transforms else {}
    with forward_hooks(outputs, inputs):
        yield


def measure_features(
    model: VQVAE, level: int, latent: torch.Tensor, measures: Mapping[str, Callable[[torch.Tensor], object]]
) -> dict[str, object]:
    """Decode ``latent`` unchanged and return ``measures[point]`` of the features seen at each point.

    Each measure runs inside its hook, so that features need not be kept (a style's analysis holds
    one statistic per point, not tens of MB of features); decoding stops after the last point.
    """
    points = resolve_points(model, level, list(measures))
    measured: dict[str, object] = {}

    def measuring(point: str) -> FeatureMap:
        def measure(features: torch.Tensor) -> torch.Tensor:
            measured[point] = measures[point](features)
            if point == points[-1]:
                raise StopForward
            return features

        return measure

    with feature_hooks(model, level, {point: measuring(point) for point in points}):
        model.decode_latent(latent, level)
    return measured


def record_features(model: VQVAE, level: int, latent: torch.Tensor, points: Sequence[str]) -> dict[str, torch.Tensor]:
    """Decode ``latent`` unchanged and return the features seen at each point."""
    return measure_features(model, level, latent, {point: lambda features: features for point in points})
