"""Back-end replicas behind the nginx load balancer (docker-compose.scale.yml), on a real Docker engine.

The stack is the one a student starts with ``--scale backend=3``: three
back-end containers and the load balancer, built on the local base image
(nginx from Debian's package, since no image can be pulled here). Traffic goes
only to the load balancer's published port on 127.0.0.1. Each answer's
``X-Served-By`` header is the replica's host name, i.e. its container id, so
the tests can count requests per container.
"""

from __future__ import annotations

import base64
import collections
import io
import json
import os
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from workshop.containers import SCALE_FILES, ComposeStack, run
from workshop.samples import shapes_sample
from workshop.services import free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPLICAS = 3


def predict_body() -> dict[str, str]:
    buffer = io.BytesIO()
    shapes_sample(seed=3).image.save(buffer, format="PNG")
    return {"image": base64.b64encode(buffer.getvalue()).decode()}


def wait_until_every_replica_answers(url: str, replicas: int, timeout: float) -> None:
    """Poll the load balancer until ``replicas`` different back-ends have answered a prediction."""
    body, seen = predict_body(), set()
    deadline = time.monotonic() + timeout
    while len(seen) < replicas:
        assert time.monotonic() < deadline, f"only {len(seen)} of {replicas} replicas answered in {timeout:g} s"
        try:
            response = requests.post(f"{url}/predict", json=body, timeout=30)
            if response.status_code == 200:
                seen.add(response.headers["X-Served-By"])
        except requests.ConnectionError:  # nginx not listening yet
            time.sleep(0.5)


@pytest.fixture(scope="module")
def stack(docker_engine: None, docker_build_args: dict[str, str]) -> Iterator[ComposeStack]:
    stack = ComposeStack(
        project=f"workshopreplicas{os.getpid()}", backend_port=None, lb_port=free_port(), image_tag="test",
        files=SCALE_FILES, **docker_build_args,
    )
    build_seconds = stack.build("backend", "lb")
    started = time.perf_counter()
    try:
        # The load balancer and what it depends on: the replicas (the front-end is not needed here).
        stack.up("lb", scale={"backend": REPLICAS})
        wait_until_every_replica_answers(stack.lb_url, REPLICAS, timeout=120)
        print(f"\nbuild: {build_seconds:.1f} s; up -> {REPLICAS} replicas answering: {time.perf_counter() - started:.1f} s")
        yield stack
    finally:
        stack.down()


def replica_names(stack: ComposeStack) -> set[str]:
    """The X-Served-By each replica sends: its host name, which Docker sets to the container id's 12 first digits."""
    return {container[:12] for container in stack.containers("backend")}


def lb_log_lines(stack: ComposeStack) -> list[dict]:
    """The load balancer's access log: one JSON object per request (see loadbalancer/nginx.conf)."""
    logs = run(["docker", "logs", stack.container("lb")])
    return [json.loads(line) for line in logs.splitlines() if line.startswith("{")]


def test_requests_spread_over_every_replica(stack: ComposeStack) -> None:
    names = replica_names(stack)
    assert len(names) == REPLICAS
    body, count = predict_body(), 30
    served = collections.Counter()
    for _ in range(count):
        response = requests.post(f"{stack.lb_url}/predict", json=body, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["detections"]
        served[response.headers["X-Served-By"]] += 1
    print(f"\nrequests per replica ({count} in a row): {dict(served)}")
    assert set(served) == names  # every replica, and only the project's replicas
    # Round robin: none starved (an even split is count / REPLICAS each).
    assert min(served.values()) >= count // REPLICAS // 2
    # Errors too say where they come from: a bad request is answered by a replica, through nginx.
    bad = requests.post(f"{stack.lb_url}/predict", json={"image": "%%%"}, timeout=30)
    assert bad.status_code == 422 and bad.headers["X-Served-By"] in names


def test_killing_a_replica_mid_load_fails_no_request(stack: ComposeStack) -> None:
    names = replica_names(stack)
    victim = stack.containers("backend")[0]
    body, threads, per_thread = predict_body(), 4, 40
    results: list[tuple[float, int, str]] = []  # (finished at, status or 0 for an exception, served by)
    lock = threading.Lock()
    log_lines_before = len(lb_log_lines(stack))

    def client() -> None:
        with requests.Session() as session:
            for _ in range(per_thread):
                try:
                    response = session.post(f"{stack.lb_url}/predict", json=body, timeout=30)
                    outcome = (time.monotonic(), response.status_code, response.headers.get("X-Served-By", ""))
                except requests.RequestException as error:
                    outcome = (time.monotonic(), 0, repr(error))
                with lock:
                    results.append(outcome)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    # Kill one replica once a quarter of the requests are done: others are in flight on it at that moment.
    while len(results) < threads * per_thread // 4:
        assert time.monotonic() - started < 120, "the load run is stuck"
        time.sleep(0.02)
    run(["docker", "kill", victim])
    killed_at = time.monotonic()
    for worker in workers:
        worker.join(timeout=180)
    assert not any(worker.is_alive() for worker in workers), "a client thread did not finish"
    seconds = time.monotonic() - started

    failures = [outcome for outcome in results if outcome[1] != 200]
    after_kill = [outcome for outcome in results if outcome[0] > killed_at + 1]
    spread_after = collections.Counter(outcome[2] for outcome in after_kill)
    retried = [
        line for line in lb_log_lines(stack)[log_lines_before:] if "," in line["upstream_status"]
    ]
    print(
        f"\nload run: {len(results)} requests from {threads} threads in {seconds:.1f} s; replica {victim[:12]} killed "
        f"after {killed_at - started:.1f} s; failures: {len(failures)}; retried by nginx: {len(retried)} "
        f"({sorted(collections.Counter(line['upstream_status'] for line in retried).items())}); "
        f"requests per replica after the kill: {dict(spread_after)}"
    )
    assert len(results) == threads * per_thread
    assert failures == []
    # Routed around the dead replica: after the kill, the survivors answer everything, and both of them do.
    assert set(spread_after) == names - {victim[:12]}
    assert min(spread_after.values()) >= len(after_kill) // (REPLICAS - 1) // 2
    # The kill really hit traffic: nginx had to send at least one request to a second replica.
    assert retried, "no request was retried: the kill did not meet any traffic"
    assert all(line["status"] == 200 for line in retried)


def test_teardown_leaves_nothing(stack: ComposeStack) -> None:
    stack.down()
    assert stack.leftovers() == {"containers": [], "networks": [], "volumes": []}
