"""The cloud step on a VM, offline: the plan (what `workshop gcp deploy` prints and runs), the names a class
shares a project with, the API key and the firewall's addresses, the hints. Everything that talks to Google's
APIs runs the REAL gcloud against the loopback emulator: tests/test_deploy_real_gcloud.py (scenarios and golden
request logs), tests/test_gcloud_faults_real_cli.py (Google's errors and the hints), and
tests/test_deploy_real_gcloud_defects.py. The VM's start-up script runs for real against the local Docker engine
in tests/test_vm_startup_script.py."""

from __future__ import annotations

import io
import json
import re
import stat
import subprocess
from pathlib import Path

import pytest

from gcloud_emulator import GcloudWorld
from workshop.containers import REPO_ROOT
from workshop.deploy.gcp import (
    DeployConfig,
    check_api_key,
    command_text,
    deploy_steps,
    generate_api_key,
    resolve_access,
    sanitise_student,
    shell_words,
    startup_script_text,
    student_from_account,
    teardown_steps,
)
from workshop.deploy.runner import HINTS, StepFailed, deploy, hint, print_plan, wait_for_health
from workshop.services import free_port

PROJECT = "my-workshop-project"

# `workshop gcp deploy --project my-workshop-project --source-range 203.0.113.7/32 --student ada --api-key KEY123`,
# as printed (WORK: the work directory it runs in).
EXPECTED_PLAN = """\
# Student 'ada': your VM is workshop-backend-ada, your firewall rule workshop-allow-8000-ada, your image backend-ada.
# Cost guard: the VM deletes itself 4h after it starts (--max-run-duration); deploy again for a new one.
# API key: in {WORK}/api-key (read it with: cat {WORK}/api-key)
# Before: gcloud auth login --no-launch-browser, then gcloud config set project my-workshop-project (workshop \
gcp preflight checks both).
# Dry run: the 13 commands below are what --execute runs.
# Pasted into a terminal (bash), from any directory, they deploy into a project where none of it exists yet; \
--execute first checks each step, so it can run again (already there, a new image, a changed IP).
# 1/13 Enable the APIs
gcloud services enable artifactregistry.googleapis.com compute.googleapis.com \\
    --project=my-workshop-project
# 2/13 Read the project's default compute service account (the identity the back-end runs as)
SERVICE_ACCOUNT=$(gcloud compute project-info describe \\
    --project=my-workshop-project \\
    --format='value(defaultServiceAccount)')
# 3/13 Create the Artifact Registry repository
gcloud artifacts repositories create workshop \\
    --repository-format=docker \\
    --location=europe-west1 \\
    --project=my-workshop-project \\
    --description='deploy-ml-workshop images' \\
    --labels=app=deploy-ml-workshop
# 4/13 Let the VM's service account pull from the repository
gcloud artifacts repositories add-iam-policy-binding workshop \\
    --location=europe-west1 \\
    --project=my-workshop-project \\
    --member=serviceAccount:${SERVICE_ACCOUNT} \\
    --role=roles/artifactregistry.reader \\
    --format=none
# 5/13 Let the VM's service account write logs
gcloud projects add-iam-policy-binding my-workshop-project \\
    --member=serviceAccount:${SERVICE_ACCOUNT} \\
    --role=roles/logging.logWriter \\
    --condition=None \\
    --format=none
# 6/13 Let docker log in to that registry
gcloud auth configure-docker europe-west1-docker.pkg.dev --quiet
# 7/13 Tag the back-end image
docker tag deploy-ml-workshop/backend:latest \
europe-west1-docker.pkg.dev/my-workshop-project/workshop/backend-ada:latest
# 8/13 Push the back-end image
docker push europe-west1-docker.pkg.dev/my-workshop-project/workshop/backend-ada:latest
# 9/13 Read the pushed image's digest
IMAGE_DIGEST=$(gcloud artifacts docker images describe \
europe-west1-docker.pkg.dev/my-workshop-project/workshop/backend-ada:latest \\
    --format='value(image_summary.digest)')
# 10/13 Read the API key (kept out of the printed plan)
API_KEY=$(cat {WORK}/api-key)
# 11/13 Create the VM
gcloud compute instances create workshop-backend-ada \\
    --zone=europe-west1-b \\
    --project=my-workshop-project \\
    --machine-type=e2-medium \\
    --image-family=cos-stable \\
    --image-project=cos-cloud \\
    --boot-disk-size=20GB \\
    --tags=workshop-backend-ada \\
    --labels=app=deploy-ml-workshop,student=ada \\
    --max-run-duration=4h \\
    --instance-termination-action=DELETE \\
    \
--metadata=image=europe-west1-docker.pkg.dev/my-workshop-project/workshop/backend-ada@${IMAGE_DIGEST},\
api-key=${API_KEY},port=8000,google-logging-enabled=true \\
    --metadata-from-file=startup-script={WORK}/startup.sh
# 12/13 Open the port to the VM's tag, for your address only
gcloud compute firewall-rules create workshop-allow-8000-ada \\
    --project=my-workshop-project \\
    --network=default \\
    --direction=INGRESS \\
    --action=ALLOW \\
    --rules=tcp:8000 \\
    --target-tags=workshop-backend-ada \\
    --source-ranges=203.0.113.7/32
# 13/13 Read the VM's external IP
EXTERNAL_IP=$(gcloud compute instances describe workshop-backend-ada \\
    --zone=europe-west1-b \\
    --project=my-workshop-project \\
    --format='value(networkInterfaces[0].accessConfigs[0].natIP)')
# then, within a few minutes: curl http://${EXTERNAL_IP}:8000/health
"""


