"""Notebook 04's checkpoints against the real Docker engine: each one passes on a right answer and
stops, with its sentence, on a wrong or missing one.

Most containers here come from the local Python base image and run Python's own web server (a real
server on a real port), so that most tests need no project image; the back-end
graded by ``workshop check`` is the real one, in a container of its image (``backend_image``).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests

from support import DOCKER_BASE_IMAGE
from workshop.checkpoints import CheckpointFailed
from workshop.checkpoints import containers as check
from workshop.services import BackgroundService, free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.usefixtures("docker_engine")]

# Names of their own, so that a notebook running beside the tests never sees these containers as its own.
PREFIX = f"workshop-test04-{uuid.uuid4().hex[:8]}-"
SERVE = ["python3", "-m", "http.server", "8000"]


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300, check=True)


def failure(function: Callable[..., None], *args: object, **kwargs: object) -> CheckpointFailed:
    """The checkpoint's failure (the test fails if it passes)."""
    with pytest.raises(CheckpointFailed) as raised:
        function(*args, **kwargs)
    return raised.value


@pytest.fixture(scope="module")
def containers() -> Iterator[list[str]]:
    """Names of the containers a test started: all removed at the end."""
    started: list[str] = []
    yield started
    if started:
        subprocess.run(["docker", "rm", "-f", *started], check=False, capture_output=True)


def start_image(containers: list[str], name: str, image: str, *options: str, command: tuple[str, ...] = ()) -> str:
    """``docker run -d`` a container of ``image``; return its name."""
    full = PREFIX + name
    containers.append(full)
    docker("run", "-d", "--name", full, *options, image, *command)
    return full


def start(containers: list[str], name: str, *options: str, command: list[str] = SERVE) -> str:
    """``docker run -d`` a container of the base image; return its name."""
    return start_image(containers, name, DOCKER_BASE_IMAGE, *options, command=tuple(command))


