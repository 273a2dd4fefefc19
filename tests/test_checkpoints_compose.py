"""Notebook 05's checkpoints: each passes on a right answer and fails with its one sentence on a wrong one.

The compose file is read by the real Compose; the other checkpoints run against a real stack
(docker-compose.yml built and started on free ports). The ``down`` exercise takes down a project of its own,
created without being started, so the running stack stays up whatever order the tests run in.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from workshop.checkpoints import CheckpointFailed
from workshop.checkpoints import compose as check
from workshop.containers import ComposeStack, compose_command
from workshop.services import free_port

from support import create_without_starting, missing_tool, refused_port  # tests/ is on sys.path under pytest


@pytest.fixture(scope="module")
def compose_client() -> None:
    """The compose-file checkpoint runs the real ``compose config``: the client alone (v2 or v1), no engine needed."""
    try:
        compose_command()
    except RuntimeError:
        missing_tool("Docker Compose is not installed, neither v2 nor v1 (scripts/docker-offline.sh installs it)")


#: Compose is installed (in CI its absence fails the run: scripts/test.sh installs it).
needs_compose = pytest.mark.usefixtures("compose_client")

BACKEND = """\
services:
  backend:
    image: deploy-ml-workshop/backend:latest
    healthcheck:
      test: ["CMD", "workshop", "healthcheck", "http://127.0.0.1:8000/ready"]
  frontend:
    image: deploy-ml-workshop/frontend:latest
    ports:
      - "8501:8501"
