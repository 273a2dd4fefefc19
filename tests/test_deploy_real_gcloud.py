"""`workshop gcp deploy|teardown --execute` through the REAL gcloud, against the loopback emulator of Google's APIs
(tests/gcloud_emulator/: Google itself cannot be reached here). The only stand-ins are gcloud's login (a stored
credential) and `docker push` (it registers the image's digest in the emulator); the "VM" that answers /health
is a real back-end on this machine, at the external IP the emulator gives every VM (127.0.0.1).

Each scenario's requests are compared with a golden file in tests/gcloud_emulator/golden/ (method, path and the
fields that matter: maxRunDuration, sourceRanges, the IAM member and role, containerConcurrency...).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from gcloud_emulator import Emulator, GcloudWorld, golden
from gcloud_emulator.fixtures import LAB_APIS, emulator, world  # noqa: F401 - pytest fixtures
from workshop.deploy.gcp import DeployConfig, cloud_run_fingerprint, startup_script_text
from workshop.deploy.runner import deploy, deploy_cloud_run, teardown
from workshop.services import BackgroundService
from workshop.settings import get_settings

#: Each test runs the real gcloud, about a second a call.
pytestmark = pytest.mark.slow

PROJECT = "my-workshop-project"
SERVICE_ACCOUNT = "serviceAccount:123456789012-compute@developer.gserviceaccount.com"
IMAGE = f"europe-west1-docker.pkg.dev/{PROJECT}/workshop/backend-ada"
#: The requests that change something in the project.
WRITES = {"compute.instances.insert", "compute.instances.setMetadata", "compute.instances.reset",
          "compute.firewalls.insert", "compute.firewalls.patch", "projects.setIamPolicy",
          "artifactregistry.repositories.create", "artifactregistry.repositories.setIamPolicy",
          "run.services.create", "run.services.replace", "run.services.setIamPolicy"}


@pytest.fixture(autouse=True)
def default_queue(monkeypatch: pytest.MonkeyPatch):
    """The server's default queue (Cloud Run's --concurrency), whatever the environment says."""
    monkeypatch.delenv("WORKSHOP_MAX_PENDING_PREDICTIONS", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def here(world: GcloudWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> GcloudWorld:
    """The real gcloud's world in this process: the runner's gcloud and docker calls go to the emulator."""
    world.patched(monkeypatch)
    monkeypatch.chdir(tmp_path)
    return world


def port_of(server: BackgroundService) -> int:
    return int(server.url.rsplit(":", 1)[1])


def vm_config(tmp_path: Path, port: int, **overrides) -> DeployConfig:
    values = {"project": PROJECT, "api_key": "KEY123", "source_range": "203.0.113.7/32", "student": "ada",
              "work_dir": tmp_path / "wd", "port": port}
    return DeployConfig(**{**values, **overrides})


def routes(emulator: Emulator) -> list[str]:
    return [emulator.cloud.route_name(request) or "?" for request in emulator.log]


def check_golden(scenario: str, emulator: Emulator, port: int | None = None) -> None:
    log = emulator.log
    if port is not None:  # the local back-end's port stands for the VM's 8000
        text_port = str(port)
        log = [type(request)(request.method, request.host, request.path, request.query,
                             _replace(request.body, text_port, "PORT"), request.status) for request in log]
    golden.compare(scenario, log, emulator.cloud)


def _replace(value: object, old: str, new: str) -> object:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_replace(each, old, new) for each in value]
    if isinstance(value, dict):
        return {key: _replace(each, old, new) for key, each in value.items()}
    if value == int(old):
        return new
    return value


# ----------------------------------------------------------------------------------------------- the VM
def test_real_gcloud_vm_first_deploy_then_reruns_nothing_changed_a_new_image_a_new_ip(
    tmp_path: Path, here: GcloudWorld, emulator: Emulator, live_server: BackgroundService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = port_of(live_server)
    cloud = emulator.cloud

    # 1. First deploy, into a project where the lab's APIs are still off.
    out = io.StringIO()
    result = deploy(vm_config(tmp_path, port), execute_steps=True, out=out, timeout=30)
    assert result is not None and result.url == f"http://127.0.0.1:{port}" and result.api_key == "KEY123"
    instance = cloud.instances[f"{PROJECT}/europe-west1-b/workshop-backend-ada"]
    metadata = {item["key"]: item["value"] for item in instance["metadata"]["items"]}
    digest = next(iter(cloud.images[f"projects/{PROJECT}/locations/europe-west1/repositories/workshop/packages/"
                                    "backend-ada"]))
    assert metadata["image"] == f"{IMAGE}@{digest}" and metadata["api-key"] == "KEY123"
    assert metadata["startup-script"] == startup_script_text() and metadata["port"] == str(port)
    assert instance["scheduling"]["maxRunDuration"] == {"seconds": "14400"}
    assert instance["scheduling"]["instanceTerminationAction"] == "DELETE"
    assert instance["serviceAccounts"][0]["scopes"], "the VM has access scopes: it can pull"
    assert cloud.firewalls[f"{PROJECT}/workshop-allow-8000-ada"]["sourceRanges"] == ["203.0.113.7/32"]
    assert SERVICE_ACCOUNT in cloud.project.policy.members("roles/logging.logWriter")
    policy = cloud.repository_policies[f"projects/{PROJECT}/locations/europe-west1/repositories/workshop"]
    assert policy.members("roles/artifactregistry.reader") == [SERVICE_ACCOUNT]
    text = out.getvalue()
    assert "[14/14] Wait until the API answers" in text and "KEY123" not in text
    assert f"The back-end answers at http://127.0.0.1:{port}" in text
    check_golden("vm-first-deploy", emulator, port)

    # 2. The same again, the saved key lost (another codespace): nothing is written, the VM's key is kept.
    emulator.forget()
    (tmp_path / "wd" / "api-key").unlink()
    out = io.StringIO()
    again = deploy(vm_config(tmp_path, port, api_key=None), execute_steps=True, out=out, timeout=30)
    assert again is not None and again.api_key == "KEY123"
    assert not WRITES & set(routes(emulator)), routes(emulator)
    text = out.getvalue()
    assert "its API key is kept" in text
    assert text.count("already exists: nothing to do") == 1  # the repository
    assert text.count("already done: nothing to do") == 2  # the two IAM grants
    assert text.count("already exists, up to date: nothing to do") == 2  # the VM, the firewall rule
    check_golden("vm-redeploy-unchanged", emulator, port)

    # 3. A rebuilt image (same tag, new content): the VM gets the new digest, then restarts.
    emulator.forget()
    monkeypatch.setenv("FAKE_IMAGE_ID", "image-v2")
    out = io.StringIO()
    deploy(vm_config(tmp_path, port), execute_steps=True, out=out, timeout=30)
    metadata = {item["key"]: item["value"] for item in instance_items(emulator)}
    assert metadata["image"] != f"{IMAGE}@{digest}" and metadata["image"].startswith(f"{IMAGE}@sha256:")
    assert cloud.resets == ["workshop-backend-ada"]
    assert "already exists, with another image or API key" in out.getvalue()
    assert {"compute.instances.setMetadata", "compute.instances.reset"} == WRITES & set(routes(emulator))
    check_golden("vm-redeploy-new-image", emulator, port)

    # 4. The codespace's IP changed: the firewall rule follows it; the VM does not restart.
    emulator.forget()
    deploy(vm_config(tmp_path, port, source_range="198.51.100.9/32"), execute_steps=True, out=io.StringIO(),
           timeout=30)
    assert cloud.firewalls[f"{PROJECT}/workshop-allow-8000-ada"]["sourceRanges"] == ["198.51.100.9/32"]
    assert WRITES & set(routes(emulator)) == {"compute.firewalls.patch"} and cloud.resets == ["workshop-backend-ada"]
    check_golden("vm-redeploy-new-ip", emulator, port)


def instance_items(emulator: Emulator) -> list[dict]:
    return emulator.cloud.instances[f"{PROJECT}/europe-west1-b/workshop-backend-ada"]["metadata"]["items"]


def printed_steps(plan: str) -> dict[str, str]:
    """A printed plan's commands by title ("# 3/13 Create the Artifact Registry repository" → its command)."""
    steps: dict[str, str] = {}
    title = None
    for line in plan.splitlines():
        if re.match(r"# \d+/\d+ ", line):
            title = line.split(" ", 2)[2]
            steps[title] = ""
        elif line.startswith("#"):
            title = None
        elif title:
            steps[title] += line + "\n"
    return steps


