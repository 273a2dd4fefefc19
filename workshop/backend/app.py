"""Build the FastAPI application: settings, registry, warm-up, middleware, routers.

``create_app()`` is a factory so that tests (and notebooks) can build apps with
their own settings; ``workshop serve`` and uvicorn's ``--factory`` call it with
the settings read from the environment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from workshop import __version__
from workshop.backend.dependencies import require_api_key
from workshop.backend.errors import install_error_handlers
from workshop.backend.limits import BodySizeLimitMiddleware
from workshop.backend.gate import InferenceGate
from workshop.backend.observability import RequestContextMiddleware, configure_logging
from workshop.backend.routers import info, metrics, predict
from workshop.backend.warmup import WarmUp
from workshop.registry import ModelRegistry
from workshop.settings import Settings, get_settings

TITLE = "deploy-ml-workshop YOLO API"
DESCRIPTION = """\
Object detection as a web service. Send an image to `POST /predict` (base64 JSON)
or `POST /predict/upload` (multipart file) and get back the objects a YOLO model
found in it: class, confidence and box in the image's pixels.

`GET /models` lists the models; `shapes` is bundled and works offline, the
Ultralytics `yolo26*` / `yolo11*` models are downloaded on first use.
"""


def create_app(settings: Settings | None = None, registry: ModelRegistry | None = None) -> FastAPI:
    """A ready-to-serve application. Without arguments, settings come from the environment."""
    settings = settings or get_settings()
    registry = registry or ModelRegistry(settings)
    configure_logging(settings.log_level)

    warmup = WarmUp(registry)  # its routes are set once they exist, below

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.warmup:
            warmup.start()
        else:
            warmup.mark_skipped()
        yield

    app = FastAPI(title=TITLE, description=DESCRIPTION, version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.registry = registry
    app.state.warmup = warmup  # /ready answers "not ready" until the lifespan has warmed the model up
    app.state.gate = InferenceGate(settings.max_pending_predictions)

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"], allow_headers=["*"]
        )
    # Added last, so outermost: every answer, even a 413 from the size limit, gets a request id and X-Served-By.
    app.add_middleware(RequestContextMiddleware, served_by=settings.instance_name)
    install_error_handlers(app)
    app.include_router(info.open_router)
    # Everything but liveness and readiness needs the API key, when one is configured.
    app.include_router(info.router, dependencies=[Depends(require_api_key)])
    app.include_router(predict.router, dependencies=[Depends(require_api_key)])
    app.include_router(metrics.router, dependencies=[Depends(require_api_key)])
    warmup.routes = app.router
    return app
