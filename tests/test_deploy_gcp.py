"""The cloud step on a VM. Google Cloud itself cannot exist here: tests that need it use a FAKE gcloud
(and a fake docker for the push), a script on PATH that keeps the project's state in a JSON file
(repositories, images and their digests, IAM bindings, VMs and their metadata, firewall rules),
records every call, and fails the way gcloud does (its error messages' shape) when a test asks; it lives in
tests/fake_gcloud.py, shared with the Cloud Run tests. The VM's start-up script, though, runs for real
against the local Docker engine."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from workshop.containers import REPO_ROOT
from workshop.deploy.gcp import (
    DeployConfig,
    deploy_steps,
    resolve_access,
    sanitise_student,
    startup_script_text,
    student_from_account,
    teardown_steps,
)
from workshop.deploy.runner import StepFailed, deploy, hint, print_plan, teardown, wait_for_health
from workshop.services import BackgroundService, free_port

from fake_gcloud import PROJECT, PROJECT_NUMBER, FakeProject  # tests/ is on sys.path under pytest

SERVICE_ACCOUNT = f"serviceAccount:{PROJECT_NUMBER}-compute@developer.gserviceaccount.com"
KEY_FILE = "/work/.workshop-deploy/api-key"
VM = "--zone=europe-west1-b --project=my-workshop-project"
IMAGE = "europe-west1-docker.pkg.dev/my-workshop-project/workshop/backend"

EXPECTED_DRY_RUN = [
    "gcloud --version",
    "gcloud auth list --filter=status:ACTIVE '--format=value(account)'",
    "PROJECT_NUMBER=$(gcloud projects describe my-workshop-project '--format=value(projectNumber)')",
    "gcloud services enable artifactregistry.googleapis.com compute.googleapis.com --project=my-workshop-project",
    "gcloud artifacts repositories describe workshop --location=europe-west1 --project=my-workshop-project "
    ">/dev/null 2>&1 || gcloud artifacts repositories create workshop --repository-format=docker "
    "--location=europe-west1 '--description=deploy-ml-workshop images' --labels=app=deploy-ml-workshop "
    "--project=my-workshop-project",
    "gcloud artifacts repositories get-iam-policy workshop --location=europe-west1 --project=my-workshop-project "
    "'--flatten=bindings[].members' --filter=bindings.role=roles/artifactregistry.reader "
    "'--format=value(bindings.members)' 2>/dev/null | grep -qxF "
    '"serviceAccount:${PROJECT_NUMBER}-compute@developer.gserviceaccount.com" || '
    "gcloud artifacts repositories add-iam-policy-binding workshop --location=europe-west1 "
    '--project=my-workshop-project "--member=serviceAccount:${PROJECT_NUMBER}-compute@developer.gserviceaccount.com" '
    "--role=roles/artifactregistry.reader --format=none",
    "gcloud projects get-iam-policy my-workshop-project '--flatten=bindings[].members' "
    "--filter=bindings.role=roles/logging.logWriter '--format=value(bindings.members)' 2>/dev/null | grep -qxF "
    '"serviceAccount:${PROJECT_NUMBER}-compute@developer.gserviceaccount.com" || '
    "gcloud projects add-iam-policy-binding my-workshop-project "
    '"--member=serviceAccount:${PROJECT_NUMBER}-compute@developer.gserviceaccount.com" '
    "--role=roles/logging.logWriter --condition=None --format=none",
    "gcloud auth configure-docker europe-west1-docker.pkg.dev --quiet",
    f"docker tag deploy-ml-workshop/backend:latest {IMAGE}:latest",
    f"docker push {IMAGE}:latest",
    f"IMAGE_DIGEST=$(gcloud artifacts docker images describe {IMAGE}:latest '--format=value(image_summary.digest)')",
    f"API_KEY=$(cat {KEY_FILE})",
    f"gcloud compute instances describe workshop-backend {VM} >/dev/null 2>&1 || "
    f"gcloud compute instances create workshop-backend {VM} --machine-type=e2-medium --image-family=cos-stable "
    "--image-project=cos-cloud --boot-disk-size=20GB --tags=workshop-backend --labels=app=deploy-ml-workshop "
    "--max-run-duration=4h --instance-termination-action=DELETE "
    f'"--metadata=image={IMAGE}@${{IMAGE_DIGEST}},api-key=${{API_KEY}},port=8000,google-logging-enabled=true" '
    "--metadata-from-file=startup-script=/work/.workshop-deploy/startup.sh",
    f"gcloud compute instances describe workshop-backend {VM} "
    "'--format=csv[no-heading](metadata.items.image,metadata.items.api-key)' 2>/dev/null | grep -qxF "
    f'"{IMAGE}@${{IMAGE_DIGEST}},${{API_KEY}}" || '
    f"{{ gcloud compute instances add-metadata workshop-backend {VM} "
    f'"--metadata=image={IMAGE}@${{IMAGE_DIGEST}},api-key=${{API_KEY}}" && '
    f"gcloud compute instances reset workshop-backend {VM}; }}",
    "gcloud compute firewall-rules describe workshop-allow-8000 --project=my-workshop-project >/dev/null 2>&1 || "
    "gcloud compute firewall-rules create workshop-allow-8000 --project=my-workshop-project --network=default "
    "--direction=INGRESS --action=ALLOW --rules=tcp:8000 --target-tags=workshop-backend "
    "--source-ranges=203.0.113.7/32",
    "gcloud compute firewall-rules describe workshop-allow-8000 --project=my-workshop-project "
    "'--format=value(sourceRanges)' 2>/dev/null | grep -qxF 203.0.113.7/32 || "
    "gcloud compute firewall-rules update workshop-allow-8000 --project=my-workshop-project "
    "--source-ranges=203.0.113.7/32",
    f"EXTERNAL_IP=$(gcloud compute instances describe workshop-backend {VM} "
    "'--format=get(networkInterfaces[0].accessConfigs[0].natIP)')",
]


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeProject:
    return FakeProject(tmp_path, monkeypatch)


def config(tmp_path: Path, **overrides) -> DeployConfig:
    values = {"project": PROJECT, "api_key": "KEY123", "source_range": "203.0.113.7/32", "work_dir": tmp_path / "wd"}
    return DeployConfig(**{**values, **overrides})


def port_of(server: BackgroundService) -> int:
    return int(server.url.rsplit(":", 1)[1])


# ---------------------------------------------------------------- dry run
def test_dry_run_prints_the_exact_command_list(tmp_path: Path) -> None:
    out = io.StringIO()
    print_plan(deploy_steps(config(tmp_path, work_dir=Path("/work/.workshop-deploy"))), out)
    commands = [line for line in out.getvalue().splitlines() if not line.startswith("#")]
    assert commands == EXPECTED_DRY_RUN


def test_cli_dry_run_runs_nothing_writes_the_script_and_keeps_the_key_out_of_the_plan(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workshop", "gcp", "deploy", "--project", PROJECT, "--source-range", "203.0.113.7/32"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    work = tmp_path / ".workshop-deploy"
    expected = [line.replace("/work/.workshop-deploy", str(work)) for line in EXPECTED_DRY_RUN]
    printed = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    assert printed == expected  # and no gcloud was needed to print them
    assert (work / "startup.sh").read_text() == startup_script_text()
    key = (work / "api-key").read_text().strip()
    assert len(key) == 32 and key not in result.stdout  # the plan reads the key from its file
    assert stat.S_IMODE((work / "api-key").stat().st_mode) == 0o600
    assert "No student name" in result.stdout and "--student NAME" in result.stdout


def test_printed_plan_runs_as_pasted_from_another_directory(
    tmp_path: Path, fake: FakeProject, live_server: BackgroundService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan printed at the repository root, pasted whole into bash in another directory, deploys the same."""
    root, elsewhere = tmp_path / "repo", tmp_path / "repo" / "notebooks"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(root)
    out = io.StringIO()
    deploy(config(root, work_dir=Path(".workshop-deploy"), port=port_of(live_server)), out=out)
    plan = out.getvalue()
    key_file = root / ".workshop-deploy" / "api-key"
    key = key_file.read_text().strip()
    result = subprocess.run(["bash", "-c", plan], cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    vm = fake.state["vms"]["workshop-backend"]
    digest = fake.state["images"][IMAGE]["latest"]
    assert vm["metadata"]["image"] == f"{IMAGE}@{digest}" and digest.startswith("sha256:")
    assert vm["metadata"]["api-key"] == key == "KEY123"
    assert vm["metadata"]["startup-script"] == startup_script_text()  # the absolute path was found from elsewhere
    assert fake.state["rules"]["workshop-allow-8000"]["source-ranges"] == "203.0.113.7/32"
    assert SERVICE_ACCOUNT in fake.state["iam"]["workshop"]["roles/artifactregistry.reader"]
    assert str(key_file) in plan and "KEY123" not in plan


def test_no_create_with_container_and_no_container_registry(tmp_path: Path) -> None:
    text = "\n".join(step.shell() for step in deploy_steps(config(tmp_path)))
    assert "create-with-container" not in text and "gcr.io" not in text
    assert "cos-stable" in text and "-docker.pkg.dev/" in text


def test_the_vm_deletes_itself_after_the_run_duration(tmp_path: Path) -> None:
    create = next(s for s in deploy_steps(config(tmp_path, max_run_duration="90m")) if s.title == "Create the VM")
    assert "--max-run-duration=90m" in create.command and "--instance-termination-action=DELETE" in create.command
    unguarded = next(s for s in deploy_steps(config(tmp_path, max_run_duration="")) if s.title == "Create the VM")
    assert not any(arg.startswith(("--max-run-duration", "--instance-termination")) for arg in unguarded.command)
    with pytest.raises(ValueError, match="not a duration"):
        config(tmp_path, max_run_duration="four hours")


def test_cli_max_run_duration_flag_reaches_the_plan(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workshop", "gcp", "deploy", "--project", PROJECT, "--source-range", "1.2.3.4/32",
         "--student", "ada", "--max-run-duration", "2h"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "--max-run-duration=2h --instance-termination-action=DELETE" in result.stdout
    assert "deletes itself 2h after it starts" in result.stdout


def test_teardown_plan(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    basic = [s.shell() for s in teardown_steps(cfg)]
    assert basic == [
        f"gcloud compute instances delete workshop-backend {VM} --quiet || true",
        "gcloud compute firewall-rules delete workshop-allow-8000 --project=my-workshop-project --quiet || true",
    ]
    full = [s.title for s in teardown_steps(cfg, delete_image=True, delete_repository=True)]
    assert full[-2:] == ["Delete the image", "Delete the repository"]


def test_project_id_is_validated() -> None:
    with pytest.raises(ValueError, match="not a Google Cloud project id"):
        DeployConfig(project="My Project")


def test_access_defaults_offline_open_to_all_with_a_generated_key_saved_for_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workshop.deploy.gcp as gcp

    monkeypatch.setattr(gcp, "public_ip", lambda timeout=3.0: None)  # no way to learn our IP offline
    cfg = DeployConfig(project=PROJECT, work_dir=tmp_path)
    notes = resolve_access(cfg)
    assert cfg.source_range == "0.0.0.0/0" and len(cfg.api_key) == 32
    assert not any(cfg.api_key in note for note in notes)  # shown nowhere: it is in its file
    assert (tmp_path / "api-key").read_text().strip() == cfg.api_key
    assert any("whole internet" in note for note in notes)
    again = DeployConfig(project=PROJECT, work_dir=tmp_path)
    resolve_access(again)
    assert again.api_key == cfg.api_key  # the next plan uses the same key
    elsewhere = DeployConfig(project=PROJECT, work_dir=tmp_path / "other")
    resolve_access(elsewhere)
    assert elsewhere.api_key != cfg.api_key


def test_access_defaults_to_the_callers_ip_when_known(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import workshop.deploy.gcp as gcp

    monkeypatch.setattr(gcp, "public_ip", lambda timeout=3.0: "198.51.100.4")
    cfg = DeployConfig(project=PROJECT, api_key="given", work_dir=tmp_path)
    notes = resolve_access(cfg)
    assert cfg.source_range == "198.51.100.4/32" and cfg.api_key == "given"
    assert not any("Generated" in note for note in notes)
    assert any("a browser elsewhere is refused" in note for note in notes)


# ------------------------------------------------------- a class in one project
GCE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


def names_in(cfg: DeployConfig) -> set[str]:
    return {cfg.vm_name, cfg.firewall_rule, cfg.network_tag, cfg.image_path}


def test_two_students_plans_share_no_vm_rule_tag_or_image(tmp_path: Path) -> None:
    ada, bob = config(tmp_path, student="ada"), config(tmp_path, student="bob")
    assert names_in(ada).isdisjoint(names_in(bob))
    for cfg, other in ((ada, bob), (bob, ada)):
        plan = "\n".join(s.shell() for s in [*deploy_steps(cfg), *teardown_steps(cfg, delete_image=True)])
        for name in names_in(other):
            assert not re.search(re.escape(name) + r"(?![-\w])", plan), name
        for name in (cfg.vm_name, cfg.firewall_rule, cfg.network_tag):
            assert GCE_NAME.fullmatch(name) and len(name) <= 63


def test_student_suffix_from_the_gcloud_account_follows_gcloud_name_rules() -> None:
    accounts = [f"Jean.Dupont{i}@etu.univ-exemple.fr" for i in range(30)]
    accounts += ["jean.dupont@etu.univ-exemple.fr", "jean-dupont@etu.univ-exemple.fr",
                 "a.very.long.first.name.and.surname@example.com", "a.very.long.first.name.and.surnamf@example.com",
                 "42@example.com", "élève.ç@example.com"]
    suffixes = [student_from_account(account) for account in accounts]
    assert len(set(suffixes)) == len(accounts)  # 36 people, 36 suffixes, even when names are cut or look alike
    for suffix in suffixes:
        cfg = DeployConfig(project=PROJECT, student=suffix)
        assert cfg.student == suffix and len(suffix) <= 20
        for name in (cfg.vm_name, cfg.firewall_rule, cfg.network_tag):
            assert GCE_NAME.fullmatch(name), name
    assert sanitise_student("Ada Lovelace!") == "ada-lovelace"
    with pytest.raises(ValueError, match="no usable student name"):
        sanitise_student("!!!")


def test_cli_derives_the_student_from_the_active_account(tmp_path: Path, fake: FakeProject) -> None:
    fake.set("FAKE_ACCOUNT", "Jean.Dupont@etu.univ-exemple.fr")
    result = subprocess.run(
        [sys.executable, "-m", "workshop", "gcp", "deploy", "--project", PROJECT, "--source-range", "1.2.3.4/32"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    suffix = student_from_account("Jean.Dupont@etu.univ-exemple.fr")
    assert result.returncode == 0, result.stderr
    assert suffix.startswith("jean-dupont-") and f"instances create workshop-backend-{suffix} " in result.stdout
    # A dry run reads the account and creates nothing.
    assert [call[:3] for call in fake.calls()] == [["gcloud", "config", "get-value"]]


def test_one_students_teardown_leaves_a_classmates_resources(
    tmp_path: Path, fake: FakeProject, live_server: BackgroundService
) -> None:
    port = port_of(live_server)
    for student in ("ada", "bob"):
        deploy(config(tmp_path, student=student, port=port), execute_steps=True, out=io.StringIO())
    state = fake.state
    assert set(state["vms"]) == {"workshop-backend-ada", "workshop-backend-bob"}
    assert state["vms"]["workshop-backend-ada"]["labels"] == "app=deploy-ml-workshop,student=ada"
    left = teardown(config(tmp_path, student="ada"), execute_steps=True, delete_image=True, out=io.StringIO())
    state = fake.state
    assert left == []
    assert set(state["vms"]) == {"workshop-backend-bob"} and set(state["rules"]) == {"workshop-allow-8000-bob"}
    assert set(state["images"]) == {f"{IMAGE}-bob"} and "workshop" in state["repos"]


# ------------------------------------------------------ execute, with a fake
def test_execute_with_fake_gcloud_runs_every_step_in_order_then_waits_for_health(
    tmp_path: Path, fake: FakeProject, live_server: BackgroundService
) -> None:
    port = port_of(live_server)  # the fake VM's IP is 127.0.0.1: the live server answers
    out = io.StringIO()
    result = deploy(config(tmp_path, port=port), execute_steps=True, out=out)
    assert result is not None and result.url == f"http://127.0.0.1:{port}" and result.api_key == "KEY123"
    made = [call[:4] for call in fake.calls()]
    assert made[made.index(["gcloud", "--version"]):] == [
        ["gcloud", "--version"],
        ["gcloud", "auth", "list", "--filter=status:ACTIVE"],
        ["gcloud", "projects", "describe", PROJECT],
        ["gcloud", "services", "enable", "artifactregistry.googleapis.com"],
        ["gcloud", "compute", "instances", "describe"],  # is there a VM with a key already? no
        ["gcloud", "artifacts", "repositories", "describe"],  # the existence check: not found...
        ["gcloud", "artifacts", "repositories", "create"],  # ...so it is created
        ["gcloud", "artifacts", "repositories", "get-iam-policy"],
        ["gcloud", "artifacts", "repositories", "add-iam-policy-binding"],
        ["gcloud", "projects", "get-iam-policy", PROJECT],
        ["gcloud", "projects", "add-iam-policy-binding", PROJECT],
        ["gcloud", "auth", "configure-docker", "europe-west1-docker.pkg.dev"],
        ["docker", "tag", "deploy-ml-workshop/backend:latest", f"{IMAGE}:latest"],
        ["docker", "push", f"{IMAGE}:latest"],
        ["gcloud", "artifacts", "docker", "images"],  # the digest
        ["gcloud", "compute", "instances", "describe"],
        ["gcloud", "compute", "instances", "create"],
        ["gcloud", "compute", "instances", "describe"],  # metadata up to date: no restart
        ["gcloud", "compute", "firewall-rules", "describe"],
        ["gcloud", "compute", "firewall-rules", "create"],
        ["gcloud", "compute", "firewall-rules", "describe"],  # source range up to date
        ["gcloud", "compute", "instances", "describe"],  # the external IP
    ]
    state = fake.state
    vm = state["vms"]["workshop-backend"]
    assert vm["max-run-duration"] == "4h" and vm["termination"] == "DELETE"
    assert vm["metadata"]["image"] == f"{IMAGE}@{state['images'][IMAGE]['latest']}"
    assert state["iam"]["workshop"]["roles/artifactregistry.reader"] == [SERVICE_ACCOUNT]
    assert state["iam"]["project"]["roles/logging.logWriter"] == [SERVICE_ACCOUNT]
    text = out.getvalue()
    for index in range(1, 19):
        assert f"[{index}/18]" in text  # a progress line per step, the health wait last
    assert "an answer on stderr" in text  # shown to the student, yet the URL holds the IP alone
    assert f"The back-end answers at http://127.0.0.1:{port}" in text and "KEY123" not in text


def test_rerun_keeps_the_vms_key_and_changes_nothing(
    tmp_path: Path, fake: FakeProject, live_server: BackgroundService
) -> None:
    port = port_of(live_server)
    first = deploy(config(tmp_path, api_key=None, port=port), execute_steps=True, out=io.StringIO())
    (tmp_path / "wd" / "api-key").unlink()  # even with the saved key lost (another codespace)
    fake.forget_calls()
    out = io.StringIO()
    second = deploy(config(tmp_path, api_key=None, port=port), execute_steps=True, out=out)
    assert first is not None and second is not None and second.api_key == first.api_key
    assert fake.state["vms"]["workshop-backend"]["metadata"]["api-key"] == first.api_key
    assert requests.get(f"{second.url}/health", timeout=5).status_code == 200
    changes = {"create", "add-metadata", "reset", "update", "add-iam-policy-binding"}
    assert not [call for call in fake.calls() if changes & set(call)]
    text = out.getvalue()
    assert "its API key is kept" in text
    assert text.count("already done") == 3 and text.count("already up to date") == 4  # IAM x2, metadata, rule


def test_rerun_with_a_new_key_updates_the_vm_and_restarts_it(
    tmp_path: Path, fake: FakeProject, live_server: BackgroundService
) -> None:
    port = port_of(live_server)
    deploy(config(tmp_path, api_key="OLD-KEY", port=port), execute_steps=True, out=io.StringIO())
    out = io.StringIO()
    result = deploy(config(tmp_path, api_key="NEW-KEY", port=port), execute_steps=True, out=out)
    assert result is not None and result.api_key == "NEW-KEY"
    state = fake.state
    assert state["vms"]["workshop-backend"]["metadata"]["api-key"] == "NEW-KEY"
    assert state["resets"] == ["workshop-backend"]
    assert (tmp_path / "wd" / "api-key").read_text().strip() == "NEW-KEY"
    assert "metadata will be updated" in out.getvalue()


def test_rerun_with_a_new_image_pins_its_digest_and_restarts_the_vm(
    tmp_path: Path, fake: FakeProject, live_server: BackgroundService
) -> None:
    port = port_of(live_server)
    deploy(config(tmp_path, port=port), execute_steps=True, out=io.StringIO())
    old = fake.state["vms"]["workshop-backend"]["metadata"]["image"]
    fake.set("FAKE_IMAGE_ID", "image-v2")  # the student rebuilt the image: same tag, new content
    deploy(config(tmp_path, port=port), execute_steps=True, out=io.StringIO())
    state = fake.state
    new = state["vms"]["workshop-backend"]["metadata"]["image"]
    assert new != old and new == f"{IMAGE}@{state['images'][IMAGE]['latest']}"
    assert state["resets"] == ["workshop-backend"]  # the start-up script reads the metadata at boot
    assert state["vms"]["workshop-backend"]["metadata"]["api-key"] == "KEY123"


def test_firewall_rule_follows_a_changed_public_ip(
    tmp_path: Path, fake: FakeProject, live_server: BackgroundService
) -> None:
    port = port_of(live_server)
    deploy(config(tmp_path, port=port), execute_steps=True, out=io.StringIO())
    fake.forget_calls()
    deploy(config(tmp_path, port=port, source_range="198.51.100.9/32"), execute_steps=True, out=io.StringIO())
    assert fake.state["rules"]["workshop-allow-8000"]["source-ranges"] == "198.51.100.9/32"
    assert [call[1:4] for call in fake.calls() if "update" in call] == [["compute", "firewall-rules", "update"]]
    assert fake.state["resets"] == []  # the VM itself did not change
    two = "198.51.100.9/32,203.0.113.7/32"  # the codespace and a laptop
    deploy(config(tmp_path, port=port, source_range=two), execute_steps=True, out=io.StringIO())
    fake.forget_calls()
    deploy(config(tmp_path, port=port, source_range=two), execute_steps=True, out=io.StringIO())
    assert fake.state["rules"]["workshop-allow-8000"]["source-ranges"] == two
    assert not [call for call in fake.calls() if "update" in call]  # up to date: gcloud lists them with ";"


def test_iam_already_granted_by_the_teacher_needs_no_iam_right(
    tmp_path: Path, fake: FakeProject, live_server: BackgroundService
) -> None:
    fake.seed(repos={"workshop": "app=deploy-ml-workshop"}, iam={
        "workshop": {"roles/artifactregistry.reader": [SERVICE_ACCOUNT]},
        "project": {"roles/logging.logWriter": ["user:teacher@example.com", SERVICE_ACCOUNT]},
    })
    fake.set("FAKE_FAIL", "artifacts repositories add-iam-policy-binding=>iam-permission;"
                          "projects add-iam-policy-binding=>iam-permission")
    result = deploy(config(tmp_path, port=port_of(live_server)), execute_steps=True, out=io.StringIO())
    assert result is not None


FAILURES = [
    # (what fails, how, the step it stops at, words of the hint)
    ("services enable", "billing", "Enable the APIs", "Billing is not enabled"),
    ("projects add-iam-policy-binding", "iam-permission", "Let the VM's service account write logs",
     "lacks the permission"),
    ("compute instances create", "permission", "Create the VM", "lacks the permission"),
    ("compute instances create", "org-policy", "Create the VM",
     "organisation policy (constraints/compute.vmExternalIpAccess)"),
    ("compute instances create", "quota", "Create the VM", "A quota is exhausted"),
    ("artifacts docker images describe", "not-found-ar", "Read the pushed image's digest", "does not exist (yet)"),
]


@pytest.mark.parametrize(("fails", "kind", "title", "words"), FAILURES, ids=[f[1] + ":" + f[0] for f in FAILURES])
def test_execute_stops_at_gclouds_real_failures_with_a_one_sentence_hint(
    tmp_path: Path, fake: FakeProject, fails: str, kind: str, title: str, words: str
) -> None:
    fake.set("FAKE_FAIL", f"{fails}=>{kind}")
    with pytest.raises(StepFailed) as caught:
        deploy(config(tmp_path), execute_steps=True, out=io.StringIO())
    message = str(caught.value)
    assert f"'{title}' failed" in message
    advice = message.split("Hint: ", 1)[1]
    assert words in advice and advice.endswith(".") and ". " not in advice.rstrip(".")  # one sentence
    last = [call for call in fake.calls() if call[0] in ("gcloud", "docker")][-1]
    assert " ".join(last[1:]).startswith(fails)  # nothing ran after it


def test_every_hint_is_one_sentence() -> None:
    from workshop.deploy.runner import HINTS

    for needle, advice in HINTS:
        text = hint(needle + " constraints/x.y")
        assert text.endswith(".") and ". " not in text.rstrip("."), text


def test_execute_with_fake_gcloud_logged_out(tmp_path: Path, fake: FakeProject) -> None:
    fake.set("FAKE_ACCOUNT", "")
    with pytest.raises(StepFailed, match="gcloud auth login"):
        deploy(config(tmp_path), execute_steps=True, out=io.StringIO())


def test_execute_without_gcloud_says_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    with pytest.raises(StepFailed, match="'gcloud' is not installed"):
        deploy(config(tmp_path), execute_steps=True, out=io.StringIO())


def test_cli_execute_failure_exits_1_with_the_hint(tmp_path: Path, fake: FakeProject) -> None:
    fake.set("FAKE_FAIL", "services enable=>billing")
    result = subprocess.run(
        [sys.executable, "-m", "workshop", "gcp", "deploy", "--project", PROJECT, "--api-key", "k",
         "--source-range", "1.2.3.4/32", "--student", "ada", "--execute"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1 and "Billing is not enabled" in result.stderr
    assert "[4/18] Enable the APIs" in result.stdout


# ----------------------------------------------------------------- teardown
def test_teardown_with_fake_gcloud_deletes_all_and_lists_nothing_left(
    tmp_path: Path, fake: FakeProject, live_server: BackgroundService
) -> None:
    deploy(config(tmp_path, port=port_of(live_server)), execute_steps=True, out=io.StringIO())
    fake.forget_calls()
    out = io.StringIO()
    left = teardown(config(tmp_path), execute_steps=True, delete_image=True, delete_repository=True, out=out)
    made = [call[1:4] for call in fake.calls()]
    assert made[:4] == [
        ["compute", "instances", "delete"], ["compute", "firewall-rules", "delete"],
        ["artifacts", "docker", "images"], ["artifacts", "repositories", "delete"],
    ]
    assert ["compute", "disks", "list"] in made and ["compute", "firewall-rules", "list"] in made
    assert left == [] and fake.state["vms"] == {} and fake.state["rules"] == {} and fake.state["repos"] == {}
    assert "Firewall rules: none" in out.getvalue() and "Nothing that you asked to delete is left" in out.getvalue()


PARTIAL_STATES = {
    "nothing was ever created": ({}, "", []),
    "only the firewall rule (the VM deleted itself)": (
        {"rules": {"workshop-allow-8000": {"source-ranges": "1.2.3.4/32"}}}, "", []),
    "a boot disk left behind": ({"disks": {"workshop-backend": True}}, "", ["Boot disks: workshop-backend"]),
    "the VM cannot be deleted (no right)": (
        {"vms": {"workshop-backend": {"metadata": {}}}, "rules": {"workshop-allow-8000": {"source-ranges": "x"}}},
        "compute instances delete=>permission", ["VMs: workshop-backend"]),
}


@pytest.mark.parametrize("case", PARTIAL_STATES, ids=list(PARTIAL_STATES))
def test_teardown_runs_to_the_end_from_any_partial_state(tmp_path: Path, fake: FakeProject, case: str) -> None:
    seed, failure, expected_left = PARTIAL_STATES[case]
    fake.start_from(seed, failure)
    out = io.StringIO()
    left = teardown(config(tmp_path), execute_steps=True, delete_image=True, out=out)
    text = out.getvalue()
    assert left == expected_left
    assert [call[1:4] for call in fake.calls()][:3] == [
        ["compute", "instances", "delete"], ["compute", "firewall-rules", "delete"], ["artifacts", "docker", "images"],
    ]  # every deletion was tried, whatever happened to the one before
    assert fake.state.get("rules", {}) == {}  # the rule went even when the VM could not
    assert ("FAILED, going on" in text) == bool(failure)  # a resource already gone is no failure
    gone = sum(1 for kind in ("vms", "rules", "images") if not seed.get(kind))  # what was not there
    assert text.count("already gone") == gone
    assert "What is left in the project" in text and "Firewall rules: none" in text
    assert "Repository (shared by the class): none" in text


def test_cli_teardown_exit_code_says_whether_anything_is_left(tmp_path: Path, fake: FakeProject) -> None:
    command = [sys.executable, "-m", "workshop", "gcp", "teardown", "--project", PROJECT, "--execute"]
    fake.seed(vms={"workshop-backend": {"metadata": {}}}, disks={"workshop-backend": True})
    fake.set("FAKE_ACCOUNT", "")  # no suffix: the names above
    fake.set("FAKE_FAIL", "compute instances delete=>permission")
    stuck = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert stuck.returncode == 1 and "VMs: workshop-backend" in stuck.stdout and "Still there (2)" in stuck.stdout
    fake.set("FAKE_FAIL", "")
    clean = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "VMs: none" in clean.stdout and fake.state["vms"] == {}


def test_wait_for_health_times_out_with_advice() -> None:
    dead = f"http://127.0.0.1:{free_port()}/health"
    with pytest.raises(StepFailed, match="serial output"):
        wait_for_health(dead, timeout=1, interval=0.2, out=io.StringIO())


# ------------------------------------------------------------ the notebook
@pytest.mark.parametrize("language", ["en", "fr"])
def test_notebook_outputs_hold_no_api_key_and_no_real_project_id(language: str) -> None:
    """Notebook 06 names the project and the key by shell variables: its outputs show neither."""
    path = REPO_ROOT / "notebooks" / "solutions" / language / "06_google_cloud.ipynb"
    notebook = json.loads(path.read_text())
    sources = "".join("".join(cell["source"]) for cell in notebook["cells"])
    outputs = "".join(
        "".join(output.get("text", "")) + json.dumps(output.get("data", {}))
        for cell in notebook["cells"] for output in cell.get("outputs", [])
    )
    assert "PROJECT_ID=$(gcloud config get-value project)" in sources and '"--project=${PROJECT_ID}"' in outputs
    assert set(re.findall(r"--project=([^\s\"']+)", sources + outputs)) == {"${PROJECT_ID}"}
    assert re.findall(r"api-key=([^,\s\"]+)", outputs) and set(re.findall(r"api-key=([^,\s\"]+)", outputs)) == {"${API_KEY}"}
    assert not re.search(r"(?<![\w/-])[A-Za-z0-9_-]{32}(?![\w-])", outputs)  # no generated key, anywhere