def test_real_gcloud_the_teachers_address_joins_the_firewall_and_the_cli_takes_it_from_the_environment(
    tmp_path: Path, world: GcloudWorld, emulator: Emulator
) -> None:
    """`WORKSHOP_TEACHER_IP` (or --teacher-ip) goes into the rule's source ranges, after the student's own."""
    emulator.cloud.project.enabled |= LAB_APIS
    result = world.workshop("gcp", "deploy", "--project", PROJECT, "--student", "ada", "--api-key", "KEY123",
                            "--source-range", "203.0.113.7/32", cwd=tmp_path,
                            extra={"WORKSHOP_TEACHER_IP": "192.0.2.10"})
    assert result.returncode == 0, result.stderr
    assert "The teacher's address 192.0.2.10/32 is let in too" in result.stdout
    rule = printed_steps(result.stdout)["Open the port to the VM's tag, for your address only"]
    assert "--source-ranges=203.0.113.7/32,192.0.2.10/32" in rule
    created = world.shell(rule)  # the printed command, through the real gcloud
    assert created.returncode == 0, created.stderr
    assert emulator.cloud.firewalls[f"{PROJECT}/workshop-allow-8000-ada"]["sourceRanges"] == [
        "203.0.113.7/32", "192.0.2.10/32"]


