"""``jukestyle.transfer``: style transfer from notebooks and scripts, on the CLI's code path."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from jukestyle.audio.io import load_audio, prepare_audio
from jukestyle.jukebox import VQVAE, load_vqvae
from jukestyle.methods import make_method
from jukestyle.pipeline import StyleTransfer
from jukestyle.runtime import configure_cpu

AudioInput = str | os.PathLike | np.ndarray


@lru_cache(maxsize=4)
def _model(source: str) -> VQVAE:
    configure_cpu()  # once per process, with the first model: see jukestyle/runtime.py
    return load_vqvae(source)


@lru_cache(maxsize=16)
def _engine(model: VQVAE, method_key: str, input_lufs: float | None) -> StyleTransfer:
    # One engine per (model, method settings) keeps its cache of analysed styles between calls.
    settings = json.loads(method_key)
    return StyleTransfer(model, make_method(settings.pop("name"), **settings), input_lufs)


def _with_level(options: dict, method: str, model: VQVAE, level: int | None) -> dict:
    """The method's settings at ``level``; None: a trained decoder's own level, else the model's
    (``VQVAE.transfer_level``: the level its methods serve best)."""
    if level is None and (method == "decoder" or options.get("decoder") is not None):
        return options
    return {**options, "level": model.transfer_level if level is None else level}


def _samples(source: AudioInput, sample_rate: int, role: str) -> np.ndarray:
    if isinstance(source, np.ndarray):
        return prepare_audio(source, sample_rate, sample_rate, name=role)
    return load_audio(source, sample_rate)


def transfer(
    content: AudioInput,
    style: AudioInput,
    method: str = "adain",
    model: str | VQVAE = "bundled",
    level: int | None = None,
    input_lufs: float | None = -20.0,
    **options,
) -> np.ndarray:
    """Put the timbre of ``style`` onto ``content``; returns mono float32 audio at the model's rate.

    ``content``/``style``: file paths (any format, converted) or mono arrays at the model's rate
    (44.1 kHz). ``method``: identity, codebook, gram, adain or wct, with the project's best
    settings (for adain and wct: every decoder block and the latent, as in the *_multilayer
    experiments), overridden by ``options`` (e.g. ``alpha=0.5``, ``points=["latent"]``); or
    decoder, with ``checkpoint=<a decoder trained by experiment=train_decoder>``; adain and wct
    also take ``decoder=<a transfer decoder>`` (``experiment=train_transfer_decoder``; ``"bundled"``: the
    bundled model's). ``level``: the VQ-VAE level (default: the model's ``transfer_level``, 1 for the
    bundled model; a trained decoder's own).
    ``model``: ``bundled``, ``jukebox_5b``, a checkpoint path or URL, or a loaded ``VQVAE``.
    """
    vqvae = model if isinstance(model, VQVAE) else _model(str(model))
    settings = make_method(method, **_with_level(options, method, vqvae, level)).settings()
    engine = _engine(vqvae, json.dumps(settings, sort_keys=True), input_lufs)
    rate = vqvae.sample_rate
    names = [
        role if isinstance(source, np.ndarray) else str(source)
        for source, role in ((content, "content"), (style, "style"))
    ]
    return engine(_samples(content, rate, "content"), _samples(style, rate, "style"), *names).audio


def transfer_file(
    content: str | os.PathLike,
    style: str | os.PathLike,
    output: str | os.PathLike,
    method: str = "adain",
    model: str | VQVAE = "bundled",
    level: int | None = None,
    input_lufs: float | None = -20.0,
    progress: Callable[[int, int], None] | None = None,
    **options,
) -> dict:
    """Like ``transfer``, for files of any length: read, processed in windows and written (``output``,
    a .wav that appears only when complete) block by block, so memory does not grow with duration.
    ``progress(done, total)`` follows the windows. Returns the timings and details of the run."""
    vqvae = model if isinstance(model, VQVAE) else _model(str(model))
    settings = make_method(method, **_with_level(options, method, vqvae, level)).settings()
    engine = _engine(vqvae, json.dumps(settings, sort_keys=True), input_lufs)
    result = engine.transfer_file(content, style, output, comment=f"jukestyle {method}", progress=progress)
    return {"seconds": result.seconds, **result.info}
