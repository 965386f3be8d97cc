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

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from jukestyle.jukebox import VQVAE

Layers = Mapping[int, Sequence[str]]  # level -> encoder block names


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, T) -> (B, C, C), normalised by the number of frames."""
    return features @ features.transpose(1, 2) / features.shape[-1]


def resolve_layers(model: VQVAE, layers: Mapping[int, str | Sequence[str]]) -> dict[int, list[str]]:
    """``{level: "all" | [names]}`` -> ``{level: [names in execution order]}``; unknown names list the valid ones."""
    resolved = {}
    for level, names in layers.items():
        valid = model.encoder_blocks(int(level))
        if names == "all":
            resolved[int(level)] = valid
            continue
        names = [names] if isinstance(names, str) else list(names)
        for name in names:
            model.encoder_block(int(level), name)  # raises with the valid names
        resolved[int(level)] = [name for name in valid if name in set(names)]
    return resolved


@contextlib.contextmanager
def _recording(model: VQVAE, layers: dict[int, list[str]], store: dict) -> Iterator[None]:
    handles = []
    try:
        for level, names in layers.items():
            for name in names:
                block = model.encoder_block(level, name)
                handles.append(
                    block.register_forward_hook(lambda m, a, out, key=(level, name): store.__setitem__(key, out))
                )
        yield
    finally:
        for handle in handles:
            handle.remove()


def encoder_features(
    model: VQVAE, audio: torch.Tensor, layers: dict[int, list[str]]
) -> dict[tuple[int, str], torch.Tensor]:
    """Outputs of the chosen encoder blocks for ``audio`` (B, 1, T); only the needed levels run."""
    features: dict[tuple[int, str], torch.Tensor] = {}
    with _recording(model, layers, features):
        for level in layers:
            model.encode_latent(audio, level)
    return features


def style_grams(model: VQVAE, style: torch.Tensor, layers: dict[int, list[str]]) -> dict[tuple[int, str], torch.Tensor]:
    with torch.no_grad():
        return {key: gram_matrix(value) for key, value in encoder_features(model, style, layers).items()}


@dataclass
class OptimisationResult:
    audio: torch.Tensor  # (B, 1, T), clipped to [-1, 1]
    losses: list[float] = field(default_factory=list)  # loss at every evaluation, the first at the content


def optimise_input(
    model: VQVAE,
    content: torch.Tensor,
    grams: Mapping[tuple[int, str], torch.Tensor],
    layers: dict[int, list[str]],
    weights: Mapping[tuple[int, str], float] | None = None,
    content_weight: float = 0.0,
    max_iter: int = 30,
    tolerance_grad: float = 1e-7,
    tolerance_change: float = 1e-9,
    history_size: int = 20,
) -> OptimisationResult:
    """L-BFGS on the waveform, starting at the content; needs gradients enabled (not inference mode)."""
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            "Gram optimisation needs gradients: run outside torch.inference_mode (trainer.inference_mode=false)"
        )
    weights = dict(weights or {})
    waveform = content.detach().clone().requires_grad_(True)
    content_features = {}
    if content_weight > 0:
        with torch.no_grad():
            content_features = encoder_features(model, content, layers)
    optimiser = torch.optim.LBFGS(
        [waveform],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=tolerance_grad,
        tolerance_change=tolerance_change,
        history_size=history_size,
        line_search_fn="strong_wolfe",
    )
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
