"""Every error becomes a JSON answer ``{"detail": "..."}`` with the right status code.

Bad input is the client's to fix, so it gets a 4xx that says what is wrong and
what to do. Nothing here ever sends a traceback or echoes the request body
back (it may be megabytes of base64).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from workshop.backend.observability import request_id
from workshop.checkpoints import say
from workshop.imaging import ImageError
from workshop.registry import ModelError
from workshop.schemas import ErrorResponse

logger = logging.getLogger(__name__)

#: Documented error answers, for the ``responses=`` of the routes that can give them.
ERROR_RESPONSES: dict[int | str, dict] = {
    413: {"model": ErrorResponse, "description": "The request, the file or the picture is too large."},
    422: {"model": ErrorResponse, "description": "The input is not valid: the detail says why."},
    503: {"model": ErrorResponse, "description": "The model cannot be served now: the detail says why."},
}


def _error(status_code: int, detail: str, headers: dict[str, str] | None = None, **extra: object) -> JSONResponse:
    # The request id lets a student's screenshot of an error be matched with the server log.
    content = {"detail": detail, "request_id": request_id.get() or None, **extra}
    return JSONResponse(status_code=status_code, content=content, headers=headers)


def _location(loc: tuple) -> str:
    # ('body', 'confidence') -> 'confidence'; ('query', 'x') -> 'query.x'
    parts = [str(part) for part in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _on_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    # FastAPI's default answer repeats the offending input; a base64 image would come back whole.
    errors = [{"field": _location(tuple(e.get("loc", ()))), "message": e.get("msg", "")} for e in error.errors()]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return _error(422, f"Invalid request: {detail}", errors=errors)


async def _on_image_error(request: Request, error: ImageError) -> JSONResponse:
    return _error(error.status_code, str(error))


async def _on_model_error(request: Request, error: ModelError) -> JSONResponse:
    # Unavailable, failed, busy or queue full: 503s that may say when to come back.
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
    return _error(error.status_code, str(error), headers=headers)



async def _on_unexpected_error(request: Request, error: Exception) -> JSONResponse:
    logger.exception(say("Unexpected error on %s %s", "Erreur inattendue sur %s %s"), request.method, request.url.path)
    return _error(500, "Internal server error. The server log has the details.")


def install_error_handlers(app: FastAPI) -> None:
    """Register this module's handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(ImageError, _on_image_error)
    app.add_exception_handler(ModelError, _on_model_error)
    app.add_exception_handler(Exception, _on_unexpected_error)
