"""Engines that run an exported model: ONNX Runtime and OpenVINO.

Both do the same three steps around a different runtime call: letterbox the
picture into the fixed input (Pillow + NumPy), run the network, decode boxes
and apply NMS (NumPy). Neither imports PyTorch or Ultralytics, so a server that
only uses them starts faster, uses less memory, and fits in a much smaller image.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

from workshop.engines.base import EngineName, InferenceParameters, detections_from_arrays
from workshop.engines.export import MODEL_FILES, ExportRecord
from workshop.engines.letterbox import letterbox
from workshop.engines.postprocess import decode_output
from workshop.model_errors import UnsupportedParameterError
from workshop.schemas import Detection


class ExportedEngine:
    """Pre- and post-processing shared by the exported engines; subclasses only run the network."""

    name: ClassVar[EngineName]

    def __init__(self, directory: Path, threads: int) -> None:
        self.directory = Path(directory)
        self.record = ExportRecord.read(self.directory)
        self.class_names = list(self.record.class_names)
        self.image_size: int | None = self.record.image_size
        self.threads = threads

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The network's raw output for a ``(1, 3, size, size)`` float32 batch."""
        raise NotImplementedError

    def detect(self, image: Image.Image | np.ndarray, params: InferenceParameters) -> list[Detection]:
        """Run the exported model on one picture; boxes come back in that picture's pixels."""
        if params.image_size is not None and params.image_size != self.image_size:
            raise UnsupportedParameterError(
                f"This model runs on the {self.name} engine, exported for {self.image_size} px inputs: "
                f"leave image_size out or set it to {self.image_size}."
            )
        picture = image if isinstance(image, Image.Image) else Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
        batch, geometry = letterbox(picture, self.record.image_size)
        raw = decode_output(
            self.run(batch),
            end2end=self.record.end2end,
            confidence=params.confidence,
            iou=params.iou,
            max_detections=params.max_detections,
        )
        boxes = geometry.to_picture(raw.boxes_xyxy) if len(raw.class_ids) else raw.boxes_xyxy
        return detections_from_arrays(boxes, raw.confidences, raw.class_ids, self.class_names)


class OnnxRuntimeEngine(ExportedEngine):
    """An ONNX export run by ONNX Runtime's CPU provider."""

    name: ClassVar[EngineName] = "onnx"

    def __init__(self, directory: Path, threads: int) -> None:
        super().__init__(directory, threads)
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # one inference spreads over these cores
        options.inter_op_num_threads = 1  # a YOLO graph is a chain: nothing to run side by side
        self.session = onnxruntime.InferenceSession(
            str(self.directory / MODEL_FILES["onnx"]), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


class OpenVinoEngine(ExportedEngine):
    """An OpenVINO export compiled for the CPU, tuned for the latency of one picture at a time."""

    name: ClassVar[EngineName] = "openvino"

    def __init__(self, directory: Path, threads: int) -> None:
        super().__init__(directory, threads)
        import openvino

        core = openvino.Core()
        self.compiled = core.compile_model(
            str(self.directory / MODEL_FILES["openvino"]),
            "CPU",
            {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads},
        )
        # One request object, used by one caller at a time (the registry's per-model lock).
        self.request = self.compiled.create_infer_request()

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.request.infer({0: batch})[0]


EXPORTED_ENGINES: dict[EngineName, type[ExportedEngine]] = {"onnx": OnnxRuntimeEngine, "openvino": OpenVinoEngine}
