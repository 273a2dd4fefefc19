"""A class hitting the server at once: bounded load on a real uvicorn on loopback.

16 clients for 30 s (WORKSHOP_LOAD_SECONDS to change it), mixing valid predictions, bad
requests and info routes. Every answer must be the expected one, the server's memory must
not keep growing, and it must still answer afterwards. Loopback only; it stops by itself.
"""

from __future__ import annotations

import base64
import os
import statistics
import threading
import time
from itertools import cycle

import psutil
import pytest
import requests

from workshop.imaging import encode_image
from workshop.samples import shapes_sample
from workshop.services import start_backend

pytestmark = pytest.mark.slow

CLIENTS = 16
SECONDS = float(os.environ.get("WORKSHOP_LOAD_SECONDS", "30"))
MAX_REQUESTS = 200_000  # a second bound, whatever the speed


def test_sixteen_clients_for_half_a_minute(tmp_path) -> None:
    png = encode_image(shapes_sample(seed=5).image)
    image = base64.b64encode(png).decode()
    # (method, path, keyword arguments, expected status)
    kinds = [
        ("POST", "/predict", {"json": {"image": image}}, 200),
        ("POST", "/predict/upload", {"files": {"file": ("s.png", png, "image/png")}}, 200),
        ("POST", "/predict", {"json": {"image": "%%% not base64 %%%"}}, 422),
        ("POST", "/predict", {"json": {"image": base64.b64encode(b"plain text").decode()}}, 422),
        ("POST", "/predict", {"json": {"image": image, "confidence": 7}}, 422),
        ("GET", "/models", {}, 200),
        ("GET", "/health", {}, 200),
    ]
    server = start_backend(log_dir=tmp_path)
    process = psutil.Process(server.process.pid)
    rss: list[tuple[float, int]] = []
    latencies: list[float] = []
    unexpected: list[str] = []
    sent = 0
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + SECONDS

    def sample_memory() -> None:
        while time.monotonic() < deadline:
            rss.append((time.monotonic() - started, process.memory_info().rss))
            time.sleep(0.5)

    def client(offset: int) -> None:
        nonlocal sent
        session = requests.Session()
        plan = cycle(kinds[offset % len(kinds):] + kinds[: offset % len(kinds)])
        while time.monotonic() < deadline:
            with lock:
                if sent >= MAX_REQUESTS:
                    return
                sent += 1
            method, path, kwargs, expected = next(plan)
            began = time.perf_counter()
            try:
                status = session.request(method, server.url + path, timeout=30, **kwargs).status_code
            except requests.RequestException as error:
                status = f"{type(error).__name__}"
            seconds = time.perf_counter() - began
            with lock:
                if status != expected:
                    unexpected.append(f"{method} {path}: {status} (expected {expected})")
                elif path.startswith("/predict") and expected == 200:
                    latencies.append(seconds)

    threads = [threading.Thread(target=sample_memory)] + [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=SECONDS + 60)
        still_answers = requests.get(f"{server.url}/health", timeout=10).status_code == 200
    finally:
        server.stop()

    latencies.sort()
    first = statistics.mean(value for at, value in rss if at < 10)
    last = statistics.mean(value for at, value in rss if at >= SECONDS - 10)
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"\nload: {sent} requests in {SECONDS:.0f} s from {CLIENTS} clients, {len(unexpected)} unexpected answers; "
        f"valid predictions: {len(latencies)}, p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms; "
        f"RSS first 10 s {first / 2**20:.0f} MiB, last 10 s {last / 2**20:.0f} MiB ({(last / first - 1) * 100:+.1f} %)"
    )
    assert unexpected == [], unexpected[:10]
    assert still_answers
    assert last < first * 1.10, "memory kept growing under load"
