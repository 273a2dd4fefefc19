"""Fit a picture into an exported model's square input, and map boxes back to the picture.

Exported models take a fixed ``(1, 3, size, size)`` float tensor. Like
Ultralytics, the picture is scaled to fit without changing its aspect ratio
and centred on grey (114) padding: a *letterbox*. :class:`Letterbox` keeps the
scale and padding so boxes found in the tensor can be put back on the picture.
The resize is OpenCV's bilinear, exactly as Ultralytics does it, so an exported
engine sees the same pixels as PyTorch and gives the same answers (Pillow's
bilinear filter smooths when it shrinks, which moves boxes by a pixel or two).
Without OpenCV, a NumPy version of the same arithmetic is used: identical to
within rounding, a few milliseconds slower. Neither needs PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

#: Ultralytics pads with this grey; the models were trained on it.
PAD_GREY = 114


@dataclass(frozen=True)
class Letterbox:
    """Where a picture of ``width`` × ``height`` sits inside the model's square input."""

    width: int
    height: int
    scaled_width: int
    scaled_height: int
    pad_left: int
    pad_top: int

    @classmethod
    def fit(cls, width: int, height: int, size: int) -> Letterbox:
        """The largest scaled copy that fits ``size`` × ``size``, centred (rounded as Ultralytics rounds)."""
        ratio = min(size / width, size / height)
        scaled_width, scaled_height = max(round(width * ratio), 1), max(round(height * ratio), 1)
        return cls(
            width=width,
            height=height,
            scaled_width=scaled_width,
            scaled_height=scaled_height,
            pad_left=round((size - scaled_width) / 2 - 0.1),
            pad_top=round((size - scaled_height) / 2 - 0.1),
        )

    def to_picture(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Boxes in model-input pixels -> boxes in picture pixels, clipped to the picture."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float32).copy()
        boxes[:, [0, 2]] = (boxes[:, [0, 2]] - self.pad_left) * (self.width / self.scaled_width)
        boxes[:, [1, 3]] = (boxes[:, [1, 3]] - self.pad_top) * (self.height / self.scaled_height)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, self.width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, self.height)
        return boxes


def _sample_positions(source: int, target: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # OpenCV's convention: target pixel centres mapped onto source pixel centres, clamped at the edges.
    position = np.maximum((np.arange(target) + 0.5) * (source / target) - 0.5, 0)
    before = np.minimum(np.floor(position).astype(np.intp), source - 1)
    after = np.minimum(before + 1, source - 1)
    return before, after, (position - before).astype(np.float32)


def resize_bilinear_numpy(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """``cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)`` in NumPy (same result to ±1)."""
    top, bottom, down = _sample_positions(rgb.shape[0], height)
    left, right, across = _sample_positions(rgb.shape[1], width)
    upper, lower = rgb[top].astype(np.float32), rgb[bottom].astype(np.float32)
    rows = upper + (lower - upper) * down[:, np.newaxis, np.newaxis]
    west, east = rows[:, left], rows[:, right]
    return np.rint(west + (east - west) * across[np.newaxis, :, np.newaxis]).astype(np.uint8)


def resize_bilinear(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize as Ultralytics does it: OpenCV when installed, else the NumPy equivalent."""
    try:
        import cv2
    except ImportError:
        return resize_bilinear_numpy(rgb, width, height)
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)


def letterbox(image: Image.Image, size: int) -> tuple[np.ndarray, Letterbox]:
    """The model input for ``image`` (RGB, ``(1, 3, size, size)`` float32 in 0..1) and its geometry."""
    geometry = Letterbox.fit(image.width, image.height, size)
    rgb = np.asarray(image.convert("RGB"))
    if (geometry.scaled_width, geometry.scaled_height) != (image.width, image.height):
        rgb = resize_bilinear(rgb, geometry.scaled_width, geometry.scaled_height)
    canvas = np.full((size, size, 3), PAD_GREY, dtype=np.uint8)
    canvas[
        geometry.pad_top : geometry.pad_top + geometry.scaled_height,
        geometry.pad_left : geometry.pad_left + geometry.scaled_width,
    ] = rgb
    tensor = canvas.transpose(2, 0, 1)[np.newaxis].astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(tensor), geometry
