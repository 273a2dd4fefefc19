"""A fake gcloud (and docker) with a Google Cloud project behind it, for the cloud step's tests.

Google Cloud itself cannot exist here. The fake is a script put on PATH that keeps the project's state in a
JSON file (repositories, images and their digests, IAM bindings, VMs and their metadata, firewall rules,
Cloud Run services and their revisions), records every call, and fails the way gcloud does (its error
messages' shape) when a test asks. Shared by tests/test_deploy_gcp.py (the VM) and
tests/test_deploy_cloud_run.py (Cloud Run).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

PROJECT = "my-workshop-project"
PROJECT_NUMBER = "123456789012"

# A fake gcloud/docker with a project behind it. Every call is appended (JSON) to $FAKE_CALLS; the
# project's state lives in $FAKE_STATE; $FAKE_FAIL ("words of the command=>kind;...") makes a command fail
# the way gcloud does; $FAKE_IMAGE_ID stands for the local image's content (its digest once pushed);
# $FAKE_ACCOUNT is the active account ("" logged out); $FAKE_IP the VM's external IP.
# The error messages have gcloud's shape as public reports show it, e.g. the organisation policy refusal in
# googlecodelabs/feedback#695 and "Required 'compute.instances.get' permission for 'projects/…'" in
# DataBiosphere/terra-workspace-manager#848; the billing one is the message `gcloud services enable` prints.
# Cloud Run's: the API switched off (GoogleCloudPlatform/community#1339), a permission refused
# (google-github-actions/deploy-cloudrun#182), actAs refused (googlecodelabs/feedback#751), the regional CPU
# quota (googlecodelabs/feedback#1856); "Cannot find service [x]" (describe) and "Service [x] could not be
# found." (delete) as scripts that handle them quote gcloud.
FAKE_TOOL = r'''#!{python}
import hashlib, json, os, sys
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
with open(os.environ["FAKE_CALLS"], "a") as log:
    log.write(json.dumps([name, *args]) + "\n")
path = os.environ["FAKE_STATE"]
state = json.load(open(path)) if os.path.exists(path) else {{}}
for key in ("repos", "images", "iam", "vms", "disks", "rules", "resets", "tags", "services"):
    state.setdefault(key, [] if key == "resets" else {{}})
flags = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
words = [a for a in args if not a.startswith("-")]
line = " ".join(words)
project = flags.get("project", "my-workshop-project")
account = os.environ.get("FAKE_ACCOUNT", "student@example.com")
where = "gcloud." + ".".join(w for w in words[:4] if not w.startswith(("europe", "workshop", "my-")))
ERRORS = {{
    "not-found": "ERROR: ({{w}}) Could not fetch resource:\n - The resource 'projects/{{p}}/{{r}}' was not found",
    "not-found-ar": "ERROR: ({{w}}) NOT_FOUND: Requested entity was not found.",
    "permission": "ERROR: ({{w}}) Could not fetch resource:\n - Required '{{perm}}' permission for "
                  "'projects/{{p}}/{{r}}'",
    "iam-permission": "ERROR: ({{w}}) [{{a}}] does not have permission to access projects instance "
                      "[{{p}}:setIamPolicy] (or it may not exist): The caller does not have permission",
    "org-policy": "ERROR: ({{w}}) Could not fetch resource:\n - Constraint constraints/compute.vmExternalIpAccess "
                  "violated for project {{p}}. Add instance projects/{{p}}/zones/europe-west1-b/instances/{{r}} to "
                  "the constraint to use external IP with it.",
    "quota": "ERROR: ({{w}}) Could not fetch resource:\n - Quota 'IN_USE_ADDRESSES' exceeded.  Limit: 8.0 in region "
             "europe-west1.",
    "billing": "ERROR: ({{w}}) FAILED_PRECONDITION: Billing account for project '{number}' is not found. Billing "
               "must be enabled for activation of service(s) 'compute.googleapis.com' to proceed.",
    "exists": "ERROR: ({{w}}) Could not fetch resource:\n - The resource 'projects/{{p}}/{{r}}' already exists",
    "run-api-off": "ERROR: ({{w}}) PERMISSION_DENIED: Cloud Run Admin API has not been used in project {number} before "
                   "or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/"
                   "run.googleapis.com/overview?project={number} then retry. If you enabled this API recently, wait a "
                   "few minutes for the action to propagate to our systems and retry.",
    "run-permission": "ERROR: ({{w}}) PERMISSION_DENIED: Permission '{{perm}}' denied on resource "
                      "'namespaces/{{p}}/services/{{r}}' (or resource may not exist).",
    "run-actas": "ERROR: ({{w}}) User [{{a}}] does not have permission to access namespace [{{p}}] (or it may not "
                 "exist): Permission 'iam.serviceaccounts.actAs' denied on service account "
                 "{number}-compute@developer.gserviceaccount.com (or it may not exist).",
    "run-quota": "ERROR: ({{w}}) spec.template.metadata.annotations[autoscaling.knative.dev/maxScale]: Max instances "
                 "must be set to 1 or fewer to set the requested total CPU.\nConsider running your workload in a "
                 "region with greater capacity, or requesting an increase in quota for this region if you are seeing "
                 "sustained usage near this limit, see https://cloud.google.com/run/quotas.\n\nQuota violated:\n"
                 "CpuAllocPerProjectRegion requested: 6000 allowed: 2000",
    "run-startup": "ERROR: ({{w}}) Revision '{{r}}-00001-abc' is not ready and cannot serve traffic. The user-provided "
                   "container failed the configured startup probe checks. Logs URL: https://console.cloud.google.com/"
                   "logs/viewer?project={{p}}",
}}

def save():
    json.dump(state, open(path, "w"))

def fail(kind, resource=""):
    perm = "run.services.create" if words[:2] == ["run", "deploy"] else ".".join(words[:3])
    print(ERRORS[kind].format(w=where, p=project, r=resource, a=account, perm=perm), file=sys.stderr)
    sys.exit(1)

for spec in filter(None, os.environ.get("FAKE_FAIL", "").split(";")):
    prefix, kind = spec.split("=>")
    if line.startswith(prefix) or (name + " " + line).startswith(prefix):
        fail(kind, words[-1] if words else "")

def members(scope, role):
    return state["iam"].setdefault(scope, {{}}).setdefault(role, [])

if name == "docker":
    if words[0] == "tag":
        state["tags"][words[2]] = os.environ.get("FAKE_IMAGE_ID", "image-v1")
    elif words[0] == "push":
        image, tag = words[1].rsplit(":", 1)
        repo = image.split("/")[2]
        if repo not in state["repos"]:
            print(f"name unknown: Repository \"{{repo}}\" not found", file=sys.stderr)
            sys.exit(1)
        digest = "sha256:" + hashlib.sha256(state["tags"][words[1]].encode()).hexdigest()
        state["images"].setdefault(image, {{}})[tag] = digest
        print(f"{{tag}}: digest: {{digest}} size: 1234")
    save()
    sys.exit(0)

if args == ["--version"]:
    print("Google Cloud SDK 550.0.0")
elif words[:2] == ["auth", "list"]:
    print(account)
elif words[:3] == ["config", "get-value", "account"]:
    print(account or "(unset)")
elif words[:2] == ["config", "get-value"]:
    print("(unset)")
elif words[:2] == ["projects", "describe"]:
    print("{number}")
elif words[:2] == ["services", "enable"]:
    print("Operation finished successfully.", file=sys.stderr)
elif words[:2] == ["auth", "configure-docker"]:
    print(f"Adding credentials for: {{words[2]}}", file=sys.stderr)
elif words[:2] == ["projects", "get-iam-policy"]:
    for member in members("project", flags["filter"].split("=", 1)[1]):
        print(member)
elif words[:2] == ["projects", "add-iam-policy-binding"]:
    if flags["member"] not in members("project", flags["role"]):
        members("project", flags["role"]).append(flags["member"])
elif words[:2] == ["artifacts", "repositories"]:
    repo = words[3]
    if words[2] != "create" and repo not in state["repos"]:
        fail("not-found-ar")
    if words[2] == "describe":
        print(f"projects/{{project}}/locations/{{flags['location']}}/repositories/{{repo}}")
    elif words[2] == "create":
        state["repos"][repo] = flags["labels"]
    elif words[2] == "delete":
        del state["repos"][repo]
        state["images"] = {{k: v for k, v in state["images"].items() if k.split("/")[2] != repo}}
    elif words[2] == "get-iam-policy":
        for member in members(repo, flags["filter"].split("=", 1)[1]):
            print(member)
    elif words[2] == "add-iam-policy-binding" and flags["member"] not in members(repo, flags["role"]):
        members(repo, flags["role"]).append(flags["member"])
elif words[:3] == ["artifacts", "docker", "images"]:
    image = words[4].split(":")[0]
    if image not in state["images"]:
        fail("not-found-ar")
    if words[3] == "describe":
        print("WARNING: a warning on stderr, as gcloud prints some", file=sys.stderr)
        print(state["images"][image][words[4].split(":")[1]])
    elif words[3] == "list":
        for digest in sorted(set(state["images"][image].values())):
            print(digest)
    elif words[3] == "delete":
        del state["images"][image]
elif words[:2] == ["compute", "instances"] and words[2] == "list":
    for vm in state["vms"]:
        if flags["filter"] == f"name={{vm}}":
            print(vm)
elif words[:2] == ["compute", "disks"]:
    for disk in state["disks"]:
        if flags["filter"] == f"name={{disk}}":
            print(disk)
elif words[:2] == ["compute", "instances"]:
    vm = words[3]
    if words[2] == "create":
        if vm in state["vms"]:
            fail("exists", f"zones/europe-west1-b/instances/{{vm}}")
        script = flags["metadata-from-file"].split("=", 1)[1]
        metadata = dict(item.split("=", 1) for item in flags["metadata"].split(","))
        metadata["startup-script"] = open(script).read()  # gcloud reads the file: it must exist
        state["vms"][vm] = {{"metadata": metadata, "labels": flags["labels"], "tags": flags["tags"],
                             "max-run-duration": flags.get("max-run-duration"),
                             "termination": flags.get("instance-termination-action")}}
        state["disks"][vm] = True
        print(f"Created [https://www.googleapis.com/compute/v1/projects/{{project}}/zones/europe-west1-b/"
              f"instances/{{vm}}].", file=sys.stderr)
    elif vm not in state["vms"]:
        fail("not-found", f"zones/europe-west1-b/instances/{{vm}}")
    elif words[2] == "describe":
        fmt = flags.get("format", "")
        metadata = state["vms"][vm]["metadata"]
        if "natIP" in fmt:
            print("WARNING: Some requests generated warnings: an answer on stderr", file=sys.stderr)
            print(os.environ.get("FAKE_IP", "127.0.0.1"))
        elif fmt.startswith("csv"):
            print(f"{{metadata.get('image', '')}},{{metadata.get('api-key', '')}}")
        elif fmt == "value(metadata.items.api-key)":
            print(metadata.get("api-key", ""))
        else:
            print(f"name: {{vm}}")
    elif words[2] == "add-metadata":
        state["vms"][vm]["metadata"].update(item.split("=", 1) for item in flags["metadata"].split(","))
    elif words[2] == "reset":
        state["resets"].append(vm)
    elif words[2] == "delete":
        del state["vms"][vm]
        state["disks"].pop(vm, None)
elif words[:2] == ["compute", "firewall-rules"]:
    if words[2] == "list":
        for rule in state["rules"]:
            if flags["filter"] == f"name={{rule}}":
                print(rule)
        save()
        sys.exit(0)
    rule = words[3]
    if words[2] == "create":
        if rule in state["rules"]:
            fail("exists", f"global/firewalls/{{rule}}")
        state["rules"][rule] = {{"source-ranges": flags["source-ranges"], "target-tags": flags["target-tags"]}}
    elif rule not in state["rules"]:
        fail("not-found", f"global/firewalls/{{rule}}")
    elif words[2] == "describe":
        # value() prints a list joined by ";"
        print(state["rules"][rule]["source-ranges"].replace(",", ";") if "format" in flags else f"name: {{rule}}")
    elif words[2] == "update":
        state["rules"][rule]["source-ranges"] = flags["source-ranges"]
    elif words[2] == "delete":
        del state["rules"][rule]
elif words[:2] == ["run", "deploy"]:
    name = words[2]
    image = flags["image"]
    if image.split("@")[1] not in state["images"].get(image.split("@")[0], {{}}).values():
        print(f"ERROR: (gcloud.run.deploy) Image '{{image}}' not found.", file=sys.stderr)
        sys.exit(1)
    service = state["services"].get(name, {{"revisions": 0}})
    service.update(
        image=image, revisions=service["revisions"] + 1, region=flags["region"],
        labels=dict(item.split("=", 1) for item in flags["labels"].split(",")),
        env=dict(item.split("=", 1) for item in flags["set-env-vars"].split(",")),
        public="--allow-unauthenticated" in args and "--no-allow-unauthenticated" not in args,
        **{{key: flags.get(key) for key in ("port", "cpu", "memory", "concurrency", "min-instances",
                                            "max-instances", "startup-probe")}},
    )
    state["services"][name] = service
    revision = f"{{name}}-{{service['revisions']:05d}}-abc"
    print(f"Service [{{name}}] revision [{{revision}}] has been deployed and is serving 100 percent of traffic.",
          file=sys.stderr)
    print(f"Service URL: https://{{name}}-{number}.{{flags['region']}}.run.app", file=sys.stderr)
elif words[:3] == ["run", "services", "list"]:
    for name in state["services"]:
        if flags["filter"] == f"metadata.name={{name}}":
            print(name)
elif words[:2] == ["run", "services"]:
    name = words[3]
    if name not in state["services"]:
        if words[2] == "delete":
            print(f"ERROR: (gcloud.run.services.delete) Service [{{name}}] could not be found.", file=sys.stderr)
        else:
            print(f"ERROR: (gcloud.run.services.{{words[2]}}) Cannot find service [{{name}}]", file=sys.stderr)
        sys.exit(1)
    service = state["services"][name]
    if words[2] == "describe":
        fmt = flags.get("format", "")
        if fmt.startswith("csv"):
            print(f"{{service['image']}},{{service['labels'].get('workshop-config', '')}}")
        elif fmt == "value(status.url)":
            print(f"https://{{name}}-{number}.{{service['region']}}.run.app")
        else:
            print(f"name: {{name}}")
    elif words[2] == "delete":
        del state["services"][name]
        print(f"Deleted service [{{name}}].", file=sys.stderr)
else:
    print(f"fake gcloud: unknown command {{args}}", file=sys.stderr)
    sys.exit(2)
save()
'''


class FakeProject:
    """The fake tools on PATH and the project they share; ``state`` reads it back."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        bin_dir = tmp_path / "fake-bin"
        bin_dir.mkdir(exist_ok=True)
        for name in ("gcloud", "docker"):
            tool = bin_dir / name
            tool.write_text(FAKE_TOOL.format(python=sys.executable, number=PROJECT_NUMBER))
            tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
        self.calls_file, self.state_file = tmp_path / "calls.jsonl", tmp_path / "state.json"
        self.monkeypatch = monkeypatch
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("FAKE_CALLS", str(self.calls_file))
        monkeypatch.setenv("FAKE_STATE", str(self.state_file))
        monkeypatch.delenv("FAKE_FAIL", raising=False)

    def set(self, name: str, value: str) -> None:
        self.monkeypatch.setenv(name, value)

    @property
    def state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    def seed(self, **parts: dict) -> None:
        self.state_file.write_text(json.dumps(parts))

    def start_from(self, state: dict, failure: str) -> None:
        """A project in this state, where the commands that start with ``failure``'s words fail ('' for none)."""
        self.seed(**state)
        self.set("FAKE_FAIL", failure)

    def calls(self) -> list[list[str]]:
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]

    def forget_calls(self) -> None:
        self.calls_file.unlink(missing_ok=True)
