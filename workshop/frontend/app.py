"""The Streamlit front-end: pick an image or a video and a model, ask the back-end, see the boxes.

Run it with ``workshop ui`` (or ``streamlit run workshop/frontend/app.py``).
Streamlit runs this script top to bottom on every click: it draws the
sidebar (the back-end's URL and key, test mode), then runs the page the
student opened, one script each in ``views/``. To add a page, add its script
there and one ``st.Page`` line below.

The browser only ever talks to Streamlit; Streamlit's server calls the
back-end. So the page works unchanged behind a codespace's forwarded URL, and
the back-end URL may be a name only the server can resolve (``http://backend:8000``
under docker-compose).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from workshop.frontend.shared import sidebar
from workshop.settings import Settings

VIEWS = Path(__file__).with_name("views")


def main() -> None:
    st.set_page_config(page_title="YOLO object detection", page_icon=":mag:", layout="wide")
    pages = [
        st.Page(VIEWS / "images.py", title="Images", icon=":material/image:", default=True),
        st.Page(VIEWS / "video.py", title="Video", icon=":material/movie:", url_path="video"),
        st.Page(VIEWS / "teacher.py", title="Teacher", icon=":material/school:", url_path="teacher"),
    ]
    page = st.navigation(pages)
    sidebar(Settings())
    page.run()


main()