def test_real_gcloud_the_printed_plan_runs_as_pasted_from_another_directory(
    tmp_path: Path, here: GcloudWorld, emulator: Emulator, live_server: BackgroundService
) -> None:
    """The dry run printed at the project's root, pasted whole into bash elsewhere, deploys into a fresh project."""
    root, elsewhere = tmp_path / "repo", tmp_path / "repo" / "notebooks"
    elsewhere.mkdir(parents=True)
    out = io.StringIO()
    deploy(vm_config(root, port_of(live_server), work_dir=root / ".workshop-deploy"), out=out)
    plan = out.getvalue()
    assert emulator.log == []  # printing needs no gcloud
    pasted = here.shell("set -e\n" + plan, cwd=elsewhere)
    assert pasted.returncode == 0, pasted.stderr[-3000:]
    instance = emulator.cloud.instances[f"{PROJECT}/europe-west1-b/workshop-backend-ada"]
    metadata = {item["key"]: item["value"] for item in instance["metadata"]["items"]}
    assert metadata["startup-script"] == startup_script_text() and metadata["api-key"] == "KEY123"
    assert "KEY123" not in plan
    assert emulator.cloud.firewalls[f"{PROJECT}/workshop-allow-8000-ada"]["sourceRanges"] == ["203.0.113.7/32"]
    check_golden("vm-printed-plan-pasted", emulator, port_of(live_server))


def test_real_gcloud_a_rule_with_two_addresses_that_a_variable_gives_is_up_to_date(
    tmp_path: Path, here: GcloudWorld, emulator: Emulator
) -> None:
    """The notebook's rule takes ${SOURCE_RANGE}, which may hold the teacher's address too ("a,b"): gcloud reads the
    list back as "a;b", and the runner must see that as the same addresses, not update the rule at every run."""
    from workshop.deploy import notebook_cells
    from workshop.deploy.runner import run_step

    emulator.cloud.project.enabled |= LAB_APIS
    emulator.cloud.seed_firewall(PROJECT, "workshop-allow-8000-ada", ["203.0.113.7/32", "192.0.2.10/32"])
    values = {"PROJECT_ID": PROJECT, "STUDENT": "ada", "PORT": "8000",
              "SOURCE_RANGE": "203.0.113.7/32,192.0.2.10/32"}
    out = io.StringIO()
    run_step(notebook_cells.firewall_step(), values, out)
    assert out.getvalue() == "    already exists, up to date: nothing to do\n"
    assert "compute.firewalls.patch" not in routes(emulator)


