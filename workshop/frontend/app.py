"""The Streamlit front-end: pick an image and a model, ask the back-end, see the boxes.

Run it with ``workshop ui`` (or ``streamlit run workshop/frontend/app.py``).
Streamlit runs this script top to bottom on every click; what must survive a
rerun (server info, answers already received) lives in ``st.session_state``.

The browser only ever talks to Streamlit; Streamlit's server calls the
back-end. So the page works unchanged behind a codespace's forwarded URL, and
the back-end URL may be a name only the server can resolve (``http://backend:8000``
under docker-compose).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import streamlit as st
from PIL import Image

from workshop.client import BackendError, BackendUnavailableError, WorkshopClient
from workshop.frontend.logic import (
    CONFIDENCE_FLOOR,
    TEST_MODE_MODEL,
    UPLOAD_TYPES,
    PredictionKey,
    annotated_png,
    detection_rows,
    detection_summary,
    fake_prediction,
    filter_detections,
    image_digest,
    result_json,
)
from workshop.imaging import ImageError, decode_image, encode_image
from workshop.samples import PHOTOS, photo, shapes_sample
from workshop.schemas import PredictResponse
from workshop.settings import Settings

SAMPLES = [f"shapes {seed}" for seed in range(3)] + list(PHOTOS)


@dataclass
class InputImage:
    """One picture to send: its name, file bytes and decoded pixels."""

    name: str
    data: bytes
    image: Image.Image


@dataclass
class Answer:
    """One cached back-end answer and how long the round trip took."""

    response: PredictResponse
    round_trip: float


@st.cache_data(show_spinner=False)
def sample_png(name: str) -> bytes:
    """A bundled sample as PNG bytes (generated shapes or a scikit-image photo)."""
    if name.startswith("shapes"):
        return encode_image(shapes_sample(seed=int(name.split()[1])).image)
    return encode_image(photo(name))


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


# ----------------------------------------------------------------- sidebar
def sidebar(settings: Settings) -> tuple[WorkshopClient, bool]:
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
    return client, test_mode


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


# ------------------------------------------------------------------ inputs
def input_images(settings: Settings) -> list[InputImage]:
    """The images the student chose, decoded; a message for each file that is not an image.

    The limits are the back-end's own settings (same WORKSHOP_ variables), so a file the
    back-end would refuse is refused here, before it is sent.
    """
    source = st.radio("Image source", ["Upload", "Sample"], horizontal=True, key="source")
    files: list[tuple[str, bytes]]
    if source == "Upload":
        uploads = st.file_uploader("Images", type=UPLOAD_TYPES, accept_multiple_files=True, key="uploads") or []
        files = [(upload.name, upload.getvalue()) for upload in uploads]
    else:
        name = st.selectbox("Sample image", SAMPLES, key="sample")
        files = [(f"{name.replace(' ', '_')}.png", sample_png(name))]
    images = []
    for name, data in files:
        try:
            decoded = decode_image(data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels)
        except ImageError as error:
            st.error(f"{name} is not an image this app can use: {error}")
            continue
        images.append(InputImage(name=name, data=data, image=decoded.image))
    return images


# ----------------------------------------------------------------- predict
def request_answers(
    client: WorkshopClient, images: list[InputImage], model: str, iou: float, test_mode: bool
) -> None:
    """Ask the back-end about the images that have no cached answer yet (one request, batch if several)."""
    cache: dict[PredictionKey, Answer] = st.session_state.setdefault("answers", {})
    keys = [PredictionKey(image_digest(i.data), model, iou, client.base_url) for i in images]
    missing = [(key, image) for key, image in zip(keys, images) if key not in cache]
    if not missing:
        return
    if test_mode:
        for key, image in missing:
            cache[key] = Answer(fake_prediction(image.image), 0.0)
        return
    started = time.perf_counter()
    with st.spinner(f"Asking '{model}' about {len(missing)} image(s)..."):
        try:
            if len(missing) == 1:
                responses = [client.predict_upload(missing[0][1].data, model=model, confidence=CONFIDENCE_FLOOR, iou=iou)]
            else:
                batch = client.predict_batch([i.data for _, i in missing], model=model, confidence=CONFIDENCE_FLOOR, iou=iou)
                responses = batch.results
        except BackendError as error:
            show_backend_error(error, client.base_url)
            return
    round_trip = time.perf_counter() - started
    for (key, _), response in zip(missing, responses):
        cache[key] = Answer(response, round_trip)


def show_answer(image: InputImage, answer: Answer, min_confidence: float, index: int) -> None:
    """One image's result: picture with boxes, timings, table, downloads."""
    shown = filter_detections(answer.response.detections, min_confidence)
    png = annotated_png(image.image, shown)
    st.image(png, caption=f"{image.name}: {len(shown)} detections", width="stretch")
    server_ms = answer.response.time * 1000
    st.markdown(
        f"Model **{answer.response.model}** · server time **{server_ms:.0f} ms** · "
        f"round trip **{answer.round_trip * 1000:.0f} ms**"
    )
    st.markdown(detection_summary(shown))
    if shown:
        # A plain HTML table: readable by screen readers (and browser tests), unlike the canvas of st.dataframe.
        st.table(detection_rows(shown))
    stem = image.name.rsplit(".", 1)[0]
    left, right = st.columns(2)
    left.download_button(
        "Download annotated image", png, file_name=f"{stem}_detections.png", mime="image/png", key=f"png_{index}"
    )
    right.download_button(
        "Download JSON", result_json(answer.response, shown), file_name=f"{stem}_detections.json",
        mime="application/json", key=f"json_{index}",
    )


def main() -> None:
    st.set_page_config(page_title="YOLO object detection", page_icon=":mag:", layout="wide")
    settings = Settings()
    client, test_mode = sidebar(settings)

    st.title("YOLO object detection")
    st.caption("Upload an image or pick a sample, choose a model, press Predict.")
    images = input_images(settings)
    models = model_choices(client, test_mode)
    # No selectbox while the list is empty: an empty one would keep "no model" even after the URL is fixed.
    model = st.selectbox("Model", models, key="model") if models else None
    left, right = st.columns(2)
    min_confidence = left.slider("Confidence threshold", CONFIDENCE_FLOOR, 1.0, 0.25, 0.05, key="confidence")
    iou = right.slider("IoU threshold (overlapping boxes)", 0.1, 1.0, 0.7, 0.05, key="iou")

    if st.button("Predict", type="primary", key="predict", disabled=not images or not model):
        request_answers(client, images, model, iou, test_mode)

    cache: dict[PredictionKey, Answer] = st.session_state.get("answers", {})
    answered = [
        (image, cache[key])
        for image in images
        if (key := PredictionKey(image_digest(image.data), model or "", iou, client.base_url)) in cache
    ]
    if not answered:
        if images and model:
            st.info("Press Predict to send the image to the back-end.")
        return
    if len(answered) == 1:
        show_answer(*answered[0], min_confidence, 0)
        return
    st.subheader(f"Gallery: {len(answered)} images")
    columns = st.columns(min(3, len(answered)))
    for index, (image, answer) in enumerate(answered):
        with columns[index % len(columns)]:
            show_answer(image, answer, min_confidence, index)


main()
