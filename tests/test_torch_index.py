"""The back-end image builds from a PyTorch-only package index, as from the real CPU-only index.

Online, ``backend/Dockerfile`` takes torch and torchvision from
https://download.pytorch.org/whl/cpu. That index mirrors only old releases of
torch's dependencies, so it must never be asked for them. It cannot be reached
from CI, so it is stood in for by a PEP 503 index served on loopback that holds
*only* the torch and torchvision wheels (the strictest case): the build must
take those two from it, everything else from PyPI, and succeed.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from workshop.containers import REPO_ROOT, run

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TORCH_PACKAGES = ("torch", "torchvision")
IMAGE = "deploy-ml-workshop/backend:torch-index-test"


def _pinned(package: str) -> str:
    for line in (REPO_ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{package}=="):
            return line.strip()
    raise AssertionError(f"{package} is not pinned in requirements/constraints.txt")


def _write_project_page(root: Path, project: str, wheels: list[Path]) -> None:
    """A PEP 503 project page, with each wheel's metadata beside it (PEP 658), as real indexes serve them."""
    page = root / "simple" / project
    page.mkdir(parents=True)
    links = []
    for wheel in wheels:
        (root / wheel.name).symlink_to(wheel)
        with zipfile.ZipFile(wheel) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
            metadata = archive.read(name)
        (root / f"{wheel.name}.metadata").write_bytes(metadata)
        digest = hashlib.sha256(metadata).hexdigest()
        links.append(
            f'<a href="../../{wheel.name}" data-dist-info-metadata="sha256={digest}" '
            f'data-core-metadata="sha256={digest}">{wheel.name}</a><br>'
        )
    page.joinpath("index.html").write_text("<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n")


@dataclass
class LoopbackIndex:
    """A package index on 127.0.0.1 that records every path asked of it."""

    url: str
    requests: list[str] = field(default_factory=list)

    def asked_for(self, fragment: str) -> list[str]:
        return [path for path in self.requests if fragment in path]


@pytest.fixture(scope="module")
def base_python(docker_engine: None, docker_build_args: dict[str, str]) -> str:
    """The base image's Python as ``3.11``: the wheels must be the ones its pip will pick."""
    return run(["docker", "run", "--rm", docker_build_args["base_image"], "python3", "-c",
                "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"]).strip()


@pytest.fixture(scope="module")
def torch_only_index(tmp_path_factory: pytest.TempPathFactory, base_python: str) -> Iterator[LoopbackIndex]:
    """The stand-in for https://download.pytorch.org/whl/cpu: torch and torchvision wheels, nothing else."""
    wheels_dir = tmp_path_factory.mktemp("torch-wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(wheels_dir),
         "--python-version", base_python, "--platform", "manylinux_2_28_x86_64",
         *(_pinned(package) for package in TORCH_PACKAGES)],
        check=True, capture_output=True, timeout=1800,
    )
    root = tmp_path_factory.mktemp("torch-index")
    for package in TORCH_PACKAGES:
        _write_project_page(root, package, sorted(wheels_dir.glob(f"{package}-*.whl")))

    index = LoopbackIndex(url="")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
            index.requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    index.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield index
    server.shutdown()


def test_the_index_alone_cannot_satisfy_torchs_dependencies(torch_only_index: LoopbackIndex, base_python: str,
                                                             tmp_path: Path) -> None:
    """The stand-in is faithful to what broke: asked for torch *with* its dependencies, pip finds none of them."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--ignore-installed", "--no-cache-dir",
         "--only-binary=:all:", "--python-version", base_python, "--platform", "manylinux_2_28_x86_64",
         "--target", str(tmp_path / "target"), "--index-url", torch_only_index.url, _pinned("torch")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert "No matching distribution found" in result.stderr or "conflicting dependencies" in result.stderr


def test_backend_image_builds_with_torch_from_the_cpu_index_and_the_rest_from_pypi(
    torch_only_index: LoopbackIndex, docker_build_args: dict[str, str]
) -> None:
    before = len(torch_only_index.requests)
    try:
        build = subprocess.run(
            ["docker", "build", "--network", "host", "-f", "backend/Dockerfile", "-t", IMAGE,
             "--build-arg", f"BASE_IMAGE={docker_build_args['base_image']}",
             "--build-arg", f"TORCH_INDEX_URL={torch_only_index.url}",
             "--build-arg", "PRELOAD_MODELS=", "."],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=3600,
        )
        assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
        asked = torch_only_index.requests[before:]
        # torch and torchvision were taken from the index: their pages, then their wheels.
        for package in TORCH_PACKAGES:
            version = _pinned(package).split("==")[1]
            assert any(path.rstrip("/") == f"/simple/{package}" for path in asked), asked
            assert any(path.startswith(f"/{package}-{version}-") and path.endswith(".whl") for path in asked), asked
        # ...and nothing else was asked of it: the other packages came from PyPI.
        other = [path for path in asked if path.startswith("/simple/") and path.strip("/").split("/")[1] not in TORCH_PACKAGES]
        assert other == []
        installed = json.loads(run(["docker", "run", "--rm", IMAGE, "python", "-c",
                                    "import json, torch, torchvision; "
                                    "print(json.dumps([torch.__version__, torchvision.__version__]))"]))
        assert [version.split("+")[0] for version in installed] == [
            _pinned(package).split("==")[1] for package in TORCH_PACKAGES
        ]
    finally:
        subprocess.run(["docker", "rmi", "-f", IMAGE], capture_output=True)
