"""The PyTorch engine: the model exactly as trained, run by Ultralytics.

This is the reference the exported engines are compared with, and the one
notebooks use to show Ultralytics' own ``Results`` API (``engine.yolo``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from workshop.engines.base import EngineName, InferenceParameters, detections_from_arrays
from workshop.engines.export import trained_image_size
from workshop.imaging import to_bgr_array
from workshop.model_errors import ModelUnavailableError
from workshop.schemas import Detection
from workshop.yolo_env import import_yolo


class PytorchEngine:
    """An Ultralytics ``YOLO`` model on the CPU (or the GPU, when PyTorch sees one)."""

    name: EngineName = "pytorch"
    # Ultralytics documents that a model object must not predict from two threads at
    # once, and PyTorch's thread count is per process: one call at a time, every core on it.
    lanes = 1

    def __init__(self, yolo: Any) -> None:
        self.yolo = yolo
        self.image_size = trained_image_size(yolo)
        names = yolo.names
        self.class_names = [names[index] for index in sorted(names)]

    @classmethod
    def load(cls, weights: Path, threads: int) -> PytorchEngine:
        """Load ``weights`` (Ultralytics downloads a public model's missing file to that path)."""
        YOLO = import_yolo()
        import torch

        # PyTorch picks its thread count from the physical cores it detects, which
        # on a cloud VM is often half the vCPUs; one inference should use them all.
        torch.set_num_threads(threads)
        yolo = YOLO(str(weights))
        if getattr(yolo, "task", "detect") != "detect":
            raise ModelUnavailableError(f"{weights.name} is a {yolo.task} model; this API serves detection models.")
        return cls(yolo)

    def detect(self, image: Image.Image | np.ndarray, params: InferenceParameters) -> list[Detection]:
        """Run the model on one picture; boxes come back in that picture's pixels."""
        options: dict[str, Any] = {"conf": params.confidence, "iou": params.iou, "max_det": params.max_detections}
        if params.image_size is not None:
            options["imgsz"] = params.image_size
        bgr = to_bgr_array(image) if isinstance(image, Image.Image) else image
        result = self.yolo.predict(bgr, verbose=False, **options)[0]
        boxes = result.boxes
        return detections_from_arrays(
            boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(), boxes.cls.cpu().numpy(), self.class_names
        )