"""
ENVIRONMENT = "    environment:\n      WORKSHOP_BACKEND_URL: {url}\n"
HEALTHY = "    depends_on:\n      backend:\n        condition: service_healthy\n"
SOLUTION = BACKEND + ENVIRONMENT.format(url="http://backend:8000") + HEALTHY


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "compose.yml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_LANG", "en")


@needs_compose
@pytest.mark.parametrize(
    "text",
    [
        SOLUTION,
        # A list of KEY=value and a trailing slash are the same address to the front-end.
        BACKEND + "    environment:\n      - WORKSHOP_BACKEND_URL=http://backend:8000/\n" + HEALTHY,
    ],
)
def test_frontend_service_passes_on_a_right_service(tmp_path: Path, text: str, capsys: pytest.CaptureFixture) -> None:
    check.frontend_service(write(tmp_path, text))
    assert capsys.readouterr().out.startswith("✅ Compose accepts your file")


@needs_compose
@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        (BACKEND, "needs WORKSHOP_BACKEND_URL under environment"),
        (BACKEND + ENVIRONMENT.format(url="http://localhost:8000") + HEALTHY, "points at the front-end's own container"),
        (BACKEND + ENVIRONMENT.format(url="http://backend:8501") + HEALTHY, "WORKSHOP_BACKEND_URL is http://backend:8501"),
        (BACKEND + ENVIRONMENT.format(url="http://backend:8000"), "must list backend under depends_on"),
        (
            BACKEND + ENVIRONMENT.format(url="http://backend:8000") + "    depends_on:\n      - backend\n",
            "the condition service_started: use service_healthy",
        ),
        (BACKEND.replace("  frontend:", "  ui:"), "no service named frontend"),
        (SOLUTION.replace("    environment:", "   environment:"), "Compose refuses compose.yml"),
    ],
)
def test_frontend_service_fails_with_its_sentence(tmp_path: Path, text: str, sentence: str) -> None:
    with pytest.raises(CheckpointFailed, match=sentence):
        check.frontend_service(write(tmp_path, text))


def test_frontend_service_without_the_file_says_to_write_it(tmp_path: Path) -> None:
    with pytest.raises(CheckpointFailed, match="does not exist yet: run the %%writefile cell"):
        check.frontend_service(tmp_path / "missing.yml")


@needs_compose
def test_frontend_service_speaks_french_in_a_french_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_LANG", "fr")
    with pytest.raises(CheckpointFailed) as failure:
        check.frontend_service(write(tmp_path, BACKEND))
    assert str(failure.value).startswith("Le service frontend a besoin de WORKSHOP_BACKEND_URL")


def test_stack_answers_fails_where_nothing_listens() -> None:
    with refused_port() as port, pytest.raises(CheckpointFailed, match="^Your compose stack fails"):
        check.stack_answers(port)


@pytest.mark.parametrize(
    ("prediction", "sentence"),
    [(None, "Write your prediction first: set my_url_prediction"), ("backend", "set my_url_prediction"),
     (42, "set my_url_prediction")],
)
def test_backend_url_prediction_refuses_what_is_not_a_url(prediction: object, sentence: str) -> None:
    with pytest.raises(CheckpointFailed, match=sentence):
        check.backend_url_prediction(prediction, project="workshop-nb05-not-started")


@pytest.mark.parametrize(
    ("prediction", "sentence"),
    [(None, "Write your prediction first: set my_down_prediction"), ("images", "set my_down_prediction"),
     ({"volumes"}, "set my_down_prediction")],
)
def test_down_prediction_refuses_what_is_not_a_set_of_leftovers(prediction: object, sentence: str) -> None:
    with pytest.raises(CheckpointFailed, match=sentence):
        check.down_prediction(prediction, project="workshop-nb05-not-started")


@pytest.mark.docker
@pytest.mark.slow
def test_backend_url_prediction_without_a_stack_says_to_start_it(docker_engine: None) -> None:
    with pytest.raises(CheckpointFailed, match="No frontend container is running in the project workshop-nb05-none"):
        check.backend_url_prediction("http://backend:8000", project="workshop-nb05-none")


@pytest.fixture(scope="module")
def stack(docker_engine: None, docker_build_args: dict[str, str]) -> Iterator[ComposeStack]:
    """docker-compose.yml built and started on free ports (the image tag the container tests use: one build)."""
    stack = ComposeStack(
        project=f"workshopnb05test{os.getpid()}", backend_port=free_port(), frontend_port=free_port(),
        image_tag="test", **docker_build_args,
    )
    stack.build()
    try:
        stack.up()
        stack.wait_healthy()
        yield stack
    finally:
        stack.down()
    assert stack.leftovers() == {"containers": [], "networks": [], "volumes": []}


@pytest.mark.docker
@pytest.mark.slow
def test_stack_answers_passes_on_the_running_stack(stack: ComposeStack, capsys: pytest.CaptureFixture) -> None:
    check.stack_answers(stack.backend_port)
    assert "✅ Your compose stack passes" in capsys.readouterr().out


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize(
    ("prediction", "verdict"),
    [
        ("http://localhost:8000", "does not answer from inside the front-end's container; http://backend:8000 does: "
                                  "there, localhost is that container itself"),
        ("http://frontend:8501", "Compose registers each container under its service's name"),
        ("http://backend:8123", "the port must be the one the back-end listens on in its own container"),
    ],
)
def test_a_wrong_url_prediction_passes_and_says_why(
    stack: ComposeStack, prediction: str, verdict: str, capsys: pytest.CaptureFixture
) -> None:
    """Any recorded guess passes (students must not guess until green); the sentence says what answers, and why."""
    check.backend_url_prediction(prediction, project=stack.project)
    out = capsys.readouterr().out
    assert out.startswith(f"✅ You predicted {prediction}, which") and verdict in out


@pytest.mark.docker
@pytest.mark.slow
def test_backend_url_prediction_passes_on_the_service_name(stack: ComposeStack, capsys: pytest.CaptureFixture) -> None:
    check.backend_url_prediction("http://backend:8000", project=stack.project)
    assert capsys.readouterr().out.startswith("✅ Well predicted: http://backend:8000 answers from inside the front-end's")


@pytest.mark.docker
@pytest.mark.slow
def test_down_prediction_checks_what_the_engine_still_holds(
    stack: ComposeStack, docker_build_args: dict[str, str], capsys: pytest.CaptureFixture
) -> None:
    """On a project of its own, with the images the stack built: what up creates (not started), then down."""
    own = ComposeStack(
        project=f"workshopnb05down{os.getpid()}", backend_port=free_port(), frontend_port=free_port(),
        image_tag=stack.image_tag, **docker_build_args,
    )
    try:
        create_without_starting(own)
        with pytest.raises(CheckpointFailed, match="still has containers: run the 'down' cell"):
            check.down_prediction({"images"}, project=own.project, image_tag=own.image_tag)
    finally:
        own.down()
    for wrong in (set(), {"images", "network"}, {"containers", "network", "images"}):
        check.down_prediction(wrong, project=own.project, image_tag=own.image_tag)
        assert "; what remains is: images. down removes the containers and the network" in capsys.readouterr().out
    check.down_prediction({"images"}, project=own.project, image_tag=own.image_tag)
    assert "✅ Well predicted: after down, what remains is: images;" in capsys.readouterr().out
    assert own.leftovers() == {"containers": [], "networks": [], "volumes": []}
