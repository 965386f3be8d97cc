"""Long audio: windows with crossfades, streaming style statistics and loudness, files in blocks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import soundfile as sf
import torch
from signals import harmonic_tone

import jukestyle
from jukestyle.audio.io import LoudnessMeter, loudness
from jukestyle.methods import Method, MethodOutput, make_method
from jukestyle.methods import affine as transforms
from jukestyle.pipeline import StyleTransfer
from jukestyle.streaming import AudioFileReader, OverlapAdd, window_bounds

RATE = 44100


class PassThrough(Method):
    """Returns the content it is given: isolates the windowing and crossfades from the model."""

    name = "pass_through"

    def apply(self, model, content, analysis) -> MethodOutput:
        return MethodOutput(content.clone())


@pytest.mark.parametrize(
    ("total", "window", "overlap"), [(1000, 1000, 100), (1001, 400, 100), (5000, 512, 128), (1030, 512, 0)]
)
def test_windows_cover_the_audio_with_fixed_overlaps(total, window, overlap):
    bounds = window_bounds(total, window, overlap)
    assert bounds[0][0] == 0 and bounds[-1][1] == total
    for (start, stop), (next_start, _) in itertools.pairwise(bounds):
        assert stop - start == window and stop - next_start == overlap
    if len(bounds) > 1:  # the last window is never a sliver
        assert window // 2 <= bounds[-1][1] - bounds[-1][0] < window * 3 // 2


def test_crossfaded_windows_of_an_unchanged_signal_give_the_signal_back():
    signal = np.random.default_rng(0).standard_normal(5000).astype(np.float32)
    bounds = window_bounds(len(signal), 512, 128)
    joined = OverlapAdd(128)
    out = np.concatenate([joined.push(signal[a:b], last=i == len(bounds) - 1) for i, (a, b) in enumerate(bounds)])
    np.testing.assert_allclose(out, signal, atol=1e-6)


def test_style_moments_summed_over_windows_equal_the_whole_styles():
    features = torch.randn(1, 6, 900, dtype=torch.float64) * torch.arange(1, 7)[None, :, None] + 3.0
    whole = transforms.moments(features)
    summed = transforms.moments(features[..., :300]) + transforms.moments(features[..., 300:])
    streamed, direct = transforms.adain_stats(summed), transforms.adain_stats(features.float())
    torch.testing.assert_close(streamed.mean, direct.mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(streamed.std, direct.std, rtol=1e-5, atol=1e-5)
    colour_streamed, colour_direct = transforms.wct_stats(summed), transforms.wct_stats(features)
    torch.testing.assert_close(colour_streamed.colouring, colour_direct.colouring, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(whole.covariance(), summed.covariance())


@pytest.mark.parametrize("method", ["adain", "wct", "codebook", "gram"])
def test_a_style_analysed_in_windows_matches_one_analysed_whole(tiny_model, method):
    style = torch.from_numpy(harmonic_tone(196.0, 1.0)).view(1, 1, -1)
    chosen = make_method(method, lbfgs={"max_iter": 1}) if method == "gram" else make_method(method)
    whole = chosen.analyse(tiny_model, style)
    hop = tiny_model.hop_length(2) * 40
    windows = [style[..., i : i + hop] for i in range(0, style.shape[-1], hop)]
    streamed = chosen.analyse(tiny_model, windows)
    if method == "codebook":  # every code any window uses; window edges change a few codes
        union = set().union(*(chosen.analyse(tiny_model, window).reshape(-1).tolist() for window in windows))
        assert set(streamed.reshape(-1).tolist()) == union
        assert len(union & set(whole.reshape(-1).tolist())) >= 0.8 * whole.unique().numel()
    elif method == "gram":
        for key, gram in whole["grams"].items():  # window edges see zero padding: close, not equal
            assert torch.linalg.norm(streamed["grams"][key] - gram) < 0.1 * torch.linalg.norm(gram), key
    else:
        for point, stats in whole.items():
            assert torch.allclose(streamed[point].mean, stats.mean, rtol=0.1, atol=0.05 * float(stats.mean.abs().max()))


def test_the_streaming_loudness_meter_agrees_with_pyloudnorm():
    rng = np.random.default_rng(1)
    signal = np.concatenate([harmonic_tone(220, 2.0), 0.01 * rng.standard_normal(RATE).astype(np.float32)])
    meter = LoudnessMeter(RATE)
    for block in np.array_split(signal, 17):
        meter.update(block)
    assert meter.integrated() == pytest.approx(loudness(signal, RATE), abs=1e-6)
    silent = LoudnessMeter(RATE)
    silent.update(np.zeros(RATE))
    assert silent.integrated() == float("-inf")
    click = harmonic_tone(440, 0.05)  # shorter than one gating block: measured looped, as in memory, not as silence
    short = LoudnessMeter(RATE)
    for block in np.array_split(click, 3):
        short.update(block)
    assert np.isfinite(short.integrated()) and short.integrated() == pytest.approx(loudness(click, RATE), abs=1e-9)


def test_long_content_goes_through_windows_and_files_through_blocks(tiny_model, tmp_path):
    content = np.concatenate([harmonic_tone(220.0, 1.5), harmonic_tone(330.0, 1.5)])
    style = harmonic_tone(196.0, 1.0, partials=3)
    engine = StyleTransfer(tiny_model, PassThrough(level=2), window_seconds=0.5, overlap_seconds=0.1)
    result = engine(content, style)
    windows = len(window_bounds(len(content), engine.window, engine.overlap))
    assert result.info["windows"] == windows > 5
    np.testing.assert_allclose(result.audio, content - content.mean(), atol=1e-5)
    sf.write(tmp_path / "content.flac", content, 22050 * 2, subtype="PCM_24")
    sf.write(tmp_path / "style.wav", np.stack([style, style], axis=1), RATE)  # stereo: mixed down
    streamed = engine.transfer_file(tmp_path / "content.flac", tmp_path / "style.wav", tmp_path / "out.wav")
    written, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    assert rate == RATE and streamed.info["windows"] == windows
    np.testing.assert_allclose(written, content - content.mean(), atol=1e-4)  # 24-bit input
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.flac", "out.wav", "style.wav"]


def test_the_real_model_gives_the_same_output_from_files_as_from_arrays(tiny_model, tmp_path):
    content, style = harmonic_tone(220.0, 2.0), harmonic_tone(330.0, 1.0, partials=3)
    sf.write(tmp_path / "content.wav", content, RATE, subtype="FLOAT")
    sf.write(tmp_path / "style.wav", style, RATE, subtype="FLOAT")
    engine = StyleTransfer(tiny_model, make_method("adain"), window_seconds=0.5, overlap_seconds=0.1)
    in_memory = engine(content, style).audio
    engine.transfer_file(tmp_path / "content.wav", tmp_path / "style.wav", tmp_path / "out.wav")
    written, _ = sf.read(tmp_path / "out.wav", dtype="float32")
    np.testing.assert_allclose(written[: len(in_memory)], in_memory, atol=1e-4)


def test_a_file_reader_reads_windows_once_each(tmp_path):
    signal = np.random.default_rng(2).standard_normal(10000).astype(np.float32)
    sf.write(tmp_path / "a.wav", signal, RATE, subtype="FLOAT")
    reader = AudioFileReader(tmp_path / "a.wav", RATE)
    bounds = window_bounds(reader.frames, 3000, 500)
    for (start, stop), window in zip(bounds, reader.windows(bounds), strict=True):
        np.testing.assert_array_equal(window, signal[start:stop])


def test_the_api_streams_files(tiny_model, tmp_path):

    sf.write(tmp_path / "content.wav", harmonic_tone(220.0, 1.2), RATE)
    sf.write(tmp_path / "style.wav", harmonic_tone(330.0, 0.8, partials=3), RATE)
    info = jukestyle.transfer_file(
        tmp_path / "content.wav", tmp_path / "style.wav", tmp_path / "out.wav", method="wct", model=tiny_model
    )
    written, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    assert rate == RATE and abs(len(written) - 1.2 * RATE) < tiny_model.hop_length(2)
    assert np.isfinite(written).all() and info["windows"] == 1 and "total" in info["seconds"]
