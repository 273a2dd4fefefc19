"""The devcontainer reproduces the lab's codespace; its post-create command works in a fresh venv."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from workshop.links import in_codespace, public_url

ROOT = Path(__file__).resolve().parents[1]
DEVCONTAINER = ROOT / ".devcontainer" / "devcontainer.json"


@pytest.fixture(scope="module")
def config() -> dict:
    return json.loads(DEVCONTAINER.read_text())  # strict JSON: no comments, no trailing commas


def test_image_features_and_host(config: dict) -> None:
    assert config["image"].startswith("mcr.microsoft.com/devcontainers/python:3.")
    assert "ghcr.io/devcontainers/features/docker-in-docker:2" in config["features"]
    assert any("google-cloud-cli" in feature for feature in config["features"])
    assert {"cpus", "memory", "storage"} <= set(config["hostRequirements"])


def test_ports_are_forwarded_with_labels(config: dict) -> None:
    assert config["forwardPorts"] == [8000, 8501, 8888]
    for port in ("8000", "8501", "8888"):
        assert config["portsAttributes"][port]["label"]


def test_post_create_runs_the_readme_setup(config: dict) -> None:
    command = config["postCreateCommand"]
    assert command.startswith("scripts/setup.sh")
    assert (ROOT / "scripts" / "setup.sh").exists()
    assert "scripts/setup.sh" in (ROOT / "README.md").read_text()


@pytest.mark.slow
def test_post_create_command_works_in_a_fresh_virtualenv(config: dict, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k != "TORCH_INDEX_URL"} | {"VENV": str(venv)}
    result = subprocess.run(
        ["bash", "-c", config["postCreateCommand"]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Ready: workshop 0.1.0" in result.stdout
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import fastapi, streamlit, ultralytics, playwright, workshop.backend"],
        capture_output=True, text=True, timeout=300,
    )
    assert check.returncode == 0, check.stderr


def test_links_use_the_codespace_forwarded_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODESPACE_NAME", raising=False)
    monkeypatch.delenv("CODESPACES", raising=False)
    assert public_url(8501) == "http://localhost:8501" and not in_codespace()
    monkeypatch.setenv("CODESPACE_NAME", "fluffy-space-train-x7")
    monkeypatch.setenv("GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN", "app.github.dev")
    assert public_url(8000, "/docs") == "https://fluffy-space-train-x7-8000.app.github.dev/docs"
    assert in_codespace()
