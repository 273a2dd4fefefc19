"""Drive Docker Compose from Python: build, up, wait for health, inspect, down.

The container tests and the notebooks' checkpoints use this module, so what the
student runs is what CI checks. Compose v2 (``docker compose``, the CLI plugin) is
the tool; where only Debian's v1 (``docker-compose``, end of life since 2023) is
installed, this module falls back to it quietly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

#: The repository root, where docker-compose.yml lives.
REPO_ROOT = Path(__file__).resolve().parents[1]


def docker_available() -> bool:
    """True when a Docker engine answers (not only the client is installed)."""
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def compose_command() -> list[str]:
    """``docker compose`` (v2) when its plugin is installed, else ``docker-compose`` (v1); raise if neither is."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise RuntimeError("Docker Compose is not installed (neither 'docker compose' nor 'docker-compose').")


def compose_project(folder: Path | None = None) -> str:
    """The project a plain ``docker compose ...`` run in ``folder`` (the working directory) belongs to.

    ``COMPOSE_PROJECT_NAME`` when set, else the folder's name as Compose normalises it: lower case, keeping
    letters, digits, dashes and underscores (a codespace's checkout gives ``deploy-ml-workshop``).
    """
    name = os.environ.get("COMPOSE_PROJECT_NAME") or (folder or Path.cwd()).resolve().name
    return re.sub(r"[^a-z0-9_-]", "", name.lower())


class CommandFailed(RuntimeError):
    """A docker or compose command exited with an error; the message holds the end of its output."""


