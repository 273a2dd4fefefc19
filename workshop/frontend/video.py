"""Videos for the front-end: check an upload, sample frames from it, send them in batches, count detections over time.

Decoding is PyAV's (FFmpeg in a wheel, nothing to install). Nothing here
knows Streamlit, so every limit and every message is tested on its own.

Every limit is checked as early as it can be: the file's size before opening
it, the duration and the frame count from the container's header before
decoding a single frame, and both again while decoding (a header may lie, or
say nothing), so a file never makes the page hang.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import av
from PIL import Image

from workshop.client import WorkshopClient
from workshop.imaging import encode_image
from workshop.schemas import PredictResponse
from workshop.settings import Settings

#: File types the video uploader accepts.
VIDEO_TYPES = ["mp4", "webm", "mov"]

#: Sampling rates offered on the page, in frames a second.
SAMPLING_RATES = [0.5, 1.0, 2.0, 5.0, 10.0]

#: Frames are shrunk to this long side before they are sent: the model sees
#: 640-pixel pictures at most, so a larger frame only costs bytes and time.
FRAME_LONG_SIDE = 640

#: Room in a multipart body for one file's part headers (boundary, field name, file name:
#: about 150 bytes with ``requests``), rounded up so a batch never crosses the body limit.
MULTIPART_PART_BYTES = 1024

# The first bytes of the containers a video may come in. When FFmpeg cannot read a file
# that starts like one of them, the file is a damaged video, not something else.
_VIDEO_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),  # MP4, MOV
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"wide"),
    (0, b"\x1a\x45\xdf\xa3"),  # WebM, Matroska
)

# Frame times are fractions of a time base: compare them with a little slack.
_EPSILON = 1e-6


class VideoError(ValueError):
    """The file is not a video this page can use; the message says why and what to do."""


@dataclass(frozen=True)
class VideoLimits:
    """How much video the page accepts (the ``WORKSHOP_VIDEO_MAX_*`` settings, and the pixel limit of images)."""

    max_bytes: int
    max_seconds: float
    max_frames: int
    max_pixels: int

    @classmethod
    def from_settings(cls, settings: Settings) -> VideoLimits:
        """The limits the settings give (the same WORKSHOP_ variables as everywhere else)."""
        return cls(
            max_bytes=settings.video_max_bytes, max_seconds=settings.video_max_seconds,
            max_frames=settings.video_max_frames, max_pixels=settings.max_pixels,
        )


@dataclass(frozen=True)
class VideoKey:
    """What a video's answers depend on. Confidence is not part of it: it is filtered locally.

    It lives here, not in the page script: Streamlit runs that script anew on every click, which
    makes its classes new ones too, and an instance of the old class never equals one of the new.
    """

    video_sha256: str
    rate: float
    model: str
    backend_url: str


@dataclass(frozen=True)
class SampledFrame:
    """One frame taken from the video: when it is shown, and the picture (shrunk, JPEG-encoded)."""

    seconds: float
    jpeg: bytes

    def image(self) -> Image.Image:
        """The frame as a Pillow image (decoded from its JPEG)."""
        return Image.open(io.BytesIO(self.jpeg)).convert("RGB")


@dataclass(frozen=True)
class SampledVideo:
    """The frames sampled from one video, and what the video is."""

    frames: tuple[SampledFrame, ...]
    duration: float
    width: int
    height: int
    codec: str
    native_rate: float
    #: What the header announced, in seconds (None when it said nothing).
    announced_duration: float | None = None

    @property
    def incomplete(self) -> bool:
        """True when the frames stop well before the duration the header announced: the file was cut short."""
        return self.announced_duration is not None and self.duration + 0.5 < self.announced_duration

    @property
    def times(self) -> list[float]:
        """When each sampled frame is shown, in seconds from the start."""
        return [frame.seconds for frame in self.frames]


def looks_like_a_video(data: bytes) -> bool:
    """True when the file starts like an MP4, MOV or WebM/Matroska file."""
    return any(data[offset : offset + len(magic)] == magic for offset, magic in _VIDEO_SIGNATURES)


def expected_frame_count(duration: float, rate: float) -> int:
    """Frames sampled from ``duration`` seconds at ``rate`` frames a second: one at 0 s, 1/rate s, ... before the end."""
    return max(1, math.ceil(duration * rate - _EPSILON))


def readable_size(size: int) -> str:
    """A file size for a message: ``12.3 MB``, ``850 kB`` or ``900 bytes`` (kB and MB of 1024)."""
    if size >= 2**20:
        return f"{size / 2**20:.1f} MB"
    if size >= 2**10:
        return f"{size / 2**10:.0f} kB"
    return f"{size} bytes"


def check_size(data: bytes, name: str, limits: VideoLimits) -> None:
    """Refuse a file over the size limit, before opening it."""
    if len(data) > limits.max_bytes:
        raise VideoError(
            f"{name} is {readable_size(len(data))}, over the limit of {readable_size(limits.max_bytes)} "
            "(WORKSHOP_VIDEO_MAX_BYTES). "
            "Upload a shorter or smaller clip."
        )


def _open(data: bytes, name: str) -> av.container.InputContainer:
    try:
        return av.open(io.BytesIO(data), mode="r")
    except av.FFmpegError:
        if looks_like_a_video(data):
            raise VideoError(
                f"{name} looks like a video but cannot be read: the file is damaged or incomplete. "
                "Export it again, or upload another one."
            ) from None
        raise VideoError(f"{name} is not a video. Upload an MP4, WebM or MOV file.") from None


def _header_duration(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    """The duration the file announces, in seconds, or None when it says nothing."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _check_header(
    container: av.container.InputContainer, name: str, rate: float, limits: VideoLimits, looks_like_video: bool
) -> av.VideoStream:
    """The video stream, once what the header says passes every limit."""
    # FFmpeg opens a still picture too (as a one-frame "video" in an image demuxer).
    if container.format.name.endswith("_pipe") or container.format.name == "image2":
        raise VideoError(f"{name} is a still picture, not a video: analyse pictures on the Images page.")
    # A sound file's cover art is a video stream of one picture: it is not a video either.
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams and looks_like_video and not container.streams.audio:
        # An MP4 cut short loses its index (written last), and with it its tracks.
        raise VideoError(
            f"{name} looks like a video but holds no readable track: the file is damaged or incomplete. "
            "Export it again, or upload another one."
        )
    if not streams:
        raise VideoError(f"{name} has no video track (is it a sound file?). Upload a video.")
    stream = streams[0]
    if stream.width * stream.height > limits.max_pixels:
        raise VideoError(
            f"{name}'s frames are {stream.width}×{stream.height} pixels, over the limit of {limits.max_pixels} "
            "(WORKSHOP_MAX_PIXELS). Export it at a lower resolution."
        )
    duration = _header_duration(container, stream)
    if duration is not None:
        _check_duration(duration, name, limits)
        # Sampling faster than the video's own rate gives each frame once, no more.
        native_rate = float(stream.average_rate or stream.guessed_rate or rate)
        _check_frame_count(expected_frame_count(duration, min(rate, native_rate)), rate, duration, name, limits)
    return stream


