"""Look inside the encoder: frequency sweeps in, channel activations out (the paper's supplementary).

The paper's hypothesis is that encoder channels act as filters with their own
frequency responses. A sweep whose instantaneous frequency is known at every
instant turns a channel's activation over time into its response against
frequency. This module holds the pieces, as plain functions on numpy arrays:

- ``frequency_sweep``: linear (chirp), chromatic-scale and major-scale sweeps with
  their frequency plan;
- ``encoder_layers``: every convolution of a level's encoder with its channel
  count, hop and Nyquist frequency (deeper layers run at lower rates);
- ``record_activations``: a layer's output for some audio, through forward hooks;
- ``channel_activity``: every channel's mean rectified activation, per layer (channel maps);
- ``channel_response``: a channel's activation against the sweep's frequency;
- ``activation_audio``: a channel's activation resampled to an audible rate.

The Streamlit app (``scripts/channel_explorer.py``) and the channel maps
(``jukestyle.inspect.channel_maps``) are built on these.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import soxr
import torch

from jukestyle.errors import ConfigError
from jukestyle.jukebox import VQVAE
from jukestyle.jukebox.hooks import StopForward, forward_hooks
from jukestyle.jukebox.layers import Conv1d

SWEEP_KINDS = ("linear", "chromatic", "major")
# Semitone steps of one octave of the major scale (whole, whole, half, whole, whole, whole, half).
MAJOR_STEPS = (2, 2, 1, 2, 2, 2, 1)
# Fades at both ends keep the sweep's own onset and offset from exciting every channel at once.
_FADE_SECONDS = 0.005


@dataclass(frozen=True)
class Sweep:
    """A sine sweep and its plan: ``frequency[i]`` is the instantaneous frequency (Hz) at sample ``i``."""

    kind: str
    audio: np.ndarray
    frequency: np.ndarray
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate

    def frequency_at(self, seconds: np.ndarray) -> np.ndarray:
        """The planned frequency at the given times (s), held constant beyond either end."""
        index = np.clip(np.round(np.asarray(seconds) * self.sample_rate).astype(int), 0, len(self.frequency) - 1)
        return self.frequency[index]


def _check_sweep(f_start: float, f_end: float, seconds: float, sample_rate: int) -> None:
    if sample_rate <= 0:
        raise ConfigError(f"sweep sample rate must be positive, got {sample_rate}")
    if seconds <= 0 or seconds * sample_rate < 1:
        raise ConfigError(f"sweep duration must be at least one sample, got {seconds} s")
    if not 0 < f_start < f_end:
        raise ConfigError(f"sweep needs 0 < f_start < f_end, got f_start={f_start} Hz, f_end={f_end} Hz")
    if f_end > sample_rate / 2:
        raise ConfigError(f"sweep f_end={f_end} Hz is above the Nyquist frequency of {sample_rate} Hz audio")


def _synthesise(kind: str, frequency: np.ndarray, sample_rate: int, amplitude: float) -> Sweep:
    """A sine whose phase integrates the planned frequency: continuous phase, no clicks between notes."""
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    audio = amplitude * np.sin(phase - phase[0])
    fade = min(int(_FADE_SECONDS * sample_rate), len(audio) // 2)
    if fade:
        ramp = np.sin(np.linspace(0, np.pi / 2, fade)) ** 2
        audio[:fade] *= ramp
        audio[len(audio) - fade :] *= ramp[::-1]
    return Sweep(kind, audio.astype(np.float32), frequency.astype(np.float32), sample_rate)


def linear_sweep(f_start: float, f_end: float, seconds: float, sample_rate: int, amplitude: float = 0.5) -> Sweep:
    """A chirp whose frequency rises linearly from ``f_start`` to ``f_end``."""
    _check_sweep(f_start, f_end, seconds, sample_rate)
    samples = round(seconds * sample_rate)
    frequency = f_start + (f_end - f_start) * np.arange(samples) / samples
    return _synthesise("linear", frequency, sample_rate, amplitude)


def scale_frequencies(f_start: float, f_end: float, steps: Sequence[int]) -> np.ndarray:
    """The notes of a scale starting at ``f_start`` (equal temperament), ``steps`` semitones apart (cycled),
    up to ``f_end`` inclusive."""
    notes, semitones = [], 0
    while (note := f_start * 2 ** (semitones / 12)) <= f_end * (1 + 1e-9):
        notes.append(note)
        semitones += steps[(len(notes) - 1) % len(steps)]
    return np.array(notes)


def scale_sweep(
    f_start: float,
    f_end: float,
    seconds: float,
    sample_rate: int,
    steps: Sequence[int] = (1,),
    amplitude: float = 0.5,
    kind: str = "chromatic",
) -> Sweep:
    """The notes of ``scale_frequencies`` one after another, all of equal length, filling ``seconds``."""
    _check_sweep(f_start, f_end, seconds, sample_rate)
    notes = scale_frequencies(f_start, f_end, steps)
    samples = round(seconds * sample_rate)
    if samples < len(notes):
        raise ConfigError(f"a {seconds} s sweep is too short for {len(notes)} notes at {sample_rate} Hz")
    frequency = notes[np.arange(samples) * len(notes) // samples]
    return _synthesise(kind, frequency, sample_rate, amplitude)


def frequency_sweep(
    kind: str, f_start: float, f_end: float, seconds: float, sample_rate: int, amplitude: float = 0.5
) -> Sweep:
    """``kind``: ``linear`` (chirp), ``chromatic`` (every semitone) or ``major`` (a major scale from f_start)."""
    if kind == "linear":
        return linear_sweep(f_start, f_end, seconds, sample_rate, amplitude)
    if kind == "chromatic":
        return scale_sweep(f_start, f_end, seconds, sample_rate, (1,), amplitude, "chromatic")
    if kind == "major":
        return scale_sweep(f_start, f_end, seconds, sample_rate, MAJOR_STEPS, amplitude, "major")
    raise ConfigError(f"unknown sweep kind {kind!r}; valid: {', '.join(SWEEP_KINDS)}")


# -- encoder layers ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EncoderLayer:
    """One convolution of a level's encoder. ``hop``: input samples per output frame."""

    index: int
    name: str
    channels: int
    hop: int
    frame_rate: float

    @property
    def nyquist(self) -> float:
        """The highest frequency this layer's frame rate can represent without aliasing."""
        return self.frame_rate / 2

    @property
    def label(self) -> str:
        return f"{self.index}: {self.name} ({self.channels} ch, {self.hop}x, Nyquist {self.nyquist:.0f} Hz)"


