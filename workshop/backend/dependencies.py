"""FastAPI dependencies: how a route gets the settings and the model registry.

Both live on ``app.state``, set by the lifespan in :mod:`workshop.backend.app`;
a test builds an app with its own settings and gets its own registry.

They are ``async def`` although none of them awaits anything: FastAPI runs a
plain ``def`` dependency in its thread pool, and each trip there and back costs
a fraction of a millisecond per request (measured: most of the API's overhead on
a fast model). Only the route itself, which runs the model, goes to a thread.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from workshop.backend.warmup import WarmUp
from workshop.schemas import API_KEY_HEADER
from workshop.registry import ModelRegistry
from workshop.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


async def inference_slot(request: Request) -> AsyncIterator[None]:
    """A place in the bounded inference queue for this request (503 + Retry-After when it is full)."""
    with request.app.state.gate.slot():
        yield


async def get_warmup(request: Request) -> WarmUp:
    return request.app.state.warmup


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
WarmUpDep = Annotated[WarmUp, Depends(get_warmup)]


# auto_error=False: a missing key is our 401 with a clear message, not FastAPI's generic 403.
_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="The server's API key, if it has one.")


async def require_api_key(request: Request, key: Annotated[str | None, Security(_api_key_header)]) -> None:
    """Let the request through when the server has no API key, or when the right key was sent."""
    expected = request.app.state.settings.api_key
    if expected is None:
        return
    # compare_digest: the time taken does not tell an attacker how many characters were right.
    if key is None or not secrets.compare_digest(key.encode(), expected.get_secret_value().encode()):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=f"This server needs an API key: send it in the {API_KEY_HEADER} header.",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
