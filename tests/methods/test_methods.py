"""Hooks, methods and the shared pipeline on a tiny random VQ-VAE.

A random decoder barely depends on its input, so effects are checked where they
happen: on the features that the next block receives.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from project import REPO, method_options
from signals import harmonic_tone

import jukestyle
from jukestyle.errors import AudioError, ConfigError
from jukestyle.methods import METHODS, AdaIN, CodebookRestriction, GramOptimisation, Identity, make_method
from jukestyle.methods import affine as transforms
from jukestyle.methods.hooks import (
    LATENT,
    feature_hooks,
    hook_points,
    measure_features,
    record_features,
    resolve_points,
)
from jukestyle.pipeline import StyleTransfer

LEVEL = 2


def clip(frequency: float, seconds: float = 0.5, shape: str = "tone") -> torch.Tensor:
    samples = harmonic_tone(frequency, seconds)
    if shape == "square":
        samples = (0.3 * np.sign(samples)).astype(np.float32)
    return torch.from_numpy(samples).view(1, 1, -1)


def input_of(model, level: int, name: str):
    """A context manager capturing what the block after ``name`` (or the decoder, for the latent) receives."""
    points = hook_points(model, level)
    following = points[points.index(name) + 1]
    module = model.decoder_block(level, following)
    seen = {}
    handle = module.register_forward_pre_hook(lambda m, args: seen.__setitem__("x", args[0]))
    return seen, handle


# -- hooks -----------------------------------------------------------------------------
def test_hook_points_and_their_validation(tiny_model):
    points = hook_points(tiny_model, LEVEL)
    assert points[0] == LATENT and points[1:] == tiny_model.decoder_blocks(LEVEL)
    assert resolve_points(tiny_model, LEVEL, "all") == points
    assert resolve_points(tiny_model, LEVEL, "blocks") == points[1:]
    assert resolve_points(tiny_model, LEVEL, [points[3], LATENT]) == [LATENT, points[3]]  # execution order
    with pytest.raises(
        ConfigError, match=r"unknown hook point 'conv7' at level 2; valid: all, blocks, latent, level_blocks"
    ):
        resolve_points(tiny_model, LEVEL, ["conv7"])


def test_hooks_are_removed_on_exit_and_on_error(tiny_model):
    block = tiny_model.decoder_block(LEVEL, tiny_model.decoder_blocks(LEVEL)[0])
    first = tiny_model.decoders[LEVEL].level_blocks[-1]  # the latent's hook: the first level block run
    with feature_hooks(tiny_model, LEVEL, {LATENT: lambda x: x, block_name(tiny_model): lambda x: x}):
        assert len(block._forward_hooks) == 1 and len(first._forward_pre_hooks) == 1
    assert not block._forward_hooks and not first._forward_pre_hooks

    def failing(x):
        raise RuntimeError("boom")

    latent = torch.zeros(1, tiny_model.config.emb_width, 4)
    with pytest.raises(RuntimeError, match="boom"), feature_hooks(tiny_model, LEVEL, {block_name(tiny_model): failing}):
        tiny_model.decode_latent(latent, LEVEL)
    assert not block._forward_hooks


def block_name(model) -> str:
    return model.decoder_blocks(LEVEL)[0]


def test_transforms_act_iteratively_block_by_block(tiny_model):
    """A transform at block i changes what block i+1 receives; later blocks see the changed features."""
    latent = tiny_model.dequantise(tiny_model.encode(clip(262), LEVEL), LEVEL)
    first, second = tiny_model.decoder_blocks(LEVEL)[:2]
    plain = record_features(tiny_model, LEVEL, latent, [first, second])
    seen, handle = input_of(tiny_model, LEVEL, first)
    try:
        with feature_hooks(tiny_model, LEVEL, {first: lambda x: x * 2.0}):
            changed = record_features(tiny_model, LEVEL, latent, [second])
    finally:
        handle.remove()
    torch.testing.assert_close(seen["x"], plain[first] * 2.0)
    assert not torch.allclose(changed[second], plain[second])


def test_measuring_keeps_one_statistic_per_point_and_stops_after_the_last(tiny_model):
    latent = tiny_model.dequantise(tiny_model.encode(clip(262), LEVEL), LEVEL)
    blocks = tiny_model.decoder_blocks(LEVEL)
    plain = record_features(tiny_model, LEVEL, latent, [LATENT, blocks[1]])
    ran = []
    handle = tiny_model.decoder_block(LEVEL, blocks[2]).register_forward_hook(lambda *args: ran.append(True))
    try:
        means = measure_features(tiny_model, LEVEL, latent, {LATENT: torch.mean, blocks[1]: torch.mean})
    finally:
        handle.remove()
    assert means == {LATENT: plain[LATENT].mean(), blocks[1]: plain[blocks[1]].mean()}
    assert not ran  # nothing after the last point was computed


# -- methods ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", [AdaIN(points="all"), make_method("wct")])
def test_feature_methods_give_each_point_the_style_statistics(tiny_model, method):
    content, style = clip(262), clip(392, shape="square")
    analysis = method.analyse(tiny_model, style)
    assert list(analysis) == hook_points(tiny_model, LEVEL)
    point = tiny_model.decoder_blocks(LEVEL)[4]
    seen, handle = input_of(tiny_model, LEVEL, point)
    try:
        method.apply(tiny_model, content, analysis)
    finally:
        handle.remove()
    style_features = record_features(
        tiny_model, LEVEL, tiny_model.dequantise(tiny_model.encode(style, LEVEL), LEVEL), [point]
    )[point]
    torch.testing.assert_close(seen["x"].mean(-1), style_features.mean(-1), atol=1e-3, rtol=1e-3)
    if isinstance(method, AdaIN):
        torch.testing.assert_close(
            transforms.mean_std(seen["x"]).std, transforms.mean_std(style_features).std, atol=1e-3, rtol=1e-3
        )


def exaggerated(stats):
    """Style statistics (MeanStd or ColourStats) with the mean moved and the spread (std or colouring) doubled."""
    spread = dataclasses.fields(stats)[1].name
    return dataclasses.replace(stats, mean=stats.mean + 0.5, **{spread: 2.0 * getattr(stats, spread)})


@pytest.mark.parametrize("alpha", [0.5, 1.0])
@pytest.mark.parametrize("name", ["adain", "wct"])
def test_last_transform_folded_into_the_output_convolution_gives_the_same_audio(tiny_model, name, alpha):
    """apply() folds the last block's transform into the decoder's ``out`` convolution; the audio must be what
    transforming the last block's features through a hook, like every other point, gives."""
    content, style = clip(262, seconds=0.25), clip(392, seconds=0.25, shape="square")
    method = make_method(name, alpha=alpha)
    # a style far from the content: the tiny random decoder's features have about the same statistics for any input
    analysis = {point: exaggerated(stats) for point, stats in method.analyse(tiny_model, style).items()}
    last = tiny_model.decoder_blocks(LEVEL)[-1]

    def hooked(point):
        return lambda features: method.blended_map(features, analysis[point]).apply(features.clone())

    with torch.inference_mode():
        latent = tiny_model.dequantise(tiny_model.encode(content, LEVEL), LEVEL)
        plain = tiny_model.decode_latent(latent, LEVEL)
        for points in (list(analysis), [last], [LATENT]):  # every point; the last alone; without the last
            with feature_hooks(tiny_model, LEVEL, {point: hooked(point) for point in points}):
                reference = tiny_model.decode_latent(latent, LEVEL)
            audio = method.apply(tiny_model, content, {point: analysis[point] for point in points}).audio
            torch.testing.assert_close(audio, reference, atol=1e-6, rtol=1e-5)
            # the transforms do take effect, far beyond the rounding between the two ways
            assert (audio - plain).abs().max() > 100 * (audio - reference).abs().max()


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_alpha_blends_transformed_and_original_features(tiny_model, alpha):
    content, style = clip(262), clip(392, shape="square")
    point = tiny_model.decoder_blocks(LEVEL)[2]
    with torch.no_grad():  # as apply() runs: the residual blocks' inference path
        latent = tiny_model.dequantise(tiny_model.encode(content, LEVEL), LEVEL)
        plain = record_features(tiny_model, LEVEL, latent, [point])
    method = AdaIN(alpha=alpha)
    analysis = method.analyse(tiny_model, style)
    seen, handle = input_of(tiny_model, LEVEL, point)
    with torch.no_grad():
        try:
            method.apply(tiny_model, content, {point: analysis[point]})  # transform at this point only
        finally:
            handle.remove()
    transformed = transforms.adain(plain[point], style_stats=analysis[point])
    torch.testing.assert_close(seen["x"], alpha * transformed + (1 - alpha) * plain[point], atol=1e-6, rtol=1e-6)
    if alpha == 0.0:
        assert torch.equal(seen["x"], plain[point])


