"""The requests a scenario made, reduced to what matters, compared with a golden file.

One line per request: the method, the API, the path (and the list filter, when there is one); under it, the
fields of the body that say what the request does (the VM's ``scheduling.maxRunDuration``, the firewall's
``sourceRanges``, the IAM bindings, the service's ``containerConcurrency``...), one ``field = value`` a line.
Long-running operations' polls and OAuth refreshes are left out: how often gcloud polls is its business.

To write the golden files again after a deliberate change: ``WORKSHOP_UPDATE_GOLDEN=1 pytest ...``; then read
the diff, as a reviewer would.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import os
from pathlib import Path

from .cloud import Cloud
from .proxy import Request

GOLDEN_DIR = Path(__file__).parent / "golden"

#: Per route: the body fields that matter (shell-style patterns over the flattened ``a.b[0].c`` names).
FIELDS = {
    "services.batchEnable": ["serviceIds*"],
    "projects.setIamPolicy": ["policy.bindings*", "policy.etag"],
    "artifactregistry.repositories.create": ["format", "description", "labels.*"],
    "artifactregistry.repositories.setIamPolicy": ["policy.bindings*", "policy.etag"],
    "compute.instances.insert": [
        "name", "machineType", "labels.*", "tags.items*", "metadata.items*", "scheduling.maxRunDuration.seconds",
        "scheduling.instanceTerminationAction", "networkInterfaces[0].accessConfigs[0].type",
        "serviceAccounts[0].email", "disks[0].initializeParams.*",
    ],
    "compute.instances.setMetadata": ["items*"],
    "compute.firewalls.insert": ["name", "direction", "allowed*", "sourceRanges*", "targetTags*"],
    "compute.firewalls.patch": ["sourceRanges*"],
    "run.services.create": [
        "metadata.name", "metadata.labels.*", "spec.template.metadata.annotations.autoscaling.knative.dev/*",
        "spec.template.spec.containerConcurrency", "spec.template.spec.containers[0].image",
        "spec.template.spec.containers[0].ports*", "spec.template.spec.containers[0].resources.limits.*",
        "spec.template.spec.containers[0].env*", "spec.template.spec.containers[0].startupProbe.*",
    ],
    "run.services.setIamPolicy": ["policy.bindings*"],
}
FIELDS["run.services.replace"] = FIELDS["run.services.create"]
#: Requests left out of the golden logs.
SKIPPED = {"compute.operations.get", "compute.operations.wait", "operations.get", "artifactregistry.operations.get",
           "oauth2.token"}


def _flatten(value: object, prefix: str = "") -> list[tuple[str, object]]:
    if isinstance(value, dict):
        return [item for key in sorted(value) for item in _flatten(value[key], f"{prefix}.{key}" if prefix else key)]
    if isinstance(value, list):
        return [item for index, each in enumerate(value) for item in _flatten(each, f"{prefix}[{index}]")]
    return [(prefix, value)]


def _shown(name: str, value: object) -> str:
    if name.endswith(".value") and isinstance(value, str) and "\n" in value:
        return f"<{len(value.splitlines())} lines>"  # the start-up script: its text is tested elsewhere
    if name.startswith("labels.client.knative.dev") or "nonce" in name:
        return "<random>"
    text = json.dumps(value) if not isinstance(value, str) else value
    return text.replace("http://compute.googleapis.com/", "")


def render(requests: list[Request], cloud: Cloud) -> str:
    """The log as golden text."""
    lines = []
    for request in requests:
        route = cloud.route_name(request) or "?"
        if route in SKIPPED:
            continue
        line = f"{request.method} {request.service} {request.path}"
        if "filter" in request.query:
            line += f"  filter: {request.query['filter']}"
        lines.append(f"{line}  -> {request.status}")
        patterns = FIELDS.get(route, [])
        for name, value in _flatten(request.body or {}):
            if any(fnmatch.fnmatchcase(name, pattern.replace("[", "[[]")) for pattern in patterns):
                lines.append(f"    {name} = {_shown(name, value)}")
    return "\n".join(lines) + "\n"


def compare(scenario: str, requests: list[Request], cloud: Cloud) -> None:
    """Assert that the scenario's requests are the golden file's; write it when WORKSHOP_UPDATE_GOLDEN is set."""
    text = render(requests, cloud)
    path = GOLDEN_DIR / f"{scenario}.txt"
    if os.environ.get("WORKSHOP_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if not path.exists():
        raise AssertionError(f"No golden file {path}: run with WORKSHOP_UPDATE_GOLDEN=1, then read what it wrote.")
    expected = path.read_text()
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), f"golden/{path.name}",
                                            "this run"))
        raise AssertionError(f"The requests differ from {path} (WORKSHOP_UPDATE_GOLDEN=1 writes them):\n{diff}")


def count(scenario: str) -> int:
    """How many requests the golden file of ``scenario`` holds."""
    return sum(1 for line in (GOLDEN_DIR / f"{scenario}.txt").read_text().splitlines() if not line.startswith(" "))
