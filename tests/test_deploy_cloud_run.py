"""The cloud step on Cloud Run (``workshop gcp deploy|teardown --target cloud-run``).

Google Cloud cannot exist here: these tests use the FAKE gcloud and docker of tests/fake_gcloud.py (shared with
the VM's tests), which keep a project's state (repositories, images, Cloud Run services and their revisions),
record every call and fail with gcloud's own messages. What the fake stands in for: Artifact Registry and the
Cloud Run Admin API; that the lean image starts and answers /ready is tested with the real image elsewhere.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from workshop.deploy.gcp import (
    CLOUD_RUN_APIS,
    DeployConfig,
    cloud_run_deploy_steps,
    cloud_run_fingerprint,
    cloud_run_teardown_steps,
    proxy_command,
)
from workshop.deploy.runner import StepFailed, deploy_cloud_run, print_plan, teardown
from workshop.settings import get_settings

from fake_gcloud import PROJECT, PROJECT_NUMBER, FakeProject  # tests/ is on sys.path under pytest

IMAGE = "europe-west1-docker.pkg.dev/my-workshop-project/workshop/backend-ada"
SERVICE = "workshop-backend-ada --region=europe-west1 --project=my-workshop-project"
WORK = "/work/.workshop-deploy"

# `workshop gcp deploy --target cloud-run --project my-workshop-project --student ada --api-key KEY123`, as
# printed (the work directory is the one it runs in; the fingerprint is that of these settings and key).
FINGERPRINT = "1cfce0d833ff"
EXPECTED_PLAN = f"""\
# Student 'ada': your Cloud Run service is workshop-backend-ada, your image backend-ada.
# Cost guard: at most 3 instances (--max-instances), none when idle (--min-instances 0: nothing billed then; \
the first request after a pause waits for a cold start).
# Each instance takes 32 requests at once, the server's own queue (WORKSHOP_MAX_PENDING_PREDICTIONS); more \
requests start another instance.
# API key: in {WORK}/api-key (read it with: cat {WORK}/api-key)
# Dry run: the 12 commands below are what --execute runs; pasted into a terminal (bash), they do the same from \
any directory.
# 1/12 Check that gcloud is installed
gcloud --version
# 2/12 Check that you are logged in
gcloud auth list --filter=status:ACTIVE '--format=value(account)'
# 3/12 Check the project and read its number
PROJECT_NUMBER=$(gcloud projects describe my-workshop-project '--format=value(projectNumber)')
# 4/12 Enable the APIs
gcloud services enable artifactregistry.googleapis.com run.googleapis.com --project=my-workshop-project
# 5/12 Create the Artifact Registry repository
gcloud artifacts repositories describe workshop --location=europe-west1 --project=my-workshop-project \
>/dev/null 2>&1 || gcloud artifacts repositories create workshop --repository-format=docker \
--location=europe-west1 '--description=deploy-ml-workshop images' --labels=app=deploy-ml-workshop \
--project=my-workshop-project
# 6/12 Let docker log in to that registry
gcloud auth configure-docker europe-west1-docker.pkg.dev --quiet
# 7/12 Tag the back-end image
docker tag deploy-ml-workshop/backend:lean {IMAGE}:lean
# 8/12 Push the back-end image
docker push {IMAGE}:lean
# 9/12 Read the pushed image's digest
IMAGE_DIGEST=$(gcloud artifacts docker images describe {IMAGE}:lean '--format=value(image_summary.digest)')
# 10/12 Read the API key (kept out of the printed plan)
API_KEY=$(cat {WORK}/api-key)
# 11/12 Deploy the Cloud Run service (a new revision when the image or a setting changed)
gcloud run services describe {SERVICE} \
'--format=csv[no-heading](spec.template.spec.containers[0].image,metadata.labels.workshop-config)' 2>/dev/null \
| grep -qxF "{IMAGE}@${{IMAGE_DIGEST}},{FINGERPRINT}" || gcloud run deploy {SERVICE} \
"--image={IMAGE}@${{IMAGE_DIGEST}}" --port=8000 --cpu=2 --memory=2Gi --concurrency=32 --min-instances=0 \
--max-instances=3 \
--startup-probe=httpGet.path=/ready,httpGet.port=8000,periodSeconds=5,timeoutSeconds=3,failureThreshold=24 \
--no-allow-unauthenticated --labels=app=deploy-ml-workshop,student=ada,workshop-config={FINGERPRINT} \
"--set-env-vars=WORKSHOP_API_KEY=${{API_KEY}}"
# 12/12 Read the service's URL (it answers only to callers IAM lets in)
SERVICE_URL=$(gcloud run services describe {SERVICE} '--format=value(status.url)')
# The service has no public door: Google checks each caller's identity (IAM) before a request reaches it.
# Reach it through gcloud, which signs your requests (leave it running): gcloud run services proxy {SERVICE} \
--port=8080
# then, in another terminal: curl http://localhost:8080/health
# and with the key: curl -H "X-API-Key: $(cat {WORK}/api-key)" http://localhost:8080/models
# Point the front-end at it: WORKSHOP_API_KEY=$(cat {WORK}/api-key) workshop ui --backend-url http://localhost:8080
"""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeProject:
    return FakeProject(tmp_path, monkeypatch)


@pytest.fixture(autouse=True)
def default_queue(monkeypatch: pytest.MonkeyPatch):
    """The server's default queue, whatever the environment says; settings read afresh in each test."""
    monkeypatch.delenv("WORKSHOP_MAX_PENDING_PREDICTIONS", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def config(tmp_path: Path, **overrides) -> DeployConfig:
    values = {"project": PROJECT, "api_key": "KEY123", "student": "ada", "work_dir": tmp_path / "wd",
              "local_image": "deploy-ml-workshop/backend:lean", "tag": "lean"}
    return DeployConfig(**{**values, **overrides})


def cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "WORKSHOP_MAX_PENDING_PREDICTIONS"}
    return subprocess.run(
        [sys.executable, "-m", "workshop", "gcp", *args, "--target", "cloud-run", "--project", PROJECT],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**environment, **(env or {})},
    )


