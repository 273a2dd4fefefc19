"""Shared fixtures. Every test runs offline, with its own weights folder and Ultralytics config.

The environment is set here, before anything imports Ultralytics, so the tests
behave the same on a laptop with internet and on the offline CI machine.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="workshop-tests-"))
# Each run (and each xdist worker) makes one: removed when the process ends, so runs do not fill the disk.
atexit.register(shutil.rmtree, _SESSION_DIR, ignore_errors=True)
os.environ["WORKSHOP_OFFLINE"] = "1"
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_CONFIG_DIR"] = str(_SESSION_DIR / "ultralytics-config")
os.environ["WORKSHOP_WEIGHTS_DIR"] = str(_SESSION_DIR / "weights")

from fastapi.testclient import TestClient  # noqa: E402

from workshop.backend import create_app  # noqa: E402
from workshop.registry import ModelRegistry  # noqa: E402
from workshop.samples import shapes_sample  # noqa: E402
from workshop.services import BackgroundService, start_backend  # noqa: E402
from workshop.settings import BUNDLED_MODEL, Settings  # noqa: E402

from ci_skips import pytest_sessionfinish, pytest_terminal_summary  # noqa: E402, F401  (hooks: 0 skips in CI)
from support import (  # noqa: E402  (tests/ is on sys.path under pytest)
    CHROMIUM, CHROMIUM_ARGS, DOCKER_BASE_IMAGE, DOCKER_TORCH_INDEX_URL, build_image, missing_tool,
)


@pytest.fixture(scope="session")
def bundled_exports() -> Path:
    """The bundled model's exports and engine choice, made once in the session's weights folder (the default, auto)."""
    registry = ModelRegistry(Settings(weights_dir=_SESSION_DIR / "weights"))
    registry.get("shapes")
    return registry.settings.exports_dir


@pytest.fixture
def settings(tmp_path: Path, bundled_exports: Path) -> Settings:
    """Default settings with a private weights folder holding only the bundled model's exports.

    Hard links to the session's: a server started on it does not export again (seconds each time),
    as a machine that has run the server once does not.
    """
    shared = [path for path in bundled_exports.iterdir() if path.name.startswith(f"{BUNDLED_MODEL}-")]
    for path in shared:
        target = tmp_path / "weights" / "exports" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, target, copy_function=os.link)
        else:
            os.link(path, target)
    return Settings(weights_dir=tmp_path / "weights")


@pytest.fixture(scope="session")
def shared_registry() -> ModelRegistry:
    """One registry for the whole session, so the bundled model loads once."""
    return ModelRegistry(Settings(weights_dir=_SESSION_DIR / "weights"))


@pytest.fixture(scope="session")
def api(shared_registry: ModelRegistry) -> Iterator[TestClient]:
    """The app in-process (FastAPI's TestClient), warmed up, sharing the session registry."""
    app = create_app(shared_registry.settings, shared_registry)
    with TestClient(app) as client:
        app.state.warmup.done.wait(timeout=120)
        yield client


@pytest.fixture(scope="session")
def live_server() -> Iterator[BackgroundService]:
    """A real ``workshop serve`` process (uvicorn) on a free port of 127.0.0.1."""
    service = start_backend(log_dir=_SESSION_DIR / "logs")
    yield service
    service.stop()


@pytest.fixture(scope="session")
def shapes_png() -> bytes:
    """A generated picture with a few shapes, as PNG bytes."""
    from workshop.imaging import encode_image

    return encode_image(shapes_sample(seed=3).image)


def _print_http_error(response: Any) -> None:  # a playwright Response
    if response.status >= 400:
        print(f"HTTP {response.status}: {response.request.method} {response.url}")


@pytest.fixture
def page() -> Iterator:
    """A Playwright page in Debian's headless Chromium (installed by scripts/test.sh)."""
    if not CHROMIUM.exists():
        missing_tool("Debian's chromium is not installed (scripts/install-test-tools.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1900})
        # Printed, so shown beside a failure: a page that lost a script says which one, and why.
        page.on("requestfailed", lambda request: print(f"request failed: {request.url}: {request.failure}"))
        page.on("response", _print_http_error)
        yield page
        browser.close()




@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A running Docker engine: skip without one, except in CI, where scripts/test.sh starts one."""
    import shutil
    import subprocess

    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return
    missing_tool("No Docker engine (scripts/docker-offline.sh starts one where that is possible)")


@pytest.fixture(scope="session")
def docker_build_args() -> dict[str, str]:
    """Base image and PyTorch index for images built by the tests (offline-friendly defaults)."""
    return {"base_image": DOCKER_BASE_IMAGE, "torch_index_url": DOCKER_TORCH_INDEX_URL}


@pytest.fixture(scope="session")
def backend_image(docker_engine: None) -> str:
    """The back-end image (backend/Dockerfile: ONNX Runtime, no PyTorch), as compose builds it (cached layers)."""
    tag = "deploy-ml-workshop/backend:test"
    build_image("backend/Dockerfile", tag)
    return tag


@pytest.fixture(scope="module")
def pytorch_backend_image(docker_engine: None) -> Iterator[str]:
    """The image with PyTorch (backend/Dockerfile.pytorch): 7 GB with PyPI's PyTorch, removed after the module
    that uses it, so that the tests after it have the disk."""
    import subprocess

    tag = "deploy-ml-workshop/backend:pytorch-test"
    seconds = build_image("backend/Dockerfile.pytorch", tag, TORCH_INDEX_URL=DOCKER_TORCH_INDEX_URL)
    print(f"\nPyTorch image build: {seconds:.1f} s")
    yield tag
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


@pytest.fixture(scope="session")
def cached_public_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder holding ``yolo11n.pt`` built offline from its YAML, as if it had been downloaded."""
    from workshop.yolo_env import import_yolo

    folder = tmp_path_factory.mktemp("cached-weights")
    import_yolo()("yolo11n.yaml").save(folder / "yolo11n.pt")
    return folder


@pytest.fixture(scope="session")
def yolo26n_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``yolo26n.pt`` built offline from its YAML: the online default's network, untrained (stands in for the download)."""
    from workshop.yolo_env import import_yolo

    path = tmp_path_factory.mktemp("yolo26n") / "yolo26n.pt"
    import_yolo()("yolo26n.yaml").save(path)
    return path
