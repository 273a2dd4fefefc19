"""From image bytes to a :class:`~workshop.schemas.PredictResponse`: decode, infer, time.

The back-end routes, the notebooks and the benchmark all go through
:func:`predict_image_bytes`, so they measure and return exactly the same thing.
"""

from __future__ import annotations

import time

from workshop.imaging import decode_image
from workshop.registry import InferenceParameters, ModelRegistry
from workshop.schemas import PredictionParameters, PredictResponse, Timing


def resolve_parameters(registry: ModelRegistry, requested: PredictionParameters) -> InferenceParameters:
    """Fill the parameters a request left out with the server's defaults."""
    defaults = registry.default_parameters()
    return InferenceParameters(
        confidence=defaults.confidence if requested.confidence is None else requested.confidence,
        iou=defaults.iou if requested.iou is None else requested.iou,
        max_detections=defaults.max_detections if requested.max_detections is None else requested.max_detections,
        image_size=requested.image_size,
    )


def predict_image_bytes(
    registry: ModelRegistry, data: bytes, model: str | None, params: InferenceParameters
) -> PredictResponse:
    """Decode ``data`` (checking the limits) and run ``model`` (the default when None) on it.

    Raises :class:`workshop.imaging.ImageError` for bad images and
    :class:`workshop.registry.ModelError` for unknown or unavailable models.
    """
    started = time.perf_counter()
    settings = registry.settings
    # Resolve the model first: an unknown name is reported before any pixel is decoded.
    loaded = registry.get(model)  # the first call loads the model: counted in total only
    model_ready = time.perf_counter()
    decoded = decode_image(data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels)
    decoded_at = time.perf_counter()
    detections = loaded.predict(decoded.image, params, wait_seconds=settings.inference_wait_seconds)
    finished = time.perf_counter()
    timing = Timing(
        decode=round(decoded_at - model_ready, 4),
        inference=round(finished - decoded_at, 4),
        total=round(finished - started, 4),
    )
    return PredictResponse(
        detections=detections,
        time=timing.total,
        model=loaded.spec.name,
        engine=loaded.engine.name,
        image_width=decoded.width,
        image_height=decoded.height,
        timing=timing,
    )
