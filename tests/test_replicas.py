"""Back-end replicas behind the nginx load balancer (docker-compose.scale.yml), on a real Docker engine.

The stack is the one a student starts with ``--scale backend=3``: three
back-end containers and the load balancer, built on the local base image
(nginx from Debian's package, since no image can be pulled here). Traffic goes
only to the load balancer's published port on 127.0.0.1. Each answer's
``X-Served-By`` header is the replica's host name, i.e. its container id, so
the tests can count requests per container.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from workshop.containers import SCALE_FILES, ComposeStack, run
from workshop.services import free_port
from workshop.settings import Settings

from support import (  # tests/ is on sys.path under pytest
    create_without_starting, every_replica_answering, lb_log_lines, predict_body, wait_until_every_replica_answers,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPLICAS = 3


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
    assert stack.leftovers() == {"containers": [], "networks": [], "volumes": []}


@pytest.fixture
def replicas(stack: ComposeStack) -> ComposeStack:
    """The stack with its three replicas running and answering, whatever a test before killed."""
    return every_replica_answering(stack, REPLICAS)


def replica_names(stack: ComposeStack) -> set[str]:
    """The X-Served-By each replica sends: its host name, which Docker sets to the container id's 12 first digits."""
    return {container[:12] for container in stack.containers("backend")}


def test_requests_spread_over_every_replica(replicas: ComposeStack) -> None:
    stack = replicas
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


def test_a_body_over_the_api_limit_gets_the_back_ends_413_through_nginx(replicas: ComposeStack) -> None:
    stack = replicas
    # nginx's own limit (client_max_body_size) is above the back-end's WORKSHOP_MAX_REQUEST_BYTES: the
    # replica, not nginx, refuses the body, with its JSON explanation and its name.
    limit = Settings.model_fields["max_request_bytes"].default  # the containers set none
    response = requests.post(
        f"{stack.lb_url}/predict", data=b"x" * (limit + 1), headers={"Content-Type": "application/json"}, timeout=60,
    )
    assert response.status_code == 413
    assert response.headers["X-Served-By"] in replica_names(stack)
    assert "detail" in response.json()


def test_killing_a_replica_mid_load_fails_no_request(replicas: ComposeStack) -> None:
    stack = replicas
    names = replica_names(stack)
    victim = stack.containers("backend")[0]
    body, threads = predict_body(), 4
    # Each request's moment it was sent (monotonic), its status (0 for an exception) and who served it.
    results: list[tuple[float, int, str]] = []
    lock, stop = threading.Lock(), threading.Event()
    log_lines_before = len(lb_log_lines(stack))

    def client() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    response = session.post(f"{stack.lb_url}/predict", json=body, timeout=30)
                    outcome = (sent, response.status_code, response.headers.get("X-Served-By", ""))
                except requests.RequestException as error:
                    outcome = (sent, 0, repr(error))
                with lock:
                    results.append(outcome)

    def wait_for(condition, what: str) -> None:
        deadline = time.monotonic() + 300  # a bound on the wait, not a speed: the load only has to go on
        while not condition():
            assert time.monotonic() < deadline, f"the load run is stuck: {what}"
            time.sleep(0.02)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        # Kill one replica once 40 requests are answered: others are in flight on it at that moment.
        wait_for(lambda: len(results) >= 40, "40 requests before the kill")
        run(["docker", "kill", victim])
        killed_at = time.monotonic()
        # Then go on until 40 requests sent after the kill are answered: the survivors' share is counted on them.
        wait_for(lambda: sum(sent > killed_at for sent, _, _ in list(results)) >= 40, "40 requests after the kill")
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=180)
    assert not any(worker.is_alive() for worker in workers), "a client thread did not finish"

    failures = [outcome for outcome in results if outcome[1] != 200]
    after_kill = [outcome for outcome in results if outcome[0] > killed_at]
    spread_after = collections.Counter(outcome[2] for outcome in after_kill)
    retried = [
        line for line in lb_log_lines(stack)[log_lines_before:] if "," in line["upstream_status"]
    ]
    print(
        f"\nload run: {len(results)} requests from {threads} threads; replica {victim[:12]} killed after "
        f"{len(results) - len(after_kill)}; failures: {len(failures)}; retried by nginx: {len(retried)} "
        f"({sorted(collections.Counter(line['upstream_status'] for line in retried).items())}); "
        f"requests per replica after the kill: {dict(spread_after)}"
    )
    assert failures == []
    # Routed around the dead replica: every request sent after the kill is answered by a survivor, and both share.
    assert len(after_kill) >= 40
    assert set(spread_after) == names - {victim[:12]}
    assert min(spread_after.values()) >= len(after_kill) // (REPLICAS - 1) // 2
    # The kill really hit traffic: nginx had to send at least one request to a second replica.
    assert retried, "no request was retried: the kill did not meet any traffic"
    assert all(line["status"] == 200 for line in retried)


