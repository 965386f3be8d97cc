"""Channel explorer: how does one channel of a Jukebox encoder respond to frequency? (paper supplementary I)

    streamlit run scripts/channel_explorer.py

A sine sweep (linear chirp, chromatic scale or major scale) goes through the chosen
encoder (8x, 32x or 128x); since the sweep's frequency is known at every instant,
a channel's activation over time is its response against frequency. The app shows
that response with the layer's Nyquist frequency, the mel spectrograms of the sweep
and of the activation, and plays the activation as sound. It runs offline on the
bundled model; the official weights are downloaded on first use.
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf
import streamlit as st

from jukestyle.audio.io import resample
from jukestyle.errors import JukestyleError
from jukestyle.evaluation.figures import channel_response_figure, mel_spectrogram_figure
from jukestyle.inspect import frequency_response as probe
from jukestyle.jukebox import VQVAE, build_vqvae, load_vqvae
from jukestyle.runtime import configure_cpu

MODELS = {
    "bundled": "jukestyle_gm: the bundled pre-trained model",
    "jukebox_5b": "jukebox_5b: the official weights (downloaded once)",
    "tiny": "tiny_random: a tiny random model (tests)",
}
ENCODERS = {0: "8x", 1: "32x", 2: "128x"}
ACTIVATION_RATE = 22050  # the rate the activation is played and drawn at


@st.cache_resource(show_spinner="loading the model")
def get_model(source: str) -> VQVAE:
    configure_cpu()  # once per process: see jukestyle/runtime.py
    model = build_vqvae("tiny", seed=0) if source == "tiny" else load_vqvae(source)
    return model.eval()


@st.cache_data(max_entries=16)
def get_sweep(kind: str, f_start: float, f_end: float, seconds: float, sample_rate: int) -> probe.Sweep:
    return probe.frequency_sweep(kind, f_start, f_end, seconds, sample_rate)


@st.cache_data(max_entries=8, show_spinner="running the encoder")
def get_activations(source: str, level: int, layer: int, sweep_settings: tuple) -> np.ndarray:
    """(channels, frames) of one layer for the sweep, at the model's rate (all channels: switching is free)."""
    model, sweep = get_model(source), get_sweep(*sweep_settings)
    audio = resample(sweep.audio, sweep.sample_rate, model.sample_rate)
    return probe.record_activations(model, audio, level, [layer])[layer]


def show(container, figure) -> None:
    container.pyplot(figure)
    plt.close(figure)  # Streamlit has drawn it; pyplot would otherwise keep every figure of every rerun


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def controls() -> dict:
    """The paper's controls, in the sidebar."""
    bar = st.sidebar
    source = bar.selectbox("Jukebox VQ-VAE", list(MODELS), format_func=MODELS.get, key="model")
    model = get_model(source)
    level = bar.radio(
        "Encoder", list(range(model.levels)), index=model.levels - 1, format_func=ENCODERS.get, key="level"
    )
    sample_rate = int(bar.number_input("Sample rate (Hz)", 8000, 96000, model.sample_rate, 50, key="sample_rate"))
    seconds = float(bar.slider("Seconds", 1.0, 30.0, 10.0, 0.5, key="seconds"))
    kind = bar.radio("Frequency sweep", probe.SWEEP_KINDS, index=1, format_func=str.capitalize, key="sweep")
    f_start = float(bar.number_input("f_start (Hz)", 1.0, 48000.0, 110.0, key="f_start"))
    f_end = float(bar.number_input("f_end (Hz)", 1.0, 48000.0, min(110.0 * 2**7, sample_rate / 2), key="f_end"))
    layers = probe.encoder_layers(model, level)
    index = bar.selectbox("Layer", range(len(layers)), format_func=lambda i: layers[i].label, key="layer")
    layer = layers[index]
    if st.session_state.get("channel", 0) >= layer.channels:  # the new layer is narrower
        st.session_state["channel"] = layer.channels - 1
    channel = int(bar.number_input("Channel index", 0, layer.channels - 1, 0, key="channel"))
    log_frequency = bar.checkbox("Log frequency axis", value=True, key="log_frequency")
    return {
        "source": source,
        "level": level,
        "sample_rate": sample_rate,
        "seconds": seconds,
        "kind": kind,
        "f_start": f_start,
        "f_end": f_end,
        "layer": layer,
        "channel": channel,
        "log_frequency": log_frequency,
    }


def main() -> None:
    st.set_page_config(page_title="jukestyle channel explorer", layout="wide")
    st.title("Visualizing the behaviour of channels in Jukebox encoders")
    try:
        chosen = controls()
        settings = tuple(chosen[key] for key in ("kind", "f_start", "f_end", "seconds", "sample_rate"))
        sweep = get_sweep(*settings)
        layer, channel = chosen["layer"], chosen["channel"]
        activations = get_activations(chosen["source"], chosen["level"], layer.index, settings)
    except (JukestyleError, OSError) as error:  # bad settings, a missing or undownloadable checkpoint
        st.error(str(error))
        st.stop()
    frequency, activation = probe.channel_response(activations[channel], layer, sweep)
    sound = probe.activation_audio(activation, layer, ACTIVATION_RATE)

    st.caption(f"{ENCODERS[chosen['level']]} encoder, layer {layer.label}, channel {channel}")
    left, middle, right = st.columns(3)
    left.metric("Layer Nyquist (Hz)", f"{layer.nyquist:.0f}")
    middle.metric("Strongest response at (Hz)", f"{frequency[int(np.argmax(activation))]:.0f}")
    right.metric("Mean activation", f"{activation.mean():.4g}")

    title = f"layer {layer.index}, channel {channel}"
    show(st, channel_response_figure(frequency, activation, layer.nyquist, chosen["log_frequency"], title))
    left, right = st.columns(2)
    show(left, mel_spectrogram_figure(sweep.audio, sweep.sample_rate, f"input: {sweep.kind} sweep"))
    show(right, mel_spectrogram_figure(sound, ACTIVATION_RATE, f"activation of {title}"))
    left.caption("The sweep")
    left.audio(wav_bytes(sweep.audio, sweep.sample_rate), format="audio/wav")
    right.caption("Listen to the channel activation")
    right.audio(wav_bytes(sound, ACTIVATION_RATE), format="audio/wav")


main()
