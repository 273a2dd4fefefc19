"""Prediction routes: one image as base64 JSON or as a multipart upload, or a batch of either.

The handlers are plain ``def`` functions on purpose: FastAPI runs them in its
thread pool, so a second or so of inference never blocks the event loop, and
``/health`` keeps answering while the model works.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from workshop.backend.dependencies import RegistryDep, inference_slot
from workshop.backend.observability import INFERENCE_SECONDS
from workshop.backend.errors import ERROR_RESPONSES
from workshop.imaging import ImageError, ImageTooLargeError, decode_base64
from workshop.inference import predict_image_bytes, resolve_parameters
from workshop.registry import InferenceParameters, ModelRegistry
from workshop.schemas import BatchPredictRequest, BatchPredictResponse, PredictionParameters, PredictRequest, PredictResponse

router = APIRouter(
    prefix="/predict", tags=["predict"], responses=ERROR_RESPONSES, dependencies=[Depends(inference_slot)]
)


def _observed(response: PredictResponse) -> PredictResponse:
    INFERENCE_SECONDS.labels(response.model, response.engine).observe(response.timing.inference)
    return response


def _json(answer: BaseModel) -> Response:
    """The answer as JSON, written by pydantic's serializer in one step.

    Returning the model itself would make FastAPI dump it to a dict, validate that
    dict again and encode it: measured at a few tenths of a millisecond per request,
    a tenth of the whole API overhead. The routes still declare their response model,
    so the OpenAPI schema and /docs are unchanged.
    """
    return Response(answer.model_dump_json(), media_type="application/json")


class UploadForm(PredictionParameters):
    """The form fields that go with an uploaded file (same names as the JSON fields)."""

    # The file parts arrive in the same form; they are read by their own parameter.
    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(None, max_length=200)


def _read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    data = upload.file.read(max_bytes + 1)  # one byte more tells "too large" without reading it all
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"The file '{upload.filename}' is larger than the limit of {max_bytes} bytes.")
    return data


def _check_batch_size(registry: ModelRegistry, count: int) -> None:
    limit = registry.settings.max_batch_images
    if count > limit:
        raise ImageError(f"A batch holds at most {limit} images; this one has {count}.")


def _predict_batch(
    registry: ModelRegistry, images: list[bytes], model: str | None, params: InferenceParameters
) -> BatchPredictResponse:
    started = time.perf_counter()
    results = [_observed(predict_image_bytes(registry, data, model, params)) for data in images]
    return BatchPredictResponse(
        model=results[0].model, results=results, time=round(time.perf_counter() - started, 4)
    )


@router.post("", summary="Detect objects in one base64 image", response_model=PredictResponse)
def predict(request: PredictRequest, registry: RegistryDep) -> Response:
    """The original lab's route: ``{"model": name, "image": base64}`` in, detections out."""
    data = decode_base64(request.image, registry.settings.max_upload_bytes)
    return _json(_observed(predict_image_bytes(registry, data, request.model, resolve_parameters(registry, request))))


@router.post("/upload", summary="Detect objects in one uploaded image file", response_model=PredictResponse)
def predict_upload(
    file: Annotated[UploadFile, File(description="An image file: png, jpeg, webp, tiff, bmp...")],
    form: Annotated[UploadForm, Form()],
    registry: RegistryDep,
) -> Response:
    """Multipart upload, as a browser or ``curl -F file=@cat.jpg`` sends it."""
    data = _read_upload(file, registry.settings.max_upload_bytes)
    return _json(_observed(predict_image_bytes(registry, data, form.model, resolve_parameters(registry, form))))


@router.post("/batch", summary="Detect objects in several base64 images", response_model=BatchPredictResponse)
def predict_batch(request: BatchPredictRequest, registry: RegistryDep) -> Response:
    """Several images, one model, one set of parameters; results in the order sent."""
    _check_batch_size(registry, len(request.images))
    images = [decode_base64(image, registry.settings.max_upload_bytes) for image in request.images]
    return _json(_predict_batch(registry, images, request.model, resolve_parameters(registry, request)))


@router.post(
    "/batch/upload", summary="Detect objects in several uploaded image files", response_model=BatchPredictResponse
)
def predict_batch_upload(
    files: Annotated[list[UploadFile], File(description="Image files, several 'files' fields.")],
    form: Annotated[UploadForm, Form()],
    registry: RegistryDep,
) -> Response:
    """Multipart batch: ``curl -F files=@a.jpg -F files=@b.png``."""
    _check_batch_size(registry, len(files))
    images = [_read_upload(upload, registry.settings.max_upload_bytes) for upload in files]
    return _json(_predict_batch(registry, images, form.model, resolve_parameters(registry, form)))
