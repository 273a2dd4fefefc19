"""What the front-end does with images and answers, kept apart from Streamlit so it is easy to test.

The app asks the back-end once per (image, model, IoU) with a low confidence
floor, keeps the answer, and filters it locally: moving the confidence slider
redraws at once without sending the image again.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass

from PIL import Image

from workshop.drawing import draw_detections
from workshop.imaging import encode_image
from workshop.schemas import Detection, PredictResponse, Timing

#: Confidence sent to the back-end; the slider filters above it, locally.
CONFIDENCE_FLOOR = 0.05

#: File types the uploader accepts.
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp"]

TEST_MODE_MODEL = "test-mode"


@dataclass(frozen=True)
class PredictionKey:
    """What a cached answer depends on. Confidence is not part of it: it is filtered locally."""

    image_sha256: str
    model: str
    iou: float
    backend_url: str


def image_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def filter_detections(detections: list[Detection], min_confidence: float) -> list[Detection]:
    """The detections at or above ``min_confidence``."""
    return [d for d in detections if d.confidence >= min_confidence]


def detection_rows(detections: list[Detection]) -> list[dict[str, str]]:
    """Rows for the detections table, formatted for reading (the JSON download keeps full precision)."""
    return [
        {
            "class": d.class_name,
            "confidence": f"{d.confidence:.2f}",
            "x_min": f"{d.x_min:.0f}",
            "y_min": f"{d.y_min:.0f}",
            "x_max": f"{d.x_max:.0f}",
            "y_max": f"{d.y_max:.0f}",
        }
        for d in detections
    ]


def detection_summary(detections: list[Detection]) -> str:
    """One line saying what was found: ``Found 3 objects: 2 circle, 1 square.``"""
    if not detections:
        return "Found nothing above the confidence threshold."
    counts = Counter(d.class_name for d in detections)
    parts = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
    noun = "object" if len(detections) == 1 else "objects"
    return f"Found {len(detections)} {noun}: {parts}."


def annotated_png(image: Image.Image, detections: list[Detection]) -> bytes:
    """The picture with its boxes drawn, as PNG bytes (for display and download)."""
    return encode_image(draw_detections(image, detections))


def result_json(response: PredictResponse, detections: list[Detection]) -> str:
    """The answer as shown (filtered detections), as pretty JSON for download."""
    payload = response.model_dump()
    payload["detections"] = [d.model_dump() for d in detections]
    return json.dumps(payload, indent=2)


def fake_prediction(image: Image.Image) -> PredictResponse:
    """Test mode: a made-up answer, computed from the image size alone, with no back-end at all."""
    width, height = image.size
    detections = [
        Detection(
            x_min=width * 0.10, y_min=height * 0.15, x_max=width * 0.45, y_max=height * 0.60,
            class_name="test-object", confidence=0.90, class_id=0,
        ),
        Detection(
            x_min=width * 0.55, y_min=height * 0.40, x_max=width * 0.90, y_max=height * 0.85,
            class_name="test-object", confidence=0.40, class_id=0,
        ),
    ]
    return PredictResponse(
        detections=detections, time=0.0, model=TEST_MODE_MODEL, image_width=width, image_height=height,
        timing=Timing(decode=0.0, inference=0.0, total=0.0),
    )
