"""What every engine shares: its name, the prediction parameters it takes, and the detections it returns.

An *engine* is the runtime that executes a model's network: PyTorch (through
Ultralytics, the model as trained), ONNX Runtime, or OpenVINO (the same model
exported by Ultralytics). The registry loads one engine per model; the rest of
the back-end only ever calls :meth:`Engine.detect`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, get_args

import numpy as np
from PIL import Image

from workshop.schemas import Detection, EngineName

#: Every engine this package can run, in the order the benchmark shows them.
ENGINE_NAMES: tuple[EngineName, ...] = get_args(EngineName)

#: What the settings may ask for: one engine, or ``auto``, the fastest one here (see :mod:`workshop.engines.auto`).
EngineChoice = Literal["auto", "pytorch", "onnx", "openvino"]


@dataclass(frozen=True)
class InferenceParameters:
    """Fully resolved prediction settings (no ``None``: defaults already applied)."""

    confidence: float
    iou: float
    max_detections: int
    image_size: int | None = None  # None: the size the model was trained (or exported) at


@dataclass(frozen=True)
class EnginePlan:
    """Which engine runs one model and from which export: decided by :func:`workshop.engines.plan_engine`.

    Making a plan exports and times nothing, so ``/models`` can show it before the model loads.
    A plan that is not ``settled`` (``auto`` with an export still to make, or two runtimes
    still to time) is settled when the model loads, once: see :mod:`workshop.engines.auto`.
    """

    model: str
    weights: Path
    #: What the settings ask for this model: an engine, or ``auto``.
    requested: EngineChoice
    #: The engine that runs the model (``auto`` not yet settled: the one it most likely picks).
    engine: EngineName
    #: The export that engine opens; None for PyTorch, or when the export is still to be made.
    export: Path | None
    #: Why this engine, in a few words (logged when the model loads).
    reason: str
    #: Why the model cannot run in this installation, whatever its weights; None when it can.
    unavailable: str | None = None
    settled: bool = True
    #: ``auto``: the exported engines still in the running (installed, with an export or able to make one).
    candidates: tuple[EngineName, ...] = ()

    @property
    def needs_weights(self) -> bool:
        """Whether loading reads the ``.pt`` weights: PyTorch runs them, or an export is made from them."""
        return self.engine == "pytorch" or self.export is None


class Engine(Protocol):
    """A loaded model network that turns one picture into detections."""

    name: EngineName
    class_names: list[str]
    #: The input size used when a request names none: the size the model was trained at.
    image_size: int
    #: How many ``detect`` calls may run at the same time.
    lanes: int

    def detect(self, image: Image.Image | np.ndarray, params: InferenceParameters) -> list[Detection]:
        """Detections in ``image`` (an RGB Pillow image, or a BGR array as OpenCV and Ultralytics use), most confident first."""
        ...


def resolve_threads(requested: int) -> int:
    """Threads one inference may use: ``requested``, or every CPU this process may run on when 0."""
    if requested > 0:
        return requested
    if hasattr(os, "sched_getaffinity"):  # honours taskset and container cpusets, unlike os.cpu_count()
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def detections_from_arrays(
    boxes_xyxy: np.ndarray, confidences: np.ndarray, class_ids: np.ndarray, class_names: Sequence[str]
) -> list[Detection]:
    """Build this API's detections from parallel arrays (boxes in image pixels), most confident first."""
    detections = [
        Detection(
            x_min=round(x1, 2),
            y_min=round(y1, 2),
            x_max=round(x2, 2),
            y_max=round(y2, 2),
            class_name=class_names[class_id],
            class_id=class_id,
            confidence=round(confidence, 4),
        )
        for (x1, y1, x2, y2), confidence, class_id in zip(
            np.asarray(boxes_xyxy, dtype=float).tolist(),
            np.asarray(confidences, dtype=float).tolist(),
            np.asarray(class_ids).astype(int).tolist(),
        )
    ]
    return sorted(detections, key=lambda detection: detection.confidence, reverse=True)
