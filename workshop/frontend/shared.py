"""What every page of the front-end shares: the sidebar (back-end URL, key, test mode) and talking to the back-end.

``app.py`` draws the sidebar on every run, then runs the page the student
opened; the page finds the sidebar's choices with :func:`page_context`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from workshop.client import BackendError, BackendUnavailableError, WorkshopClient
from workshop.frontend.logic import CONFIDENCE_FLOOR, TEST_MODE_MODEL
from workshop.settings import Settings

_CONTEXT_KEY = "page_context"


@dataclass
class PageContext:
    """The sidebar's choices for this run: settings, a client for the chosen back-end, test mode."""

    settings: Settings
    client: WorkshopClient
    test_mode: bool


def page_context() -> PageContext:
    """The context ``app.py`` set up for this run (its sidebar is drawn before any page)."""
    if _CONTEXT_KEY not in st.session_state:
        raise RuntimeError("A page of the front-end runs inside app.py: start it with `workshop ui`.")
    return st.session_state[_CONTEXT_KEY]


def make_client(url: str, api_key: str, timeout: float) -> WorkshopClient:
    return WorkshopClient(url, api_key=api_key or None, timeout=timeout)


def backend_error_message(error: Exception, url: str) -> str:
    """A clear message for any failure to talk to the back-end; never a traceback."""
    if isinstance(error, BackendUnavailableError):
        return f"Back-end unreachable at {url}. {error} Check the URL in the sidebar, or turn on test mode."
    if isinstance(error, BackendError):
        return f"The back-end refused the request: {error.detail}"
    return f"Unexpected error: {error}"


def show_backend_error(error: Exception, url: str) -> None:
    st.error(backend_error_message(error, url))


def sidebar(settings: Settings) -> PageContext:
    """Draw the back-end's settings in the sidebar; keep and return the context the pages use."""
    with st.sidebar:
        st.header("Back-end")
        url = st.text_input("Back-end URL", value=settings.backend_url, key="backend_url").strip()
        default_key = settings.api_key.get_secret_value() if settings.api_key else ""
        api_key = st.text_input("API key (if the server needs one)", value=default_key, type="password", key="api_key")
        test_mode = st.toggle("Test mode (no back-end)", key="test_mode", help="Made-up answers, for trying the UI alone.")
        client = make_client(url, api_key, settings.request_timeout)
        if st.button("Is alive?", key="is_alive"):
            st.session_state["server_info"] = server_info(client)
        info = st.session_state.get("server_info")
        if info is not None:
            if "error" in info:
                st.error(info["error"])
            else:
                st.success(f"{info['title']}, version {info['version']}")
                st.markdown(info["description"])
                st.markdown("**Models:** " + ", ".join(f"`{name}`" for name in info["models"]))
    context = PageContext(settings=settings, client=client, test_mode=test_mode)
    st.session_state[_CONTEXT_KEY] = context
    return context


def server_info(client: WorkshopClient) -> dict:
    try:
        return {
            "title": client.title(),
            "version": client.version().version,
            "description": client.describe(),
            "models": [model.name for model in client.models()],
        }
    except BackendError as error:  # unreachable, or refusing
        return {"error": backend_error_message(error, client.base_url)}


def model_choices(client: WorkshopClient, test_mode: bool) -> list[str]:
    """Model names from ``/models``, default first; an empty list (and a message) when that fails."""
    if test_mode:
        return [TEST_MODE_MODEL]
    try:
        models = client.models()
    except BackendError as error:
        show_backend_error(error, client.base_url)
        return []
    models.sort(key=lambda model: not model.default)
    return [model.name for model in models]


def model_picker(context: PageContext, key: str) -> str | None:
    """The model selectbox, default model first; None (and a message) when the back-end gives no list."""
    models = model_choices(context.client, context.test_mode)
    # No selectbox while the list is empty: an empty one would keep "no model" even after the URL is fixed.
    return st.selectbox("Model", models, key=key) if models else None


def confidence_slider(where: Any, context: PageContext, key: str) -> float:
    """The confidence threshold, from the floor the back-end is asked with up to 1; starts at the server's default.

    Moving it filters the answers already received: the back-end is asked once, at the floor.
    """
    return where.slider("Confidence threshold", CONFIDENCE_FLOOR, 1.0, context.settings.confidence, 0.05, key=key)
