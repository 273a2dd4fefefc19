"""What the real gcloud showed that the fake hid: five defects, each tested through the REAL CLI against the
loopback emulator of Google's APIs (tests/gcloud_emulator/; Google itself cannot be reached here).

The third, the Cloud Run proxy component an apt-installed gcloud lacks, is checked in tests/test_devcontainer.py
against the installed CLI's own component mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcloud_emulator import Emulator, GcloudWorld
from gcloud_emulator.fixtures import LAB_APIS, emulator, world  # noqa: F401 - pytest fixtures

#: Each test runs the real gcloud, about a second a call.
pytestmark = pytest.mark.slow

PROJECT = "my-workshop-project"
DEPLOY = ("gcp", "deploy", "--project", PROJECT, "--api-key", "KEY123", "--source-range", "203.0.113.7/32",
          "--execute", "--timeout", "5")


def test_logged_out_real_gcloud_stops_at_the_login_check(tmp_path: Path, world: GcloudWorld,
                                                          emulator: Emulator) -> None:
    """Logged out, `gcloud auth list --filter=status:ACTIVE` exits 0 with nothing on stdout and a filter WARNING on
    stderr: the check must read the answer, not the warning, and stop before any API is called."""
    world.log_out()
    result = world.workshop(*DEPLOY, "--student", "ada", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "gcloud auth login" in result.stderr
    assert emulator.log == []  # not one request: it stopped at the login check


def test_teardown_counts_only_the_students_own_firewall_rule(tmp_path: Path, world: GcloudWorld,
                                                              emulator: Emulator) -> None:
    """Compute's server-side filter `name eq ".*\\bX\\b.*"` (what gcloud sends for --filter=name=X) also matches a
    classmate whose name starts with X and a hyphen: alice's teardown must not count alice-bob's rule."""
    emulator.cloud.project.enabled |= LAB_APIS
    for student in ("alice-bob",):
        created = world.run("compute", "firewall-rules", "create", f"workshop-allow-8000-{student}",
                            f"--project={PROJECT}", "--action=ALLOW", "--rules=tcp:8000",
                            "--source-ranges=203.0.113.7/32")
        assert created.returncode == 0, created.stderr
    result = world.workshop("gcp", "teardown", "--project", PROJECT, "--student", "alice", "--execute",
                            cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "workshop-allow-8000-alice-bob" not in result.stdout
    assert [key.split("/")[-1] for key in emulator.cloud.firewalls] == ["workshop-allow-8000-alice-bob"]


@pytest.mark.parametrize("target", ["vm", "cloud-run"])
def test_an_api_key_with_a_comma_is_refused_before_anything_is_created(
    tmp_path: Path, world: GcloudWorld, emulator: Emulator, target: str
) -> None:
    """--metadata and --set-env-vars are gcloud dict arguments: a comma would cut the key in two."""
    result = world.workshop("gcp", "deploy", "--target", target, "--project", PROJECT, "--student", "ada",
                            "--api-key", "abc,def", "--execute", cwd=tmp_path)
    assert result.returncode == 1
    assert "API key" in result.stderr and "," in result.stderr
    assert emulator.log == []


def test_a_project_without_its_default_compute_service_account_stops_before_the_vm(
    tmp_path: Path, world: GcloudWorld, emulator: Emulator
) -> None:
    """Without the default service account, gcloud creates the VM without scopes: it could never pull its image."""
    emulator.cloud.project.default_service_account = False
    result = world.workshop(*DEPLOY, "--student", "ada", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "default compute service account" in result.stderr
    assert emulator.cloud.instances == {}
    assert "compute.instances.insert" not in [emulator.cloud.route_name(request) for request in emulator.log]
