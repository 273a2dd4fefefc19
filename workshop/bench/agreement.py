"""Do the exported engines give the same answers as PyTorch? Speed never at the price of answers.

Compared on the same model and the same pictures, as each engine serves them
(the same letterbox, padded to a multiple of 32): every PyTorch box must
have a box on the other engine with the same class, an IoU above
:data:`MIN_IOU` and a confidence within :data:`MAX_CONFIDENCE_DELTA`. The raw
network outputs on the timed picture are compared too (relative difference),
which also covers a model that is untrained and finds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _iou(a: dict, b: dict) -> float:
    width = max(0.0, min(a["x_max"], b["x_max"]) - max(a["x_min"], b["x_min"]))
    height = max(0.0, min(a["y_max"], b["y_max"]) - max(a["y_min"], b["y_min"]))
    inter = width * height
    area = lambda d: (d["x_max"] - d["x_min"]) * (d["y_max"] - d["y_min"])  # noqa: E731
    union = area(a) + area(b) - inter
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
                best = max(candidates, key=lambda d: _iou(d, want), default=None)
                if best is None or _iou(best, want) < MIN_IOU:
                    continue
                if abs(best["confidence"] - want["confidence"]) > MAX_CONFIDENCE_DELTA:
                    continue
                remaining.remove(best)
                matched += 1
                deltas.append(abs(best["confidence"] - want["confidence"]))
                ious.append(_iou(best, want))
        raw = np.load(floor["raw_output_file"])
        relative = float(np.abs(raw - reference_raw).max() / max(np.abs(reference_raw).max(), 1e-9))
        agreements.append(
            Agreement(engine, expected_boxes, got_boxes, matched, round(max(deltas), 4), round(min(ious), 4), relative)
        )
    return agreements
