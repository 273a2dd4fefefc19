"""Compose v2 is the tool, v1 the quiet fallback; a plain ``docker compose`` belongs to the project Compose names.

The notebooks type ``docker compose ...`` with no ``-p``: their checkpoints find the containers in the project
Compose gives the folder (``compose_project``), as Compose itself names it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from workshop import containers


@pytest.mark.parametrize(
    ("folder", "expected"),
    [("deploy-ml-workshop", "deploy-ml-workshop"), ("Deploy ML.Workshop", "deploymlworkshop"), ("track_2", "track_2")],
)
def test_compose_project_is_the_folder_as_compose_normalises_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str, expected: str
) -> None:
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)
    (tmp_path / folder).mkdir()
    assert containers.compose_project(tmp_path / folder) == expected


def test_compose_project_name_in_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "Class-A")
    assert containers.compose_project(tmp_path) == "class-a"


def _fake_docker(monkeypatch: pytest.MonkeyPatch, *, plugin: bool, v1: bool) -> None:
    """`docker compose version` answers only when the plugin is there; `docker-compose` exists only when v1 is."""
    monkeypatch.setattr(containers.shutil, "which", lambda name: f"/usr/bin/{name}" if name == "docker" or v1 else None)

    def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(command, 0 if plugin else 1)

    monkeypatch.setattr(containers.subprocess, "run", run)


def test_compose_v2_is_preferred_when_its_plugin_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_docker(monkeypatch, plugin=True, v1=True)
    assert containers.compose_command() == ["docker", "compose"]


def test_compose_v1_is_the_quiet_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_docker(monkeypatch, plugin=False, v1=True)
    assert containers.compose_command() == ["docker-compose"]


def test_no_compose_at_all_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_docker(monkeypatch, plugin=False, v1=False)
    with pytest.raises(RuntimeError, match="Docker Compose is not installed"):
        containers.compose_command()


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI runs scripts/docker-offline.sh, which installs the plugin")
def test_ci_has_compose_v2_as_the_notebooks_type_it() -> None:
    """scripts/docker-offline.sh installs the Compose v2 plugin (from Debian trixie's package) where only v1 is."""
    result = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "version 2." in result.stdout, result.stderr
