"""The Video page: upload a short clip, analyse a few frames a second, see them annotated and a plot over time.

A Streamlit page script: ``app.py`` runs it after drawing the sidebar. The
work is in :mod:`workshop.frontend.video` (sampling, limits, batches); this
page only asks and shows.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from workshop.client import BackendError
from workshop.drawing import draw_detections
from workshop.frontend.logic import CONFIDENCE_FLOOR, fake_prediction, filter_detections, image_digest
from workshop.frontend.shared import (
    PageContext, confidence_slider, model_picker, page_context, show_backend_error,
)
from workshop.schemas import PredictResponse

try:
    # PyAV decodes the videos and encodes the sample clip. The front-end image has it only when built with
    # VIDEO=true (frontend/Dockerfile); without it, the page says so in place of a traceback.
    from workshop.frontend.demo_video import panning_clip
    from workshop.frontend.video import (
        SAMPLING_RATES,
        VIDEO_TYPES,
        SampledVideo,
        VideoError,
        VideoKey,
        VideoLimits,
        batches,
        detection_counts,
        predict_frames,
        sample_frames,
        timeline_rows,
    )
except ModuleNotFoundError as missing:
    if missing.name != "av":
        raise
    st.title("Video")
    st.info(
        "This image has no video decoder: build it with `--build-arg VIDEO=true` (with Compose: "
        "`VIDEO=true docker compose up --build`), or run the UI from the venv with `workshop ui`.",
        icon=":material/videocam_off:",
    )
    st.stop()

SOURCES = ["Upload", "Sample clip"]

#: Width of one frame in the strip, in pixels: small enough for a row of five or six.
STRIP_FRAME_WIDTH = 200


@dataclass
class VideoAnswer:
    """The answers for every sampled frame, and what getting them took."""

    responses: list[PredictResponse]
    requests: int
    round_trip: float


@st.cache_data(show_spinner=False)
def sample_clip() -> bytes:
    """The sample: a generated clip panning across shapes the bundled model knows."""
    return panning_clip().data


@st.cache_data(show_spinner=False, max_entries=4)
def sampled(digest: str, name: str, rate: float, limits: VideoLimits, _data: bytes) -> SampledVideo:
    """The frames of a video, decoded once per (video, rate, limits): a rerun (a slider moved) does not decode again.

    ``_data`` is not hashed by Streamlit (leading underscore); ``digest`` stands for it.
    """
    return sample_frames(_data, rate, limits, name)


def chosen_video(limits: VideoLimits) -> tuple[str, bytes] | None:
    source = st.radio("Video source", SOURCES, horizontal=True, key="video_source")
    if source == "Sample clip":
        return "sample_clip.mp4", sample_clip()
    upload = st.file_uploader(
        "Video (MP4, WebM or MOV)", type=VIDEO_TYPES, key="video_file",
        # The browser itself refuses a much larger file before sending it (Streamlit counts whole MB);
        # the exact limit is checked again once the file is here.
        max_upload_size=math.ceil(limits.max_bytes / 2**20),
        help=f"At most {limits.max_seconds:g} s and {limits.max_bytes / 2**20:.0f} MB.",
    )
    return (upload.name, upload.getvalue()) if upload else None


def ask(context: PageContext, video: SampledVideo, model: str) -> VideoAnswer | None:
    """Every sampled frame's answer, through the batch route, split to the back-end's limits; None after an error."""
    settings, client = context.settings, context.client
    started = time.perf_counter()
    if context.test_mode:
        return VideoAnswer([fake_prediction(frame.image()) for frame in video.frames], 0, 0.0)
    requests = sum(1 for _ in batches([f.jpeg for f in video.frames], settings.max_batch_images, settings.max_request_bytes))
    bar = st.progress(0.0, text=f"Asking '{model}' about {len(video.frames)} frames in {requests} request(s)...")
    try:
        responses = predict_frames(
            client, video.frames, model, settings.max_batch_images, settings.max_request_bytes,
            progress=lambda done, total: bar.progress(done / total, text=f"{done} of {total} frames analysed"),
            confidence=CONFIDENCE_FLOOR,
        )
    except BackendError as error:
        show_backend_error(error, client.base_url)
        return None
    finally:
        bar.empty()
    return VideoAnswer(responses, requests, time.perf_counter() - started)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def timeline_csv(video: SampledVideo, answer: VideoAnswer, min_confidence: float) -> str:
    rows = timeline_rows(video.times, answer.responses, min_confidence)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["seconds", "class", "confidence", "x_min", "y_min", "x_max", "y_max"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def show_results(name: str, video: SampledVideo, answer: VideoAnswer, min_confidence: float) -> None:
    """The plot of detections per class over time, the annotated strip and the CSV download."""
    model = answer.responses[0].model
    st.markdown(
        f"Model **{model}** · {len(video.frames)} frames in {answer.requests} request(s) · "
        f"round trip **{answer.round_trip:.1f} s**"
    )
    counts = detection_counts(answer.responses, min_confidence)
    st.subheader("Detections per class over time")
    if counts:
        chart = pd.DataFrame({"seconds": video.times, **counts})
        st.line_chart(chart, x="seconds", y=list(counts), x_label="time (s)", y_label="detections")
    else:
        st.markdown("Found nothing above the confidence threshold in any frame.")

    st.subheader(f"Annotated frames ({len(video.frames)})")
    shown = [filter_detections(r.detections, min_confidence) for r in answer.responses]
    st.image(
        [draw_detections(frame.image(), detections) for frame, detections in zip(video.frames, shown)],
        caption=[f"{frame.seconds:.1f} s: {plural(len(found), 'detection')}" for frame, found in zip(video.frames, shown)],
        width=STRIP_FRAME_WIDTH,
        # Streamlit shrinks each picture to the strip's width and sends it as JPEG, the lighter
        # format: 120 frames of 640×480 redraw in about a second when the confidence slider moves.
        output_format="JPEG",
    )
    st.download_button(
        "Download detections (CSV)", timeline_csv(video, answer, min_confidence),
        file_name=f"{name.rsplit('.', 1)[0]}_detections.csv", mime="text/csv", key="video_csv",
    )


def video_page(context: PageContext) -> None:
    limits = VideoLimits.from_settings(context.settings)
    st.title("Video")
    st.caption(
        f"Upload a short clip (at most {limits.max_seconds:g} s) or use the sample, choose how many frames a second "
        "to analyse, press Analyse. Each frame is one prediction."
    )
    chosen = chosen_video(limits)
    model = model_picker(context, key="video_model")
    left, right = st.columns(2)
    rate = left.select_slider("Frames analysed per second", SAMPLING_RATES, value=2.0, key="video_rate")
    min_confidence = confidence_slider(right, context, key="video_confidence")

    video, key = None, None
    if chosen:
        name, data = chosen
        digest = image_digest(data)
        try:
            with st.spinner(f"Reading {name}..."):
                video = sampled(digest, name, rate, limits, data)
        except VideoError as error:
            st.error(str(error))
        else:
            st.markdown(
                f"{name}: {video.duration:.1f} s, {video.width}×{video.height}, {video.codec} · "
                f"**{len(video.frames)} frames** to analyse at {rate:g} a second"
            )
            if video.incomplete:
                st.warning(
                    f"{name} stops at {video.duration:.1f} s, though its header announces "
                    f"{video.announced_duration:.1f} s: the file is probably incomplete. Only the frames before "
                    "the cut are analysed; export the clip again to analyse all of it."
                )
            if model:
                key = VideoKey(digest, rate, model, context.client.base_url)

    if st.button("Analyse", type="primary", key="analyse_video", disabled=key is None):
        answer = ask(context, video, model)
        if answer is not None:
            # Only the latest video's answers are kept: a hundred frames' detections, not more.
            st.session_state["video_answer"] = (key, answer)
    if key is None:
        return
    kept = st.session_state.get("video_answer")
    if kept is None or kept[0] != key:
        st.info("Press Analyse to send the frames to the back-end.")
        return
    show_results(chosen[0], video, kept[1], min_confidence)


video_page(page_context())
