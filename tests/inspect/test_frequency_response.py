"""Frequency sweeps, encoder layers and channel activations (inspect.frequency_response), on a tiny random model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.signal
import torch

from jukestyle.errors import ConfigError
from jukestyle.inspect import frequency_response as probe
from jukestyle.jukebox import build_vqvae
from jukestyle.jukebox.layers import Conv1d

RATE = 8000


@pytest.fixture(scope="module")
def tiny():
    return build_vqvae("tiny", seed=0).eval()


def measured_frequency(sweep: probe.Sweep) -> np.ndarray:
    """Instantaneous frequency from the analytic signal's phase (Hz), one value per sample step."""
    phase = np.unwrap(np.angle(scipy.signal.hilbert(sweep.audio.astype(np.float64))))
    return np.diff(phase) * sweep.sample_rate / (2 * np.pi)


def steady(sweep: probe.Sweep, margin: int) -> np.ndarray:
    """Samples at least ``margin`` away from the ends and from every change of note."""
    changes = np.flatnonzero(np.diff(sweep.frequency)) if sweep.kind != "linear" else np.array([], dtype=int)
    keep = np.zeros(len(sweep.frequency) - 1, dtype=bool)
    keep[margin : len(keep) - margin] = True
    for change in changes:
        keep[max(change - margin, 0) : change + margin] = False
    return keep


@pytest.mark.parametrize("kind", probe.SWEEP_KINDS)
def test_sweep_follows_its_frequency_plan(kind):
    sweep = probe.frequency_sweep(kind, 200.0, 1600.0, 2.0, RATE)
    assert sweep.audio.dtype == np.float32 and len(sweep.audio) == 2 * RATE and sweep.seconds == 2.0
    assert np.abs(sweep.audio).max() <= 0.5 + 1e-6
    keep = steady(sweep, margin=200)
    error = np.abs(measured_frequency(sweep)[keep] - sweep.frequency[:-1][keep]) / sweep.frequency[:-1][keep]
    assert np.median(error) < 0.002 and np.percentile(error, 99) < 0.02
    assert sweep.frequency[0] == pytest.approx(200.0)


def test_linear_sweep_plan_is_a_straight_line():
    sweep = probe.linear_sweep(100.0, 3100.0, 1.5, RATE)
    seconds = np.array([0.0, 0.5, 1.0])
    assert sweep.frequency_at(seconds) == pytest.approx([100.0, 1100.0, 2100.0], rel=1e-3)


def test_scales_step_by_semitones():
    chromatic = probe.scale_frequencies(110.0, 110.0 * 2**7, (1,))
    assert len(chromatic) == 85 and chromatic[12] == pytest.approx(220.0) and chromatic[-1] == pytest.approx(14080.0)
    major = probe.scale_frequencies(220.0, 440.0, probe.MAJOR_STEPS)
    semitones = np.round(12 * np.log2(major / 220.0)).astype(int)
    assert semitones.tolist() == [0, 2, 4, 5, 7, 9, 11, 12]
    sweep = probe.frequency_sweep("major", 220.0, 440.0, 0.8, RATE)
    assert np.unique(sweep.frequency).size == 8  # eight notes of equal length
    assert np.allclose(np.bincount(np.searchsorted(np.unique(sweep.frequency), sweep.frequency)), 0.1 * RATE)


@pytest.mark.parametrize(
    ("kind", "f_start", "f_end", "seconds", "problem"),
    [
        ("linear", 500.0, 100.0, 1.0, "0 < f_start < f_end"),
        ("chromatic", 100.0, 5000.0, 1.0, "above the Nyquist"),
        ("major", 100.0, 200.0, 0.0, "at least one sample"),
        ("sawtooth", 100.0, 200.0, 1.0, "unknown sweep kind"),
    ],
)
def test_bad_sweep_settings_are_config_errors(kind, f_start, f_end, seconds, problem):
    with pytest.raises(ConfigError, match=problem):
        probe.frequency_sweep(kind, f_start, f_end, seconds, RATE)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_encoder_layers_list_every_convolution_with_its_rate(tiny, level):
    layers = probe.encoder_layers(tiny, level)
    convolutions = [module for module in tiny.encoders[level].modules() if isinstance(module, Conv1d)]
    assert [layer.index for layer in layers] == list(range(len(convolutions)))
    assert [layer.channels for layer in layers] == [conv.out_channels for conv in convolutions]
    assert layers[0].hop == 2 and layers[-1].hop == tiny.hop_length(level)
    assert all(b.hop in (a.hop, 2 * a.hop) for a, b in itertools.pairwise(layers))
    assert layers[-1].nyquist == pytest.approx(tiny.sample_rate / tiny.hop_length(level) / 2)
    assert layers[-1].channels == tiny.config.emb_width


def test_recorded_activations_are_the_layer_outputs(tiny):
    audio = probe.linear_sweep(50.0, 8000.0, 0.5, tiny.sample_rate).audio
    layers = probe.encoder_layers(tiny, 2)
    last = len(layers) - 1
    recorded = probe.record_activations(tiny, audio, 2, [0, last])
    with torch.inference_mode():
        latent = tiny.encode_latent(torch.from_numpy(audio).reshape(1, 1, -1), 2)[0].numpy()
    assert recorded[last] == pytest.approx(latent, abs=1e-6)  # the last convolution's output is the latent
    assert recorded[0].shape == (layers[0].channels, len(audio) // 2)
    activity = probe.channel_activity(tiny, audio, 2, [0, last])
    assert activity[0] == pytest.approx(np.maximum(recorded[0], 0).mean(axis=1), rel=1e-5)
    assert set(probe.channel_activity(tiny, audio, 2)) == set(range(len(layers)))
    with pytest.raises(ConfigError, match="encoder layer 999"):
        probe.record_activations(tiny, audio, 2, [999])


def test_channel_response_maps_frames_to_the_sweep_frequency():
    sweep = probe.linear_sweep(100.0, 3900.0, 1.0, RATE)
    layer = probe.EncoderLayer(0, "test", 1, hop=80, frame_rate=RATE / 80)
    frequency, activation = probe.channel_response(np.arange(100.0), layer, sweep)
    # frame k covers samples [80k, 80k + 80): its centre is at (k + 0.5) / 100 s
    assert frequency[0] == pytest.approx(100.0 + 3800.0 * 0.005, rel=1e-3)
    assert frequency[50] == pytest.approx(100.0 + 3800.0 * 0.505, rel=1e-3)
    assert activation.tolist() == list(range(100))


def test_activation_audio_keeps_the_tone_of_the_activation():
    layer = probe.EncoderLayer(0, "test", 1, hop=128, frame_rate=44100 / 128)  # 344.5 frames a second
    frames = np.arange(int(2 * layer.frame_rate))
    activation = 3.0 + np.sin(2 * np.pi * 100.0 * frames / layer.frame_rate)  # a 100 Hz tone on a DC offset
    sound = probe.activation_audio(activation, layer, 22050)
    assert sound.dtype == np.float32 and abs(len(sound) - len(frames) / layer.frame_rate * 22050) <= 2
    assert np.abs(sound).max() == pytest.approx(0.9, abs=1e-3) and abs(sound.mean()) < 0.01
    spectrum = np.abs(np.fft.rfft(sound))
    assert np.fft.rfftfreq(len(sound), 1 / 22050)[np.argmax(spectrum)] == pytest.approx(100.0, abs=1.0)
