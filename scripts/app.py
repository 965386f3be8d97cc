"""The jukestyle app: style transfer on your files, and the channel explorer.

    streamlit run scripts/app.py        (make explore)

Pages: ``transfer_page.py`` (the default) and ``channel_explorer.py``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="jukestyle", layout="wide")
pages = [
    st.Page(HERE / "transfer_page.py", title="Style transfer", url_path="transfer", default=True),
    st.Page(HERE / "channel_explorer.py", title="Channel explorer", url_path="channels"),
]
st.navigation(pages).run()