def encoder_layers(model: VQVAE, level: int) -> list[EncoderLayer]:
    """Every convolution of level ``level``'s encoder, in execution order (module order in the encoder is
    execution order: each strided convolution, then its resnet, then the projection to the latent)."""
    encoder = model.encoder(level)
    layers, hop = [], 1
    for name, module in encoder.named_modules():
        if isinstance(module, Conv1d):
            hop *= module.stride[0]
            layers.append(EncoderLayer(len(layers), name, module.out_channels, hop, model.sample_rate / hop))
    return layers


def _run_hooks(
    model: VQVAE,
    audio: np.ndarray | torch.Tensor,
    level: int,
    layers: Sequence[int] | None,
    reduce: Callable[[torch.Tensor], torch.Tensor],
) -> dict[int, np.ndarray]:
    """Run level ``level``'s encoder on mono ``audio`` and return ``reduce(output[0])`` of each requested
    layer (every layer when ``layers`` is None). Reducing inside the hook keeps memory at one layer's output;
    the encoder stops after the deepest requested layer."""
    available = encoder_layers(model, level)
    wanted = list(range(len(available))) if layers is None else sorted(set(layers))
    for index in wanted:
        if not 0 <= index < len(available):
            raise ConfigError(f"encoder layer {index} does not exist at level {level} (0..{len(available) - 1})")
    encoder = model.encoder(level)
    recorded: dict[int, np.ndarray] = {}

    def hook(index: int):
        def record(output: torch.Tensor) -> None:
            recorded[index] = reduce(output[0].detach().float()).cpu().numpy()
            if len(recorded) == len(wanted):
                raise StopForward

        return record

    x = torch.as_tensor(np.asarray(audio, dtype=np.float32)).reshape(1, 1, -1)
    with forward_hooks({encoder.get_submodule(available[i].name): hook(i) for i in wanted}), torch.inference_mode():
        model.encode_latent(x.to(next(model.parameters()).device), level)
    return recorded


def record_activations(
    model: VQVAE, audio: np.ndarray | torch.Tensor, level: int, layers: Sequence[int]
) -> dict[int, np.ndarray]:
    """The output (channels, frames) of each requested encoder layer for mono ``audio`` at the model's rate."""
    return _run_hooks(model, audio, level, layers, lambda output: output.clone(memory_format=torch.contiguous_format))


def channel_activity(
    model: VQVAE, audio: np.ndarray | torch.Tensor, level: int, layers: Sequence[int] | None = None
) -> dict[int, np.ndarray]:
    """How strongly each channel (channels,) of each layer responds to ``audio``: its mean rectified output.

    Rectified because what follows a convolution inside the encoder is a ReLU, so negative output is
    silence to the next layer.
    """
    return _run_hooks(model, audio, level, layers, lambda output: output.clamp(min=0).mean(dim=-1))


def frame_times(layer: EncoderLayer, frames: int) -> np.ndarray:
    """The centre (s) of the input span of each output frame of ``layer``."""
    return (np.arange(frames) + 0.5) / layer.frame_rate


def channel_response(activation: np.ndarray, layer: EncoderLayer, sweep: Sweep) -> tuple[np.ndarray, np.ndarray]:
    """(frequency, activation) pairs for one channel's activation (frames,) recorded on ``sweep``."""
    activation = np.asarray(activation, dtype=np.float32)
    return sweep.frequency_at(frame_times(layer, len(activation))), activation


def activation_audio(activation: np.ndarray, layer: EncoderLayer, sample_rate: int = 22050) -> np.ndarray:
    """A channel's activation as audio: its DC removed, resampled from the layer's frame rate to
    ``sample_rate`` (band-limited, so it holds nothing above the layer's Nyquist) and peak-normalised."""
    signal = np.asarray(activation, dtype=np.float64)
    signal = signal - signal.mean()
    audio = soxr.resample(signal, layer.frame_rate, sample_rate, quality="VHQ")
    peak = np.abs(audio).max()
    return (0.9 * audio / peak if peak > 0 else audio).astype(np.float32)
