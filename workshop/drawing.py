"""Draw detections on a picture: one colour per class, readable labels, no font download.

Ultralytics' own ``Results.plot()`` downloads a font the first time it runs,
which fails offline; this module uses the font that ships inside Pillow.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterable

from PIL import Image, ImageDraw, ImageFont

from workshop.schemas import Detection

# A colour-blind-friendly palette with enough contrast for white label text.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (0, 130, 200),
    (60, 140, 60),
    (145, 30, 180),
    (245, 130, 48),
    (0, 128, 128),
    (170, 110, 40),
    (128, 0, 0),
    (70, 70, 200),
    (200, 40, 160),
)


def class_colour(class_name: str) -> tuple[int, int, int]:
    """The colour of a class: the same name always gets the same colour, in every view."""
    return PALETTE[zlib.crc32(class_name.encode("utf-8")) % len(PALETTE)]


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow >= 10.1 embeds a scalable font: nothing is read from disk or the network.
    return ImageFont.load_default(size=size)


def draw_detections(image: Image.Image, detections: Iterable[Detection], line_width: int | None = None) -> Image.Image:
    """A copy of ``image`` with a labelled box for each detection."""
    annotated = image.convert("RGB")  # always a copy, never the caller's picture
    draw = ImageDraw.Draw(annotated)
    scale = max(annotated.size) / 640
    width = line_width or max(2, round(2 * scale))
    font = _font(max(11, round(14 * scale)))
    for detection in detections:
        colour = class_colour(detection.class_name)
        box = (detection.x_min, detection.y_min, detection.x_max, detection.y_max)
        draw.rectangle(box, outline=colour, width=width)
        label = f"{detection.class_name} {detection.confidence:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        text_w, text_h = right - left, bottom - top
        pad = max(2, width)
        # The label sits above the box, or inside it when the box touches the top edge.
        label_top = detection.y_min - text_h - 2 * pad
        if label_top < 0:
            label_top = detection.y_min
        label_left = min(max(detection.x_min, 0), max(annotated.width - text_w - 2 * pad, 0))
        draw.rectangle(
            (label_left, label_top, label_left + text_w + 2 * pad, label_top + text_h + 2 * pad), fill=colour
        )
        draw.text((label_left + pad - left, label_top + pad - top), label, fill=(255, 255, 255), font=font)
    return annotated
