"""Turn an exported YOLO model's raw output into boxes: confidence filter and non-maximum suppression.

Two output layouts exist, and Ultralytics writes which one in the export's metadata:

* ``(1, 4 + classes, anchors)`` (YOLOv8, YOLO11, and YOLO26 as Ultralytics 8.4.190
  exports and predicts it by default, with its one-to-many head): one candidate box
  per anchor as centre x, centre y, width, height, then a score per class.
  Overlapping candidates of the same class must be removed here (NMS), as Ultralytics does.
* ``(1, max_det, 6)`` for *end-to-end* exports (YOLO26's one-to-one head, exported
  with ``nms=False``): already-final boxes as x1, y1, x2, y2, confidence, class id;
  only the confidence filter is left, and ``iou`` is ignored, as in Ultralytics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Offsetting each class's boxes by this many pixels keeps classes apart in one NMS pass (as Ultralytics does).
_CLASS_OFFSET = 7680.0
#: Candidates kept for NMS at most, the most confident first (Ultralytics' ``max_nms``).
_MAX_CANDIDATES = 30_000


@dataclass(frozen=True)
class RawDetections:
    """Detections in model-input pixels, most confident first."""

    boxes_xyxy: np.ndarray  # (n, 4) float32
    confidences: np.ndarray  # (n,)
    class_ids: np.ndarray  # (n,) int


def non_max_suppression(boxes_xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes to keep, best first: each box removes the weaker ones overlapping it by more than the threshold."""
    x1, y1, x2, y2 = boxes_xyxy.T
    areas = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        width = (np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest])).clip(0)
        height = (np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest])).clip(0)
        intersection = width * height
        iou = intersection / (areas[best] + areas[rest] - intersection + 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def decode_output(
    output: np.ndarray, *, end2end: bool, confidence: float, iou: float, max_detections: int
) -> RawDetections:
    """Final detections from one image's raw model output (batch dimension included)."""
    if end2end:
        rows = output[0]
        rows = rows[rows[:, 4] > confidence]
        rows = rows[np.argsort(-rows[:, 4], kind="stable")][:max_detections]
        return RawDetections(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64))

    candidates = output[0]  # (4 + classes, anchors)
    class_scores = candidates[4:]
    class_ids = class_scores.argmax(axis=0)
    scores = np.take_along_axis(class_scores, class_ids[np.newaxis], axis=0)[0]
    kept = np.flatnonzero(scores > confidence)
    kept = kept[np.argsort(-scores[kept], kind="stable")][:_MAX_CANDIDATES]
    centre_x, centre_y, width, height = candidates[:4, kept]
    boxes = np.stack([centre_x - width / 2, centre_y - height / 2, centre_x + width / 2, centre_y + height / 2], axis=1)
    scores, class_ids = scores[kept], class_ids[kept]
    chosen = non_max_suppression(boxes + class_ids[:, np.newaxis] * _CLASS_OFFSET, scores, iou)[:max_detections]
    return RawDetections(boxes[chosen], scores[chosen], class_ids[chosen])
