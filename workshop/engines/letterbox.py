"""Fit a picture into an exported model's input, and map boxes back to the picture.

Exported models take a ``(1, 3, height, width)`` float tensor. Like
Ultralytics, the picture is scaled to fit a ``size`` × ``size`` square without
changing its aspect ratio and centred on grey (114) padding, only as much as
the network's stride needs: a *letterbox*. :class:`Letterbox` keeps the
scale and padding so boxes found in the tensor can be put back on the picture.
The resize is OpenCV's bilinear, exactly as Ultralytics does it, so an exported
engine sees the same pixels as PyTorch and gives the same answers (Pillow's
bilinear filter smooths when it shrinks, which moves boxes by a pixel or two).
Without OpenCV (the back-end image), Pillow's affine transform samples the same points
with the same weights: identical to within rounding, a few milliseconds slower.
Neither needs PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

#: Ultralytics pads with this grey; the models were trained on it.
PAD_GREY = 114


@dataclass(frozen=True)
class Letterbox:
    """Where a picture of ``width`` × ``height`` sits inside the model's input of ``input_width`` × ``input_height``."""

    width: int
    height: int
    scaled_width: int
    scaled_height: int
    input_width: int
    input_height: int

    @classmethod
    def fit(cls, width: int, height: int, size: int, stride: int = 32) -> Letterbox:
        """The largest scaled copy that fits ``size`` × ``size``, padded only up to a multiple of ``stride``.

        Like Ultralytics on PyTorch ("minimum rectangle"): a 640×480 picture at size 320
        becomes 320×240 padded to 320×256, not to 320×320; fewer pixels, less work.
        """
        ratio = min(size / width, size / height)
        scaled_width, scaled_height = max(round(width * ratio), 1), max(round(height * ratio), 1)
        return cls(
            width=width,
            height=height,
            scaled_width=scaled_width,
            scaled_height=scaled_height,
            input_width=-(-scaled_width // stride) * stride,
            input_height=-(-scaled_height // stride) * stride,
        )

    def with_anchors(self, minimum: int, strides: Sequence[int]) -> Letterbox:
        """This letterbox, padded further until the network's grids of ``strides`` hold ``minimum`` anchors.

        An end-to-end export (YOLO26 with ``nms=False``) keeps its best boxes with a ``TopK``
        whose ``k`` (300) was fixed at export: an input with fewer anchors than that makes ONNX
        Runtime and OpenVINO fail (a 1000x20 picture at size 320 is a 320x32 input, 210 anchors),
        where PyTorch simply keeps fewer. More grey padding, shorter side first, gives the graph
        its anchors; the boxes found on the padding are the ones PyTorch cannot even propose.
        """
        geometry, step = self, max(strides, default=1)
        while strides and sum((geometry.input_width // s) * (geometry.input_height // s) for s in strides) < minimum:
            if geometry.input_height <= geometry.input_width:
                geometry = replace(geometry, input_height=geometry.input_height + step)
            else:
                geometry = replace(geometry, input_width=geometry.input_width + step)
        return geometry

    @property
    def pad_left(self) -> int:
        return round((self.input_width - self.scaled_width) / 2 - 0.1)

    @property
    def pad_top(self) -> int:
        return round((self.input_height - self.scaled_height) / 2 - 0.1)

    def to_picture(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Boxes in model-input pixels -> boxes in picture pixels, clipped to the picture."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float32).copy()
        boxes[:, [0, 2]] = (boxes[:, [0, 2]] - self.pad_left) * (self.width / self.scaled_width)
        boxes[:, [1, 3]] = (boxes[:, [1, 3]] - self.pad_top) * (self.height / self.scaled_height)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, self.width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, self.height)
        return boxes


def resize_bilinear_pillow(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """``cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)`` with Pillow (same result to ±1).

    Not ``Image.resize``, whose bilinear filter widens when it shrinks (antialiasing): an affine
    transform samples each target pixel's centre on the source, two by two pixels, as OpenCV does.
    """
    source_height, source_width = rgb.shape[:2]
    scale = (source_width / width, 0, 0, 0, source_height / height, 0)
    picture = Image.fromarray(rgb).transform((width, height), Image.Transform.AFFINE, scale, Image.Resampling.BILINEAR)
    return np.asarray(picture)


def resize_bilinear(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize as Ultralytics does it: OpenCV when installed, else the Pillow equivalent."""
    try:
        import cv2
    except ImportError:
        return resize_bilinear_pillow(rgb, width, height)
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)


def letterbox(
    image: Image.Image, size: int, stride: int = 32, *, min_anchors: int = 0, strides: Sequence[int] = ()
) -> tuple[np.ndarray, Letterbox]:
    """The model input for ``image`` (RGB, ``(1, 3, height, width)`` float32 in 0..1) and its geometry.

    ``min_anchors`` and ``strides``: pad further, if needed, so the input has at least that many
    anchors (see :meth:`Letterbox.with_anchors`); the default pads only to a multiple of ``stride``.
    """
    geometry = Letterbox.fit(image.width, image.height, size, stride).with_anchors(min_anchors, strides)
    rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    if (geometry.scaled_width, geometry.scaled_height) != (image.width, image.height):
        rgb = resize_bilinear(rgb, geometry.scaled_width, geometry.scaled_height)
    canvas = np.full((geometry.input_height, geometry.input_width, 3), PAD_GREY, dtype=np.uint8)
    canvas[
        geometry.pad_top : geometry.pad_top + geometry.scaled_height,
        geometry.pad_left : geometry.pad_left + geometry.scaled_width,
    ] = rgb
    # HWC bytes -> NCHW floats in 0..1, in one pass into a contiguous array.
    tensor = np.empty((1, 3, geometry.input_height, geometry.input_width), dtype=np.float32)
    np.multiply(canvas.transpose(2, 0, 1), np.float32(1 / 255), out=tensor[0])
    return tensor, geometry
