"""The API's data shapes, shared by the back-end, the client and the front-end.

``PredictRequest`` and ``PredictResponse`` keep the original lab's contract
(``model`` + base64 ``image`` in; ``detections``, ``time`` and ``model`` out),
so its client code keeps working; the extra fields are additions only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: The header that carries the API key, when the server requires one.
API_KEY_HEADER = "X-API-Key"

#: The runtimes a model can run on (see :mod:`workshop.engines`).
EngineName = Literal["pytorch", "onnx", "openvino"]


class Detection(BaseModel):
    """One detected object; coordinates are pixels of the image as it was sent."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float
    class_name: str
    confidence: float = Field(ge=0.0, le=1.0)
    class_id: int | None = None


class PredictionParameters(BaseModel):
    """Optional knobs of one prediction; ``None`` means the server's default."""

    model_config = ConfigDict(extra="forbid")

    confidence: float | None = Field(None, ge=0.0, le=1.0, description="Minimum confidence of a detection.")
    iou: float | None = Field(None, ge=0.0, le=1.0, description="IoU threshold of non-maximum suppression.")
    image_size: int | None = Field(
        None, ge=32, le=1920, description="Inference size in pixels (long side); default: the model's own."
    )
    max_detections: int | None = Field(None, ge=1, le=1000, description="Most detections returned.")


class PredictRequest(PredictionParameters):
    """``POST /predict``: one image as base64, optionally with a ``data:image/...;base64,`` prefix."""

    model: str | None = Field(None, max_length=200, description="Model name; the server's default when omitted.")
    image: str = Field(description="The image file's bytes, base64-encoded.")


class BatchPredictRequest(PredictionParameters):
    """``POST /predict/batch``: several base64 images, one model, one set of parameters."""

    model: str | None = Field(None, max_length=200)
    images: list[str] = Field(min_length=1, description="Base64-encoded image files.")


class Timing(BaseModel):
    """Where the server spent its time on one image, in seconds."""

    decode: float
    inference: float
    total: float


class PredictResponse(BaseModel):
    """The detections in one image and how they were obtained."""

    detections: list[Detection] = Field(default_factory=list)
    time: float = Field(description="Server processing time, seconds (same as timing.total).")
    model: str = Field(description="The model that answered.")
    engine: EngineName | None = Field(None, description="The runtime that ran the model.")
    image_width: int
    image_height: int
    timing: Timing


class BatchPredictResponse(BaseModel):
    """One result per image, in the order they were sent."""

    model: str
    results: list[PredictResponse]
    time: float = Field(description="Server processing time for the whole batch, seconds.")


class ModelInfo(BaseModel):
    """What the server knows about one model, before or after loading it."""

    name: str
    source: Literal["bundled", "ultralytics", "file"]
    description: str
    classes: list[str] | None = Field(None, description="Class names, when known without loading the model.")
    loaded: bool
    available: bool = Field(description="True when the model can be served now (weights here or downloadable).")
    reason: str | None = Field(None, description="Why the model is not available, when it is not.")
    default: bool = False
    engine: EngineName = Field(description="The runtime that executes this model.")
    image_size: int | None = Field(
        None, description="Input size used when a request names none (the training size); known once loaded."
    )


class HealthResponse(BaseModel):
    """Liveness: the process is up and answering."""

    status: Literal["ok"] = "ok"
    version: str


class ReadinessResponse(BaseModel):
    """Readiness: the default model is loaded and warmed up."""

    ready: bool
    default_model: str
    detail: str


class VersionResponse(BaseModel):
    """Versions of the package and of the libraries that shape its answers (None: not installed on this server)."""

    version: str
    python: str
    torch: str | None = None
    ultralytics: str | None = None
    onnxruntime: str | None = None


class ErrorResponse(BaseModel):
    """Every error answer: a human-readable ``detail``, and the request's id to find it in the server log."""

    detail: str
    request_id: str | None = None
