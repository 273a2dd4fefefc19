"""Cold start: from starting the server (a process, or a container) to the first answered prediction.

This is what a student waits for after ``workshop serve`` or ``docker run``,
and what a VM waits for after a reboot: process start, imports, model load,
first inference. Timing stops at the first ``200`` from ``/predict/upload``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping

import requests

from workshop.services import free_port


def _first_prediction(url: str, image: bytes, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before answering")
        try:
            answer = requests.post(f"{url}/predict/upload", files={"file": ("image.png", image, "image/png")}, timeout=30)
            if answer.status_code == 200:
                return
        except requests.RequestException:
            pass  # not listening yet
        time.sleep(0.05)
    raise TimeoutError(f"no prediction from {url} within {timeout:g} s")


def process_cold_start(image: bytes, env: Mapping[str, str], timeout: float = 180.0) -> float:
    """Seconds from launching ``workshop serve`` to its first answered prediction."""
    port = free_port()
    command = [sys.executable, "-m", "workshop", "serve", "--host", "127.0.0.1", "--port", str(port)]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _first_prediction(f"http://127.0.0.1:{port}", image, timeout, process)
        return time.perf_counter() - started
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def container_cold_start(image_tag: str, image: bytes, timeout: float = 180.0) -> float:
    """Seconds from ``docker run`` of ``image_tag`` to its first answered prediction (the container is removed after)."""
    port = free_port()
    started = time.perf_counter()
    container = subprocess.run(
        ["docker", "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:8000", image_tag],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    try:
        _first_prediction(f"http://127.0.0.1:{port}", image, timeout)
        return time.perf_counter() - started
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