# ----------------------------------------------------------------------------------------------- teardown
def _seed_deployment(world: GcloudWorld, emulator: Emulator, *, vm: bool, rule: bool, image: bool) -> None:
    """A project as a deployment left it (written straight into the emulator: the deployment is tested above)."""
    cloud = emulator.cloud
    cloud.project.enabled |= LAB_APIS
    if image:
        cloud.seed_repository(PROJECT, "europe-west1", "workshop")
        cloud.push(f"{IMAGE}:latest", "image-v1")
    if vm:
        cloud.seed_instance(PROJECT, "europe-west1-b", "workshop-backend-ada")
    if rule:
        cloud.seed_firewall(PROJECT, "workshop-allow-8000-ada", ["203.0.113.7/32"])


PARTIAL_STATES = {
    # name: (what exists, permission refused, what is left after the teardown)
    "everything": (dict(vm=True, rule=True, image=True), None, []),
    "nothing-was-ever-created": (dict(vm=False, rule=False, image=False), None, []),
    "only-the-rule-the-vm-deleted-itself": (dict(vm=False, rule=True, image=False), None, []),
    "the-vm-cannot-be-deleted": (dict(vm=True, rule=True, image=True), "compute.instances.delete",
                                 ["VMs: workshop-backend-ada", "Boot disks: workshop-backend-ada"]),
}


@pytest.mark.parametrize("state", PARTIAL_STATES, ids=list(PARTIAL_STATES))
def test_real_gcloud_teardown_runs_to_the_end_from_every_partial_state(
    tmp_path: Path, here: GcloudWorld, emulator: Emulator, state: str
) -> None:
    exists, refused, expected_left = PARTIAL_STATES[state]
    _seed_deployment(here, emulator, **exists)
    if refused:
        emulator.cloud.project.denied.add(refused)
    emulator.forget()
    out = io.StringIO()
    left = teardown(vm_config(tmp_path, 8000), execute_steps=True, delete_image=True, out=out)
    text = out.getvalue()
    assert left == expected_left
    deletions = [route for route in routes(emulator) if route.endswith(".delete")]
    assert deletions[:2] == ["compute.instances.delete", "compute.firewalls.delete"]  # every deletion was tried
    assert emulator.cloud.firewalls == {}  # the rule went even when the VM could not
    gone = sum(1 for kind in ("vm", "rule", "image") if not exists[kind])
    assert text.count("already gone: nothing to do") == gone
    assert ("FAILED, going on" in text) == bool(refused)
    assert "Firewall rules: none" in text and "Repository (shared by the class): " in text
    check_golden(f"vm-teardown-{state}", emulator)


def test_real_gcloud_one_students_teardown_leaves_a_classmates_resources(
    tmp_path: Path, here: GcloudWorld, emulator: Emulator
) -> None:
    """alice and alice-bob share a project: alice's teardown deletes hers, lists only hers, leaves the other's."""
    _seed_deployment(here, emulator, vm=False, rule=False, image=True)
    for student in ("alice", "alice-bob"):
        emulator.cloud.seed_instance(PROJECT, "europe-west1-b", f"workshop-backend-{student}")
        emulator.cloud.seed_firewall(PROJECT, f"workshop-allow-8000-{student}", ["203.0.113.7/32"])
    out = io.StringIO()
    left = teardown(vm_config(tmp_path, 8000, student="alice"), execute_steps=True, out=out)
    assert left == [] and "alice-bob" not in out.getvalue()
    assert [key.rsplit("/", 1)[1] for key in emulator.cloud.instances] == ["workshop-backend-alice-bob"]
    assert [key.rsplit("/", 1)[1] for key in emulator.cloud.firewalls] == ["workshop-allow-8000-alice-bob"]


# ----------------------------------------------------------------------------------------------- Cloud Run
def run_config(tmp_path: Path, **overrides) -> DeployConfig:
    values = {"project": PROJECT, "api_key": "KEY123", "student": "ada", "work_dir": tmp_path / "wd"}
    return DeployConfig(**{**values, **overrides})