def run(command: list[str], env: dict[str, str] | None = None, timeout: float = 1800, cwd: Path = REPO_ROOT) -> str:
    """Run a command, return its standard output, raise :class:`CommandFailed` on error."""
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise CommandFailed(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


#: The override that runs several back-end replicas behind the nginx load balancer (``lb``).
SCALE_FILES = ("docker-compose.yml", "docker-compose.scale.yml")


@dataclass
class ComposeStack:
    """The project's docker-compose.yml under one project name, with its ports and build arguments.

    ``files`` are the compose files, in order (:data:`SCALE_FILES` adds the load
    balancer). ``backend_port=None`` publishes each back-end replica on a free
    loopback port of its own, as replicas cannot share one. ``base_image`` and ``torch_index_url`` default to the environment variables
    ``WORKSHOP_DOCKER_BASE_IMAGE`` and ``WORKSHOP_TORCH_INDEX_URL`` (set by
    ``scripts/test.sh`` on an offline machine), else to the Dockerfiles' defaults.
    """

    project: str = "deploy-ml-workshop"
    backend_port: int | None = 8000
    frontend_port: int = 8501
    lb_port: int = 8080
    files: tuple[str, ...] = ("docker-compose.yml",)
    image_tag: str = "latest"
    base_image: str | None = None
    torch_index_url: str | None = None
    compose: list[str] = field(default_factory=compose_command)

    def __post_init__(self) -> None:
        self.base_image = self.base_image or os.environ.get("WORKSHOP_DOCKER_BASE_IMAGE")
        if self.torch_index_url is None:
            self.torch_index_url = os.environ.get("WORKSHOP_TORCH_INDEX_URL")

    @property
    def env(self) -> dict[str, str]:
        """Environment for compose: the variables docker-compose.yml reads."""
        env = {
            **os.environ,
            "COMPOSE_PROJECT_NAME": self.project,
            "WORKSHOP_IMAGE_TAG": self.image_tag,
            # "127.0.0.1:" makes docker-compose.yml's "${WORKSHOP_BACKEND_PORT}:8000" read "127.0.0.1::8000".
            "WORKSHOP_BACKEND_PORT": "127.0.0.1:" if self.backend_port is None else str(self.backend_port),
            "WORKSHOP_FRONTEND_PORT": str(self.frontend_port),
            "WORKSHOP_LB_PORT": str(self.lb_port),
        }
        if self.base_image:
            env["BASE_IMAGE"] = self.base_image
        if self.torch_index_url is not None:
            env["TORCH_INDEX_URL"] = self.torch_index_url
        return env

    @property
    def backend_url(self) -> str:
        if self.backend_port is None:
            raise ValueError("The back-end has no fixed port here (backend_port=None): use lb_url.")
        return f"http://127.0.0.1:{self.backend_port}"

    @property
    def lb_url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    @property
    def frontend_url(self) -> str:
        return f"http://127.0.0.1:{self.frontend_port}"

    def _compose(self, *args: str, timeout: float = 1800) -> str:
        files = [argument for name in self.files for argument in ("-f", str(REPO_ROOT / name))]
        return run([*self.compose, *files, "-p", self.project, *args], env=self.env, timeout=timeout)

    def build(self, *services: str) -> float:
        """Build the images (of ``services``, else all); return the seconds it took."""
        started = time.perf_counter()
        self._compose("build", *services, timeout=3600)
        return time.perf_counter() - started

    def up(self, *services: str, scale: dict[str, int] | None = None) -> None:
        """Start the stack (``services`` and what they depend on, else all) in the background.

        Compose waits for the back-end to be healthy first. ``scale``: replicas per
        service, e.g. ``{"backend": 3}``.
        """
        replicas = [argument for name, count in (scale or {}).items() for argument in ("--scale", f"{name}={count}")]
        self._compose("up", "-d", *replicas, *services, timeout=600)

    def down(self) -> None:
        """Stop and remove the containers, the network and the volumes."""
        self._compose("down", "--volumes", "--remove-orphans", "--timeout", "20", timeout=300)

    def containers(self, service: str, stopped: bool = False) -> list[str]:
        """The container ids of every running replica of a service (and the stopped ones with ``stopped``)."""
        return self._compose("ps", *(["--all"] if stopped else []), "-q", service).split()

    def container(self, service: str) -> str:
        """The container id of a service, running or not (its first replica; empty when it has none).

        Compose v2 lists running containers only unless asked: a container created but never started
        (its port taken) must still be found, to say why it is not running.
        """
        return next(iter(self.containers(service, stopped=True)), "")

    def inspect(self, service: str) -> dict:
        """``docker inspect`` of a service's container."""
        return json.loads(run(["docker", "inspect", self.container(service)]))[0]

    def exec(self, service: str, *command: str) -> str:
        """Run a command inside a service's running container; return its output."""
        return run(["docker", "exec", self.container(service), *command])

    def health(self, service: str) -> str:
        """``starting``, ``healthy``, ``unhealthy``, or ``not running`` (created but never started, or stopped)."""
        state = self.inspect(service)["State"]
        if not state.get("Running"):
            return "not running"
        return (state.get("Health") or {}).get("Status", "no health check")

    def wait_healthy(
        self, services: tuple[str, ...] = ("backend", "frontend"), timeout: float = 300, grace: float = 15
    ) -> float:
        """Wait until every service's health check passes; return the seconds it took.

        A service that stays ``not running`` for ``grace`` seconds (a restart takes less) fails at once, with
        what to read, instead of waiting out the whole ``timeout``.
        """
        started = time.monotonic()
        for service in services:
            down_since = None
            while (status := self.health(service)) != "healthy":
                now = time.monotonic()
                if now - started > timeout:
                    raise TimeoutError(f"{service} was not healthy after {timeout:g} s: read 'compose logs {service}'")
                down_since = (down_since or now) if status == "not running" else None
                if down_since is not None and now - down_since > grace:
                    raise RuntimeError(
                        f"{service} is not running: read the error of 'compose up' above and 'compose logs {service}'"
                        " (a port already in use?)"
                    )
                time.sleep(1)
        return time.monotonic() - started

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, networks and volumes still labelled with this project (empty after ``down``)."""
        label = f"label=com.docker.compose.project={self.project}"
        return {
            kind: run(["docker", *command, "--filter", label]).split()
            for kind, command in {
                "containers": ["ps", "-aq"], "networks": ["network", "ls", "-q"], "volumes": ["volume", "ls", "-q"],
            }.items()
        }


#: What marks an image as this project's: the title its Dockerfiles give (``LABEL org.opencontainers.image.title``),
#: or a label of the project's own namespace (the local base image of ``scripts/docker-offline.sh`` has one, and
#: so do the intermediate stages of the multi-stage builds made on it).
IMAGE_TITLE_LABEL = "org.opencontainers.image.title"
PROJECT_NAME = "deploy-ml-workshop"


def is_project_image(labels: dict[str, str] | None) -> bool:
    """True for an image built from this project's Dockerfiles or on its local base image, by its labels."""
    labels = labels or {}
    return labels.get(IMAGE_TITLE_LABEL, "").startswith(PROJECT_NAME) or any(
        key.startswith(f"org.{PROJECT_NAME}.") for key in labels
    )


def remove_superseded_images() -> list[str]:
    """Remove the project's dangling images, the builds that a later build of the same tag replaced; return the ids
    it asked Docker to remove.

    Each ``docker build -t deploy-ml-workshop/backend .`` leaves the previous image behind untagged (``<none>``),
    a few hundred MB each time: a machine that builds all day, a CI runner or a teacher's laptop, fills its disk.
    Only untagged images of this project go (:func:`is_project_image`); images in use by a container stay
    (``docker rmi`` refuses them), and so do the layers that tagged images share.
    """
    dangling = run(["docker", "images", "--quiet", "--no-trunc", "--filter", "dangling=true"]).split()
    if not dangling:
        return []
    inspected = json.loads(run(["docker", "image", "inspect", *dangling]))
    ours = [image["Id"] for image in inspected if is_project_image(image["Config"].get("Labels"))]
    if ours:
        subprocess.run(["docker", "rmi", *ours], capture_output=True, text=True, timeout=300)
    return ours
