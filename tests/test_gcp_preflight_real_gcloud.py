"""`workshop gcp preflight`: the student's prerequisites (notebook 06's first cell) and, with --students N, what a
whole class needs, checked with the REAL gcloud against the loopback emulator of Google's APIs (each failing case is
a project state the emulator answers for, as Google would)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcloud_emulator import Emulator, GcloudWorld, Project, golden
from gcloud_emulator.cloud import Policy
from gcloud_emulator.fixtures import LAB_APIS

#: Each test runs the real gcloud, about a second a call.
pytestmark = pytest.mark.slow

PROJECT = "my-workshop-project"
DOCS = Path(__file__).resolve().parents[1] / "docs"


def teacher_notes_sample(language: str) -> str:
    """The preflight's output the teacher notes show (the ```text block after the command)."""
    notes = DOCS / language / ("teacher-notes.md" if language == "en" else "notes-enseignant.md")
    text = notes.read_text(encoding="utf-8").split("workshop gcp preflight --project", 1)[1]
    return text.split("```text\n", 1)[1].split("```", 1)[0]


@pytest.fixture
def emulator_for() -> object:
    running: list[Emulator] = []

    def start(project: Project) -> Emulator:
        running.append(Emulator(project).__enter__())
        return running[-1]

    yield start
    for each in running:
        each.__exit__()
        assert not each.cloud.unserved, each.cloud.unserved


def preflight(tmp_path: Path, emulator: Emulator, account: str | None, *args: str):
    world = GcloudWorld(tmp_path / "world", emulator, account=account, project=PROJECT)
    return world.workshop("gcp", "preflight", *args, cwd=tmp_path)


def test_a_students_prerequisites_pass_in_a_fresh_project_with_billing(tmp_path: Path, emulator_for) -> None:
    emulator = emulator_for(Project())
    result = preflight(tmp_path, emulator, "student@example.com")
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "✓ gcloud logged in: student@example.com",
        "✓ project: my-workshop-project (number 123456789012)",
        "✓ billing: linked",
        "✓ API: artifactregistry.googleapis.com, compute.googleapis.com off, and you may switch them on (the plan's "
        "first step does).",
        "Ready: you may deploy.",
    ]
    golden.compare("preflight-student", emulator.log, emulator.cloud)


def test_a_logged_out_student_is_told_to_log_in_and_nothing_is_asked_of_google(tmp_path: Path, emulator_for) -> None:
    emulator = emulator_for(Project())
    result = preflight(tmp_path, emulator, None)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == ("✗ gcloud logged in: no active account. Run gcloud auth login "
                                             "--no-launch-browser, then this again.")
    assert result.stdout.splitlines()[1] == "· project: not checked."
    assert emulator.log == []


def test_the_teachers_preflight_for_a_class_of_30_passes_in_a_ready_project(tmp_path: Path, emulator_for) -> None:
    project = Project(caller="teacher@example.com", enabled=set(LAB_APIS) | {"cloudresourcemanager.googleapis.com",
                                                                              "serviceusage.googleapis.com",
                                                                              "cloudbilling.googleapis.com"},
                      quotas={"europe-west1": {"CPUS": 72.0, "IN_USE_ADDRESSES": 32.0, "DISKS_TOTAL_GB": 4096.0}})
    emulator = emulator_for(project)
    result = preflight(tmp_path, emulator, "teacher@example.com", "--students", "30")
    print(result.stdout)
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert "✓ quota CPUS: CPUS 72 free of 72, 60 needed" in lines
    assert "✓ quota IN_USE_ADDRESSES: IN_USE_ADDRESSES 32 free of 32, 30 needed" in lines
    assert "✓ default compute service account: 123456789012-compute@developer.gserviceaccount.com" in lines
    assert "✓ your role: roles/owner: you may grant each student roles/editor" in lines
    assert lines[-1] == "Ready for a class of 30."
    golden.compare("preflight-class-ready", emulator.log, emulator.cloud)
    assert result.stdout == teacher_notes_sample("en")  # the teacher notes show what the command prints
    world = GcloudWorld(tmp_path / "world", emulator, account="teacher@example.com", project=PROJECT)
    french = world.workshop("gcp", "preflight", "--students", "30", cwd=tmp_path, extra={"WORKSHOP_LANG": "fr"})
    assert french.returncode == 0 and french.stdout == teacher_notes_sample("fr")