def _check_duration(seconds: float, name: str, limits: VideoLimits) -> None:
    if seconds > limits.max_seconds + _EPSILON:
        raise VideoError(
            f"{name} lasts more than {limits.max_seconds:g} s, the limit (WORKSHOP_VIDEO_MAX_SECONDS). "
            "Cut a shorter clip and upload that."
        )


def _check_frame_count(count: int, rate: float, duration: float | None, name: str, limits: VideoLimits) -> None:
    if count <= limits.max_frames:
        return
    hint = "Choose a lower rate or a shorter clip."
    fitting = [r for r in SAMPLING_RATES if duration and expected_frame_count(duration, r) <= limits.max_frames]
    if fitting:
        hint = f"Lower the rate to {max(fitting):g} a second (or less) for this clip, or cut a shorter clip."
    raise VideoError(
        f"Sampling {name} at {rate:g} frames a second gives {count} frames, over the limit of "
        f"{limits.max_frames} (WORKSHOP_VIDEO_MAX_FRAMES). {hint}"
    )


def _decoded_frames(container: av.container.InputContainer, stream: av.VideoStream, name: str) -> Iterator[av.VideoFrame]:
    """Every frame of ``stream``, with a clear error when the data breaks off."""
    stream.thread_type = "AUTO"  # decode on every core
    frames = container.decode(stream)
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except av.FFmpegError as error:
            raise VideoError(
                f"{name} is damaged: FFmpeg stopped decoding it ({error.strerror}). Export it again, or upload another one."
            ) from None
        yield frame


def _shrunk_jpeg(frame: av.VideoFrame) -> bytes:
    """The frame as a JPEG, its long side at most FRAME_LONG_SIDE.

    FFmpeg shrinks it while converting it to RGB: sampling 100 frames from 10 s of 1080p
    took 0.8 s so, against 9.6 s when Pillow shrank each whole RGB frame.
    """
    scale = min(1.0, FRAME_LONG_SIDE / max(frame.width, frame.height))
    image = frame.to_image(width=max(1, round(frame.width * scale)), height=max(1, round(frame.height * scale)))
    return encode_image(image, "JPEG")


