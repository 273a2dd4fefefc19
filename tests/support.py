"""Facts about this machine that fixtures and tests share: the browser, the Docker base image.

A module of its own, not ``conftest``: ``notebooks/`` has a ``conftest.py`` too, so
``from conftest import ...`` would find whichever was imported first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

CHROMIUM = Path("/usr/bin/chromium")
# Flags for a closed network: no background calls home, no sandbox (tests may run as root).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]

DOCKER_BASE_IMAGE = os.environ.get("WORKSHOP_DOCKER_BASE_IMAGE", "workshop-base/python:bookworm")
# Empty: PyPI's torch. backend/Dockerfile.pytorch's default (the CPU-only index) is not reachable from CI.
DOCKER_TORCH_INDEX_URL = os.environ.get("WORKSHOP_TORCH_INDEX_URL", "")


def build_image(dockerfile: str, tag: str, context: Path = REPO_ROOT, **build_args: str) -> float:
    """``docker build`` of one of the project's Dockerfiles on the local base image; return the seconds it took."""
    arguments = [item for name, value in {"BASE_IMAGE": DOCKER_BASE_IMAGE, **build_args}.items()
                 for item in ("--build-arg", f"{name}={value}")]
    started = time.perf_counter()
    build = subprocess.run(
        ["docker", "build", "--force-rm", "-q", "-f", str(REPO_ROOT / dockerfile), "-t", tag, *arguments, str(context)],
        capture_output=True, text=True, timeout=3600,
    )
    assert build.returncode == 0, f"docker build -f {dockerfile} failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    return time.perf_counter() - started


def save_screenshot(page: Any, path: Path, asset: Path) -> Path:
    """A full-page screenshot at ``path``; copied to the committed ``asset`` when WORKSHOP_UPDATE_SCREENSHOTS is set."""
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"the screenshot {path.name} is nearly empty"
    if os.environ.get("WORKSHOP_UPDATE_SCREENSHOTS"):
        asset.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, asset)
    return path


def batch_uploads(server: Any) -> int:
    """How many ``/predict/batch/upload`` requests a back-end (a ``BackgroundService``) has logged."""
    return server.count_in_log('"path": "/predict/batch/upload"')
