"""What every method is: a style analysed once, applied to any number of contents; and the plain reconstruction.

Each method analyses a style once (``analyse``, its one analysis entry point) and
applies the analysis to any number of contents (``apply``). Both take audio tensors
(B, 1, T) at the model's rate; a style too long to process at once reaches ``analyse``
as consecutive windows, every one of which counts. ``apply`` returns the audio with
information for the run's metadata (e.g. the Gram loss curve). The constructor defaults are the project's
best settings for each method; ``configs/method/*.yaml`` hold the same values (a null
takes the default here; tests/methods/test_methods.py checks that they agree). Settings
are checked where they enter (``in_range``), before any audio is processed.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, is_dataclass

import torch

from jukestyle.errors import ConfigError
from jukestyle.jukebox import VQVAE

StyleAudio = torch.Tensor | Iterable[torch.Tensor]  # a style's audio (B, 1, T), or its consecutive windows


def style_windows(style: StyleAudio) -> Iterable[torch.Tensor]:
    """A style as windows: its audio as the one window, or the windows it came in."""
    return [style] if torch.is_tensor(style) else style


@dataclass
class MethodOutput:
    audio: torch.Tensor  # (B, 1, T)
    info: dict = field(default_factory=dict)


def in_range(
    owner: str,
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    above_low: bool = False,
    below_high: bool = False,
) -> float:
    """A numeric setting as a float, or one line naming ``owner``'s setting and its range (NaN is in none).

    Settings are checked where they enter (a method's constructor), before any audio is processed.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{owner}: {name} must be a number, got {value!r}") from None
    too_low = low is not None and (number <= low if above_low else number < low)
    too_high = high is not None and (number >= high if below_high else number > high)
    if number != number or too_low or too_high:  # number != number: NaN
        left = "(" if above_low or low is None else "["
        right = ")" if below_high or high is None else "]"
        bounds = f"{left}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}{right}"
        raise ConfigError(f"{owner}: {name} must be in {bounds}, got {value!r}")
    return number


class Method:
    """Base class: ``name`` identifies the method in results; ``level`` is the VQ-VAE level it works at."""

    name = "method"
    needs_grad = False  # True: ``apply`` optimises with gradients (cannot run under inference mode)

    def __init__(self, level: int = 2) -> None:
        self.level = int(in_range(self.name, "level", level, 0))

    @property
    def label(self) -> str:
        """The method's name in results and reports: ``name``, unless its settings make it another row."""
        return self.name

    def settings(self) -> dict:
        """Constructor arguments and their values, for metadata and cache keys."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        values = {n: getattr(self, n) for n in names}
        return {"name": self.name, **{n: asdict(v) if is_dataclass(v) else v for n, v in values.items()}}

    def validate(self, model: VQVAE) -> None:
        """Raise a clear error for settings that do not fit ``model`` (before any audio is processed)."""
        model.hop_length(self.level)

    def analyse(self, model: VQVAE, style: StyleAudio, style_name: str = "style") -> object:
        """The style's analysis, from its audio (B, 1, T) or its consecutive windows: methods whose analysis is a
        statistic over time accumulate it over every window. ``style_name`` (e.g. its file) matters only to
        methods whose ``style_key`` says so. The base class needs no analysis and reads nothing."""
        return None

    def style_key(self, style_name: str) -> str:
        """What of the style's name (e.g. its file) the analysis depends on: nothing, for methods that hear only
        its audio. The engine caches analyses under the audio's hash and this key."""
        return ""

    def apply(self, model: VQVAE, content: torch.Tensor, analysis: object) -> MethodOutput:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.settings().items() if k != 'name')})"


def require_gradients(methods: Iterable[Method]) -> None:
    """One line, before any audio is processed, when a method that optimises with gradients would run
    under torch.inference_mode, where no gradient can be taken."""
    needing = [method.name for method in methods if method.needs_grad]
    if needing and torch.is_inference_mode_enabled():
        raise ConfigError(f"method(s) {', '.join(needing)} optimise with gradients: set trainer.inference_mode=false")


def quantised_latent(model: VQVAE, audio: torch.Tensor, level: int) -> torch.Tensor:
    """The paper's F_pre: encoder, then quantisation to the nearest codes."""
    return model.dequantise(model.encode(audio, level), level)


class Identity(Method):
    """Plain reconstruction: the baseline every method is compared with."""

    name = "identity"

    def apply(self, model: VQVAE, content: torch.Tensor, analysis: object) -> MethodOutput:
        return MethodOutput(model.reconstruct(content, self.level))