def test_down_leaves_nothing(docker_engine: None, docker_build_args: dict[str, str]) -> None:
    """On a project of its own, created without starting it (what up creates, no model to load): the module's stack
    stays up for the other tests, and its own teardown is checked the same way."""
    own = ComposeStack(
        project=f"workshopreplicasdown{os.getpid()}", backend_port=None, lb_port=free_port(), image_tag="test",
        files=SCALE_FILES, **docker_build_args,
    )
    try:
        create_without_starting(own, "lb", scale={"backend": REPLICAS})
        left = own.leftovers()
        assert len(left["containers"]) == REPLICAS + 1 and left["networks"]  # the replicas, nginx, their network
    finally:
        own.down()
    assert own.leftovers() == {"containers": [], "networks": [], "volumes": []}


def test_loadbalancer_image_on_a_base_that_ships_nginx_stands_in_for_the_official_image(
    docker_engine: None, docker_build_args: dict[str, str]
) -> None:
    """The official ``nginx`` image cannot be pulled here. It is a Debian image with nginx already
    installed, so the stand-in is the local base image with Debian's nginx: on it the Dockerfile must use
    that nginx rather than install one, and the image must proxy with loadbalancer/nginx.conf, unprivileged.
    A one-line Python web server plays the only replica."""
    suffix = os.getpid()
    base = docker_build_args["base_image"]
    stand_in, image = f"workshop-test/nginx-stand-in:{suffix}", f"deploy-ml-workshop/loadbalancer:stand-in-{suffix}"
    network = f"workshop-lb-stand-in-{suffix}"
    subprocess.run(
        ["docker", "build", "-q", "-t", stand_in, "-"], check=True, capture_output=True, timeout=600,
        input=f"FROM {base}\nRUN apt-get update && apt-get install -y --no-install-recommends nginx "
        "&& rm -rf /var/lib/apt/lists/*\n".encode(),
    )
    containers: list[str] = []
    run(["docker", "network", "create", network])
    try:
        # --no-cache: the output shows whether the install step went to apt.
        build = run(["docker", "build", "--no-cache", "-t", image, "--build-arg", f"BASE_IMAGE={stand_in}", "loadbalancer"])
        assert "Reading package lists" not in build  # the base's nginx was used
        config = json.loads(run(["docker", "image", "inspect", image]))[0]["Config"]
        assert config["User"] == "loadbalancer"
        containers.append(run([
            "docker", "run", "-d", "--network", network, "--network-alias", "backend", base,
            "python3", "-m", "http.server", "8000",
        ]).strip())
        port = free_port()
        containers.append(run([
            "docker", "run", "-d", "--network", network, "-p", f"127.0.0.1:{port}:8000", image,
        ]).strip())
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
                if response.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, run(["docker", "logs", containers[-1]])
            time.sleep(0.3)
        assert "Directory listing" in response.text  # the replica's answer, through nginx
        log = [json.loads(line) for line in run(["docker", "logs", containers[-1]]).splitlines() if line.startswith("{")]
        assert log[-1]["status"] == 200 and log[-1]["upstream_addr"].endswith(":8000")
    finally:
        for container in containers:
            run(["docker", "rm", "-f", container])
        run(["docker", "network", "rm", network])
        subprocess.run(["docker", "rmi", "-f", image, stand_in], capture_output=True)
