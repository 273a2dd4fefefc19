"""pytest fixtures for the real gcloud against the emulator (import them into a test module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .cloud import Project
from .harness import Emulator, GcloudWorld

#: Every API the deployment needs, on: the state a project reaches once `gcloud services enable` ran.
LAB_APIS = {"compute.googleapis.com", "artifactregistry.googleapis.com", "run.googleapis.com"}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh project (billing linked, the lab's APIs still off) behind the loopback proxy."""
    with Emulator(Project()) as running:
        yield running
    assert not running.proxy.refused, f"requests left for hosts the emulator does not serve: {running.proxy.refused}"
    assert not running.cloud.unserved, f"requests the emulator could not answer: {running.cloud.unserved}"


@pytest.fixture
def world(tmp_path: Path, emulator: Emulator) -> GcloudWorld:
    """The real gcloud, logged in as student@example.com, talking to ``emulator``; the stand-in docker on PATH."""
    return GcloudWorld(tmp_path / "world", emulator)