def test_the_teachers_preflight_names_each_thing_to_ask_the_administrator(tmp_path: Path, emulator_for) -> None:
    """Billing off, no right to switch APIs on, and the four organisation policies that break the lab."""
    project = Project(caller="teacher@example.com", billing=False, caller_role=None,
                      policy=Policy({"roles/owner": ["user:admin@example.com"],
                                     "roles/viewer": ["user:teacher@example.com"]}),
                      org_policies={
                          "constraints/compute.vmExternalIpAccess": {"listPolicy": {"allValues": "DENY"}},
                          "constraints/iam.allowedPolicyMemberDomains": {"listPolicy": {"allowedValues": ["C03xyz"]}},
                          "constraints/compute.requireOsLogin": {"booleanPolicy": {"enforced": True}},
                          "constraints/gcp.resourceLocations": {"listPolicy": {"allowedValues": ["in:us-locations"]}},
                      })
    emulator = emulator_for(project)
    result = preflight(tmp_path, emulator, "teacher@example.com", "--students", "30")
    print(result.stdout)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "✗ billing: no billing account linked. Link one in the console (Billing > Account management), or ask the " \
           "project's owner." in lines
    assert any(line.startswith("✗ API: artifactregistry.googleapis.com, compute.googleapis.com off, and your roles "
                               "cannot switch them on. Ask the project's owner to run: gcloud services enable ")
               for line in lines)
    assert any(line.startswith("· default compute service account: not checked") for line in lines)
    assert any(line.startswith("✗ compute.vmExternalIpAccess: VMs may not have an external IP.") for line in lines)
    assert any(line.startswith("! iam.allowedPolicyMemberDomains: IAM accepts only the accounts of C03xyz.")
               for line in lines)
    assert any(line.startswith("! compute.requireOsLogin: OS Login is required.") for line in lines)
    assert any(line.startswith("✗ gcp.resourceLocations: europe-west1 is not among in:us-locations.") for line in lines)
    assert any(line.startswith("✗ your role: roles/viewer: you cannot grant roles.") for line in lines)
    assert lines[-1] == "Not ready: 5 check(s) above to fix, then run this again (2 could not be checked yet)."


def test_the_teachers_preflight_counts_the_quotas_and_the_service_account(tmp_path: Path, emulator_for) -> None:
    project = Project(caller="teacher@example.com", default_service_account=False,
                      enabled=set(LAB_APIS) | {"cloudresourcemanager.googleapis.com", "serviceusage.googleapis.com",
                                               "cloudbilling.googleapis.com"})
    emulator = emulator_for(project)
    emulator.cloud.seed_instance(PROJECT, "europe-west1-b", "someone-elses-vm")
    result = preflight(tmp_path, emulator, "teacher@example.com", "--students", "30")
    print(result.stdout)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "✗ quota CPUS: CPUS 22 free of 24, 60 needed. Ask for 60 in the console (IAM & Admin > Quotas, CPUS in " \
           "europe-west1); approval can take a few days." in lines
    assert any(line.startswith("✗ quota IN_USE_ADDRESSES: IN_USE_ADDRESSES 7 free of 8, 30 needed.") for line in lines)
    assert any(line.startswith("✗ default compute service account: missing") for line in lines)
    assert lines[-1] == "Not ready: 3 check(s) above to fix, then run this again."


def test_the_preflight_speaks_french_in_a_french_notebook(tmp_path: Path, emulator_for) -> None:
    emulator = emulator_for(Project())
    world = GcloudWorld(tmp_path / "world", emulator, account="student@example.com", project=PROJECT)
    result = world.workshop("gcp", "preflight", cwd=tmp_path, extra={"WORKSHOP_LANG": "fr"})
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == "✓ gcloud connecté : student@example.com"
    assert result.stdout.splitlines()[-1] == "Prêt : vous pouvez déployer."
