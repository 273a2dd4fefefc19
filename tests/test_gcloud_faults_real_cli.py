"""Google's refusals, as the REAL gcloud prints them, and the one-sentence hint the runner gives for each.

The loopback emulator (tests/gcloud_emulator/) answers with Google's error bodies (`google.rpc.Status` with its
reason and domain, or Compute Engine's `errors` list, in an operation or not); the real CLI prints them its own
way; the hint is chosen from that printed text. Each case runs the one plan step that meets the refusal.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gcloud_emulator import Emulator, GcloudWorld
from gcloud_emulator.fixtures import LAB_APIS, emulator, world  # noqa: F401 - pytest fixtures
from workshop.deploy.gcp import (
    DeployConfig,
    Step,
    access_steps,
    enable_step,
    push_steps,
    service_account_step,
    startup_script_text,
    teacher_invoker_step,
    vm_step,
)
from workshop.deploy.runner import StepFailed, hint, run_step

#: Each test runs the real gcloud, about a second a call.
pytestmark = pytest.mark.slow

PROJECT = "my-workshop-project"
IMAGE = f"europe-west1-docker.pkg.dev/{PROJECT}/workshop/backend-ada"
VALUES = {"IMAGE_DIGEST": "sha256:" + "0" * 64, "API_KEY": "KEY123",
          "SERVICE_ACCOUNT": "123456789012-compute@developer.gserviceaccount.com"}


def config(tmp_path: Path) -> DeployConfig:
    return DeployConfig(project=PROJECT, student="ada", api_key="KEY123", source_range="203.0.113.7/32",
                        work_dir=tmp_path / "wd", teacher_account="teacher@gmail.com")


@dataclass(frozen=True)
class Fault:
    """A project in a state Google refuses, the step that meets it, what gcloud prints, the hint expected."""

    setup: Callable[[Emulator], None]
    step: Callable[[DeployConfig], Step]
    printed: str  # a piece of gcloud's printed text (Google's own words)
    advice: str  # the start of the hint


def _on(emulator: Emulator) -> None:
    emulator.cloud.project.enabled |= LAB_APIS
    emulator.cloud.seed_repository(PROJECT, "europe-west1", "workshop")


def _cpus_used_up(emulator: Emulator) -> None:
    _on(emulator)
    emulator.cloud.project.quotas["europe-west1"]["CPUS"] = 4.0
    emulator.cloud.seed_instance(PROJECT, "europe-west1-b", "workshop-backend-bob")
    emulator.cloud.seed_instance(PROJECT, "europe-west1-c", "workshop-backend-eve")


def _addresses_used_up(emulator: Emulator) -> None:
    _on(emulator)
    emulator.cloud.project.quotas["europe-west1"]["IN_USE_ADDRESSES"] = 1.0
    emulator.cloud.seed_instance(PROJECT, "europe-west1-b", "workshop-backend-bob")


def _no_external_ip(emulator: Emulator) -> None:
    _on(emulator)
    emulator.cloud.project.org_policies["constraints/compute.vmExternalIpAccess"] = {
        "listPolicy": {"allValues": "DENY"}}


def _member_domains(emulator: Emulator) -> None:
    _on(emulator)
    emulator.cloud.project.member_domains = {"univ-exemple.fr"}
    emulator.cloud.seed_run_service(PROJECT, "europe-west1", "workshop-backend-ada", f"{IMAGE}@sha256:0")


def _no_right_to_create_vms(emulator: Emulator) -> None:
    _on(emulator)
    emulator.cloud.project.denied.add("compute.instances.create")


def _no_right_to_grant(emulator: Emulator) -> None:
    _on(emulator)
    emulator.cloud.project.denied.add("resourcemanager.projects.setIamPolicy")


def _no_billing(emulator: Emulator) -> None:
    emulator.cloud.project.billing = False


def _compute_off(emulator: Emulator) -> None:
    emulator.cloud.project.enabled.discard("compute.googleapis.com")


def _not_pushed(emulator: Emulator) -> None:
    _on(emulator)


FAULTS = {
    "quota-cpus": Fault(_cpus_used_up, vm_step, "Quota 'CPUS' exceeded.  Limit: 4.0 in region europe-west1.",
                        "A quota is exhausted (named above)"),
    "quota-in-use-addresses": Fault(_addresses_used_up, vm_step,
                                    "Quota 'IN_USE_ADDRESSES' exceeded.  Limit: 1.0 in region europe-west1.",
                                    "A quota is exhausted (named above)"),
    "org-policy-external-ip": Fault(_no_external_ip, vm_step, "Constraint constraints/compute.vmExternalIpAccess "
                                    "violated for project 123456789012.",
                                    "An organisation policy (constraints/compute.vmExternalIpAccess) forbids this"),
    "org-policy-member-domains": Fault(_member_domains, teacher_invoker_step, "FAILED_PRECONDITION: One or more users "
                                       "named in the policy do not belong to a permitted customer",
                                       "An organisation policy (constraints/iam.allowedPolicyMemberDomains) lets IAM "
                                       "grant roles only to accounts of your organisation"),
    "permission-denied-compute": Fault(_no_right_to_create_vms, vm_step, "Required 'compute.instances.create' "
                                       "permission for 'projects/my-workshop-project/zones/europe-west1-b/instances/"
                                       "workshop-backend-ada'", "Your account lacks the permission named above"),
    "permission-denied-iam": Fault(_no_right_to_grant, lambda c: access_steps(c)[1],
                                   "Permission 'resourcemanager.projects.setIamPolicy' denied",
                                   "Your account lacks the permission named above"),
    "billing-disabled": Fault(_no_billing, enable_step, "Billing account for project '123456789012' is not found.",
                              "Billing is not enabled on this project"),
    "api-not-enabled": Fault(_compute_off, service_account_step, "Compute Engine API has not been used in project "
                             "123456789012 before or it is disabled.", "The API named above is not enabled"),
    "not-found": Fault(_not_pushed, lambda c: push_steps(c)[-1], "Image not found",
                       "The resource does not exist (yet)"),
}


@pytest.mark.parametrize("case", FAULTS, ids=list(FAULTS))
def test_real_gcloud_prints_googles_refusal_and_the_runner_hints_what_to_do(
    case: str, tmp_path: Path, world: GcloudWorld, emulator: Emulator, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fault = FAULTS[case]
    fault.setup(emulator)
    world.patched(monkeypatch)
    monkeypatch.setenv("WORKSHOP_LANG", "en")
    out = io.StringIO()
    settings = config(tmp_path)
    settings.work_dir.mkdir(parents=True)
    settings.startup_script.write_text(startup_script_text())
    with pytest.raises(StepFailed) as failed:
        run_step(fault.step(settings), dict(VALUES), out)
    printed = out.getvalue()
    assert fault.printed in printed, printed  # Google's words, as the real CLI prints them
    advice = str(failed.value).split("Hint: ", 1)[1]
    assert advice.startswith(fault.advice) and advice == hint(printed)
    assert advice.endswith(".") and ". " not in advice.rstrip(".")  # one sentence
    with capsys.disabled():  # the report of issue 20 lists them: pytest -s shows each case's text and hint
        print(f"\n[{case}] gcloud printed:\n{printed.rstrip()}\n  -> hint: {advice}")


def test_the_hints_speak_french_in_a_french_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_LANG", "fr")
    text = "ERROR: (gcloud.compute.instances.create) Could not fetch resource:\n - Quota 'CPUS' exceeded."
    assert hint(text).startswith("Un quota est épuisé")
