"""The default ``workshop serve`` against the original lab's back-end design, side by side.

The peer is :mod:`workshop.minimal_backend`, the naive back-end notebook 02 has students
write: the picture decoded per request, the model loaded on first use, a plain
``model(image)`` on PyTorch. Both are served the same way (uvicorn, one worker, on
127.0.0.1), answer the same base64 JSON body (``{"model", "image"}`` on ``POST /predict``)
for the same model and picture, and are measured in the same run, in turns:

* the first prediction: the default server's right after ``/ready`` says it is ready (the
  median of :data:`FIRST_PREDICTION_STARTS` fresh starts: one request is one sample), the
  peer's right after ``/health`` answers (so it includes loading the model);
* rounds of 1 client then 8 clients on each server, the order flipped every round,
  so that the CPU's drift on a shared machine falls on both.
"""

from __future__ import annotations

import http.client
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from workshop.bench.load import PreparedRequest, prepare_request, run_load
from workshop.bench.stats import LatencySummary
from workshop.services import BackgroundService, free_port, start_backend, start_process

if TYPE_CHECKING:
    from workshop.bench.runner import BenchConfig

#: The models the peer knows (its WEIGHTS): the bundled one and the online default.
PEER_MODELS = ("shapes", "yolo26n")
#: Fresh starts of the default server whose first prediction is timed.
FIRST_PREDICTION_STARTS = 3


@dataclass(frozen=True)
class PeerRound:
    """One round: each server at 1 client and at 8 clients, a few seconds apart."""

    default_one: LatencySummary
    peer_one: LatencySummary
    default_eight: LatencySummary
    peer_eight: LatencySummary

    @property
    def latency_ratio(self) -> float:
        """Default server's p50 at 1 client ÷ the peer's (goal: at most 0.7)."""
        return self.default_one.p50_ms / self.peer_one.p50_ms

    @property
    def throughput_ratio(self) -> float:
        """Default server's requests/s at 8 clients ÷ the peer's (goal: at least 1.5)."""
        return self.default_eight.throughput / self.peer_eight.throughput


@dataclass
class PeerResults:
    """The default server and the peer on one model."""

    model: str
    default_engine: str  # what `auto` chose, as the default server's answers name it
    default_ready_seconds: float  # launch -> /ready (median of the starts)
    default_first_ms: float  # first prediction after /ready (median of the starts)
    peer_first_ms: float  # first prediction after /health: loads the model
    rounds: list[PeerRound] = field(default_factory=list)


def first_prediction(url: str, request: PreparedRequest, timeout: float = 300.0) -> tuple[float, dict]:
    """Milliseconds of one prediction on a fresh connection, and the answer's JSON; raises unless it is a 200."""
    import json

    target = urlsplit(url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=timeout)
    try:
        started = time.perf_counter()
        connection.request("POST", request.path, body=request.body, headers={"Content-Type": request.content_type})
        response = connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"{url}{request.path} answered {response.status}: {body[:300]!r}")
    return elapsed, json.loads(body)


def start_peer(env: Mapping[str, str], log_dir: Path) -> BackgroundService:
    """The naive back-end, served as its notebook says (``uvicorn workshop.minimal_backend:app``), one worker."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "workshop.minimal_backend:app", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1", "--no-access-log"]
    return start_process("peer", command, f"http://127.0.0.1:{port}", health_path="/health", env=env, log_dir=log_dir)


def measure_against_peer(
    config: BenchConfig, model: str, image: bytes, env: dict[str, str], work: Path, progress: Callable[[str], None]
) -> PeerResults | None:
    """Start both servers on ``model`` and measure them in turns; None when the peer does not know ``model``."""
    if model not in PEER_MODELS:
        progress(f"{model}: no peer measurement (the minimal back-end serves only {', '.join(PEER_MODELS)})")
        return None
    request = prepare_request(image, "base64", model=model)
    logs = work / "logs" / f"peer-{model}"
    # The default server: no engine named, as a student runs it (`auto`: its exports are cached by now).
    server_env = {**env, "WORKSHOP_ENGINE": "auto", "WORKSHOP_DEFAULT_MODEL": model}
    readies, firsts = [], []
    for start in range(FIRST_PREDICTION_STARTS):
        launched = time.perf_counter()
        server = start_backend(env=server_env, log_dir=logs)
        readies.append(time.perf_counter() - launched)
        first, answer = first_prediction(server.url, request)
        firsts.append(first)
        progress(f"{model}: default server ready in {readies[-1]:.1f} s on {answer['engine']}; first prediction {first:.1f} ms")
        if start < FIRST_PREDICTION_STARTS - 1:
            server.stop()
    with server:  # the last one stays up for the rounds
        with start_peer(env, logs) as peer:
            peer_first, _ = first_prediction(peer.url, request)
            progress(f"{model}: peer's first prediction (loads the model) {peer_first:.1f} ms")
            results = PeerResults(
                model, answer["engine"], round(statistics.median(readies), 2), round(statistics.median(firsts), 2),
                round(peer_first, 2),
            )
            seconds = config.seconds / 2
            measure: dict[str, Callable[[], LatencySummary]] = {
                "default_one": lambda: run_load(server.url, request, clients=1, seconds=seconds),
                "peer_one": lambda: run_load(peer.url, request, clients=1, seconds=seconds),
                "default_eight": lambda: run_load(server.url, request, clients=8, seconds=seconds),
                "peer_eight": lambda: run_load(peer.url, request, clients=8, seconds=seconds),
            }
            for number in range(max(config.goal_rounds, 1)):
                order = list(measure) if number % 2 == 0 else list(reversed(measure))
                paired = PeerRound(**{name: measure[name]() for name in order})
                progress(
                    f"  round {number + 1}: p50 at 1 client, default ÷ peer {paired.latency_ratio:.3f}; "
                    f"req/s at 8 clients, default ÷ peer {paired.throughput_ratio:.3f}"
                )
                results.rounds.append(paired)
    return results
