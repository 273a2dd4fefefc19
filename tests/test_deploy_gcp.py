"""The cloud step. Google Cloud itself cannot exist here: tests that need it use a FAKE gcloud
(and a fake docker for the push), a script on PATH that records every call. The VM's start-up
script, though, runs for real against the local Docker engine."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from workshop.deploy.gcp import DeployConfig, deploy_steps, resolve_access, startup_script_text, teardown_steps
from workshop.deploy.runner import StepFailed, deploy, print_plan, teardown, wait_for_health
from workshop.services import BackgroundService, free_port, wait_for_http

PROJECT = "my-workshop-project"

EXPECTED_DRY_RUN = [
    "gcloud --version",
    "gcloud auth list --filter=status:ACTIVE '--format=value(account)'",
    "gcloud projects describe my-workshop-project '--format=value(projectId)'",
    "gcloud services enable artifactregistry.googleapis.com compute.googleapis.com --project=my-workshop-project",
    "gcloud artifacts repositories describe workshop --location=europe-west1 --project=my-workshop-project "
    ">/dev/null 2>&1 || gcloud artifacts repositories create workshop --repository-format=docker "
    "--location=europe-west1 '--description=deploy-ml-workshop images' --labels=app=deploy-ml-workshop "
    "--project=my-workshop-project",
    "gcloud auth configure-docker europe-west1-docker.pkg.dev --quiet",
    "docker tag deploy-ml-workshop/backend:latest europe-west1-docker.pkg.dev/my-workshop-project/workshop/backend:latest",
    "docker push europe-west1-docker.pkg.dev/my-workshop-project/workshop/backend:latest",
    "gcloud compute instances describe workshop-backend --zone=europe-west1-b --project=my-workshop-project "
    ">/dev/null 2>&1 || gcloud compute instances create workshop-backend --project=my-workshop-project "
    "--zone=europe-west1-b --machine-type=e2-medium --image-family=cos-stable --image-project=cos-cloud "
    "--boot-disk-size=20GB --tags=workshop-backend --labels=app=deploy-ml-workshop "
    "--metadata=image=europe-west1-docker.pkg.dev/my-workshop-project/workshop/backend:latest,api-key=KEY123,"
    "port=8000,google-logging-enabled=true --metadata-from-file=startup-script=.workshop-deploy/startup.sh",
    "gcloud compute firewall-rules describe workshop-allow-8000 --project=my-workshop-project >/dev/null 2>&1 || "
    "gcloud compute firewall-rules create workshop-allow-8000 --project=my-workshop-project --network=default "
    "--direction=INGRESS --action=ALLOW --rules=tcp:8000 --target-tags=workshop-backend "
    "--source-ranges=203.0.113.7/32",
    "gcloud compute instances describe workshop-backend --zone=europe-west1-b --project=my-workshop-project "
    "'--format=get(networkInterfaces[0].accessConfigs[0].natIP)'",
]

# A fake gcloud/docker: appends its arguments (JSON) to $FAKE_CALLS, then answers per $FAKE_SCENARIO.
FAKE_TOOL = """#!{python}
import json, os, sys
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
with open(os.environ["FAKE_CALLS"], "a") as log:
    log.write(json.dumps([name, *args]) + "\\n")
scenario = os.environ.get("FAKE_SCENARIO", "fresh")
line = " ".join(args)
if name == "gcloud":
    if args[:2] == ["auth", "list"]:
        print("" if scenario == "logged-out" else "student@example.com")
    elif "describe" in args and "--format=get(networkInterfaces[0].accessConfigs[0].natIP)" in args:
        print("127.0.0.1")
    elif "describe" in args and args[0] in ("artifacts", "compute"):
        sys.exit(0 if scenario == "exists" else 1)  # 1: not found yet
    elif args[:2] == ["services", "enable"] and scenario == "no-billing":
        print("ERROR: (gcloud.services.enable) FAILED_PRECONDITION: Billing account for project is not found.")
        sys.exit(1)
    elif args[:1] == ["projects"]:
        print(args[2])
