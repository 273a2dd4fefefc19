"""The PyTorch image builds from a PyTorch-only package index, as from the real CPU-only index.

Online, ``backend/Dockerfile.pytorch`` takes torch and torchvision from
https://download.pytorch.org/whl/cpu. That index mirrors only old releases of
torch's dependencies, so it must never be asked for them. It cannot be reached
from CI, so it is stood in for by a PEP 503 index served on loopback that holds
*only* the torch and torchvision wheels (the strictest case): the build must
take those two from it, everything else from PyPI, and succeed.

The wheels it serves are PyPI's, rewritten as the CPU index publishes its own:
a ``+cpu`` local version (``torch-2.14.1+cpu``) and no CUDA packages among the
requirements. That is what the Dockerfile meets online, and it keeps the test
image at about 2 GB instead of the 7 GB that PyPI's CUDA build pulls in (a CI
run once ran out of disk here).

The rewritten torch still holds PyPI's CUDA-linked binaries, which do not load
without CUDA's libraries. So the test builds the Dockerfile's own instructions
up to its dependency step (the only step the index takes part in) and reads the
installed versions from the packages' metadata instead of importing torch. The
whole image, model export included, is built and run by the container tests.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from workshop.containers import REPO_ROOT, run

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TORCH_PACKAGES = ("torch", "torchvision")
IMAGE = "deploy-ml-workshop/backend:torch-index-test"
CPU_LOCAL_VERSION = "+cpu"
# CUDA's packages: PyPI's torch requires them, its CPU build does not. (nvidia-ml-py, which
# Ultralytics asks for, is a small Python binding to the GPU driver, not part of CUDA.)
CUDA_PACKAGE = re.compile(r"^(nvidia-(?!ml-py)|cuda-|triton)", re.IGNORECASE)


def _pinned(package: str) -> str:
    for line in (REPO_ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{package}=="):
            return line.strip()
    raise AssertionError(f"{package} is not pinned in requirements/constraints.txt")


def _cpu_build_version(package: str) -> str:
    """The version the CPU index serves for the pin: ``2.14.1+cpu`` for ``torch==2.14.1``."""
    return _pinned(package).split("==")[1] + CPU_LOCAL_VERSION


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
            f'<a href="../../{quote(wheel.name)}" data-dist-info-metadata="sha256={digest}" '
            f'data-core-metadata="sha256={digest}">{wheel.name}</a><br>'
        )
    page.joinpath("index.html").write_text("<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n")


def _cpu_metadata(metadata: str, cpu_version: str) -> str:
    """PyPI's METADATA as the CPU build has it: its own version, and no CUDA package required."""
    lines = []
    for line in metadata.splitlines(keepends=True):
        if line.startswith("Version: "):
            line = f"Version: {cpu_version}\n"
        elif line.startswith("Requires-Dist: ") and CUDA_PACKAGE.match(line.removeprefix("Requires-Dist: ")):
            continue
        lines.append(line)
    return "".join(lines)


def _as_cpu_build(wheel: Path, dest: Path) -> Path:
    """PyPI's wheel rewritten as the CPU index publishes it: version ``X+cpu``, no CUDA requirements.

    Members are stored uncompressed: the index is on loopback, and the rewrite is then a plain copy.
    """
    project, version, tags = wheel.name.split("-", 2)
    cpu_version = version + CPU_LOCAL_VERSION
    old_info, new_info = f"{project}-{version}.dist-info/", f"{project}-{cpu_version}.dist-info/"
    target = dest / f"{project}-{cpu_version}-{tags}"

    def renamed(name: str) -> str:
        return new_info + name[len(old_info):] if name.startswith(old_info) else name

    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target, "w") as rewritten:
        metadata = _cpu_metadata(source.read(old_info + "METADATA").decode(), cpu_version).encode()
        metadata_hash = base64.urlsafe_b64encode(hashlib.sha256(metadata).digest()).rstrip(b"=").decode()
        record = "".join(
            f"{new_info}METADATA,sha256={metadata_hash},{len(metadata)}\n"
            if line.startswith(old_info + "METADATA,") else renamed(line)
            for line in source.read(old_info + "RECORD").decode().splitlines(keepends=True)
        ).encode()
        new_contents = {old_info + "METADATA": metadata, old_info + "RECORD": record}
        for member in source.infolist():
            copy = zipfile.ZipInfo(renamed(member.filename), member.date_time)
            copy.external_attr = member.external_attr
            if member.filename in new_contents:
                rewritten.writestr(copy, new_contents[member.filename])
                continue
            with source.open(member) as reader, rewritten.open(copy, "w") as writer:
                shutil.copyfileobj(reader, writer, 1 << 20)
    return target


