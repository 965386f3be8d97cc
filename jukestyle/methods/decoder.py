"""Transfer with a trained decoder: the content's codes rendered by a decoder that learnt the target's timbre.

A decoder trained on one instrument's audio (``experiment=train_decoder``: encoder and
codebook frozen) renders any codes of its base model in that instrument's timbre. The
content goes through the frozen encoder and codebook, so what it plays stays what the
encoder heard; the decoder supplies the timbre. The style recording is therefore not
needed: with ``alpha`` 0 (the default) it is ignored, since the decoder already is the
style. With ``alpha`` > 0 the quantised latent is first moved toward the style
recording's channel statistics (AdaIN at the latent, blended by ``alpha``), for a style
closer to one recording than to the decoder's training audio.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

from jukestyle.errors import ConfigError
from jukestyle.jukebox import VQVAE
from jukestyle.jukebox.decoder_checkpoint import read_decoder, with_decoder
from jukestyle.methods.base import Method, MethodOutput, in_range
from jukestyle.methods.features import AdaIN


class TrainedDecoder(Method):
    """``checkpoint``: a decoder file; ``level``: its level (read from the file when not given)."""

    name = "decoder"

    def __init__(
        self, checkpoint: str | None = None, alpha: float = 0.0, eps: float = 1e-5, level: int | None = None
    ) -> None:
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        trained_level = int(read_decoder(self.checkpoint)["level"]) if self.checkpoint else None
        if level is not None and trained_level is not None and int(level) != trained_level:
            raise ConfigError(f"decoder: {self.checkpoint} is a level-{trained_level} decoder, not level {level}")
        super().__init__(level if level is not None else trained_level if trained_level is not None else 2)
        self.alpha = in_range(self.name, "alpha", alpha, 0.0, 1.0)
        self.eps = in_range(self.name, "eps", eps, 0.0, above_low=True)
        self._latent_adain = AdaIN(self.level, ["latent"], self.alpha, self.eps)
        self._rendering: dict[int, VQVAE] = {}  # id(base model) -> the base model with the trained decoder

    def rendering_model(self, model: VQVAE) -> VQVAE:
        """``model`` with the trained decoder in place of its own (built once per model)."""
        if self.checkpoint is None:
            raise ConfigError("decoder: set method.checkpoint=<decoder file> (train one with experiment=train_decoder)")
        if id(model) not in self._rendering:
            self._rendering[id(model)] = with_decoder(model, Path(self.checkpoint))[0]
        return self._rendering[id(model)]

    def validate(self, model: VQVAE) -> None:
        super().validate(model)
        self.rendering_model(model)

    def analyse_windows(self, model: VQVAE, windows: Iterable[torch.Tensor]) -> object:
        if self.alpha == 0:  # the decoder is the style: the recording is not analysed
            return None
        return self._latent_adain.analyse_windows(model, windows)

    def analyse(self, model: VQVAE, style: torch.Tensor) -> object:
        return self.analyse_windows(model, [style])

    def apply(self, model: VQVAE, content: torch.Tensor, analysis: object) -> MethodOutput:
        rendering = self.rendering_model(model)
        if analysis is None:
            return MethodOutput(rendering.reconstruct(content, self.level), {"decoder": self.checkpoint})
        output = self._latent_adain.apply(rendering, content, analysis)
        return MethodOutput(output.audio, {"decoder": self.checkpoint, **output.info})