def config(tmp_path: Path, **overrides) -> DeployConfig:
    values = {"project": PROJECT, "api_key": "KEY123", "source_range": "203.0.113.7/32", "work_dir": tmp_path / "wd"}
    return DeployConfig(**{**values, **overrides})


@pytest.fixture
def offline_gcloud(tmp_path: Path) -> GcloudWorld:
    """The real gcloud, logged out, with its configuration in tmp_path and no server behind its proxy."""
    return GcloudWorld(tmp_path / "world", None, account=None)


def cli(world: GcloudWorld, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return world.workshop("gcp", *args, cwd=cwd, timeout=60)


# ---------------------------------------------------------------- the plan
def test_cli_dry_run_prints_the_plan_exactly_runs_nothing_and_keeps_the_key_out(
    tmp_path: Path, offline_gcloud: GcloudWorld
) -> None:
    result = cli(offline_gcloud, tmp_path, "deploy", "--project", PROJECT, "--source-range", "203.0.113.7/32",
                 "--student", "ada", "--api-key", "KEY123")
    assert result.returncode == 0, result.stderr
    work = tmp_path / ".workshop-deploy"
    print(result.stdout)  # the plan, as a student sees it (pytest -s)
    assert result.stdout == EXPECTED_PLAN.replace("{WORK}", str(work))
    assert (work / "startup.sh").read_text() == startup_script_text()
    assert (work / "api-key").read_text().strip() == "KEY123"
    assert stat.S_IMODE((work / "api-key").stat().st_mode) == 0o600


def test_cli_dry_run_without_a_student_or_a_key_generates_one_and_says_there_is_no_suffix(
    tmp_path: Path, offline_gcloud: GcloudWorld
) -> None:
    result = cli(offline_gcloud, tmp_path, "deploy", "--project", PROJECT, "--source-range", "203.0.113.7/32")
    assert result.returncode == 0, result.stderr
    key = (tmp_path / ".workshop-deploy" / "api-key").read_text().strip()
    assert len(key) == 32 and key not in result.stdout
    assert "No student name" in result.stdout and "--student NAME" in result.stdout
    assert "gcloud compute instances create workshop-backend \\\n" in result.stdout


def test_the_printed_plan_is_one_command_a_step_as_a_person_writes_it(tmp_path: Path) -> None:
    out = io.StringIO()
    print_plan(deploy_steps(config(tmp_path, student="ada")), out)
    for line in out.getvalue().splitlines():
        assert not re.search(r"\|\||&&|\bgrep\b|\bsed\b|\bcase\b|\btr\b|\bcut\b|2>/dev/null", line), line
    for step in deploy_steps(config(tmp_path, student="ada")):
        shown = step.shell()
        words = shell_words(shown.split("=$(", 1)[1][:-1] if step.capture else shown)
        assert tuple(words) == step.command  # what is printed is what runs
        if "\n" in shown:
            assert all(line.startswith("    --") for line in shown.splitlines()[1:]), shown


def test_no_create_with_container_and_no_container_registry(tmp_path: Path) -> None:
    text = "\n".join(step.shell() for step in deploy_steps(config(tmp_path)))
    assert "create-with-container" not in text and "gcr.io" not in text
    assert "cos-stable" in text and "-docker.pkg.dev/" in text


def test_the_vm_deletes_itself_after_the_run_duration(tmp_path: Path) -> None:
    create = next(s for s in deploy_steps(config(tmp_path, max_run_duration="90m")) if s.title.en == "Create the VM")
    assert "--max-run-duration=90m" in create.command and "--instance-termination-action=DELETE" in create.command
    unguarded = next(s for s in deploy_steps(config(tmp_path, max_run_duration="")) if s.title.en == "Create the VM")
    assert not any(arg.startswith(("--max-run-duration", "--instance-termination")) for arg in unguarded.command)
    with pytest.raises(ValueError, match="not a duration"):
        config(tmp_path, max_run_duration="four hours")


def test_cli_max_run_duration_flag_reaches_the_plan(tmp_path: Path, offline_gcloud: GcloudWorld) -> None:
    result = cli(offline_gcloud, tmp_path, "deploy", "--project", PROJECT, "--source-range", "1.2.3.4/32",
                 "--student", "ada", "--max-run-duration", "2h")
    assert result.returncode == 0, result.stderr
    assert "    --max-run-duration=2h \\\n    --instance-termination-action=DELETE" in result.stdout
    assert "deletes itself 2h after it starts" in result.stdout


def test_teardown_plan(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    basic = [s.command for s in teardown_steps(cfg)]
    assert basic == [
        ("gcloud", "compute", "instances", "delete", "workshop-backend", "--zone=europe-west1-b",
         f"--project={PROJECT}", "--quiet"),
        ("gcloud", "compute", "firewall-rules", "delete", "workshop-allow-8000", f"--project={PROJECT}", "--quiet"),
    ]
    assert all(step.missing_ok for step in teardown_steps(cfg))
    full = [s.title.en for s in teardown_steps(cfg, delete_image=True, delete_repository=True)]
    assert full[-2:] == ["Delete the image", "Delete the repository"]


def test_project_id_is_validated() -> None:
    with pytest.raises(ValueError, match="not a Google Cloud project id"):
        DeployConfig(project="My Project")


def test_command_text_quotes_only_what_the_shell_needs() -> None:
    assert command_text(("gcloud", "x", "--format=value(name)", "--quiet")) == "gcloud x --format='value(name)' --quiet"
    assert command_text(("docker", "tag", "a:b", "c/${X}:d")) == "docker tag a:b c/${X}:d"
    assert command_text(("echo", "--description=two words")) == "echo --description='two words'"
    assert command_text(("echo", "--x=${A} b")) == 'echo --x="${A} b"'


# ----------------------------------------------------------- the key and the firewall's addresses
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


def test_access_defaults_to_the_callers_ip_and_adds_the_teachers(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import workshop.deploy.gcp as gcp

    monkeypatch.setattr(gcp, "public_ip", lambda timeout=3.0: "198.51.100.4")
    cfg = DeployConfig(project=PROJECT, api_key="given", work_dir=tmp_path, teacher_ip="192.0.2.10")
    notes = resolve_access(cfg)
    assert cfg.source_range == "198.51.100.4/32" and cfg.api_key == "given"
    assert cfg.source_ranges == "198.51.100.4/32,192.0.2.10/32"
    rule = next(step for step in deploy_steps(cfg) if step.command[2:4] == ("firewall-rules", "create"))
    assert "--source-ranges=198.51.100.4/32,192.0.2.10/32" in rule.command
    assert rule.update is not None and rule.update.want == "198.51.100.4/32,192.0.2.10/32"
    assert not any("Generated" in note for note in notes)
    assert any("a browser elsewhere is refused" in note for note in notes)
    assert any("192.0.2.10/32 is let in too" in note for note in notes)
    with pytest.raises(ValueError, match="not an IPv4 address"):
        DeployConfig(project=PROJECT, teacher_ip="teacher.example.com")


def test_generated_keys_travel_in_gclouds_lists_and_a_given_key_with_a_comma_is_refused() -> None:
    for _ in range(200):
        assert check_api_key(generate_api_key())  # no comma, no =, nothing gcloud's KEY=VALUE lists would cut
    for bad in ("abc,def", "a=b", "with space", "é", ""):
        with pytest.raises(ValueError, match="letters, digits and - _ . ~"):
            check_api_key(bad)
        with pytest.raises(ValueError):
            DeployConfig(project=PROJECT, api_key=bad or "x,")


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


def test_whoami_without_an_account_says_how_to_log_in(tmp_path: Path, offline_gcloud: GcloudWorld) -> None:
    result = cli(offline_gcloud, tmp_path, "whoami", "--suffix")
    assert result.returncode == 1 and "gcloud auth login --no-launch-browser" in result.stderr
    given = cli(offline_gcloud, tmp_path, "whoami", "--suffix", "--student", "Ada L.")
    assert given.returncode == 0 and given.stdout == "ada-l\n"


# ----------------------------------------------------------------- hints and the wait
def test_every_hint_is_one_sentence_in_both_languages(monkeypatch: pytest.MonkeyPatch) -> None:
    for language in ("en", "fr"):
        monkeypatch.setenv("WORKSHOP_LANG", language)
        for needle, _ in HINTS:
            text = hint(needle + " constraints/x.y")
            assert text.endswith(".") and ". " not in text.rstrip("."), text


def test_execute_without_gcloud_says_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    with pytest.raises(StepFailed, match="gcloud is not installed"):
        deploy(config(tmp_path), execute_steps=True, out=io.StringIO())


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
    sources = "\n".join("".join(cell["source"]) for cell in notebook["cells"])
    outputs = "".join(
        "".join(output.get("text", "")) + json.dumps(output.get("data", {}))
        for cell in notebook["cells"] for output in cell.get("outputs", [])
    )
    assert "PROJECT_ID=$(gcloud config get-value project)" in sources and "--project=${PROJECT_ID}" in outputs
    assert set(re.findall(r"--project=([^\s\"'\\]+)", sources + outputs)) == {"${PROJECT_ID}"}
    keys = set(re.findall(r"api-key=([^,\s\"]+)", outputs))
    assert keys == {"${API_KEY}"}
    assert not re.search(r"(?<![\w/-])[A-Za-z0-9_-]{32}(?![\w-])", outputs)  # no generated key, anywhere
