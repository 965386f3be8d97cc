"""Transfer with a trained decoder: the content's codes rendered by a decoder that learnt the target's timbre.

A decoder trained on one instrument's audio (``experiment=train_decoder``: encoder and
codebook frozen) renders any codes of its base model in that instrument's timbre. The
content goes through the frozen encoder and codebook, so what it plays stays what the
encoder heard; the decoder supplies the timbre. The style recording is therefore not
needed: with ``alpha`` 0 (the default) its audio is not used, since the decoder already
is the style. With ``alpha`` > 0 the quantised latent is first moved toward the style
recording's channel statistics (AdaIN at the latent, blended by ``alpha``), for a style
closer to one recording than to the decoder's training audio.

``checkpoint`` is one decoder file, or a folder of them named ``<instrument>.pth.tar``:
then each style gets the decoder of its instrument, the part of its file name before the
first '-' (``flute-C4.flac``, ``banjo-oh_susanna.flac``: the naming of ``data/``). Unset,
it is ``checkpoints/decoders``: the bundled model's decoders for the experiments' nine
instruments (see ``checkpoints/decoders/DECODERS.md``).
"""

from __future__ import annotations

from pathlib import Path

from jukestyle.errors import ConfigError
from jukestyle.jukebox import BUNDLED_CHECKPOINT, VQVAE
from jukestyle.methods.base import Method, MethodOutput, StyleAudio, in_range
from jukestyle.methods.features import AdaIN
from jukestyle.methods.rendering import DecoderFiles

SUFFIX = ".pth.tar"
BUNDLED_DECODERS = BUNDLED_CHECKPOINT.parent / "decoders"  # the bundled model's, one per instrument


def style_instrument(style_name: str) -> str:
    """The instrument a style's file name gives: ``data/exp1/flute-C4.flac`` -> ``flute``."""
    return Path(style_name).name.split("-")[0].split(".")[0]


class TrainedDecoder(Method):
    """``checkpoint``: a decoder file or a folder of ``<instrument>.pth.tar`` (unset: the bundled model's, where
    this installation has them); ``level``: theirs when not given."""

    name = "decoder"

    def __init__(
        self, checkpoint: str | None = None, alpha: float = 0.0, eps: float = 1e-5, level: int | None = None
    ) -> None:
        if checkpoint is None and BUNDLED_DECODERS.is_dir():
            checkpoint = BUNDLED_DECODERS
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.by_instrument = self.checkpoint is not None and Path(self.checkpoint).is_dir()
        self._decoders = DecoderFiles(self._decoder_files(), self.name)
        super().__init__(self._decoders.level_for(self.name, level, 2))
        self.alpha = in_range(self.name, "alpha", alpha, 0.0, 1.0)
        self.eps = in_range(self.name, "eps", eps, 0.0, above_low=True)
        self._latent_adain = AdaIN(self.level, ["latent"], self.alpha, self.eps)

    def _decoder_files(self) -> dict[str, Path]:
        """{instrument: file} of a folder, or {"": file} for one file; nothing when no checkpoint is set."""
        if self.checkpoint is None:
            return {}
        if not self.by_instrument:
            return {"": Path(self.checkpoint)}
        files = {path.name.removesuffix(SUFFIX): path for path in sorted(Path(self.checkpoint).glob(f"*{SUFFIX}"))}
        if not files:
            raise ConfigError(f"decoder: {self.checkpoint} holds no decoder (<instrument>{SUFFIX})")
        return files

    def decoder_file(self, style_name: str) -> Path:
        """The decoder for a style: the one file, or the one of the style's instrument."""
        if self.checkpoint is None:
            raise ConfigError("decoder: set method.checkpoint=<decoder file> (train one with experiment=train_decoder)")
        files = self._decoders.files
        if not self.by_instrument:
            return files[""]
        instrument = style_instrument(style_name)
        if instrument not in files:
            raise ConfigError(
                f"decoder: no decoder for {style_name}'s instrument {instrument!r} in {self.checkpoint} "
                f"(it has {', '.join(files)})"
            )
        return files[instrument]

    def validate(self, model: VQVAE) -> None:
        super().validate(model)
        if self.checkpoint is None:
            self.decoder_file("")  # the one line that says what to set
        self._decoders.validate(model)

    def style_key(self, style_name: str) -> str:
        return style_instrument(style_name) if self.by_instrument else ""

    def analyse(self, model: VQVAE, style: StyleAudio, style_name: str = "style") -> dict:
        decoder = self.decoder_file(style_name)
        # alpha 0: the decoder is the style, and the recording is not analysed
        statistics = self._latent_adain.analyse(model, style) if self.alpha > 0 else None
        return {"decoder": decoder, "latent": statistics}

    def apply(self, model: VQVAE, content, analysis: dict) -> MethodOutput:
        rendering = self._decoders.rendering_model(model, analysis["decoder"])
        info = {"decoder": str(analysis["decoder"])}
        if analysis["latent"] is None:
            return MethodOutput(rendering.reconstruct(content, self.level), info)
        output = self._latent_adain.apply(rendering, content, analysis["latent"])
        return MethodOutput(output.audio, {**info, **output.info})