def sample_frames(data: bytes, rate: float, limits: VideoLimits, name: str = "The file") -> SampledVideo:
    """Take ``rate`` frames a second from the video in ``data``: the first frame shown at or after 0 s, 1/rate s, ...

    Raise :class:`VideoError`, with a message for the student, when the file is too
    large, not a video, damaged, too long, or would give too many frames.
    """
    if rate <= 0:
        raise ValueError(f"the sampling rate must be positive, not {rate}")
    check_size(data, name, limits)
    with _open(data, name) as container:
        stream = _check_header(container, name, rate, limits, looks_like_a_video(data))
        announced = _header_duration(container, stream)
        native_rate = float(stream.average_rate or stream.guessed_rate or 25)
        # Times count from the first frame: some files (phones, edited clips) start their clock later than 0.
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else 0.0
        sampled: list[SampledFrame] = []
        next_time = 0.0
        last_seconds = 0.0
        for index, frame in enumerate(_decoded_frames(container, stream, name)):
            seconds = frame.time - start if frame.time is not None else index / native_rate
            _check_duration(seconds, name, limits)  # the header may have said nothing, or lied
            last_seconds = max(last_seconds, seconds)
            if seconds + _EPSILON < next_time:
                continue
            # After a gap in the video (phones vary their frame rate), sampling
            # resumes on the grid of 1/rate steps, not in a burst.
            _check_frame_count(len(sampled) + 1, rate, None, name, limits)
            sampled.append(SampledFrame(seconds=round(seconds, 3), jpeg=_shrunk_jpeg(frame)))
            next_time = (math.floor(seconds * rate + _EPSILON) + 1) / rate
        if not sampled:
            raise VideoError(
                f"{name} holds no frame that can be decoded: the file is damaged or incomplete. Upload another file."
            )
        return SampledVideo(
            frames=tuple(sampled), duration=round(last_seconds + 1 / native_rate, 3), width=stream.width,
            height=stream.height, codec=stream.codec_context.name, native_rate=native_rate,
            announced_duration=None if announced is None else round(announced, 3),
        )


def batches(items: Sequence[bytes], max_items: int, max_bytes: int) -> Iterator[list[bytes]]:
    """Split ``items`` into lists of at most ``max_items`` items whose multipart body stays under ``max_bytes``.

    A back-end takes at most WORKSHOP_MAX_BATCH_IMAGES images, and a body of at
    most WORKSHOP_MAX_REQUEST_BYTES, in one request. Each item counts its own
    size plus :data:`MULTIPART_PART_BYTES`, and one more such share is kept for
    the form fields. An item too large for any body goes alone (the back-end
    then says why it refuses it).
    """
    budget = max_bytes - MULTIPART_PART_BYTES
    batch: list[bytes] = []
    size = 0
    for item in items:
        cost = len(item) + MULTIPART_PART_BYTES
        if batch and (len(batch) == max_items or size + cost > budget):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += cost
    if batch:
        yield batch


def predict_frames(
    client: WorkshopClient,
    frames: Sequence[SampledFrame],
    model: str,
    max_items: int,
    max_bytes: int,
    progress: Callable[[int, int], None] | None = None,
    **params: float,
) -> list[PredictResponse]:
    """One answer per frame, in order, through ``POST /predict/batch/upload`` in as many requests as the limits need.

    ``progress(done, total)`` is called after each request. ``params``: confidence, iou...
    """
    responses: list[PredictResponse] = []
    for batch in batches([frame.jpeg for frame in frames], max_items, max_bytes):
        responses.extend(client.predict_batch_upload(batch, model=model, **params).results)
        if progress:
            progress(len(responses), len(frames))
    return responses


def detection_counts(responses: Sequence[PredictResponse], min_confidence: float) -> dict[str, list[int]]:
    """Detections per class in each frame, for the plot: ``{"circle": [0, 1, 1], ...}`` (one value per frame).

    A class appears when at least one frame holds it; it then has a value, maybe 0, for every frame.
    """
    per_frame = [
        Counter(d.class_name for d in response.detections if d.confidence >= min_confidence) for response in responses
    ]
    classes = sorted(set().union(*per_frame))
    return {name: [counts[name] for counts in per_frame] for name in classes}


def timeline_rows(
    times: Sequence[float], responses: Sequence[PredictResponse], min_confidence: float
) -> list[dict[str, object]]:
    """One row per detection, with the time of its frame: the CSV a student downloads."""
    return [
        {
            "seconds": seconds, "class": d.class_name, "confidence": round(d.confidence, 4),
            "x_min": round(d.x_min, 1), "y_min": round(d.y_min, 1), "x_max": round(d.x_max, 1), "y_max": round(d.y_max, 1),
        }
        for seconds, response in zip(times, responses, strict=True)
        for d in response.detections
        if d.confidence >= min_confidence
    ]