@dataclass
class LoopbackIndex:
    """A package index on 127.0.0.1 that records every path asked of it."""

    url: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def base_python(docker_engine: None, docker_build_args: dict[str, str]) -> str:
    """The base image's Python as ``3.11``: the wheels must be the ones its pip will pick."""
    return run(["docker", "run", "--rm", docker_build_args["base_image"], "python3", "-c",
                "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"]).strip()


@pytest.fixture(scope="module")
def torch_only_index(tmp_path_factory: pytest.TempPathFactory, base_python: str) -> Iterator[LoopbackIndex]:
    """The stand-in for https://download.pytorch.org/whl/cpu: torch and torchvision wheels, nothing else."""
    pypi_wheels = tmp_path_factory.mktemp("pypi-wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(pypi_wheels),
         "--python-version", base_python, "--platform", "manylinux_2_28_x86_64",
         *(_pinned(package) for package in TORCH_PACKAGES)],
        check=True, capture_output=True, timeout=1800,
    )
    cpu_wheels = tmp_path_factory.mktemp("cpu-wheels")
    for wheel in pypi_wheels.glob("*.whl"):
        _as_cpu_build(wheel, cpu_wheels)
    shutil.rmtree(pypi_wheels)  # half a gigabyte, no longer needed
    root = tmp_path_factory.mktemp("torch-index")
    for package in TORCH_PACKAGES:
        _write_project_page(root, package, sorted(cpu_wheels.glob(f"{package}-*.whl")))

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
    shutil.rmtree(cpu_wheels)  # over a gigabyte: the wheels are stored uncompressed


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


def _up_to_the_dependency_step(dockerfile: str) -> str:
    """The Dockerfile's instructions up to, and including, the RUN that installs from TORCH_INDEX_URL."""
    kept: list[str] = []
    instruction: list[str] = []
    for line in dockerfile.splitlines():
        instruction.append(line)
        if line.rstrip().endswith("\\"):
            continue  # the instruction goes on on the next line
        kept.extend(instruction)
        text, instruction = "\n".join(instruction), []
        if text.lstrip().startswith("RUN") and "$TORCH_INDEX_URL" in text:
            return "\n".join(kept) + "\n"
    raise AssertionError("backend/Dockerfile.pytorch has no RUN step that installs from $TORCH_INDEX_URL")


def test_backend_dependencies_install_with_torch_from_the_cpu_index_and_the_rest_from_pypi(
    torch_only_index: LoopbackIndex, docker_build_args: dict[str, str], tmp_path: Path
) -> None:
    dependencies = tmp_path / "Dockerfile.dependencies"
    dependencies.write_text(_up_to_the_dependency_step((REPO_ROOT / "backend" / "Dockerfile.pytorch").read_text()))
    before = len(torch_only_index.requests)
    try:
        build = subprocess.run(
            # --force-rm: a failed step leaves no stopped container (gigabytes) behind.
            ["docker", "build", "--force-rm", "--network", "host", "-f", str(dependencies), "-t", IMAGE,
             "--build-arg", f"BASE_IMAGE={docker_build_args['base_image']}",
             "--build-arg", f"TORCH_INDEX_URL={torch_only_index.url}", "."],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=3600,
        )
        assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
        asked = [unquote(path) for path in torch_only_index.requests[before:]]
        # torch and torchvision were taken from the index: their pages, then their wheels.
        for package in TORCH_PACKAGES:
            version = _cpu_build_version(package)
            assert any(path.rstrip("/") == f"/simple/{package}" for path in asked), asked
            assert any(path.startswith(f"/{package}-{version}-") and path.endswith(".whl") for path in asked), asked
        # ...and nothing else was asked of it: the other packages came from PyPI.
        other = [path for path in asked if path.startswith("/simple/") and path.strip("/").split("/")[1] not in TORCH_PACKAGES]
        assert other == []
        # The image keeps the index's builds (the pins' "==2.14.1" admits "2.14.1+cpu", so the PyPI step
        # must not replace them), and nothing of CUDA came in from PyPI.
        list_versions = ("import importlib.metadata as m, json; "
                         "print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))")
        installed = json.loads(run(["docker", "run", "--rm", IMAGE, "python", "-c", list_versions]))
        for package in TORCH_PACKAGES:
            assert installed[package] == _cpu_build_version(package)
        assert [name for name in installed if CUDA_PACKAGE.match(name)] == []
    finally:
        subprocess.run(["docker", "rmi", "-f", IMAGE], capture_output=True)
