"""A small, bounded HTTP load generator: N clients post the same prediction request in a loop.

Bounded three ways so it always stops by itself: a time limit, a request count,
and a per-request timeout. It only targets loopback addresses: it is for
measuring your own server on your own machine, never someone else's.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from workshop.bench.stats import LatencySummary

Encoding = Literal["multipart", "base64"]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class PreparedRequest:
    """One prediction request, encoded once and sent many times."""

    path: str
    body: bytes
    content_type: str


def prepare_request(image: bytes, encoding: Encoding, model: str | None = None) -> PreparedRequest:
    """The body of a ``/predict`` (base64 JSON) or ``/predict/upload`` (multipart) request for ``image``."""
    if encoding == "base64":
        payload = {"image": base64.b64encode(image).decode("ascii"), "model": model}
        return PreparedRequest("/predict", json.dumps(payload).encode(), "application/json")
    boundary = uuid.uuid4().hex
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"image.png\"\r\n"
             "Content-Type: image/png\r\n\r\n".encode() + image + b"\r\n"]
    if model:
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n{model}\r\n".encode())
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return PreparedRequest("/predict/upload", body, f"multipart/form-data; boundary={boundary}")


def run_load(
    base_url: str,
    request: PreparedRequest,
    clients: int,
    seconds: float,
    max_requests: int = 100_000,
    timeout: float = 30.0,
) -> LatencySummary:
    """``clients`` threads send ``request`` back to back for ``seconds`` (or ``max_requests`` in all).

    Each client keeps one HTTP connection open, as a real client library would.
    Answers other than 200 and failed connections count as errors.
    """
    target = urlsplit(base_url)
    if target.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"The load generator only targets loopback addresses, not {target.hostname!r}")
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    sent = 0
    deadline = time.perf_counter() + seconds

    def client() -> None:
        nonlocal errors, sent
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=timeout)
        headers = {"Content-Type": request.content_type}
        try:
            while time.perf_counter() < deadline:
                with lock:
                    if sent >= max_requests:
                        return
                    sent += 1
                started = time.perf_counter()
                try:
                    connection.request("POST", request.path, body=request.body, headers=headers)
                    response = connection.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                    connection.close()
                    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=timeout)
                elapsed = time.perf_counter() - started
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=client, name=f"load-client-{index}", daemon=True) for index in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + timeout + 5)
    return LatencySummary.of(latencies, time.perf_counter() - started, errors)
