"""The front-end's pages: Streamlit scripts that ``app.py`` runs through ``st.navigation``."""
