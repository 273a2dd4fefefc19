"""A short video the bundled model knows: a camera panning across a generated shapes picture.

The Video page offers it as a sample (nothing to upload, works offline), and
the tests use it as a video whose ground truth is known at every instant:
each frame is a window on one wide picture from :mod:`workshop.demo.shapes`,
so a shape's box in a frame is its box in the picture, shifted by the pan.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import av
import numpy as np
from PIL import Image

from workshop.demo.shapes import Shape, generate_sample

VideoFormat = Literal["mp4", "mov", "webm"]

#: Codec written into each container: H.264 where phones and cameras use it, VP9 in WebM (what browsers record).
_CODECS: dict[VideoFormat, str] = {"mp4": "libx264", "mov": "libx264", "webm": "libvpx-vp9"}

# Encoder options that trade compression for speed: the clips are tiny, the tests run on two busy cores.
_FAST: dict[str, dict[str, str]] = {
    "libx264": {"preset": "veryfast"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8"},
}

#: The seed of the default clip: a plain background and four shapes of the three classes, spread along the pan.
DEMO_SEED = 4


@dataclass(frozen=True)
class PanningClip:
    """A generated clip: its file bytes and, for every frame, the shapes wholly inside it and those cut by its edge."""

    data: bytes
    format: VideoFormat
    fps: int
    width: int
    height: int
    shapes_per_frame: tuple[tuple[Shape, ...], ...]
    #: The shapes partly inside each frame, their boxes clipped to it: a model may or may not find them.
    cut_shapes_per_frame: tuple[tuple[Shape, ...], ...]

    @property
    def duration(self) -> float:
        """Seconds the clip lasts: its frame count over its frame rate."""
        return len(self.shapes_per_frame) / self.fps

    def _index(self, seconds: float) -> int:
        return min(int(seconds * self.fps + 1e-6), len(self.shapes_per_frame) - 1)

    def shapes_at(self, seconds: float) -> tuple[Shape, ...]:
        """The shapes wholly visible in the frame shown at ``seconds``."""
        return self.shapes_per_frame[self._index(seconds)]

    def cut_shapes_at(self, seconds: float) -> tuple[Shape, ...]:
        """The shapes cut by an edge of the frame shown at ``seconds``, clipped to it."""
        return self.cut_shapes_per_frame[self._index(seconds)]


def _visible_shapes(shapes: tuple[Shape, ...], left: int, width: int) -> tuple[Shape, ...]:
    """The shapes wholly inside the window ``[left, left + width)``, in the window's coordinates."""
    return tuple(
        Shape(s.class_name, s.x_min - left, s.y_min, s.x_max - left, s.y_max)
        for s in shapes
        if s.x_min >= left and s.x_max <= left + width
    )


def _cut_shapes(shapes: tuple[Shape, ...], left: int, width: int) -> tuple[Shape, ...]:
    """The shapes across an edge of the window ``[left, left + width)``, clipped to it, in its coordinates."""
    return tuple(
        Shape(s.class_name, max(s.x_min, left) - left, s.y_min, min(s.x_max, left + width) - left, s.y_max)
        for s in shapes
        if s.x_min < left + width and s.x_max > left and not (s.x_min >= left and s.x_max <= left + width)
    )


def encode_video(frames: list[Image.Image], fps: int, video_format: VideoFormat = "mp4") -> bytes:
    """Encode RGB pictures (all the same size, even sides) as a video file, in memory."""
    buffer = io.BytesIO()
    codec = _CODECS[video_format]
    with av.open(buffer, mode="w", format=video_format) as container:
        stream = container.add_stream(codec, rate=fps, options=_FAST[codec])
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_image(image)))
        container.mux(stream.encode())  # flush the frames the encoder still holds
    return buffer.getvalue()


def panning_clip(
    seed: int = DEMO_SEED,
    seconds: float = 4.0,
    fps: int = 10,
    size: tuple[int, int] = (320, 240),
    video_format: VideoFormat = "mp4",
) -> PanningClip:
    """A clip of ``seconds`` panning left to right across a picture three frames wide.

    Shapes enter on the right and leave on the left, so what the model should
    find changes over time: a fair test of a detections-over-time plot.
    """
    width, height = size
    panorama = generate_sample(np.random.default_rng(seed), width=3 * width, height=height)
    frame_count = max(1, round(seconds * fps))
    step = (panorama.image.width - width) / max(frame_count - 1, 1)
    frames, shapes_per_frame, cut_shapes_per_frame = [], [], []
    for index in range(frame_count):
        left = round(index * step)
        frames.append(panorama.image.crop((left, 0, left + width, height)))
        shapes_per_frame.append(_visible_shapes(panorama.shapes, left, width))
        cut_shapes_per_frame.append(_cut_shapes(panorama.shapes, left, width))
    return PanningClip(
        data=encode_video(frames, fps, video_format), format=video_format, fps=fps, width=width, height=height,
        shapes_per_frame=tuple(shapes_per_frame), cut_shapes_per_frame=tuple(cut_shapes_per_frame),
    )
