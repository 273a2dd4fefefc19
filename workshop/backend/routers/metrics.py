"""``GET /metrics``: Prometheus text format, for a scraper or for a curious student."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from workshop.backend.dependencies import RegistryDep
from workshop.backend.observability import MODEL_LOAD_SECONDS

router = APIRouter(tags=["info"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(registry: RegistryDep) -> Response:
    """Requests by route and status, latencies, inference time by model, queue depth, load times, memory."""
    for name in registry.names():
        if registry.is_loaded(name):
            MODEL_LOAD_SECONDS.labels(name).set(registry.get(name).load_seconds)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