def test_real_gcloud_cloud_run_deploy_then_reruns_nothing_changed_a_new_image_a_new_setting_the_teacher(
    tmp_path: Path, here: GcloudWorld, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = emulator.cloud
    out = io.StringIO()
    result = deploy_cloud_run(run_config(tmp_path), execute_steps=True, out=out)
    assert result is not None
    assert result.url == "https://workshop-backend-ada-123456789012.europe-west1.run.app"
    service = cloud.run_services[f"{PROJECT}/europe-west1/workshop-backend-ada"]
    template = service["spec"]["template"]
    container = template["spec"]["containers"][0]
    assert container["image"].startswith(f"{IMAGE}@sha256:")
    assert template["spec"]["containerConcurrency"] == 32
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/maxScale"] == "3"
    assert container["env"] == [{"name": "WORKSHOP_API_KEY", "value": "KEY123"}]
    assert container["startupProbe"]["httpGet"] == {"path": "/ready", "port": 8000}
    assert service["metadata"]["labels"]["workshop-config"] == cloud_run_fingerprint(run_config(tmp_path))
    assert cloud.run_policies[f"{PROJECT}/europe-west1/workshop-backend-ada"].members("roles/run.invoker") == []
    assert "KEY123" not in out.getvalue()
    check_golden("cloud-run-first-deploy", emulator)

    emulator.forget()
    out = io.StringIO()
    deploy_cloud_run(run_config(tmp_path), execute_steps=True, out=out)
    assert not WRITES & set(routes(emulator)) and "already done: nothing to do" in out.getvalue()
    check_golden("cloud-run-redeploy-unchanged", emulator)

    emulator.forget()
    monkeypatch.setenv("FAKE_IMAGE_ID", "image-v2")
    deploy_cloud_run(run_config(tmp_path), execute_steps=True, out=io.StringIO())
    # A new revision; gcloud also rewrites the policy (--no-allow-unauthenticated takes allUsers out, if there).
    assert WRITES & set(routes(emulator)) == {"run.services.replace", "run.services.setIamPolicy"}
    assert cloud.run_services[f"{PROJECT}/europe-west1/workshop-backend-ada"]["metadata"]["generation"] == 2

    emulator.forget()
    deploy_cloud_run(run_config(tmp_path, max_instances=5, teacher_account="teacher@example.com"),
                     execute_steps=True, out=io.StringIO())
    service = cloud.run_services[f"{PROJECT}/europe-west1/workshop-backend-ada"]
    assert service["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/maxScale"] == "5"
    assert cloud.run_policies[f"{PROJECT}/europe-west1/workshop-backend-ada"].members("roles/run.invoker") == [
        "user:teacher@example.com"]
    check_golden("cloud-run-new-setting-and-the-teacher", emulator)


def test_real_gcloud_cloud_run_teardown_deletes_the_service_and_the_image(
    tmp_path: Path, here: GcloudWorld, emulator: Emulator
) -> None:
    _seed_deployment(here, emulator, vm=False, rule=False, image=True)
    emulator.cloud.seed_run_service(PROJECT, "europe-west1", "workshop-backend-ada", f"{IMAGE}@sha256:0")
    emulator.forget()
    out = io.StringIO()
    left = teardown(run_config(tmp_path), execute_steps=True, delete_image=True, target="cloud-run", out=out)
    assert left == [] and emulator.cloud.run_services == {} and emulator.cloud.images == {}
    assert "Cloud Run services: none" in out.getvalue()
    check_golden("cloud-run-teardown", emulator)
    emulator.forget()
    again = teardown(run_config(tmp_path), execute_steps=True, delete_image=True, target="cloud-run",
                     out=io.StringIO())
    assert again == [] and not WRITES & set(routes(emulator))


def test_real_gcloud_a_logged_out_cli_deploy_exits_1_with_the_login_sentence(
    tmp_path: Path, world: GcloudWorld, emulator: Emulator
) -> None:
    world.log_out()
    result = world.workshop("gcp", "deploy", "--target", "cloud-run", "--project", PROJECT, "--student", "ada",
                            "--execute", cwd=tmp_path)
    assert result.returncode == 1 and "gcloud auth login --no-launch-browser" in result.stderr
    assert "✗ gcloud logged in: no active account." in result.stdout
    assert emulator.log == []
