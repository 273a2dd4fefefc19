"""The Video page: frames sampled from generated clips, their detections, the batches, the limits, the page in Chromium.

The clips come from :mod:`workshop.frontend.demo_video`: a camera panning across a
generated shapes picture, 4 s at 10 frames a second, 320×240, as MP4 (H.264), WebM
(VP9) and MOV, so every frame's ground truth is known. The detections come from the
bundled ``shapes`` model in a real back-end process of this module's own: the batches counted in its log are
this module's only.
"""

from __future__ import annotations

import functools
import io
import math
import re
import wave
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from workshop.bench.agreement import box_iou
from workshop.client import BackendError, WorkshopClient
from workshop.frontend.demo_video import PanningClip, VideoFormat, panning_clip
from workshop.frontend.video import (
    MULTIPART_PART_BYTES,
    SAMPLING_RATES,
    VideoError,
    VideoLimits,
    batches,
    detection_counts,
    expected_frame_count,
    predict_frames,
    sample_frames,
    timeline_rows,
)
from workshop.imaging import encode_image
from workshop.samples import shapes_sample
from workshop.services import BackgroundService, start_backend, start_frontend

from support import batch_uploads, save_screenshot  # tests/ is on sys.path under pytest

SCREENSHOT_ASSET = Path(__file__).resolve().parents[1] / "docs" / "assets" / "ui-video.png"

#: Generous limits: each test narrows the one it is about.
LIMITS = VideoLimits(max_bytes=50 * 2**20, max_seconds=60.0, max_frames=120, max_pixels=40_000_000)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundService]:
    """A real ``workshop serve`` for this module only (it stands in for the session's shared one)."""
    service = start_backend(log_dir=tmp_path_factory.mktemp("video-backend"))
    yield service
    service.stop()
CLIP_SECONDS, CLIP_FPS = 4.0, 10


@functools.cache
def clip(video_format: VideoFormat = "mp4") -> PanningClip:
    return panning_clip(seconds=CLIP_SECONDS, fps=CLIP_FPS, video_format=video_format)


def limits(**changes: float) -> VideoLimits:
    return VideoLimits(**{**LIMITS.__dict__, **changes})


def message(data: bytes, rate: float = 2.0, name: str = "clip.mp4", **limit_changes: float) -> str:
    with pytest.raises(VideoError) as error:
        sample_frames(data, rate, limits(**limit_changes), name)
    return str(error.value)


def raw_h264(frame_count: int) -> bytes:
    """A bare H.264 stream, no container: nothing in it says how long it lasts (FFmpeg assumes 25 frames a second)."""
    frames = [shapes_sample(seed=1, width=160, height=120).image] * frame_count
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="h264") as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_image(image)))
        container.mux(stream.encode())
    return buffer.getvalue()


def wav_sound(seconds: float = 1.0) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\0\0" * int(8000 * seconds))
    return buffer.getvalue()


# ------------------------------------------------------------------ sampling
@pytest.mark.parametrize("video_format", ["mp4", "webm", "mov"])
@pytest.mark.parametrize("rate", [0.5, 1.0, 2.0, 5.0, 10.0, 30.0])
def test_frames_are_sampled_at_the_rate_asked(video_format: VideoFormat, rate: float) -> None:
    video = sample_frames(clip(video_format).data, rate, LIMITS, f"clip.{video_format}")
    # Faster than the clip's own 10 frames a second, every frame comes once, never twice.
    step = 1 / min(rate, CLIP_FPS)
    expected = [round(k * step, 3) for k in range(expected_frame_count(CLIP_SECONDS, min(rate, CLIP_FPS)))]
    assert video.times == pytest.approx(expected, abs=1e-3)
    assert len(expected) == math.ceil(CLIP_SECONDS * min(rate, CLIP_FPS))  # e.g. 8 frames at 2 a second, 0 to 3.5 s
    assert (video.width, video.height, video.duration, video.native_rate) == (320, 240, CLIP_SECONDS, CLIP_FPS)
    assert video.codec == {"mp4": "h264", "mov": "h264", "webm": "vp9"}[video_format]
    assert not video.incomplete
    assert {frame.image().size for frame in video.frames} == {(320, 240)}


