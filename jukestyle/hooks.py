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

from jukestyle.errors import ConfigError
from jukestyle.jukebox import VQVAE

LATENT = "latent"
FeatureMap = Callable[[torch.Tensor], torch.Tensor]


def hook_points(model: VQVAE, level: int) -> list[str]:
    """Every hook point of a level's decoder, in execution order."""
    return [LATENT, *model.decoder_blocks(level)]


def resolve_points(model: VQVAE, level: int, points: str | Sequence[str]) -> list[str]:
    """``"all"`` (latent and every block), ``"blocks"`` (every block) or a list of names -> names in execution order."""
    valid = hook_points(model, level)
    if points == "all":
        return valid
    if points == "blocks":
        return valid[1:]
    if isinstance(points, str):
        points = [points]
    unknown = [name for name in points if name not in valid]
    if unknown:
        raise ConfigError(f"unknown hook point {unknown[0]!r} at level {level}; valid: all, blocks, {', '.join(valid)}")
    return [name for name in valid if name in set(points)]


@contextlib.contextmanager
def feature_hooks(model: VQVAE, level: int, transforms: Mapping[str, FeatureMap]) -> Iterator[None]:
    """Within the block, decoding at ``level`` applies ``transforms[point]`` at each named point.

    The hooks are always removed on exit, also when decoding raises.
    """
    resolve_points(model, level, list(transforms))  # fail early on unknown names
    decoder = model.decoders[level]
    handles = []
    try:
        for point, transform in transforms.items():
            if point == LATENT:  # the input of the first level block run (the decoder runs them in reverse)
                first = decoder.level_blocks[-1]
                hook = first.register_forward_pre_hook(lambda module, args, f=transform: (f(args[0]), *args[1:]))
            else:
                block = model.decoder_block(level, point)
                hook = block.register_forward_hook(lambda module, args, output, f=transform: f(output))
            handles.append(hook)
        yield
    finally:
        for handle in handles:
            handle.remove()


class StopForward(Exception):
    """Raised by a hook that has seen the last features wanted: nothing after it needs to run."""


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

    with feature_hooks(model, level, {point: measuring(point) for point in points}), contextlib.suppress(StopForward):
        model.decode_latent(latent, level)
    return measured


def record_features(model: VQVAE, level: int, latent: torch.Tensor, points: Sequence[str]) -> dict[str, torch.Tensor]:
    """Decode ``latent`` unchanged and return the features seen at each point."""
    return measure_features(model, level, latent, {point: lambda features: features for point in points})
