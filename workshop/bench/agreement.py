"""Do the exported engines give the same answers as PyTorch? Speed never at the price of answers.

Compared on the same model and the same pictures, as each engine serves them
(the same letterbox, padded to a multiple of 32): every PyTorch box must
have a box on the other engine with the same class, an IoU above
:data:`MIN_IOU` and a confidence within :data:`MAX_CONFIDENCE_DELTA`. The raw
network outputs on the timed picture are compared too (relative difference),
which also covers a model that is untrained and finds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_IOU = 0.9
MAX_CONFIDENCE_DELTA = 0.02


@dataclass(frozen=True)
class Agreement:
    """How closely one engine's answers match PyTorch's."""

    engine: str
    reference_boxes: int
    engine_boxes: int
    matched: int
    max_confidence_delta: float
    min_iou: float
    raw_output_relative_delta: float

    @property
    def agrees(self) -> bool:
        return self.matched == self.reference_boxes == self.engine_boxes


def _corners(box: Any) -> tuple[float, float, float, float]:
    if isinstance(box, Mapping):
        return box["x_min"], box["y_min"], box["x_max"], box["y_max"]
    if isinstance(box, (tuple, list)):
        x_min, y_min, x_max, y_max = box
        return x_min, y_min, x_max, y_max
    return box.x_min, box.y_min, box.x_max, box.y_max


def box_iou(a: Any, b: Any) -> float:
    """Intersection over union of two boxes, each a mapping or an object with ``x_min``, ``y_min``, ``x_max``,
    ``y_max``, or a ``(x_min, y_min, x_max, y_max)`` tuple."""
    ax1, ay1, ax2, ay2 = _corners(a)
    bx1, by1, bx2, by2 = _corners(b)
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def compare_engines(floors: dict[str, dict]) -> list[Agreement]:
    """One :class:`Agreement` per engine other than PyTorch, from the floor workers' results."""
    if "pytorch" not in floors:
        return []
    reference = floors["pytorch"]
    reference_raw = np.load(reference["raw_output_file"])
    agreements = []
    for engine, floor in floors.items():
        if engine == "pytorch":
            continue
        expected_boxes = got_boxes = matched = 0
        deltas, ious = [0.0], [1.0]
        for picture, expected in reference["detections"].items():
            remaining = list(floor["detections"].get(picture, []))
            expected_boxes += len(expected)
            got_boxes += len(remaining)
            for want in expected:
                candidates = [d for d in remaining if d["class_name"] == want["class_name"]]
                best = max(candidates, key=lambda d: box_iou(d, want), default=None)
                if best is None or box_iou(best, want) < MIN_IOU:
                    continue
                if abs(best["confidence"] - want["confidence"]) > MAX_CONFIDENCE_DELTA:
                    continue
                remaining.remove(best)
                matched += 1
                deltas.append(abs(best["confidence"] - want["confidence"]))
                ious.append(box_iou(best, want))
        raw = np.load(floor["raw_output_file"])
        relative = float(np.abs(raw - reference_raw).max() / max(np.abs(reference_raw).max(), 1e-9))
        agreements.append(
            Agreement(engine, expected_boxes, got_boxes, matched, round(max(deltas), 4), round(min(ious), 4), relative)
        )
    return agreements
