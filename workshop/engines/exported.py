"""Engines that run an exported model: ONNX Runtime and OpenVINO.

Both do the same three steps around a different runtime call: letterbox the
picture into the model input (OpenCV or NumPy), run the network, decode boxes
(NumPy), with NMS unless the export's metadata says it is end-to-end. Neither
imports PyTorch or Ultralytics, so a server that only uses them starts faster,
uses less memory, and fits in a much smaller image.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import threading

import numpy as np
from PIL import Image

from workshop.engines.base import EngineName, InferenceParameters, detections_from_arrays
from workshop.engines.export import MODEL_FILES, ExportRecord
from workshop.engines.letterbox import letterbox
from workshop.engines.postprocess import decode_output
from workshop.schemas import Detection


class ExportedEngine:
    """Pre- and post-processing shared by the exported engines; subclasses only run the network.

    How the CPUs are used was chosen by measurement (docs/benchmarks.md). One
    picture alone is fastest with every core on it ("wide": ~1.5x faster than one
    core on 2 vCPUs). Several pictures at once go through faster one core each,
    side by side ("narrow": 2 x 1 core gave 1.1-1.3x the throughput of 1 x 2 cores,
    because splitting one small inference across cores wastes time in hand-offs).
    So a call runs wide when it is the only one in flight and narrow otherwise,
    and up to ``lanes`` (one per core) calls may run at once. An engine that cannot
    run calls side by side safely sets ``lanes`` to 1.
    """

    name: ClassVar[EngineName]

    def __init__(self, directory: Path, threads: int) -> None:
        self.directory = Path(directory)
        self.record = ExportRecord.read(self.directory)
        self.class_names = list(self.record.class_names)
        self.image_size = self.record.image_size
        self.threads = threads
        self.lanes = threads  # detect() calls that may run at once: one per core
        #: Rows of an end-to-end output, the ``k`` fixed in its graph (read from the network by subclasses); else 0.
        self.end2end_rows = 0
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()

    def run_wide(self, batch: np.ndarray) -> np.ndarray:
        """The network's raw output, computed with every thread (never called twice at once)."""
        raise NotImplementedError

    def run_narrow(self, batch: np.ndarray) -> np.ndarray:
        """The network's raw output, computed on one thread (up to ``lanes`` calls at once)."""
        raise NotImplementedError

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The network's raw output for a ``(1, 3, height, width)`` float32 batch: wide when alone, else narrow."""
        with self._in_flight_lock:
            alone = self._in_flight == 0
            self._in_flight += 1
        try:
            return self.run_wide(batch) if alone or self.threads == 1 else self.run_narrow(batch)
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def detect(self, image: Image.Image | np.ndarray, params: InferenceParameters) -> list[Detection]:
        """Run the exported model on one picture; boxes come back in that picture's pixels."""
        stride = self.record.stride
        # As Ultralytics does: a size that is not a multiple of the stride is rounded up to one.
        size = -(-(params.image_size or self.image_size) // stride) * stride
        picture = image if isinstance(image, Image.Image) else Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
        batch, geometry = letterbox(picture, size, stride, min_anchors=self.end2end_rows, strides=self.record.strides)
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
        # Two sessions of the same file: a session may be run from several threads at once,
        # and with one intra-op thread each run stays on its caller's core.
        self.wide = self._session(threads)
        self.narrow = self._session(1) if threads > 1 else self.wide
        self.input_name = self.wide.get_inputs()[0].name
        if self.record.end2end:
            self.end2end_rows = int(self.wide.get_outputs()[0].shape[1])  # (batch, rows, 6): rows is fixed

    def _session(self, threads: int):  # noqa: ANN202 - onnxruntime is imported lazily
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1  # a YOLO graph is a chain: nothing to run side by side
        return onnxruntime.InferenceSession(
            str(self.directory / MODEL_FILES["onnx"]), options, providers=["CPUExecutionProvider"]
        )

    def run_wide(self, batch: np.ndarray) -> np.ndarray:
        return self.wide.run(None, {self.input_name: batch})[0]

    def run_narrow(self, batch: np.ndarray) -> np.ndarray:
        return self.narrow.run(None, {self.input_name: batch})[0]


class OpenVinoEngine(ExportedEngine):
    """An OpenVINO export compiled for the CPU, one picture at a time on every core.

    No narrow lanes here: with dynamic shapes, each OpenVINO request specialises itself
    for a new picture size on its first inference, and several requests doing that at
    once can deadlock the CPU plugin's thread pool on a small machine: reported upstream
    (ultralytics/ultralytics#25923, which went back to one synchronous request), and
    the likely cause of a container with OpenVINO alone that once never answered in this project's CI.
    """

    name: ClassVar[EngineName] = "openvino"

    def __init__(self, directory: Path, threads: int) -> None:
        super().__init__(directory, threads)
        import openvino

        compiled = openvino.Core().compile_model(
            str(self.directory / MODEL_FILES["openvino"]),
            "CPU",
            {
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_NUM_THREADS": threads,
                # On CPUs with AVX512-BF16 OpenVINO defaults to bfloat16, which changes the
                # answers slightly and, measured on such a CPU, was ~1.5x slower than float32.
                "INFERENCE_PRECISION_HINT": "f32",
            },
        )
        self.request = compiled.create_infer_request()
        self.lanes = 1
        if self.record.end2end:
            self.end2end_rows = compiled.outputs[0].get_partial_shape()[1].get_length()  # (batch, rows, 6)

    def run_wide(self, batch: np.ndarray) -> np.ndarray:
        return self.request.infer({0: batch})[0]

    def run_narrow(self, batch: np.ndarray) -> np.ndarray:
        return self.run_wide(batch)  # never used: one lane, so every call is alone


EXPORTED_ENGINES: dict[EngineName, type[ExportedEngine]] = {"onnx": OnnxRuntimeEngine, "openvino": OpenVinoEngine}
