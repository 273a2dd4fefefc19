"""The cloud step on Cloud Run (``workshop gcp deploy|teardown --target cloud-run``), offline: the plan as printed,
its scaling and cost flags, the names a class shares a project with. The deployment itself, its re-runs, the
teacher's access and the teardown run the REAL gcloud against the loopback emulator of Google's APIs:
tests/test_deploy_real_gcloud.py. That the back-end image (the VM's too) starts and answers /ready is tested with the
real image in tests/test_containers.py; `gcloud run services proxy` needs Google's servers and is not run here.
"""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest

from gcloud_emulator import GcloudWorld
from workshop.deploy.gcp import (
    CLOUD_RUN_APIS,
    DeployConfig,
    cloud_run_deploy_steps,
    cloud_run_fingerprint,
    cloud_run_teardown_steps,
    proxy_command,
)
from workshop.deploy.runner import deploy_cloud_run, print_plan, teardown
from workshop.settings import get_settings

PROJECT = "my-workshop-project"

# `workshop gcp deploy --target cloud-run --project my-workshop-project --student ada --api-key KEY123`, as
# printed (WORK: the work directory it runs in; the fingerprint is that of these settings and key).
FINGERPRINT = "1cfce0d833ff"
EXPECTED_PLAN = """\
# Student 'ada': your Cloud Run service is workshop-backend-ada, your image backend-ada.
# Cost guard: at most 3 instances (--max-instances), none when idle (--min-instances 0: nothing billed then; \
the first request after a pause waits for a cold start).
# Scaling: Cloud Run adds instances when, over about a minute, the running ones use more than 60 % of their CPU \
or near 32 requests at once each (--concurrency, the server's own queue: WORKSHOP_MAX_PENDING_PREDICTIONS); it \
never sends one instance more.
# API key: in {WORK}/api-key (read it with: cat {WORK}/api-key)
# Before: gcloud auth login --no-launch-browser, then gcloud config set project my-workshop-project (workshop \
gcp preflight checks both).
# Dry run: the 9 commands below are what --execute runs.
# Pasted into a terminal (bash), from any directory, they deploy into a project where none of it exists yet; \
--execute first checks each step, so it can run again (already there, a new image, a changed IP).
# 1/9 Enable the APIs
gcloud services enable artifactregistry.googleapis.com run.googleapis.com \\
    --project=my-workshop-project
# 2/9 Create the Artifact Registry repository
gcloud artifacts repositories create workshop \\
    --repository-format=docker \\
    --location=europe-west1 \\
    --project=my-workshop-project \\
    --description='deploy-ml-workshop images' \\
    --labels=app=deploy-ml-workshop
# 3/9 Let docker log in to that registry
gcloud auth configure-docker europe-west1-docker.pkg.dev --quiet
# 4/9 Tag the back-end image
docker tag deploy-ml-workshop/backend:latest europe-west1-docker.pkg.dev/my-workshop-project/workshop/backend-ada:latest
# 5/9 Push the back-end image
docker push europe-west1-docker.pkg.dev/my-workshop-project/workshop/backend-ada:latest
# 6/9 Read the pushed image's digest
IMAGE_DIGEST=$(gcloud artifacts docker images describe \
europe-west1-docker.pkg.dev/my-workshop-project/workshop/backend-ada:latest \\
    --format='value(image_summary.digest)')
# 7/9 Read the API key (kept out of the printed plan)
API_KEY=$(cat {WORK}/api-key)
# 8/9 Deploy the Cloud Run service (a new revision when the image or a setting changed)
gcloud run deploy workshop-backend-ada \\
    --region=europe-west1 \\
    --project=my-workshop-project \\
    --image=europe-west1-docker.pkg.dev/my-workshop-project/workshop/backend-ada@${IMAGE_DIGEST} \\
    --port=8000 \\
    --cpu=2 \\
    --memory=2Gi \\
    --concurrency=32 \\
    --min-instances=0 \\
    --max-instances=3 \\
    --startup-probe=httpGet.path=/ready,httpGet.port=8000,periodSeconds=5,timeoutSeconds=3,failureThreshold=24 \\
    --no-allow-unauthenticated \\
    --labels=app=deploy-ml-workshop,student=ada,workshop-config=1cfce0d833ff \\
    --set-env-vars=WORKSHOP_API_KEY=${API_KEY}
# 9/9 Read the service's URL (it answers only to callers IAM lets in)
SERVICE_URL=$(gcloud run services describe workshop-backend-ada \\
    --region=europe-west1 \\
    --project=my-workshop-project \\
    --format='value(status.url)')
# The service has no public door: Google checks each caller's identity (IAM) before a request reaches it.
# Reach it through gcloud, which signs your requests (leave it running): gcloud run services proxy \
workshop-backend-ada --region=europe-west1 --project=my-workshop-project --port=8080
# then, in another terminal: curl http://localhost:8080/health
# and with the key: curl -H "X-API-Key: $(cat {WORK}/api-key)" http://localhost:8080/models
# Point the front-end at it: WORKSHOP_API_KEY=$(cat {WORK}/api-key) workshop ui --backend-url http://localhost:8080
"""


