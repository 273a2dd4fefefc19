"""Facts about this machine that fixtures and tests share: the browser, the Docker base image, missing tools, ports.

A module of its own, not ``conftest``: ``notebooks/`` has a ``conftest.py`` too, so
``from conftest import ...`` would find whichever was imported first.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

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


def missing_tool(reason: str) -> None:
    """A tool a test needs is missing: skip on a laptop, fail in CI (``CI`` set), where scripts/test.sh installs it.

    ``reason`` says what is missing and what installs it, e.g. "gpg is missing (scripts/install-test-tools.sh
    installs gnupg)".
    """
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; in CI every tool the tests need must be there", pytrace=False)
    pytest.skip(reason)


@contextmanager
def refused_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port where every connection is refused, held for as long as the block lasts.

    A socket bound to the port but not listening: the kernel answers each connection with a reset, as for a
    stopped server, and no other process can bind the port meanwhile (``free_port()`` only says a port was free
    when it was asked).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((host, 0))
        yield holder.getsockname()[1]


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


# ------------------------------------------------------------------ the scaled stack (docker-compose.scale.yml)


def predict_body() -> dict[str, str]:
    """A ``POST /predict`` body: a generated shapes picture, base64-encoded."""
    from workshop.samples import shapes_sample

    buffer = io.BytesIO()
    shapes_sample(seed=3).image.save(buffer, format="PNG")
    return {"image": base64.b64encode(buffer.getvalue()).decode()}


def wait_until_every_replica_answers(url: str, replicas: int, timeout: float) -> set[str]:
    """Poll the load balancer at ``url`` until ``replicas`` different back-ends have answered a prediction; return
    their names (``X-Served-By``). ``timeout`` bounds the wait only: it asserts nothing about speed."""
    import requests

    body, seen = predict_body(), set()
    deadline = time.monotonic() + timeout
    while len(seen) < replicas:
        assert time.monotonic() < deadline, f"only {len(seen)} of {replicas} replicas answered in {timeout:g} s"
        try:
            response = requests.post(f"{url}/predict", json=body, timeout=30)
            if response.status_code == 200:
                seen.add(response.headers["X-Served-By"])
            else:
                time.sleep(0.2)
        except requests.ConnectionError:  # nginx not listening yet
            time.sleep(0.5)
    return seen


def lb_log_lines(stack: Any) -> list[dict]:
    """The load balancer's access log (a ``ComposeStack``'s ``lb``): one JSON object per request (see
    loadbalancer/nginx.conf)."""
    from workshop.containers import run

    logs = run(["docker", "logs", stack.container("lb")])
    return [json.loads(line) for line in logs.splitlines() if line.startswith("{")]


def running_replicas(stack: Any, service: str = "backend") -> list[str]:
    """The ids of ``service``'s running containers in a ``ComposeStack``'s project."""
    from workshop.containers import run

    return run(["docker", "ps", "--quiet", "--filter", f"label=com.docker.compose.project={stack.project}",
                "--filter", f"label=com.docker.compose.service={service}"]).split()


def every_replica_answering(stack: Any, replicas: int, timeout: float = 300) -> Any:
    """The scaled ``stack`` with its ``replicas`` back-ends running and answering through nginx, whatever a test before
    killed: the line a student runs to bring them back (Compose starts the killed ones again; nginx finds them at
    the addresses it resolved when it started), then a wait until each one has answered."""
    if len(running_replicas(stack)) < replicas:
        stack.up("lb", scale={"backend": replicas})
    wait_until_every_replica_answers(stack.lb_url, replicas, timeout=timeout)
    return stack


def create_without_starting(stack: Any, *services: str, scale: dict[str, int] | None = None) -> None:
    """``compose up --no-start``: the containers and the network ``up`` makes, none started (no model to load)."""
    from workshop.containers import REPO_ROOT as ROOT, run

    files = [argument for name in stack.files for argument in ("-f", str(ROOT / name))]
    replicas = [argument for name, count in (scale or {}).items() for argument in ("--scale", f"{name}={count}")]
    run([*stack.compose, *files, "-p", stack.project, "up", "--no-start", *replicas, *services], env=stack.env,
        timeout=600)


def _docker_ids(*command: str) -> set[str]:
    listed = subprocess.run(["docker", *command, "-q"], capture_output=True, text=True)
    return set(listed.stdout.split())


@contextmanager
def notebook_leaves_nothing_running(needs_docker: bool) -> Iterator[None]:
    """Containers and networks a notebook run started and did not remove are removed when it ends.

    A run that stops early (at a blank exercise, at a failure) skips the notebook's own clean-up cells; what it
    left (a Compose stack, the load balancer of notebook 07's replicas) would hold the ports and the Compose
    project of the next notebook that starts the same stack.
    """
    if not needs_docker:
        yield
        return
    containers, networks = _docker_ids("ps", "-a"), _docker_ids("network", "ls")
    try:
        yield
    finally:
        if left := _docker_ids("ps", "-a") - containers:
            subprocess.run(["docker", "rm", "-f", "-v", *left], capture_output=True)
        if left := _docker_ids("network", "ls") - networks:
            subprocess.run(["docker", "network", "rm", *left], capture_output=True)


def kernel_value(client: Any, notebook: Any, source: str) -> Any:
    """Run ``source`` in the kernel of ``client`` (an nbclient ``NotebookClient`` set up on ``notebook``) as one more
    cell, and return the JSON text its last line evaluates to, decoded. The cell is taken out of the notebook again.

    The answer is the cell's value (its ``execute_result``), never a ``print``: ipykernel sends printed text from a
    buffer that it flushes on a timer (0.2 s), and once in CI a probe's printed line never reached nbclient, which had
    already seen the cell end. A value is sent before the kernel says it is idle, and no thread can print into it.
    """
    import nbformat

    cell = nbformat.v4.new_code_cell(source)
    notebook.cells.append(cell)
    try:
        client.execute_cell(cell, len(notebook.cells) - 1)
    finally:
        notebook.cells.remove(cell)
    (value,) = [output for output in cell.outputs if output["output_type"] == "execute_result"]
    return json.loads(ast.literal_eval(value["data"]["text/plain"]))