def test_a_sampled_frame_is_the_clip_at_that_time() -> None:
    """The frame at 2.0 s of a 10 frames-a-second clip is its 21st picture, not a neighbour."""
    video = sample_frames(clip().data, 2.0, LIMITS)
    frame = np.asarray(video.frames[4].image(), dtype=np.float32)  # 2.0 s
    with av.open(io.BytesIO(clip().data)) as container:
        pictures = [np.asarray(f.to_image(), dtype=np.float32) for f in container.decode(video=0)]
    errors = [np.abs(frame - picture).mean() for picture in pictures]
    assert int(np.argmin(errors)) == 20
    assert errors[20] < 3 < min(errors[19], errors[21])  # JPEG's loss is small; the pan moves the picture more


def test_expected_frame_count() -> None:
    assert expected_frame_count(4.0, 2.0) == 8  # 0, 0.5, ..., 3.5: 4.0 s is the end, not a frame
    assert expected_frame_count(3.95, 2.0) == 8
    assert expected_frame_count(4.01, 2.0) == 9
    assert expected_frame_count(0.1, 0.5) == 1


# ------------------------------------------------------------------- limits
def test_a_file_over_the_size_limit_is_refused_before_it_is_opened() -> None:
    text = b"not even a video " * 100  # not a video either: the size is checked first
    assert message(text, max_bytes=1000) == (
        "clip.mp4 is 2 kB, over the limit of 1000 bytes (WORKSHOP_VIDEO_MAX_BYTES). Upload a shorter or smaller clip."
    )
    assert "is 9 kB" in message(clip().data, max_bytes=8 * 2**10)


def test_an_over_long_video_is_refused_from_its_header_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    import workshop.frontend.video as video_module

    def no_decoding(*args: object) -> None:
        raise AssertionError("a frame was decoded")

    monkeypatch.setattr(video_module, "_decoded_frames", no_decoding)
    for video_format in ("mp4", "webm", "mov"):
        assert message(clip(video_format).data, max_seconds=3.0) == (
            "clip.mp4 lasts more than 3 s, the limit (WORKSHOP_VIDEO_MAX_SECONDS). Cut a shorter clip and upload that."
        )


def test_an_over_long_video_whose_header_says_nothing_is_stopped_while_decoding() -> None:
    data = raw_h264(frame_count=100)  # 4 s at the 25 frames a second FFmpeg assumes
    with av.open(io.BytesIO(data)) as container:
        assert container.duration is None and container.streams.video[0].duration is None
    assert "lasts more than 2 s, the limit (WORKSHOP_VIDEO_MAX_SECONDS)" in message(data, max_seconds=2.0)
    assert len(sample_frames(data, 1.0, LIMITS).frames) == 4  # under the limit, the same file is read


def test_too_many_frames_are_refused_with_the_rate_that_fits() -> None:
    assert message(clip().data, rate=5.0, max_frames=10) == (
        "Sampling clip.mp4 at 5 frames a second gives 20 frames, over the limit of 10 (WORKSHOP_VIDEO_MAX_FRAMES). "
        "Lower the rate to 2 a second (or less) for this clip, or cut a shorter clip."
    )
    assert expected_frame_count(CLIP_SECONDS, 2.0) <= 10 < expected_frame_count(CLIP_SECONDS, 5.0)
    assert 2.0 in SAMPLING_RATES  # the rate suggested is one the page offers
    # Without a duration in the header, the count is checked frame by frame.
    assert "gives 3 frames, over the limit of 2" in message(raw_h264(frame_count=100), rate=1.0, max_frames=2)


