"""What one kind of VQ-VAE training trains, and how a batch becomes each level's output: a stage.

``VQVAEPretrainModule`` runs the steps, the losses, the logging and the checkpoints; its stage
decides the rest:

- ``FullStage``: encoder, codebook and decoder (pre-training, fine-tuning);
- ``DecoderStage``: the decoder alone on the frozen encoder's codes (RAVE's and AudioDec's second
  stage), optionally only its last level blocks: a decoder per instrument;
- ``TransferDecoderStage``: the decoder alone, trained to render AdaIN's (or WCT's) transferred
  features, as Huang & Belongie train their decoder: one decoder for any style recording.

A stage is a small object with these methods; a new kind of training is a new stage, not a branch
of the module.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.data import default_collate

from jukestyle.errors import ConfigError
from jukestyle.jukebox import VQVAE
from jukestyle.jukebox.code_cache import CodeCache
from jukestyle.jukebox.vqvae import LevelOutput
from jukestyle.methods import make_method
from jukestyle.methods.features import FeatureTransfer


class FullStage:
    """Encoder, codebook (EMA) and decoder of every chosen level."""

    name = "full"
    trains_encoder = True
    exports_decoder = False

    def attach(self, model: VQVAE, levels: list[int], codebook_init: str) -> None:
        """Check the settings and freeze what this stage does not train (before the optimiser is built)."""

    def parameters(self, model: VQVAE, levels: list[int]) -> Iterator[nn.Parameter]:
        for level in levels:
            for stack in (model.encoders, model.decoders):
                yield from (p for p in stack[level].parameters() if p.requires_grad)

    def prepare(self, module, corpus) -> None:
        """Once at the start of training, with the training corpus (``TrainingCorpus``)."""
        if module.resumed:
            return
        frames_per_batch = corpus.batch_size * corpus.crop_length
        for level in module.levels:
            codebook = module.model.bottleneck[level]
            if module.hparams.codebook_init == "data":
                codebook.initialised.fill_(False)  # Jukebox's init_k: the first batch seeds the codebook
            else:
                codebook.resume_ema(frames_per_batch // module.model.hop_length(level))  # Jukebox's restore_k

    def outputs(self, module, batch: dict, training: bool) -> dict[int, LevelOutput]:
        # The model hears the batch's input (another instrument's version of the audio, when the data has
        # them) and is asked for its audio: reconstruction, or a decoder's translation into the target's timbre.
        audio = batch.get("input", batch["audio"])
        return module.model(audio, levels=module.levels, update_codebook=training, train_encoder=True)

    def info(self) -> dict:
        """What this stage adds to the model's record of its training."""
        return {"stage": self.name}

    def examples(self, module, datamodule, count: int, seconds: float) -> tuple[dict, dict]:
        """Audio to hear at a validation ({name: mono array}): the outputs, and what they came from. Here the
        reconstructions of the first ``count`` validation clips (cut to ``seconds``) at every level; where the
        data has other instruments' versions, the model hears one of those (a translation into the target)."""
        clips = getattr(datamodule, "val_clips", [])[:count]
        versions = getattr(datamodule, "val_inputs", None)
        if versions:  # the last version, then the one before: other instruments, usually
            clips = [versions[-1 - index % len(versions)][index] for index in range(len(clips))]
        model, rate = module.model, module.model.sample_rate
        outputs, sources = {}, {}
        for index, clip in enumerate(clips):
            for level in module.levels:
                hop = model.hop_length(level)
                piece = clip[: int(seconds * rate) // hop * hop]
                if len(piece):
                    audio = torch.from_numpy(piece).view(1, 1, -1).to(module.device)
                    outputs[f"L{level}/clip{index}"] = model.reconstruct(audio, level).reshape(-1).float().cpu().numpy()
            sources[f"clip{index}"] = clip[: int(seconds * rate)]
        return outputs, sources


class DecoderStage(FullStage):
    """The decoders of the chosen levels on their frozen encoders' codes.

    ``trained_blocks``: train only the decoder's last ``trained_blocks`` level blocks and its output
    convolution, the earlier ones frozen (None: all). ``cache_codes``: encode the training corpus once
    and slice each crop's codes from it (the encoder is frozen, so they never change).
    """

    name = "decoder"
    trains_encoder = False
    exports_decoder = True

    def __init__(self, trained_blocks: int | None = None, cache_codes: bool = True) -> None:
        self.trained_blocks = None if trained_blocks is None else int(trained_blocks)
        self.cache_codes = bool(cache_codes)
        self.cache: CodeCache | None = None

    def attach(self, model: VQVAE, levels: list[int], codebook_init: str) -> None:
        if codebook_init != "keep":
            raise ConfigError(
                f"task.module.stage={self.name} trains the decoder of a trained model: set codebook_init=keep"
            )
        for level in levels:  # frozen: no gradients, and DDP does not wait for any
            model.encoders[level].requires_grad_(False)
            self._freeze_early_blocks(model, level)

    def _freeze_early_blocks(self, model: VQVAE, level: int) -> None:
        # A decoder runs its level blocks from the last to the first, which makes the waveform. Keeping the blocks at
        # the code rate as trained kept more of the contents' pitch in a fine-tune on one instrument (README).
        if self.trained_blocks is None:
            return
        blocks = model.decoders[level].level_blocks
        if not 1 <= self.trained_blocks <= len(blocks):
            raise ConfigError(
                f"task.module.stage.trained_blocks must be between 1 and {len(blocks)} (level {level}'s decoder "
                f"blocks), got {self.trained_blocks}"
            )
        for block in blocks[self.trained_blocks :]:
            block.requires_grad_(False)

    def parameters(self, model: VQVAE, levels: list[int]) -> Iterator[nn.Parameter]:
        for level in levels:
            yield from (p for p in model.decoders[level].parameters() if p.requires_grad)

    def prepare(self, module, corpus) -> None:
        # resampled crops (data.pitch_shift) are new audio every step: their codes are computed then
        if self.cache_codes and self.cache is None and not corpus.resampled:
            clips = corpus.inputs or corpus.clips
            self.encode_corpus(module.model, module.levels, clips, corpus.crop_length, corpus.crop_multiple)

    def encode_corpus(self, model: VQVAE, levels: list[int], clips: list, longest: int, frame: int) -> None:
        """Encode the training clips once (padded to the ``longest`` crop: every crop's codes lie within them);
        training crops, which start on multiples of ``frame`` samples, slice their codes."""
        started = time.monotonic()
        self.cache = CodeCache(model, clips, levels, longest, frame)
        print(f"encoded the training corpus once in {time.monotonic() - started:.0f} s ({self.name} stage)")

    def codes(self, module, level: int, audio: torch.Tensor, clips, starts, training: bool) -> torch.Tensor:
        """The frozen encoder's codes of a batch's crops: sliced from the cache while training, else encoded."""
        if training and self.cache is not None:
            frames = audio.shape[-1] // module.model.hop_length(level)
            return self.cache.crops(level, clips, starts, frames).to(audio.device)
        with torch.no_grad():
            return module.model.encode(audio, level)

    def outputs(self, module, batch: dict, training: bool) -> dict[int, LevelOutput]:
        audio = batch.get("input", batch["audio"])
        clips = batch.get("input_clip", batch["clip"])
        outputs = {}
        for level in module.levels:
            codes = self.codes(module, level, audio, clips, batch["start"], training)
            outputs[level] = LevelOutput(module.model.decode(codes, level), codes, audio.new_zeros(()), {})
        return outputs

    def info(self) -> dict:
        return {"stage": self.name, "trained_blocks": self.trained_blocks}


class TransferDecoderStage(DecoderStage):
    """A decoder trained on transferred features: the content's codes (one instrument's version of a crop),
    AdaIN (or WCT) at the method's points toward the statistics of a style excerpt (another excerpt played by
    the target's instrument), and the target (the target's instrument playing the content's crop).

    ``method``: ``adain`` or ``wct``; ``points``, ``eps``: the method's (``all``: the latent and every
    decoder block, the paper's multi-layer variant). ``style_source``: where the style's statistics are
    measured: ``frozen`` (the base model's decoder, as AdaIN's frozen encoder measures styles) or ``decoder`` (the
    decoder being trained, so that at transfer time the method analyses the style with the decoder that renders
    it; it kept less of held-out contents' pitch, README). ``detach_maps``: the
    maps' coefficients carry no gradient (WCT's eigendecompositions have none that is stable).
    """

    name = "transfer_decoder"

    def __init__(
        self,
        method: str = "adain",
        points: str | list[str] = "all",
        eps: float = 1e-5,
        style_source: str = "frozen",
        detach_maps: bool = False,
        trained_blocks: int | None = None,
        cache_codes: bool = True,
    ) -> None:
        super().__init__(trained_blocks, cache_codes)
        if style_source not in ("decoder", "frozen"):
            raise ConfigError(f"task.module.stage.style_source must be decoder or frozen, got {style_source!r}")
        self.method_name, self.points, self.eps = method, points, float(eps)
        self.style_source, self.detach_maps = style_source, bool(detach_maps)
        self.frozen: VQVAE | None = None
        self.methods: dict[int, FeatureTransfer] = {}

    def attach(self, model: VQVAE, levels: list[int], codebook_init: str) -> None:
        super().attach(model, levels, codebook_init)
        for level in levels:
            method = make_method(self.method_name, level=level, points=self.points, eps=self.eps)
            if not isinstance(method, FeatureTransfer):
                raise ConfigError(f"task.module.stage.method must be adain or wct, got {self.method_name!r}")
            method.validate(model)
            self.methods[level] = method
        if self.style_source == "frozen":
            self.frozen = copy.deepcopy(model).eval().requires_grad_(False)

    def prepare(self, module, corpus) -> None:
        if self.cache is None:  # content and style excerpts are crops of the same clips
            longest = max(corpus.crop_length, corpus.style_length)
            self.encode_corpus(module.model, module.levels, corpus.clips, longest, corpus.crop_multiple)

    def outputs(self, module, batch: dict, training: bool) -> dict[int, LevelOutput]:
        model = module.model
        content, style = batch.get("input", batch["audio"]), batch["style"]
        outputs = {}
        for level in module.levels:
            method = self.methods[level]
            content_codes = self.codes(
                module, level, content, batch.get("input_clip", batch["clip"]), batch["start"], training
            )
            style_codes = self.codes(module, level, style, batch["style_clip"], batch["style_start"], training)
            style_latent = model.dequantise(style_codes, level)
            if self.frozen is not None:
                with torch.no_grad():
                    analysis = method.analyse_latent(self.frozen.to(style.device), style_latent)
            elif self.detach_maps:
                with torch.no_grad():
                    analysis = method.analyse_latent(model, style_latent)
            else:
                analysis = method.analyse_latent(model, style_latent)
            audio = method.decode(model, model.dequantise(content_codes, level), analysis, detach_maps=self.detach_maps)
            outputs[level] = LevelOutput(audio, content_codes, content.new_zeros(()), {})
        return outputs

    def examples(self, module, datamodule, count: int, seconds: float) -> tuple[dict, dict]:
        """The first ``count`` validation items: the transfer at every level, and its content, style and target."""
        val_set = getattr(datamodule, "val_set", None)
        items = [val_set[index] for index in range(min(count, len(val_set)))] if val_set is not None else []
        if not items:
            return {}, {}
        batch = {key: value.to(module.device) if torch.is_tensor(value) else value
                 for key, value in default_collate(items).items()}  # fmt: skip
        outputs, sources = {}, {}
        for level, output in self.outputs(module, batch, training=False).items():
            for index in range(len(items)):
                outputs[f"L{level}/item{index}"] = output.reconstruction[index, 0].float().cpu().numpy()
        for index in range(len(items)):
            for role, key in (("content", "input"), ("style", "style"), ("target", "audio")):
                sources[f"item{index}/{role}"] = batch[key][index, 0].float().cpu().numpy()
        return outputs, sources

    def info(self) -> dict:
        return {
            **super().info(),
            "transfer": {
                "method": self.method_name,
                "points": self.points,
                "eps": self.eps,
                "style_source": self.style_source,
                "detach_maps": self.detach_maps,
            },
        }


STAGES = {stage.name: stage for stage in (FullStage, DecoderStage, TransferDecoderStage)}


def make_stage(stage: str | FullStage) -> FullStage:
    """A stage object, or one by its name with its default settings."""
    if not isinstance(stage, str):
        return stage
    if stage not in STAGES:
        raise ConfigError(f"task.module.stage must be one of {', '.join(STAGES)}, got {stage!r}")
    return STAGES[stage]()
