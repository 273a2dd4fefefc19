"""Routes that describe the server: title, liveness, readiness, version, models."""

from __future__ import annotations

import importlib.metadata
import platform

from fastapi import APIRouter, Request, Response, status

from workshop import __version__
from workshop.backend.dependencies import RegistryDep, WarmUpDep
from workshop.schemas import HealthResponse, ModelInfo, ReadinessResponse, VersionResponse

#: Always open, even with an API key: orchestrators and load balancers probe these.
open_router = APIRouter(tags=["health"])
router = APIRouter(tags=["info"])


@router.get("/", summary="Title of the API")
def title(request: Request) -> str:
    """The API's title, as in the original lab."""
    return request.app.title


@open_router.get("/health", summary="Liveness")
def health() -> HealthResponse:
    """Always 200 while the process answers; it does not wait for any model."""
    return HealthResponse(version=__version__)


@open_router.get(
    "/ready",
    summary="Readiness",
    responses={503: {"model": ReadinessResponse, "description": "The default model is not loaded yet (or failed)."}},
)
def ready(registry: RegistryDep, warmup: WarmUpDep, response: Response) -> ReadinessResponse:
    """200 once the default model is loaded and warmed up, 503 before (or if that failed)."""
    if warmup.ready:
        return ReadinessResponse(ready=True, default_model=registry.default_name, detail="Default model loaded.")
    response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    detail = f"Warm-up failed: {warmup.error}" if warmup.error else "The default model is loading."
    return ReadinessResponse(ready=False, default_model=registry.default_name, detail=detail)


@router.get("/version", summary="Versions")
def version() -> VersionResponse:
    """The package version and the versions of the libraries behind the answers.

    Read from the packages' metadata, without importing them: the back-end image has no PyTorch.
    """
    libraries = {name: installed_version(name) for name in ("torch", "ultralytics", "onnxruntime")}
    return VersionResponse(version=__version__, python=platform.python_version(), **libraries)


def installed_version(package: str) -> str | None:
    """The installed version of ``package``, or None when it is not installed."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


@router.get("/describe", summary="What this API does")
def describe(request: Request) -> str:
    """A short description of the API (Markdown)."""
    return request.app.description


@router.get("/models", summary="Models this server can serve")
def models(registry: RegistryDep) -> list[ModelInfo]:
    """Every model's name, classes (when known), source, and whether it is loaded and available."""
    return registry.info()
