"""The Streamlit channel explorer, run headless by streamlit's AppTest on the bundled model."""

from __future__ import annotations

import pytest
from project import REPO
from streamlit.testing.v1 import AppTest

APP = str(REPO / "scripts" / "channel_explorer.py")


def metrics(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def assert_rendered(app: AppTest) -> None:
    """No exception or error, and every output: three figures (response, two mel spectrograms), two players."""
    assert not app.exception and not app.error, (app.exception, app.error)
    assert len(app.image) == 3 and len(app.get("audio")) == 2
    assert set(metrics(app)) == {"Layer Nyquist (Hz)", "Strongest response at (Hz)", "Mean activation"}


@pytest.fixture
def app() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120)
    app.run()
    return app


def test_defaults_render_every_output_on_the_bundled_model(app):
    assert_rendered(app)
    assert app.selectbox(key="model").value == "bundled" and app.radio(key="level").value == 2
    assert app.radio(key="sweep").value == "chromatic"  # as in the paper: 110 Hz up 7 octaves
    assert len(app.selectbox(key="layer").options) == 66  # every convolution of the 128x encoder
    assert metrics(app)["Layer Nyquist (Hz)"] == "11025"  # layer 0 runs at half the audio rate


def test_changing_controls_changes_the_outputs(app):
    app.slider(key="seconds").set_value(2.0).run()
    assert_rendered(app)
    seen = [metrics(app)]
    app.number_input(key="channel").set_value(3).run()
    assert_rendered(app)
    seen.append(metrics(app))
    assert seen[-1]["Mean activation"] != seen[-2]["Mean activation"]
    app.selectbox(key="layer").set_value(47).run()
    assert_rendered(app)
    seen.append(metrics(app))
    assert seen[-1]["Layer Nyquist (Hz)"] == "345" != seen[-2]["Layer Nyquist (Hz)"]
    app.radio(key="sweep").set_value("linear").run()
    assert_rendered(app)
    seen.append(metrics(app))
    assert seen[-1] != seen[-2]
    app.checkbox(key="log_frequency").uncheck().run()
    assert_rendered(app)
    app.radio(key="level").set_value(0).run()  # the 8x encoder: other layers
    assert_rendered(app)
    assert len(app.selectbox(key="layer").options) == 52


def test_bad_settings_show_one_error_line(app):
    app.slider(key="seconds").set_value(1.0).run()
    app.number_input(key="f_start").set_value(20000.0).run()
    assert not app.exception and len(app.error) == 1
    assert "f_start" in app.error[0].value and not app.image
    app.number_input(key="f_start").set_value(220.0).run()
    assert_rendered(app)


def test_other_models_can_be_chosen(app):
    app.selectbox(key="model").set_value("tiny").run()
    assert_rendered(app)
    assert len(app.selectbox(key="layer").options) < 66
