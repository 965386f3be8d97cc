"""The transfer page of the app: a content and a style (uploaded, or the bundled examples), a method and its
settings; plays content, style and output with their mel spectrograms and the output's metrics, and offers
the output for download.

    streamlit run scripts/app.py      # this page and the channel explorer

The transfer goes through ``jukestyle.transfer``, whose engines keep analysed styles: running again with the
same style (another setting of the content side, another content) does not analyse it again.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf
import streamlit as st

import jukestyle
from jukestyle.audio.io import load_audio
from jukestyle.errors import JukestyleError
from jukestyle.evaluation.figures import mel_spectrogram_figure
from jukestyle.evaluation.metrics import analyse_reference
from jukestyle.evaluation.scoreboard import Measurement, measure, print_value
from jukestyle.evaluation.timbre import shipped_metric
from jukestyle.jukebox import VQVAE, build_vqvae, load_vqvae
from jukestyle.jukebox.config import MODEL_SAMPLE_RATE
from jukestyle.methods import METHODS
from jukestyle.runtime import configure_cpu

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = {path.name: path for path in sorted((REPO / "data").glob("exp*/*.flac"))}
MODELS = {"bundled": "the bundled model (jukestyle_gm)", "tiny": "a tiny random model (tests)"}
WITH_ALPHA = ("adain", "wct", "decoder")
SHOWN = (("l2-mfcc", "closer_to"), ("timbre metric", "timbre_closer_to"))  # the scoreboard's two style wins


@st.cache_resource(show_spinner="loading the model")
def get_model(source: str) -> VQVAE:
    configure_cpu()  # once per process: see jukestyle/runtime.py
    return (build_vqvae("tiny", seed=0) if source == "tiny" else load_vqvae(source)).eval()


def read_input(role: str, default: str) -> tuple[str, np.ndarray] | None:
    """The chosen recording as (name, mono audio at 44.1 kHz); None until one is uploaded."""
    source = st.radio(f"{role.capitalize()}", ("bundled example", "upload"), horizontal=True, key=f"{role}_source")
    if source == "bundled example":
        name = st.selectbox(f"{role} example", list(EXAMPLES), index=list(EXAMPLES).index(default), key=f"{role}_ex")
        return name, load_audio(EXAMPLES[name], MODEL_SAMPLE_RATE)
    upload = st.file_uploader(f"{role} file", key=f"{role}_upload")
    if upload is None:
        return None
    with tempfile.TemporaryDirectory() as folder:  # read as a file (any format libsndfile knows), by its name
        path = Path(folder) / Path(upload.name).name
        path.write_bytes(upload.getvalue())
        try:
            return upload.name, load_audio(path, MODEL_SAMPLE_RATE)
        except JukestyleError as error:  # one line that names the upload, not a traceback
            raise JukestyleError(str(error).replace(f"{folder}/", "")) from None


def settings(method: str, model: VQVAE) -> dict:
    options = {}
    if method in WITH_ALPHA:
        options["alpha"] = st.slider("alpha (how much of the style)", 0.0, 1.0, 1.0, 0.05, key="alpha")
    decoder = method in ("adain", "wct") and st.checkbox("through the transfer decoder", key="transfer_decoder")
    if decoder:
        options["decoder"] = "bundled"
    if method != "decoder":
        levels = list(range(model.levels))
        options["level"] = st.select_slider("level", levels, value=model.transfer_level, key="level")
    return options


def wav_bytes(audio: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, MODEL_SAMPLE_RATE, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def show(column, name: str, audio: np.ndarray, label: str) -> None:
    column.markdown(f"**{label}**: {name}")
    column.audio(wav_bytes(audio), format="audio/wav")
    figure = mel_spectrogram_figure(audio, MODEL_SAMPLE_RATE, label)
    column.pyplot(figure)
    plt.close(figure)


def metrics_of(output: np.ndarray, content: np.ndarray, style: np.ndarray) -> dict:
    metric = shipped_metric()
    references = [analyse_reference(audio, MODEL_SAMPLE_RATE, timbre_metric=metric) for audio in (content, style)]
    return measure(Measurement(output, *references, MODEL_SAMPLE_RATE, metric))


def main() -> None:
    st.title("Style transfer")
    st.caption("The timbre of the style recording, put onto the content recording.")
    model_name = st.sidebar.selectbox("Model", list(MODELS), format_func=MODELS.get, key="model")
    model = get_model(model_name)
    left, right = st.columns(2)
    try:
        with left:
            content = read_input("content", "piano-C4.flac")
        with right:
            style = read_input("style", "violin-C4.flac")
    except JukestyleError as error:
        st.error(str(error))
        st.stop()
    method = st.selectbox("Method", list(METHODS), index=list(METHODS).index("adain"), key="method")
    options = settings(method, model)
    if content is None or style is None:
        st.info("Upload the content and the style, or pick bundled examples.")
        st.stop()
    if st.button("Transfer", type="primary", key="run"):
        with st.spinner(f"{method}: transferring {content[0]} in the style of {style[0]}"):
            try:
                output = jukestyle.transfer(content[1], style[1], method=method, model=model, **options)
            except JukestyleError as error:
                st.error(str(error))
                st.stop()
        scores = metrics_of(output, content[1], style[1])
        st.session_state["result"] = {"content": content, "style": style, "method": method, "output": output, **scores}
    if "result" not in st.session_state:
        return
    scores = st.session_state["result"]  # the last run's, shown until the next (settings may have moved since)
    (content_name, content_audio), (style_name, style_audio) = scores["content"], scores["style"]
    used, output = scores["method"], scores["output"]
    columns = st.columns(3)
    show(columns[0], content_name, content_audio, "content")
    show(columns[1], style_name, style_audio, "style")
    show(columns[2], f"{used} output", output, "output")
    cells = st.columns(4)
    for cell, (ruler, key) in zip(cells, SHOWN, strict=False):
        cell.metric(f"nearer the style ({ruler})", "yes" if scores[key] == "style" else "no")
    cells[2].metric("pitch kept", print_value(scores["pitch_accuracy"], "pitch_accuracy"))
    cells[3].metric("chroma similarity", print_value(scores["chroma_similarity"], "chroma_similarity"))
    file_name = f"{Path(content_name).stem}-as-{Path(style_name).stem}-{used}.wav"
    columns[2].download_button("Download the output", wav_bytes(output), file_name, "audio/wav", key="download")


main()