def test_frames_over_the_pixel_limit_are_refused() -> None:
    assert "frames are 320×240 pixels, over the limit of 50000 (WORKSHOP_MAX_PIXELS)" in message(
        clip().data, max_pixels=50_000
    )


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("notes.mp4", b"These are my notes, not a video.\n" * 20, "notes.mp4 is not a video. Upload an MP4, WebM or MOV file."),
        ("empty.webm", b"", "empty.webm is not a video. Upload an MP4, WebM or MOV file."),
        ("photo.mov", encode_image(shapes_sample(seed=1).image), "photo.mov is a still picture, not a video"),
        ("photo.mp4", encode_image(shapes_sample(seed=1).image, "JPEG"), "photo.mp4 is a still picture, not a video"),
        ("song.mp4", wav_sound(), "song.mp4 has no video track (is it a sound file?). Upload a video."),
    ],
)
def test_a_file_that_is_not_a_video_says_so(name: str, data: bytes, expected: str) -> None:
    assert message(data, name=name).startswith(expected)


def test_a_damaged_video_says_so() -> None:
    data = clip("mp4").data
    half = data[: len(data) // 2]  # an upload cut short: the index MP4 writes last is gone
    assert message(half) == (
        "clip.mp4 looks like a video but cannot be read: the file is damaged or incomplete. "
        "Export it again, or upload another one."
    )
    scrambled = bytearray(data)
    scrambled[200:2500] = np.random.default_rng(0).integers(0, 256, 2300, dtype=np.uint8).tobytes()
    assert message(bytes(scrambled)).startswith("clip.mp4 is damaged: FFmpeg stopped decoding it (")


def test_a_webm_cut_short_keeps_its_first_frames_and_is_marked_incomplete() -> None:
    data = clip("webm").data
    video = sample_frames(data[: len(data) * 6 // 10], 2.0, LIMITS)
    assert 1 <= len(video.frames) < 8
    assert video.incomplete and video.announced_duration == CLIP_SECONDS


@pytest.mark.parametrize("video_format", ["mp4", "webm"])
def test_a_file_cut_anywhere_gives_frames_or_a_message_never_another_error(video_format: VideoFormat) -> None:
    data = clip(video_format).data
    outcomes = Counter()
    for percent in range(0, 100, 7):
        try:
            sample_frames(data[: len(data) * percent // 100], 2.0, LIMITS)
            outcomes["frames"] += 1
        except VideoError:
            outcomes["message"] += 1
    assert outcomes["message"] > 0 and sum(outcomes.values()) == 15


# ------------------------------------------------------------------ batches
def test_batches_respect_the_count_limit_and_keep_the_order() -> None:
    items = [bytes([i]) * 10 for i in range(8)]
    split = list(batches(items, max_items=3, max_bytes=10**6))
    assert [len(b) for b in split] == [3, 3, 2]
    assert [item for batch in split for item in batch] == items


def test_batches_respect_the_body_limit_with_room_for_the_part_headers() -> None:
    items = [b"x" * 1000] * 8
    # Room for the form fields plus three parts of 1000 bytes and their headers, not a byte more.
    max_bytes = MULTIPART_PART_BYTES + 3 * (1000 + MULTIPART_PART_BYTES)
    assert [len(b) for b in batches(items, max_items=16, max_bytes=max_bytes)] == [3, 3, 2]
    assert [len(b) for b in batches(items, max_items=16, max_bytes=max_bytes - 1)] == [2, 2, 2, 2]
    # A frame too large for any body goes alone: the back-end then says why it refuses it.
    assert [len(b) for b in batches([b"x" * 10, b"y" * 5000, b"z" * 10], 16, 3000)] == [1, 1, 1]


# ----------------------------------------------------- PyAV: front-end only
def test_pyav_is_the_front_ends_alone() -> None:
    """The front-end image installs PyAV (extra ``ui``); the back-end's extras do not, and its code never imports it."""
    import subprocess
    import sys

    from workshop.extras import requirements as extra_requirements

    root = Path(__file__).resolve().parents[1]

    def requirements(extra: str) -> list[str]:
        return [re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0] for line in extra_requirements(root / "pyproject.toml", extra)]

    assert "av" in requirements("ui")
    assert "av" not in requirements("serve") and "av" not in requirements("serve-pytorch")
    assert "pyproject.toml ui" in (root / "frontend" / "Dockerfile").read_text()
    # The back-end starts, app and routes, with PyAV made impossible to import.
    script = (
        "import sys; sys.modules['av'] = None\n"
        "from workshop.backend import create_app\n"
        "from workshop.settings import Settings\n"
        "create_app(Settings(warmup=False))\n"
        "assert sys.modules['av'] is None"
    )
    subprocess.run([sys.executable, "-c", script], cwd=root, check=True, timeout=120)


# ------------------------------------------------- detections, real back-end
def detections_of(video_format: VideoFormat, server: BackgroundService, rate: float = 2.0, **split: int):
    video = sample_frames(clip(video_format).data, rate, LIMITS)
    client = WorkshopClient(server.url)
    responses = predict_frames(
        client, video.frames, "shapes", split.get("max_items", 16), split.get("max_bytes", 32 * 2**20), confidence=0.05
    )
    return video, responses


@pytest.mark.slow
@pytest.mark.parametrize("video_format", ["mp4", "webm"])
def test_the_shapes_in_each_sampled_frame_are_found(video_format: VideoFormat, live_server: BackgroundService) -> None:
    the_clip = clip(video_format)
    video, responses = detections_of(video_format, live_server)
    assert len(responses) == len(video.frames) == 8
    counts = detection_counts(responses, 0.25)
    found = 0
    for index, (seconds, response) in enumerate(zip(video.times, responses)):
        whole, cut = the_clip.shapes_at(seconds), the_clip.cut_shapes_at(seconds)
        shown = [d for d in response.detections if d.confidence >= 0.25]
        for shape in whole:  # every shape wholly in the frame is found, in its place
            box = (shape.x_min, shape.y_min, shape.x_max, shape.y_max)
            assert any(d.class_name == shape.class_name and box_iou(d, box) > 0.5 for d in shown), (seconds, shape, shown)
            found += 1
        for d in shown:  # and nothing is found where no shape is
            assert any(
                d.class_name == s.class_name and box_iou(d, (s.x_min, s.y_min, s.x_max, s.y_max)) > 0.2 for s in whole + cut
            ), (seconds, d)
        # The plot's data: per class, this frame's detections, between the whole shapes and all the visible ones.
        for name in {s.class_name for s in whole + cut} | set(counts):
            value = counts[name][index] if name in counts else 0
            assert value == sum(d.class_name == name for d in shown)
            assert sum(s.class_name == name for s in whole) <= value <= sum(s.class_name == name for s in whole + cut)
    assert found >= 8 and set(counts) == {"circle", "square", "triangle"}
    assert all(len(values) == 8 for values in counts.values())
    rows = timeline_rows(video.times, responses, 0.25)
    assert len(rows) == sum(map(sum, counts.values())) and rows[0]["seconds"] == 0.0


@pytest.mark.slow
def test_frames_go_in_as_many_batches_as_the_count_limit_needs(live_server: BackgroundService) -> None:
    before = batch_uploads(live_server)
    video, in_one = detections_of("mp4", live_server)
    assert batch_uploads(live_server) == before + 1
    _, in_three = detections_of("mp4", live_server, max_items=3)
    assert batch_uploads(live_server) == before + 1 + 3  # 3 + 3 + 2 frames
    assert [r.detections for r in in_three] == [r.detections for r in in_one]  # same answers, same order


@pytest.mark.slow
def test_frames_go_in_batches_that_a_backend_with_a_small_body_limit_accepts(tmp_path: Path) -> None:
    video = sample_frames(clip().data, 2.0, LIMITS)
    sizes = [len(frame.jpeg) for frame in video.frames]
    body_limit = MULTIPART_PART_BYTES + 3 * (max(sizes) + MULTIPART_PART_BYTES)  # three frames a request, at most
    server = start_backend(env={"WORKSHOP_MAX_REQUEST_BYTES": str(body_limit)}, log_dir=tmp_path)
    try:
        client = WorkshopClient(server.url)
        with pytest.raises(BackendError) as refused:  # all eight in one request: over the limit
            client.predict_batch_upload([frame.jpeg for frame in video.frames], model="shapes")
        assert refused.value.status_code == 413
        done = []
        responses = predict_frames(client, video.frames, "shapes", 16, body_limit, progress=lambda d, t: done.append(d))
        assert len(responses) == 8 and done[-1] == 8 and len(done) >= 3
        assert batch_uploads(server) == 1 + len(done)
    finally:
        server.stop()


# --------------------------------------------------------- the page, in Chromium
@pytest.fixture(scope="module")
def frontend(live_server: BackgroundService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundService]:
    service = start_frontend(live_server.url, log_dir=tmp_path_factory.mktemp("frontend-logs"))
    yield service
    service.stop()


@pytest.mark.slow
def test_video_page_in_the_browser_shows_the_strip_and_the_chart(
    frontend: BackgroundService, page, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    path = tmp_path / "panning_shapes.mp4"
    path.write_bytes(clip("mp4").data)
    page.goto(f"{frontend.url}/video")
    expect(page.get_by_role("heading", name="Video")).to_be_visible(timeout=60_000)
    page.locator('input[type="file"]').set_input_files(str(path))
    expect(page.get_by_text(re.compile(r"panning_shapes\.mp4: 4\.0 s, 320×240, h264 · 8 frames"))).to_be_visible(
        timeout=60_000
    )
    analyse = page.get_by_role("button", name="Analyse")
    expect(analyse).to_be_enabled(timeout=30_000)
    analyse.click()

    expect(page.get_by_text(re.compile(r"Model shapes · 8 frames in 1 request\(s\)"))).to_be_visible(timeout=120_000)
    expect(page.get_by_role("heading", name="Detections per class over time")).to_be_visible()
    chart = page.locator('[data-testid="stVegaLiteChart"]')
    expect(chart).to_be_visible(timeout=30_000)
    legend = chart.inner_text()  # the legend lists the classes found
    assert all(name in legend for name in ("circle", "square", "triangle")), legend
    strip = page.locator('[data-testid="stImage"] img')
    expect(strip).to_have_count(8, timeout=30_000)
    captions = page.get_by_text(re.compile(r"^\d\.\d s: \d+ detections?$"))
    expect(captions).to_have_count(8)
    assert captions.first.inner_text() == "0.0 s: 1 detection"
    # Streamlit sends each frame at the strip's width (200 pixels), not at the frame's 320.
    assert strip.first.evaluate("img => img.complete && img.naturalWidth") == 200

    save_screenshot(page, tmp_path / "ui-video.png", SCREENSHOT_ASSET)

    notes = tmp_path / "notes.mp4"  # a text file with a video's name
    notes.write_text("These are my notes, not a video.\n" * 20)
    page.locator('input[type="file"]').set_input_files(str(notes))
    expect(page.get_by_text("notes.mp4 is not a video. Upload an MP4, WebM or MOV file.")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Analyse")).to_be_disabled()

    too_large = tmp_path / "too_large.mp4"  # over WORKSHOP_VIDEO_MAX_BYTES (50 MB): the browser keeps it
    too_large.write_bytes(b"\0" * (50 * 2**20 + 1))
    page.locator('input[type="file"]').set_input_files(str(too_large))
    expect(page.get_by_text(re.compile(r"File must be 50(\.0)? ?MB or smaller"))).to_be_visible(timeout=30_000)