@pytest.fixture(autouse=True)
def default_queue(monkeypatch: pytest.MonkeyPatch):
    """The server's default queue, whatever the environment says; settings read afresh in each test."""
    monkeypatch.delenv("WORKSHOP_MAX_PENDING_PREDICTIONS", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def offline_gcloud(tmp_path: Path) -> GcloudWorld:
    """The real gcloud, logged out, with its configuration in tmp_path and no server behind its proxy."""
    return GcloudWorld(tmp_path / "world", None, account=None)


def config(tmp_path: Path, **overrides) -> DeployConfig:
    values = {"project": PROJECT, "api_key": "KEY123", "student": "ada", "work_dir": tmp_path / "wd"}
    return DeployConfig(**{**values, **overrides})


def cli(world: GcloudWorld, tmp_path: Path, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess:
    world.env.pop("WORKSHOP_MAX_PENDING_PREDICTIONS", None)  # the server's default queue, unless a test sets it
    return world.workshop("gcp", *args, "--target", "cloud-run", "--project", PROJECT, cwd=tmp_path,
                          extra=env or {}, timeout=60)


# ---------------------------------------------------------------- the plan
def test_cli_dry_run_prints_the_whole_plan_exactly_and_runs_nothing(tmp_path: Path,
                                                                     offline_gcloud: GcloudWorld) -> None:
    result = cli(offline_gcloud, tmp_path, "deploy", "--student", "ada", "--api-key", "KEY123")
    assert result.returncode == 0, result.stderr
    printed = result.stdout.replace(str(tmp_path / ".workshop-deploy"), "{WORK}")
    print(printed)  # the plan, as a student sees it (pytest -s)
    assert printed == EXPECTED_PLAN
    assert (tmp_path / ".workshop-deploy" / "api-key").read_text().strip() == "KEY123"
    assert FINGERPRINT == cloud_run_fingerprint(config(tmp_path))


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


def test_the_printed_scaling_note_says_what_cloud_run_does(tmp_path: Path) -> None:
    """Cloud Run scales on CPU (a 60 % target) and concurrency, over a minute: not "one instance per 32"."""
    out = io.StringIO()
    deploy_cloud_run(config(tmp_path), out=out)
    note = next(line for line in out.getvalue().splitlines() if line.startswith("# Scaling:"))
    assert "60 % of their CPU" in note and "32 requests at once" in note and "over about a minute" in note
    assert "start another instance" not in out.getvalue()


def test_concurrency_is_read_from_the_servers_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       offline_gcloud: GcloudWorld) -> None:
    monkeypatch.setenv("WORKSHOP_MAX_PENDING_PREDICTIONS", "7")
    get_settings.cache_clear()
    assert config(tmp_path).concurrency == 7
    result = cli(offline_gcloud, tmp_path, "deploy", "--student", "ada",
                 env={"WORKSHOP_MAX_PENDING_PREDICTIONS": "5"})
    assert result.returncode == 0, result.stderr
    assert "    --concurrency=5 \\\n" in result.stdout and "near 5 requests at once" in result.stdout


def test_cost_guard_flag_reaches_the_plan_and_is_bounded(tmp_path: Path, offline_gcloud: GcloudWorld) -> None:
    result = cli(offline_gcloud, tmp_path, "deploy", "--student", "ada", "--max-instances", "2")
    assert result.returncode == 0 and "    --max-instances=2 \\\n" in result.stdout
    assert "at most 2 instances" in result.stdout
    for wrong in ("0", "500"):
        refused = cli(offline_gcloud, tmp_path, "deploy", "--student", "ada", "--max-instances", wrong)
        assert refused.returncode == 1 and "give a number from 1 to 100" in refused.stderr
        assert "Traceback" not in refused.stderr


def test_the_teachers_account_is_granted_the_invoker_role_after_the_deploy(tmp_path: Path) -> None:
    steps = cloud_run_deploy_steps(config(tmp_path, teacher_account="teacher@example.com"))
    titles = [step.title.en for step in steps]
    assert titles.index("Let the teacher call the service") == titles.index(
        "Deploy the Cloud Run service (a new revision when the image or a setting changed)") + 1
    grant = steps[titles.index("Let the teacher call the service")]
    assert "--member=user:teacher@example.com" in grant.command and "--role=roles/run.invoker" in grant.command
    assert grant.done is not None and grant.done.expect == "roles/run.invoker\tuser:teacher@example.com"
    assert "Let the teacher call the service" not in [step.title.en for step in cloud_run_deploy_steps(
        config(tmp_path))]
    with pytest.raises(ValueError, match="not a Google account"):
        config(tmp_path, teacher_account="teacher")


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


def test_teardown_dry_run_prints_the_deletion_and_the_checks(tmp_path: Path) -> None:
    out = io.StringIO()
    assert teardown(config(tmp_path), delete_image=True, out=out, target="cloud-run") == []
    text = out.getvalue()
    assert text.startswith("# Dry run: the 2 commands below are what --execute runs, then these checks")
    assert "gcloud run services delete workshop-backend-ada \\\n    --region=europe-west1" in text
    assert "gcloud run services describe workshop-backend-ada \\\n" in text
    assert "--format='value(metadata.name)'" in text and "--filter" not in text  # exact names, no filters


def test_teardown_dry_run_of_one_deletion_says_the_command(tmp_path: Path) -> None:
    out = io.StringIO()
    teardown(config(tmp_path), out=out, target="cloud-run")
    assert out.getvalue().startswith("# Dry run: the command below is what --execute runs, then these checks")


def test_printed_plan_is_the_one_print_plan_gives(tmp_path: Path) -> None:
    out = io.StringIO()
    deploy_cloud_run(config(tmp_path), out=out)
    reference = io.StringIO()
    print_plan(cloud_run_deploy_steps(config(tmp_path)), reference)
    assert reference.getvalue() in out.getvalue()