def wait_until_answers(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(url)


@pytest.fixture(scope="module")
def backend(containers: list[str]) -> tuple[str, int]:
    """A container publishing a real web server's port 8000 on a free port of this machine."""
    port = free_port()
    name = start(containers, "backend", "-p", f"{port}:8000")
    wait_until_answers(f"http://localhost:{port}/")
    return name, port


# -- backend_container: the student's `docker run` ------------------------------------------------------


def test_backend_container_passes_with_the_port_published_where_asked(
    backend: tuple[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    name, port = backend
    check.backend_container(name, port, image=DOCKER_BASE_IMAGE)
    assert f"✅ {name} runs {DOCKER_BASE_IMAGE}: localhost:{port} on this machine leads to port 8000" in capsys.readouterr().out


def test_backend_container_fails_on_another_port(backend: tuple[str, int]) -> None:
    name, port = backend
    error = failure(check.backend_container, name, port + 1, image=DOCKER_BASE_IMAGE)
    assert f"publishes the container's port 8000 on {port}, not on {port + 1}" in error.en
    assert f"-p {port + 1}:8000" in error.en and f"-p {port + 1}:8000" in error.fr


def test_backend_container_fails_on_another_image(backend: tuple[str, int]) -> None:
    name, port = backend
    error = failure(check.backend_container, name, port)
    assert f"runs the image {DOCKER_BASE_IMAGE}, not deploy-ml-workshop/backend" in error.en


def test_backend_container_fails_when_there_is_none() -> None:
    error = failure(check.backend_container, PREFIX + "never-started", 8000)
    assert f"There is no container named {PREFIX}never-started" in error.en
    assert "docker run" in error.fr


def test_backend_container_fails_when_it_stopped(containers: list[str]) -> None:
    name = start(containers, "stopped", command=["python3", "-c", "raise SystemExit(3)"])
    docker("wait", name)
    error = failure(check.backend_container, name, 8000, image=DOCKER_BASE_IMAGE)
    assert f"{name} is not running (exited, exit code 3): read `docker logs {name}`" in error.en


# -- container_answers: workshop check against the back-end ------------------------------------------


@pytest.fixture(scope="module")
def backend_container(containers: list[str], backend_image: str) -> tuple[str, int]:
    """The real back-end in a container of its image, published on a free port."""
    port = free_port()
    name = start_image(containers, "real-backend", backend_image, "-p", f"{port}:8000")
    wait_until_answers(f"http://localhost:{port}/ready", timeout=180)
    return name, port


def test_container_answers_passes_for_the_real_back_end_in_its_container(
    backend_container: tuple[str, int], backend_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name, port = backend_container
    check.container_answers(name, port, image=backend_image)
    assert "✅ Your container passes" in capsys.readouterr().out


@pytest.mark.parametrize(("language", "sentence"), [("en", "Your container fails 'health"), ("fr", "Votre conteneur échoue à « santé")])
def test_container_answers_fails_when_its_server_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, containers: list[str], language: str, sentence: str
) -> None:
    """A container publishing port 8000 where nothing listens: the connection is reset, the check says so."""
    monkeypatch.setenv("WORKSHOP_LANG", language)
    port = free_port()
    name = start(containers, f"silent-{language}", "-p", f"{port}:8000", command=["sleep", "600"])
    error = failure(check.container_answers, name, port, image=DOCKER_BASE_IMAGE)
    assert str(error).startswith(sentence)


def test_container_answers_fails_when_another_server_holds_the_port(
    backend: tuple[str, int], live_server: BackgroundService
) -> None:
    """A back-end answering on the port is not enough: it must be the container's."""
    name, _ = backend
    port = int(live_server.url.rsplit(":", 1)[1])
    error = failure(check.container_answers, name, port, image=DOCKER_BASE_IMAGE)
    assert f"not on {port}" in error.en


# -- prediction and frontend_reaches_backend: localhost inside a container ---------------------------


@pytest.fixture(scope="module")
def bridged(containers: list[str]) -> str:
    """A container on its own network (Docker's default), like the front-end run without --network host."""
    return start(containers, "bridged", command=["sleep", "600"])


@pytest.fixture(scope="module")
def on_host_network(containers: list[str]) -> str:
    """A container sharing this machine's network (--network host)."""
    return start(containers, "host", "--network", "host", command=["sleep", "600"])


def test_localhost_in_a_container_of_its_own_is_the_container(bridged: str, on_host_network: str, backend: tuple[str, int]) -> None:
    url = f"http://localhost:{backend[1]}/"
    assert not check.reaches(bridged, url)
    assert check.reaches(on_host_network, url)


def test_a_right_prediction_passes(bridged: str, backend: tuple[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://localhost:{backend[1]}/"
    check.prediction(False, bridged, url)
    assert f"✅ Well predicted: from inside {bridged}, {url} does not answer." in capsys.readouterr().out


def test_a_right_prediction_of_an_answer_passes(on_host_network: str, backend: tuple[str, int]) -> None:
    check.prediction(True, on_host_network, f"http://localhost:{backend[1]}/")


def test_a_wrong_prediction_passes_and_says_what_happened(
    bridged: str, backend: tuple[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """Any recorded guess passes (students must not guess until green); the sentence says what happened."""
    url = f"http://localhost:{backend[1]}/"
    check.prediction(True, bridged, url)
    assert f"✅ You predicted an answer; from inside {bridged}, {url} does not answer: read on" in capsys.readouterr().out


@pytest.mark.parametrize("answer", [None, "no", 0])
def test_a_missing_prediction_fails(answer: object, bridged: str) -> None:
    error = failure(check.prediction, answer, bridged, "http://localhost:8000/")
    assert "Write your prediction first: set frontend_reaches_backend to True or False" in error.en


def test_start_clean_removes_what_an_earlier_run_left(containers: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    leftover = start(containers, "leftover", command=["sleep", "600"])
    with pytest.raises(CheckpointFailed, match="Still there"):
        check.nothing_left(prefix=leftover)
    check.start_clean(prefix=leftover)
    assert f"Removed what an earlier run left: {leftover}" in capsys.readouterr().out
    check.nothing_left(prefix=leftover)


def test_frontend_reaches_backend_passes_on_the_host_network(
    on_host_network: str, backend: tuple[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    check.frontend_reaches_backend(on_host_network, f"http://localhost:{backend[1]}/")
    assert "✅" in capsys.readouterr().out


def test_frontend_reaches_backend_fails_on_a_network_of_its_own(bridged: str, backend: tuple[str, int]) -> None:
    error = failure(check.frontend_reaches_backend, bridged, f"http://localhost:{backend[1]}/")
    assert f"{bridged} has a network of its own (default)" in error.en and "--network host" in error.en


def test_frontend_reaches_backend_fails_when_the_back_end_is_gone(on_host_network: str) -> None:
    error = failure(check.frontend_reaches_backend, on_host_network, f"http://localhost:{free_port()}/")
    assert "does not answer: is the back-end's container running" in error.en


# -- frontend_image: the Dockerfile the student finishes -----------------------------------------------

RIGHT_ENDING = """\
USER workshop
EXPOSE 8501
HEALTHCHECK CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/')"]
"""
ENDINGS = {
    "right": RIGHT_ENDING,
    "root": RIGHT_ENDING.replace("USER workshop\n", ""),
    "ghost-user": RIGHT_ENDING.replace("USER workshop", "USER ghost"),
    "no-expose": RIGHT_ENDING.replace("EXPOSE 8501\n", ""),
    "no-healthcheck": "USER workshop\nEXPOSE 8501\n",
    # The slim images have no curl: a health check written with it never passes.
    "curl-healthcheck": "USER workshop\nEXPOSE 8501\nHEALTHCHECK CMD curl -f http://127.0.0.1:8501/ || exit 1\n",
}


@pytest.fixture(scope="module")
def images() -> Iterator[dict[str, str]]:
    """One small image per Dockerfile ending: a web server on 8501 with a user named workshop; removed at the end."""
    tags = {}
    for name, ending in ENDINGS.items():
        tag = f"{PREFIX.rstrip('-')}/frontend:{name}"
        dockerfile = (
            f"FROM {DOCKER_BASE_IMAGE}\nRUN useradd --create-home --uid 10001 workshop\n{ending}"
            'CMD ["python3", "-m", "http.server", "8501"]\n'
        )
        subprocess.run(["docker", "build", "-q", "-t", tag, "-"], input=dockerfile, text=True, check=True, capture_output=True)
        tags[name] = tag
    yield tags
    subprocess.run(["docker", "rmi", "-f", *tags.values()], check=False, capture_output=True)


def test_frontend_image_passes_when_the_ending_is_right(images: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    check.frontend_image(images["right"])
    assert f"✅ {images['right']}: runs as 'workshop', exposes 8501, and its health check answers." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("ending", "sentence"),
    [
        ("root", "The image still runs as root: add a `USER` line"),
        ("ghost-user", "The image's user 'ghost' does not exist in it"),
        ("no-expose", "add `EXPOSE 8501`"),
        ("no-healthcheck", "The image has no HEALTHCHECK"),
        ("curl-healthcheck", "never succeeds in the container: slim images have no curl"),
    ],
)
def test_frontend_image_fails_on_a_wrong_ending(images: dict[str, str], ending: str, sentence: str) -> None:
    error = failure(check.frontend_image, images[ending], health_timeout=5)
    assert sentence in error.en
    assert error.fr and error.fr != error.en


def test_frontend_image_fails_when_it_was_never_built() -> None:
    error = failure(check.frontend_image, f"{PREFIX.rstrip('-')}/never-built")
    assert "There is no image" in error.en and "run the build cell above" in error.en


def test_frontend_image_leaves_no_container_behind(images: dict[str, str]) -> None:
    check.frontend_image(images["right"])
    left = docker("ps", "-a", "--filter", f"ancestor={images['right']}", "--format", "{{.Names}}").stdout.split()
    assert left == []


# -- nothing_left -----------------------------------------------------------------------------------------


def test_nothing_left_names_what_is_still_there(containers: list[str]) -> None:
    prefix = PREFIX + "cleanup-"
    name = start(containers, "cleanup-forgotten", command=["sleep", "600"])
    # A name that holds the prefix in its middle is not one of ours.
    other = "x" + name.replace("forgotten", "other")
    containers.append(other)
    docker("run", "-d", "--name", other, DOCKER_BASE_IMAGE, "sleep", "600")
    error = failure(check.nothing_left, prefix)
    assert error.en == f"Still there: {name}: stop and remove them (docker rm -f {name})."
    docker("rm", "-f", name)
    check.nothing_left(prefix)