"""


def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str = "fresh") -> Path:
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    for name in ("gcloud", "docker"):
        tool = bin_dir / name
        tool.write_text(FAKE_TOOL.format(python=sys.executable))
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CALLS", str(calls))
    monkeypatch.setenv("FAKE_SCENARIO", scenario)
    return calls


def recorded(calls: Path) -> list[list[str]]:
    return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []


def config(tmp_path: Path, **overrides) -> DeployConfig:
    values = {"project": PROJECT, "api_key": "KEY123", "source_range": "203.0.113.7/32",
              "startup_script": Path(".workshop-deploy/startup.sh")}
    return DeployConfig(**{**values, **overrides})


# ---------------------------------------------------------------- dry run
def test_dry_run_prints_the_exact_command_list(tmp_path: Path) -> None:
    out = io.StringIO()
    print_plan(deploy_steps(config(tmp_path)), out)
    commands = [line for line in out.getvalue().splitlines() if not line.startswith("#")]
    assert commands == EXPECTED_DRY_RUN


def test_cli_dry_run_runs_nothing_and_writes_the_startup_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workshop", "gcp", "deploy", "--project", PROJECT, "--api-key", "KEY123",
         "--source-range", "203.0.113.7/32"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    printed = [line for line in result.stdout.splitlines() if line.startswith(("gcloud", "docker"))]
    assert printed == EXPECTED_DRY_RUN  # and no gcloud was needed to print them
    assert (tmp_path / ".workshop-deploy" / "startup.sh").read_text() == startup_script_text()


def test_no_create_with_container_and_no_container_registry() -> None:
    text = "\n".join(step.shell() for step in deploy_steps(DeployConfig(project=PROJECT, api_key="k", source_range="1.2.3.4/32")))
    assert "create-with-container" not in text and "gcr.io" not in text
    assert "cos-stable" in text and "-docker.pkg.dev/" in text


def test_teardown_plan(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    basic = [s.shell() for s in teardown_steps(cfg)]
    assert basic == [
        "gcloud compute instances delete workshop-backend --zone=europe-west1-b --project=my-workshop-project --quiet",
        "gcloud compute firewall-rules delete workshop-allow-8000 --project=my-workshop-project --quiet",
    ]
    full = [s.title for s in teardown_steps(cfg, delete_image=True, delete_repository=True)]
    assert full[-2:] == ["Delete the image", "Delete the repository"]


def test_project_id_is_validated() -> None:
    with pytest.raises(ValueError, match="not a Google Cloud project id"):
        DeployConfig(project="My Project")


def test_access_defaults_offline_open_to_all_with_a_generated_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import workshop.deploy.gcp as gcp

    monkeypatch.setattr(gcp, "public_ip", lambda timeout=3.0: None)  # no way to learn our IP offline
    cfg = DeployConfig(project=PROJECT)
    notes = resolve_access(cfg)
    assert cfg.source_range == "0.0.0.0/0" and len(cfg.api_key) == 32
    assert any(cfg.api_key in note and "shown once" in note for note in notes)
    assert any("whole internet" in note for note in notes)
    other = DeployConfig(project=PROJECT)
    resolve_access(other)
    assert other.api_key != cfg.api_key


def test_access_defaults_to_the_callers_ip_when_known(monkeypatch: pytest.MonkeyPatch) -> None:
    import workshop.deploy.gcp as gcp

    monkeypatch.setattr(gcp, "public_ip", lambda timeout=3.0: "198.51.100.4")
    cfg = DeployConfig(project=PROJECT, api_key="given")
    notes = resolve_access(cfg)
    assert cfg.source_range == "198.51.100.4/32" and cfg.api_key == "given"
    assert not any("API key" in note for note in notes)


# ------------------------------------------------------ execute, with a fake
def test_execute_with_fake_gcloud_runs_every_step_in_order_then_waits_for_health(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, live_server: BackgroundService
) -> None:
    calls = fake_tools(tmp_path, monkeypatch)
    port = int(live_server.url.rsplit(":", 1)[1])  # the fake VM's IP is 127.0.0.1: the live server answers
    out = io.StringIO()
    result = deploy(config(tmp_path, port=port, startup_script=tmp_path / "startup.sh"), execute_steps=True, out=out)
    assert result is not None and result.url == f"http://127.0.0.1:{port}" and result.api_key == "KEY123"
    assert [call[:4] for call in recorded(calls)] == [
        ["gcloud", "--version"],
        ["gcloud", "auth", "list", "--filter=status:ACTIVE"],
        ["gcloud", "projects", "describe", PROJECT],
        ["gcloud", "services", "enable", "artifactregistry.googleapis.com"],
        ["gcloud", "artifacts", "repositories", "describe"],  # the existence check: not found...
        ["gcloud", "artifacts", "repositories", "create"],  # ...so it is created
        ["gcloud", "auth", "configure-docker", "europe-west1-docker.pkg.dev"],
        ["docker", "tag", "deploy-ml-workshop/backend:latest", "europe-west1-docker.pkg.dev/my-workshop-project/workshop/backend:latest"],
        ["docker", "push", "europe-west1-docker.pkg.dev/my-workshop-project/workshop/backend:latest"],
        ["gcloud", "compute", "instances", "describe"],
        ["gcloud", "compute", "instances", "create"],
        ["gcloud", "compute", "firewall-rules", "describe"],
        ["gcloud", "compute", "firewall-rules", "create"],
        ["gcloud", "compute", "instances", "describe"],  # the external IP
    ]
    text = out.getvalue()
    for index in range(1, 13):
        assert f"[{index}/12]" in text  # a progress line per step, the health wait last
    assert f"The back-end answers at http://127.0.0.1:{port}" in text


def test_execute_with_fake_gcloud_skips_what_already_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, live_server: BackgroundService) -> None:
    calls = fake_tools(tmp_path, monkeypatch, scenario="exists")
    port = int(live_server.url.rsplit(":", 1)[1])
    out = io.StringIO()
    deploy(config(tmp_path, port=port, startup_script=tmp_path / "startup.sh"), execute_steps=True, out=out)
    assert not any("create" in call for call in recorded(calls))
    assert out.getvalue().count("already done") == 3


def test_execute_with_fake_gcloud_stops_at_the_first_failure_with_a_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_tools(tmp_path, monkeypatch, scenario="no-billing")
    with pytest.raises(StepFailed) as caught:
        deploy(config(tmp_path, startup_script=tmp_path / "startup.sh"), execute_steps=True, out=io.StringIO())
    message = str(caught.value)
    assert "4/12 'Enable the APIs' failed" in message and "Billing is not enabled" in message
    assert recorded(calls)[-1][:3] == ["gcloud", "services", "enable"]  # nothing ran after it


def test_execute_with_fake_gcloud_logged_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tools(tmp_path, monkeypatch, scenario="logged-out")
    with pytest.raises(StepFailed, match="gcloud auth login"):
        deploy(config(tmp_path, startup_script=tmp_path / "startup.sh"), execute_steps=True, out=io.StringIO())


def test_execute_without_gcloud_says_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    with pytest.raises(StepFailed, match="'gcloud' is not installed"):
        deploy(config(tmp_path, startup_script=tmp_path / "startup.sh"), execute_steps=True, out=io.StringIO())


def test_cli_execute_failure_exits_1_with_the_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tools(tmp_path, monkeypatch, scenario="no-billing")
    result = subprocess.run(
        [sys.executable, "-m", "workshop", "gcp", "deploy", "--project", PROJECT, "--api-key", "k",
         "--source-range", "1.2.3.4/32", "--execute"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1 and "Billing is not enabled" in result.stderr
    assert "[4/12] Enable the APIs" in result.stdout


def test_teardown_with_fake_gcloud_lists_what_is_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_tools(tmp_path, monkeypatch)
    out = io.StringIO()
    teardown(config(tmp_path), execute_steps=True, delete_image=True, delete_repository=True, out=out)
    made = [call[1:4] for call in recorded(calls)]
    assert made[:4] == [
        ["compute", "instances", "delete"], ["compute", "firewall-rules", "delete"],
        ["artifacts", "docker", "images"], ["artifacts", "repositories", "delete"],
    ]
    assert ["compute", "disks", "list"] in made and "may still cost money" in out.getvalue()


def test_wait_for_health_times_out_with_advice() -> None:
    dead = f"http://127.0.0.1:{free_port()}/health"
    with pytest.raises(StepFailed, match="serial output"):
        wait_for_health(dead, timeout=1, interval=0.2, out=io.StringIO())


# ------------------------------------------ the start-up script, for real
@pytest.mark.docker
@pytest.mark.slow
def test_startup_script_starts_the_container_on_a_real_engine(backend_image: str, tmp_path: Path) -> None:
    script = tmp_path / "startup.sh"
    script.write_text(startup_script_text())
    port, name = free_port(), f"workshop-startup-test-{os.getpid()}"
    env = {**os.environ, "IMAGE": backend_image, "API_KEY": "vm-key", "PORT": str(port), "CONTAINER_NAME": name,
           "SKIP_REGISTRY": "1", "SKIP_HOST_FIREWALL": "1"}
    try:
        for _ in range(2):  # it runs at every boot: a second run replaces the container
            result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            assert f"container {name} is running" in result.stdout
        wait_for_http(f"http://127.0.0.1:{port}/health", timeout=120)
        assert requests.get(f"http://127.0.0.1:{port}/models", timeout=10).status_code == 401
        assert requests.get(f"http://127.0.0.1:{port}/models", headers={"X-API-Key": "vm-key"}, timeout=10).status_code == 200
        inspect = json.loads(subprocess.run(["docker", "inspect", name], capture_output=True, text=True, check=True).stdout)
        assert inspect[0]["HostConfig"]["RestartPolicy"]["Name"] == "always"
        listed = subprocess.run(["docker", "ps", "-aq", "--filter", f"name=^{name}$"], capture_output=True, text=True)
        assert len(listed.stdout.split()) == 1
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def test_startup_script_without_image_fails_clearly(tmp_path: Path) -> None:
    script = tmp_path / "startup.sh"
    script.write_text(startup_script_text())
    # No metadata server here, no IMAGE given: nothing to run, and it says so.
    env = {"PATH": "/usr/bin:/bin", "SKIP_REGISTRY": "1", "SKIP_HOST_FIREWALL": "1"}
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no image in the metadata" in result.stderr
