"""FastAPI dependencies: how a route gets the settings and the model registry.

Both live on ``app.state``, set by the lifespan in :mod:`workshop.backend.app`;
a test builds an app with its own settings and gets its own registry.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from workshop.backend.warmup import WarmUp
from workshop.registry import ModelRegistry
from workshop.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


def get_warmup(request: Request) -> WarmUp:
    return request.app.state.warmup


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
WarmUpDep = Annotated[WarmUp, Depends(get_warmup)]