def test_codebook_output_uses_only_style_codes(tiny_model, monkeypatch):
    content, style = clip(262), clip(392, shape="square")
    method = CodebookRestriction()
    style_codes = method.analyse(tiny_model, style)
    decoded = {}
    real_decode = type(tiny_model).decode

    def spying_decode(self, codes, level):
        decoded["codes"] = codes
        return real_decode(self, codes, level)

    monkeypatch.setattr(type(tiny_model), "decode", spying_decode)
    method.apply(tiny_model, content, style_codes)
    assert set(decoded["codes"].unique().tolist()) <= set(style_codes.unique().tolist())


@pytest.mark.parametrize("output", ["raw", "decoded"])
def test_gram_loss_decreases_and_output_is_chosen(tiny_model, output):
    content, style = clip(262), clip(392, shape="square")
    method = GramOptimisation(layers={1: "all", 2: "all"}, lbfgs={"max_iter": 8}, output=output)
    result = method.apply(tiny_model, content, method.analyse(tiny_model, style))
    curve = result.info["loss_curve"]
    assert len(curve) > 2 and curve[-1] < 0.9 * curve[0]
    assert result.audio.shape == (1, 1, content.shape[-1] // 128 * 128 if output == "decoded" else content.shape[-1])
    assert result.audio.abs().max() <= 1.0 or output == "decoded"


def test_gram_refuses_inference_mode(tiny_model):
    method = GramOptimisation(lbfgs={"max_iter": 2})
    analysis = method.analyse(tiny_model, clip(392))
    with (
        torch.inference_mode(),
        pytest.raises(ConfigError, match=r"gram optimise with gradients: set trainer\.inference_mode=false"),
    ):
        method.apply(tiny_model, clip(262), analysis)


def test_unknown_names_list_the_valid_ones(tiny_model):
    with pytest.raises(ConfigError, match="unknown method 'style'; methods: identity, codebook, gram, adain, wct"):
        make_method("style")
    with pytest.raises(ConfigError, match="bad option for method 'adain'"):
        make_method("adain", cutoff=1.0)
    with pytest.raises(ConfigError, match=r"unknown encoder block 'nope' at level 2; valid: all, level_blocks\.0"):
        GramOptimisation(layers={2: ["nope"]}).validate(tiny_model)
    with pytest.raises(ConfigError, match=r"level must be one of \[0, 1, 2\], got 5"):
        Identity(level=5).validate(tiny_model)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_configs_hold_the_class_defaults(name):
    """configs/method/<name>.yaml and jukestyle.transfer(method=<name>) use the same settings."""
    config = yaml.safe_load((REPO / "configs" / "method" / f"{name}.yaml").read_text())
    target = config.pop("_target_")
    assert target == f"jukestyle.methods.{METHODS[name].__name__}"
    if config["level"] == "${model.transfer_level}":  # the model's level, as jukestyle.transfer takes it
        config["level"] = METHODS[name]().level
    assert METHODS[name](**config).settings() == METHODS[name]().settings()


@pytest.mark.parametrize("name", ["bundled", "jukebox_5b", "tiny_random", "random_jukebox_5b"])
def test_each_model_config_says_the_level_its_model_serves_best(name):
    """configs/model/<name>.yaml's transfer_level is the one the model gets in Python (jukestyle.transfer)."""
    from jukestyle.jukebox.factory import TRANSFER_LEVELS

    config = yaml.safe_load((REPO / "configs" / "model" / f"{name}.yaml").read_text())
    expected = TRANSFER_LEVELS.get(config.get("source"), 2)
    assert config["transfer_level"] == expected


# -- the shared pipeline and jukestyle.transfer --------------------------------------------
def test_style_is_analysed_once_and_cached(tiny_model):
    calls = []
    method = AdaIN()
    real = method.analyse
    method.analyse = lambda model, windows, name: calls.append(1) or real(model, windows, name)
    engine = StyleTransfer(tiny_model, method)
    style = harmonic_tone(392, 0.5)
    first = engine(harmonic_tone(262, 0.5), style)
    second = engine(harmonic_tone(330, 0.5), style)
    assert len(calls) == 1 and not first.info["style_cached"] and second.info["style_cached"]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_silence_in_and_out_is_finite(tiny_model, tiny_decoders, method):
    silence = np.zeros(22050, dtype=np.float32)
    options = method_options(method, 2, tiny_decoders)
    for content, style in ((silence, harmonic_tone(392, 0.5)), (harmonic_tone(262, 0.5), silence)):
        out = jukestyle.transfer(content, style, method=method, model=tiny_model, **options)
        assert np.isfinite(out).all() and len(out) > 0


def test_too_short_audio_is_a_clear_error(tiny_model):
    with pytest.raises(AudioError, match=r"content: 100 samples is shorter than one latent frame at level 2 \(128\)"):
        jukestyle.transfer(np.ones(100, np.float32) * 0.1, harmonic_tone(392, 0.5), model=tiny_model)


def test_transfer_takes_paths_in_any_format_and_rate(tiny_model, tmp_path):

    stereo = np.stack([harmonic_tone(262, 0.5, 22050), harmonic_tone(262, 0.5, 22050)], axis=1)
    sf.write(tmp_path / "content.flac", stereo, 22050)
    sf.write(tmp_path / "style.wav", harmonic_tone(392, 0.5), 44100)
    out = jukestyle.transfer(tmp_path / "content.flac", str(tmp_path / "style.wav"), method="wct", model=tiny_model)
    assert out.dtype == np.float32 and abs(len(out) - 22050) < 128
    with pytest.raises(AudioError, match=r"missing\.wav: no such audio file"):
        jukestyle.transfer(tmp_path / "missing.wav", tmp_path / "style.wav", model=tiny_model)


@pytest.mark.parametrize("level", [0, 1])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_runs_at_the_lower_levels(tiny_model, tiny_decoders, method, level):
    options = method_options(method, level, tiny_decoders)
    content, style = harmonic_tone(262, 0.3), harmonic_tone(392, 0.3)
    out = jukestyle.transfer(content, style, method=method, model=tiny_model, level=level, **options)
    assert np.isfinite(out).all() and abs(len(out) - len(content)) < tiny_model.hop_length(level)
