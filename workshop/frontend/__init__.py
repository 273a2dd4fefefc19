"""The Streamlit front-end: ``workshop ui`` runs ``app.py`` with Streamlit."""

from pathlib import Path

#: The Streamlit script, as ``streamlit run`` wants it: a file path.
APP_PATH = Path(__file__).with_name("app.py")
