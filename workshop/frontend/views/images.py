"""The Images page: pick an image (upload, sample or the browser's camera) and a model, ask the back-end, see the boxes.

A Streamlit page script: ``app.py`` runs it after drawing the sidebar, on
every click. What must survive a rerun (answers already received) lives in
``st.session_state``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import streamlit as st
from PIL import Image

from workshop.client import BackendError, WorkshopClient
from workshop.frontend.logic import (
    CONFIDENCE_FLOOR,
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
from workshop.frontend.shared import (
    PageContext, confidence_slider, model_picker, page_context, show_backend_error,
)
from workshop.imaging import ImageError, decode_image, encode_image
from workshop.samples import PHOTOS, photo, shapes_sample
from workshop.schemas import PredictResponse
from workshop.settings import Settings

SAMPLES = [f"shapes {seed}" for seed in range(3)] + list(PHOTOS)

#: The image sources, in the order the radio shows them.
SOURCES = ["Upload", "Sample", "Camera"]


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
    """A bundled sample as PNG bytes (generated shapes or one of the package's photos)."""
    if name.startswith("shapes"):
        return encode_image(shapes_sample(seed=int(name.split()[1])).image)
    return encode_image(photo(name))


# ------------------------------------------------------------------ inputs
def chosen_files() -> list[tuple[str, bytes]]:
    """The files of the source the student chose: uploads, one sample, or one camera picture."""
    source = st.radio("Image source", SOURCES, horizontal=True, key="source")
    if source == "Upload":
        uploads = st.file_uploader("Images", type=UPLOAD_TYPES, accept_multiple_files=True, key="uploads") or []
        return [(upload.name, upload.getvalue()) for upload in uploads]
    if source == "Sample":
        name = st.selectbox("Sample image", SAMPLES, key="sample")
        return [(f"{name.replace(' ', '_')}.png", sample_png(name))]
    # The camera is the student's, read by their browser: it works on a laptop and through a
    # codespace's forwarded https:// URL alike, and the server needs no camera at all.
    st.caption(
        "Your browser asks for the camera. It allows it on https:// pages and on localhost, not on a plain "
        "http:// address (a VM's IP) nor inside VS Code's preview pane: in a codespace, open the page in a browser tab."
    )
    # 480 pixels high: plenty for a 640-pixel model, and a small upload.
    picture = st.camera_input("Take a picture", key="camera", resolution="480p", width=640)
    return [("camera.jpg", picture.getvalue())] if picture else []


def input_images(settings: Settings) -> list[InputImage]:
    """The images the student chose, decoded; a message for each file that is not an image.

    The limits are the back-end's own settings (same WORKSHOP_ variables), so a file the
    back-end would refuse is refused here, before it is sent.
    """
    images = []
    for name, data in chosen_files():
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


def images_page(context: PageContext) -> None:
    client = context.client
    st.title("YOLO object detection")
    st.caption("Upload an image, pick a sample or take a picture, choose a model, press Predict.")
    images = input_images(context.settings)
    model = model_picker(context, key="model")
    left, right = st.columns(2)
    min_confidence = confidence_slider(left, context, key="confidence")
    iou = right.slider("IoU threshold (overlapping boxes)", 0.1, 1.0, 0.7, 0.05, key="iou")

    if st.button("Predict", type="primary", key="predict", disabled=not images or not model):
        request_answers(client, images, model, iou, context.test_mode)

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


images_page(page_context())
