"""The app's transfer page, run headless by Streamlit's AppTest: examples and uploads, a bad upload, the cached
style analysis; and (slow) the whole app in headless Chromium, driven as a user does."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
from project import REPO
from signals import harmonic_tone
from streamlit.testing.v1 import AppTest

from jukestyle import api

PAGE = str(REPO / "scripts" / "transfer_page.py")
EXP1 = REPO / "data" / "exp1"


def wav(seconds: float = 1.0, frequency: float = 261.63) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, harmonic_tone(frequency, seconds), 44100, format="WAV")
    return buffer.getvalue()


@pytest.fixture
def page() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=300)
    app.run()
    app.selectbox(key="model").set_value("tiny").run()
    return app


def test_examples_transfer_and_show_players_spectrograms_metrics_and_a_download(page):
    assert not page.exception and not page.error
    assert page.selectbox(key="content_ex").value == "piano-C4.flac"
    page.selectbox(key="style_ex").set_value("flute-C4.flac").run()
    page.slider(key="alpha").set_value(0.5).run()
    page.button(key="run").click().run()
    assert not page.exception and not page.error, (page.exception, page.error)
    assert len(page.get("audio")) == 3 and len(page.image) == 3  # content, style, output
    labels = [metric.label for metric in page.metric]
    assert labels[:2] == ["nearer the style (l2-mfcc)", "nearer the style (timbre metric)"]
    assert labels[2:] == ["pitch kept", "chroma similarity"]
    assert page.get("download_button")


def test_uploads_run_and_the_style_analysis_is_kept_between_runs(page):
    page.radio(key="content_source").set_value("upload").run()
    page.radio(key="style_source").set_value("upload").run()
    assert page.info  # nothing to transfer yet
    page.file_uploader(key="content_upload").set_value(("my song.wav", wav(1.0), "audio/wav")).run()
    page.file_uploader(key="style_upload").set_value(("cello.wav", wav(1.0, 146.8), "audio/wav")).run()
    page.selectbox(key="method").set_value("wct").run()
    page.button(key="run").click().run()
    assert not page.exception and not page.error, (page.exception, page.error)
    assert len(page.get("audio")) == 3
    engines = api._engine.cache_info().currsize
    page.file_uploader(key="content_upload").set_value(("other.wav", wav(1.0, 392.0), "audio/wav")).run()
    page.button(key="run").click().run()
    assert not page.error and api._engine.cache_info().currsize == engines  # the same engine: its style cache


def test_a_bad_upload_is_one_line_not_a_traceback(page):
    page.radio(key="content_source").set_value("upload").run()
    page.file_uploader(key="content_upload").set_value(("notes.wav", b"not audio at all", "audio/wav")).run()
    assert not page.exception
    assert [error.value for error in page.error] == ["notes.wav: unreadable audio (Error opening 'notes.wav': "
                                                     "Format not recognised.)"]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow  # a Streamlit server and a headless Chromium (Debian's chromium and chromium-driver)
def test_the_app_in_a_real_browser_uploads_two_files_and_plays_the_output(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    content, style = tmp_path / "content.wav", tmp_path / "style.flac"
    sf.write(content, harmonic_tone(261.63, 2.0), 44100)
    sf.write(style, sf.read(EXP1 / "violin-C4.flac")[0][: 2 * 44100], 44100)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "scripts" / "app.py"), "--server.headless=true",
         f"--server.port={port}", "--browser.gatherUsageStats=false"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1400"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)

    def click(element) -> None:  # as a user's click lands, whatever Streamlit's overlays cover
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", element)

    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the server is up when its port answers
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        browser.get(f"http://127.0.0.1:{port}/")  # the transfer page is the app's first
        wait = WebDriverWait(browser, 300)
        for label in ("content_source", "style_source"):  # choose "upload" for both
            choice = f"//div[contains(@class,'st-key-{label}')]//label[.//p[text()='upload']]"
            click(wait.until(ready.element_to_be_clickable((By.XPATH, choice))))
        for label, path in (("content_upload", content), ("style_upload", style)):
            field = (By.CSS_SELECTOR, f".st-key-{label} input[type=file]")
            wait.until(ready.presence_of_element_located(field)).send_keys(str(path))
        click(wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, ".st-key-run button"))))
        wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".st-key-download button")))  # run done
        wait.until(lambda driver: len(driver.find_elements(By.TAG_NAME, "audio")) == 3)  # the output's player
        wait.until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "[data-testid=stImage] img")) == 3)
        wait.until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "[data-testid=stMetricValue]")) == 4)
        screenshot = Path(os.environ.get("JUKESTYLE_SCREENSHOT", tmp_path / "transfer_page.png"))
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
        for unwanted in ("Traceback", "Page not found"):
            assert unwanted not in browser.page_source
        assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid=stAlertContentError]")
        shown = " ".join(element.text for element in browser.find_elements(By.CSS_SELECTOR, "[data-testid=stMarkdown]"))
        assert "content.wav" in shown and "style.flac" in shown and "adain output" in shown
        audio = browser.find_elements(By.TAG_NAME, "audio")[2]
        assert audio.get_attribute("src")  # the output is there to play
    finally:
        browser.quit()
        server.terminate()
        server.wait(timeout=30)