def deployed(fake: FakeProject, name: str = "workshop-backend-ada") -> dict:
    return fake.state["services"][name]


# ---------------------------------------------------------------- the plan
def test_cli_dry_run_prints_the_whole_plan_exactly_and_runs_nothing(tmp_path: Path) -> None:
    result = cli(tmp_path, "deploy", "--student", "ada", "--api-key", "KEY123", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    printed = result.stdout.replace(str(tmp_path / ".workshop-deploy"), WORK)
    print(printed)  # the plan, as a student sees it (pytest -s)
    assert printed == EXPECTED_PLAN  # and no gcloud was needed to print it
    assert (tmp_path / ".workshop-deploy" / "api-key").read_text().strip() == "KEY123"
    assert FINGERPRINT == cloud_run_fingerprint(config(tmp_path))


def test_printed_plan_runs_as_pasted_and_deploys_the_lean_image_by_digest(tmp_path: Path, fake: FakeProject) -> None:
    elsewhere = tmp_path / "notebooks"
    elsewhere.mkdir()
    out = io.StringIO()
    deploy_cloud_run(config(tmp_path), out=out)
    plan = out.getvalue()
    result = subprocess.run(["bash", "-c", plan], cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    service = deployed(fake)
    assert service["image"] == f"{IMAGE}@{fake.state['images'][IMAGE]['lean']}"
    assert service["env"] == {"WORKSHOP_API_KEY": "KEY123"} and "KEY123" not in plan
    assert service["revisions"] == 1 and service["public"] is False


def test_the_service_scales_from_zero_to_a_cap_with_the_servers_queue_and_a_start_up_probe(tmp_path: Path) -> None:
    steps = cloud_run_deploy_steps(config(tmp_path))
    deploy_step = next(step for step in steps if step.command[1:3] == ("run", "deploy"))
    flags = dict(arg[2:].split("=", 1) for arg in deploy_step.command if arg.startswith("--") and "=" in arg)
    assert flags["min-instances"] == "0" and flags["max-instances"] == "3"
    assert flags["concurrency"] == str(get_settings().max_pending_predictions) == "32"
    assert flags["startup-probe"].startswith("httpGet.path=/ready,httpGet.port=8000,")
    probe = dict(item.split("=") for item in flags["startup-probe"].split(","))
    assert int(probe["periodSeconds"]) * int(probe["failureThreshold"]) <= 600  # Cloud Run's limit
    assert int(probe["timeoutSeconds"]) <= int(probe["periodSeconds"])
    assert "--no-allow-unauthenticated" in deploy_step.command
    plan = "\n".join(step.shell() for step in steps)
    assert "--allow-unauthenticated" not in plan.replace("--no-allow-unauthenticated", "")
    assert "compute" not in plan and "firewall" not in plan and "0.0.0.0/0" not in plan  # no VM, no open port
    assert f"gcloud services enable {' '.join(CLOUD_RUN_APIS)} " in plan and "run.googleapis.com" in CLOUD_RUN_APIS


def test_concurrency_is_read_from_the_servers_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_MAX_PENDING_PREDICTIONS", "7")
    get_settings.cache_clear()
    assert config(tmp_path).concurrency == 7
    result = cli(tmp_path, "deploy", "--student", "ada", env={"PATH": "/usr/bin:/bin",
                                                             "WORKSHOP_MAX_PENDING_PREDICTIONS": "5"})
    assert result.returncode == 0, result.stderr
    assert " --concurrency=5 " in result.stdout and "takes 5 requests at once" in result.stdout


def test_cost_guard_flag_reaches_the_plan_and_is_bounded(tmp_path: Path) -> None:
    result = cli(tmp_path, "deploy", "--student", "ada", "--max-instances", "2", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0 and " --max-instances=2 " in result.stdout and "at most 2 instances" in result.stdout
    for wrong in ("0", "500"):
        refused = cli(tmp_path, "deploy", "--student", "ada", "--max-instances", wrong, env={"PATH": "/usr/bin:/bin"})
        assert refused.returncode == 1 and "give a number from 1 to 100" in refused.stderr
        assert "Traceback" not in refused.stderr


def test_two_students_plans_share_no_service_and_no_image(tmp_path: Path) -> None:
    ada, bob = config(tmp_path, student="ada"), config(tmp_path, student="bob")
    assert {ada.service_name, ada.image_path}.isdisjoint({bob.service_name, bob.image_path})
    for cfg, other in ((ada, bob), (bob, ada)):
        plan = "\n".join(step.shell() for step in
                         [*cloud_run_deploy_steps(cfg), *cloud_run_teardown_steps(cfg, delete_image=True)])
        plan += "\n" + proxy_command(cfg)
        for name in (other.service_name, other.image_path):
            assert not re.search(re.escape(name) + r"(?![-\w])", plan), name
        # Cloud Run service names: lowercase letters, digits and hyphens, a letter first, 49 characters at most.
        assert re.fullmatch(r"[a-z][-a-z0-9]{0,47}[a-z0-9]", cfg.service_name)


# ------------------------------------------------------- execute, with a fake
def test_execute_runs_every_step_in_order_and_says_how_to_reach_the_service(
    tmp_path: Path, fake: FakeProject
) -> None:
    out = io.StringIO()
    result = deploy_cloud_run(config(tmp_path), execute_steps=True, out=out)
    url = f"https://workshop-backend-ada-{PROJECT_NUMBER}.europe-west1.run.app"
    assert result is not None and result.url == url and result.api_key == "KEY123"
    assert result.proxy == f"gcloud run services proxy {SERVICE} --port=8080"
    made = [call[:4] for call in fake.calls()]
    assert made == [
        ["gcloud", "--version"],
        ["gcloud", "auth", "list", "--filter=status:ACTIVE"],
        ["gcloud", "projects", "describe", PROJECT],
        ["gcloud", "services", "enable", "artifactregistry.googleapis.com"],
        ["gcloud", "artifacts", "repositories", "describe"],  # not found...
        ["gcloud", "artifacts", "repositories", "create"],  # ...so created; no IAM step: Cloud Run pulls itself
        ["gcloud", "auth", "configure-docker", "europe-west1-docker.pkg.dev"],
        ["docker", "tag", "deploy-ml-workshop/backend:lean", f"{IMAGE}:lean"],
        ["docker", "push", f"{IMAGE}:lean"],
        ["gcloud", "artifacts", "docker", "images"],  # the digest
        ["gcloud", "run", "services", "describe"],  # no service yet...
        ["gcloud", "run", "deploy", "workshop-backend-ada"],  # ...so deployed
        ["gcloud", "run", "services", "describe"],  # its URL
    ]
    service = deployed(fake)
    assert service["public"] is False and service["min-instances"] == "0" and service["max-instances"] == "3"
    assert service["concurrency"] == "32" and service["port"] == "8000"
    assert service["labels"] == {"app": "deploy-ml-workshop", "student": "ada",
                                 "workshop-config": cloud_run_fingerprint(config(tmp_path))}
    text = out.getvalue()
    for index in range(1, 13):
        assert f"[{index}/12]" in text
    assert f"SERVICE_URL={url}" in text and "KEY123" not in text
    assert f"(leave it running): {result.proxy}" in text and "curl http://localhost:8080/health" in text


def test_rerun_changes_nothing(tmp_path: Path, fake: FakeProject) -> None:
    deploy_cloud_run(config(tmp_path), execute_steps=True, out=io.StringIO())
    fake.forget_calls()
    out = io.StringIO()
    deploy_cloud_run(config(tmp_path), execute_steps=True, out=out)
    assert not [call for call in fake.calls() if call[1:3] == ["run", "deploy"] or "create" in call]
    assert deployed(fake)["revisions"] == 1
    assert out.getvalue().count("already up to date") == 1 and out.getvalue().count("already done") == 1


@pytest.mark.parametrize("change", ["a rebuilt image", "a new API key", "a higher cost cap"])
def test_a_change_makes_one_new_revision(tmp_path: Path, fake: FakeProject, change: str) -> None:
    deploy_cloud_run(config(tmp_path), execute_steps=True, out=io.StringIO())
    first = deployed(fake)
    overrides = {}
    if change == "a rebuilt image":
        fake.set("FAKE_IMAGE_ID", "image-v2")  # same tag, new content: a new digest
    elif change == "a new API key":
        overrides["api_key"] = "NEW-KEY"
    else:
        overrides["max_instances"] = 5
    deploy_cloud_run(config(tmp_path, **overrides), execute_steps=True, out=io.StringIO())
    second = deployed(fake)
    assert second["revisions"] == 2
    assert (second["image"] != first["image"]) == (change == "a rebuilt image")
    assert second["image"] == f"{IMAGE}@{fake.state['images'][IMAGE]['lean']}"
    assert second["env"]["WORKSHOP_API_KEY"] == overrides.get("api_key", "KEY123")
    assert second["max-instances"] == str(overrides.get("max_instances", 3))


FAILURES = [
    # (how gcloud run deploy fails, words of the hint)
    ("run-api-off", "The API named above is not enabled"),
    ("run-permission", "lacks the permission"),
    ("run-actas", "Service Account User role"),
    ("run-quota", "A quota is exhausted"),
    ("run-startup", "The container did not become ready"),
]


@pytest.mark.parametrize(("kind", "words"), FAILURES, ids=[kind for kind, _ in FAILURES])
def test_deploy_stops_at_gclouds_real_failures_with_a_one_sentence_hint(
    tmp_path: Path, fake: FakeProject, kind: str, words: str
) -> None:
    fake.set("FAKE_FAIL", f"run deploy=>{kind}")
    with pytest.raises(StepFailed) as caught:
        deploy_cloud_run(config(tmp_path), execute_steps=True, out=io.StringIO())
    message = str(caught.value)
    assert "'Deploy the Cloud Run service (a new revision when the image or a setting changed)' failed" in message
    advice = message.split("Hint: ", 1)[1]
    assert words in advice and advice.endswith(".") and ". " not in advice.rstrip(".")  # one sentence
    assert fake.calls()[-1][1:3] == ["run", "deploy"]  # nothing ran after it
    assert "services" not in fake.state or not fake.state["services"]


def test_cli_execute_failure_exits_1_with_the_hint(tmp_path: Path, fake: FakeProject) -> None:
    fake.set("FAKE_FAIL", "run deploy=>run-api-off")
    result = cli(tmp_path, "deploy", "--student", "ada", "--api-key", "k", "--execute")
    assert result.returncode == 1 and "The API named above is not enabled" in result.stderr
    assert "[11/12] Deploy the Cloud Run service" in result.stdout


# ----------------------------------------------------------------- teardown
def test_teardown_deletes_the_service_and_the_image_and_lists_nothing_left(tmp_path: Path, fake: FakeProject) -> None:
    deploy_cloud_run(config(tmp_path), execute_steps=True, out=io.StringIO())
    fake.seed(**{**fake.state, "vms": {"workshop-backend-ada": {"metadata": {}}}})  # the VM target's, untouched
    fake.forget_calls()
    out = io.StringIO()
    left = teardown(config(tmp_path), execute_steps=True, delete_image=True, out=out, target="cloud-run")
    made = [call[1:4] for call in fake.calls()]
    assert made[:2] == [["run", "services", "delete"], ["artifacts", "docker", "images"]]
    assert ["run", "services", "list"] in made and not [call for call in made if call[0] == "compute"]
    state = fake.state
    assert left == [] and state["services"] == {} and IMAGE not in state["images"]
    assert "workshop" in state["repos"] and "workshop-backend-ada" in state["vms"]
    text = out.getvalue()
    assert "Cloud Run services: none" in text and "Nothing that you asked to delete is left" in text


PARTIAL_STATES = {
    "nothing was ever deployed": ({}, "", []),
    "the service cannot be deleted (no right)": (
        {"services": {"workshop-backend-ada": {"revisions": 1}}}, "run services delete=>run-permission",
        ["Cloud Run services: workshop-backend-ada"]),
}


@pytest.mark.parametrize("case", PARTIAL_STATES, ids=list(PARTIAL_STATES))
def test_teardown_runs_to_the_end_from_any_partial_state(tmp_path: Path, fake: FakeProject, case: str) -> None:
    seed, failure, expected_left = PARTIAL_STATES[case]
    fake.start_from(seed, failure)
    out = io.StringIO()
    left = teardown(config(tmp_path), execute_steps=True, delete_image=True, out=out, target="cloud-run")
    text = out.getvalue()
    assert left == expected_left
    made = [call[1:4] for call in fake.calls()]
    assert made[:2] == [["run", "services", "delete"], ["artifacts", "docker", "images"]]
    assert ("FAILED, going on" in text) == bool(failure)
    assert text.count("already gone") == (2 if not seed else 1)  # Cloud Run's "could not be found" is gone too
    assert "Images: none" in text and "Repository (shared by the class): none" in text


def test_cli_teardown_exit_code_says_whether_the_service_is_left(tmp_path: Path, fake: FakeProject) -> None:
    fake.seed(services={"workshop-backend-ada": {"revisions": 1}})
    fake.set("FAKE_FAIL", "run services delete=>run-permission")
    stuck = cli(tmp_path, "teardown", "--student", "ada", "--execute")
    assert stuck.returncode == 1 and "Cloud Run services: workshop-backend-ada" in stuck.stdout
    assert "Still there (1)" in stuck.stdout
    fake.set("FAKE_FAIL", "")
    clean = cli(tmp_path, "teardown", "--student", "ada", "--execute")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Cloud Run services: none" in clean.stdout and fake.state["services"] == {}


def test_teardown_dry_run_prints_the_deletion_and_the_checks(tmp_path: Path) -> None:
    result = cli(tmp_path, "teardown", "--student", "ada", "--delete-image", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    commands = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    assert commands == [
        f"gcloud run services delete {SERVICE} --quiet || true",
        f"gcloud artifacts docker images delete {IMAGE} --delete-tags --quiet || true",
        "gcloud run services list --region=europe-west1 --project=my-workshop-project "
        "--filter=metadata.name=workshop-backend-ada '--format=value(metadata.name)' || true",
        f"gcloud artifacts docker images list {IMAGE} '--format=value(version)' || true",
        "gcloud artifacts repositories describe workshop --location=europe-west1 --project=my-workshop-project "
        "'--format=value(name)' || true",
    ]
    assert "# Dry run: the 2 commands below are what --execute runs, then these checks" in result.stdout


def test_teardown_dry_run_of_one_deletion_says_the_command(tmp_path: Path) -> None:
    result = cli(tmp_path, "teardown", "--student", "ada", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# Dry run: the command below is what --execute runs, then these checks")


def test_printed_plan_is_the_one_print_plan_gives(tmp_path: Path) -> None:
    """The dry run and print_plan agree: what the notebook prints is what the CLI prints."""
    cfg = config(tmp_path, work_dir=Path(WORK))
    out = io.StringIO()
    print_plan(cloud_run_deploy_steps(cfg), out)
    commands = [line for line in out.getvalue().splitlines() if not line.startswith("#")]
    expected = [line for line in EXPECTED_PLAN.splitlines() if not line.startswith("#")]
    assert commands == expected
