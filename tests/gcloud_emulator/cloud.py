"""A Google Cloud project, as far as the lab uses it: the state, and the REST answers the real gcloud reads.

Compute Engine v1 (VMs, their disks and metadata, firewall rules, regions and their quotas, the project's default
service account), Artifact Registry v1 (repositories, their IAM policy, Docker images as packages, versions and
tags), Resource Manager v1 (the project, its IAM policy, effective organisation policies), Service Usage v1,
Cloud Billing v1, Cloud Run (its Knative ``serving.knative.dev/v1`` API on the regional host, and the v1 IAM
methods) and the OAuth token endpoint. Resource shapes and long-running operations follow Google's REST
reference; a write that Google answers with an operation gets one, already done.

Faults come from the state, as they do at Google: an API that is not enabled, a project without billing, a
quota used up, an organisation policy, a permission the caller lacks (``Project.denied``). Their bodies are in
:mod:`gcloud_emulator.errors`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from . import errors
from .errors import ApiError
from .proxy import Answer, Request

#: The APIs a new project has on (a subset of Google's list: the ones this lab's commands touch).
DEFAULT_SERVICES = frozenset({"cloudresourcemanager.googleapis.com", "serviceusage.googleapis.com",
                              "cloudbilling.googleapis.com", "iam.googleapis.com"})
#: API host name → (service, title), for the "not enabled" answer.
SERVICES = {
    "compute": ("compute.googleapis.com", "Compute Engine API"),
    "artifactregistry": ("artifactregistry.googleapis.com", "Artifact Registry API"),
    "run": ("run.googleapis.com", "Cloud Run Admin API"),
    "cloudbilling": ("cloudbilling.googleapis.com", "Cloud Billing API"),
}
#: Enabling these needs a billing account.
NEEDS_BILLING = frozenset({"compute.googleapis.com", "artifactregistry.googleapis.com", "run.googleapis.com"})
#: vCPUs of the machine types the lab may ask for.
MACHINE_CPUS = {"e2-micro": 2, "e2-small": 2, "e2-medium": 2, "e2-standard-2": 2, "e2-standard-4": 4}
#: The hosts the emulator answers (the proxy refuses every other one).
HOSTS = re.compile(r"(compute|artifactregistry|cloudresourcemanager|serviceusage|cloudbilling|run|"
                   r"[a-z0-9-]+-run|oauth2)\.googleapis\.com|[a-z0-9-]+\.run\.app")

_ROLES_PERMISSIONS = {"roles/owner": {"*"}, "roles/editor": {"*"}}


def _etag(serial: int) -> str:
    return base64.b64encode(f"etag-{serial}".encode()).decode()


@dataclass
class Policy:
    """An IAM policy: bindings (role → members) and the etag that makes read-modify-write safe."""

    bindings: dict[str, list[str]] = field(default_factory=dict)
    serial: int = 1

    def body(self) -> dict:
        return {"version": 1, "etag": _etag(self.serial),
                "bindings": [{"role": role, "members": members} for role, members in self.bindings.items() if members]}

    def replace(self, policy: dict) -> dict:
        if policy.get("etag") and policy["etag"] != _etag(self.serial):
            raise errors.status(409, "There were concurrent policy changes. Please retry the whole "
                                     "read-modify-write with exponential backoff.", "ABORTED")
        self.bindings = {binding["role"]: list(binding.get("members", [])) for binding in policy.get("bindings", [])}
        self.serial += 1
        return self.body()

    def members(self, role: str) -> list[str]:
        return self.bindings.get(role, [])


@dataclass
class Project:
    """One project and what decides its answers."""

    id: str = "my-workshop-project"
    number: str = "123456789012"
    billing: bool = True
    enabled: set[str] = field(default_factory=lambda: set(DEFAULT_SERVICES))
    default_service_account: bool = True
    #: The caller's account (who gcloud is logged in as), and the permissions refused to it.
    caller: str = "student@example.com"
    denied: set[str] = field(default_factory=set)
    #: Organisation policies in force, by constraint (Resource Manager v1's Policy body, without the name).
    org_policies: dict[str, dict] = field(default_factory=dict)
    #: iam.allowedPolicyMemberDomains: the e-mail domains IAM accepts (None: any).
    member_domains: set[str] | None = None
    #: Regional quotas: region → metric → limit.
    quotas: dict[str, dict[str, float]] = field(default_factory=lambda: {
        "europe-west1": {"CPUS": 24.0, "IN_USE_ADDRESSES": 8.0, "DISKS_TOTAL_GB": 4096.0}})
    policy: Policy = field(default_factory=lambda: Policy({"roles/owner": ["user:teacher@example.com"]}))
    #: The role the caller is given in the policy, unless it holds one already (None: the policy as given).
    caller_role: str | None = "roles/editor"

    def __post_init__(self) -> None:
        member = f"user:{self.caller}"
        if self.caller_role and not any(member in members for members in self.policy.bindings.values()):
            self.policy.bindings.setdefault(self.caller_role, []).append(member)

    @property
    def service_account(self) -> str:
        return f"{self.number}-compute@developer.gserviceaccount.com"


Route = tuple[str, str, re.Pattern[str], Callable[..., Answer], str]


class Cloud:
    """The state of the emulated projects, and the routes that answer gcloud's requests."""

    def __init__(self, *projects: Project) -> None:
        self.projects = {project.id: project for project in projects or (Project(),)}
        self.repositories: dict[str, dict] = {}
        self.repository_policies: dict[str, Policy] = {}
        #: Docker images: package name → digest → tags.
        self.images: dict[str, dict[str, set[str]]] = {}
        self.instances: dict[str, dict] = {}
        self.disks: dict[str, dict] = {}
        self.firewalls: dict[str, dict] = {}
        self.run_services: dict[str, dict] = {}
        self.run_policies: dict[str, Policy] = {}
        #: Cloud Run services' containers, for the *.run.app door: service URL → the local URL that answers.
        self.run_backends: dict[str, str] = {}
        self.operations: dict[str, dict] = {}
        self.resets: list[str] = []
        #: The external IP every new VM gets (a test points it at a local back-end).
        self.external_ip = "127.0.0.1"
        self._counter = itertools.count(1)
        self.routes: list[Route] = []
        self.unserved: list[str] = []
        self._register()

    # ------------------------------------------------------------------ seeding (what a test starts from)
    def seed_repository(self, project: str, location: str, name: str) -> str:
        """A Docker repository, as ``gcloud artifacts repositories create`` leaves it."""
        key = f"projects/{project}/locations/{location}/repositories/{name}"
        self.repositories[key] = {"name": key, "format": "DOCKER", "mode": "STANDARD_REPOSITORY",
                                  "labels": {"app": "deploy-ml-workshop"}}
        self.repository_policies[key] = Policy()
        return key

    def seed_instance(self, project: str, zone: str, name: str, metadata: dict[str, str] | None = None) -> None:
        """A running VM and its boot disk, as ``gcloud compute instances create`` leaves them."""
        base = f"http://compute.googleapis.com/compute/v1/projects/{project}/zones/{zone}"
        self.instances[f"{project}/{zone}/{name}"] = {
            "kind": "compute#instance", "name": name, "status": "RUNNING", "zone": base,
            "machineType": f"{base}/machineTypes/e2-medium", "selfLink": f"{base}/instances/{name}",
            "disks": [{"boot": True, "autoDelete": True, "source": f"{base}/disks/{name}"}],
            "networkInterfaces": [{"accessConfigs": [{"type": "ONE_TO_ONE_NAT", "natIP": self.external_ip}]}],
            "metadata": {"fingerprint": _etag(1),
                         "items": [{"key": k, "value": v} for k, v in (metadata or {}).items()]},
        }
        self.disks[f"{project}/{zone}/{name}"] = {"kind": "compute#disk", "name": name, "sizeGb": "20", "zone": base,
                                                  "selfLink": f"{base}/disks/{name}"}

    def seed_firewall(self, project: str, name: str, source_ranges: list[str]) -> None:
        """A firewall rule for port 8000, as ``gcloud compute firewall-rules create`` leaves it."""
        self.firewalls[f"{project}/{name}"] = {
            "kind": "compute#firewall", "name": name, "direction": "INGRESS", "sourceRanges": source_ranges,
            "allowed": [{"IPProtocol": "tcp", "ports": ["8000"]}], "priority": 1000,
            "selfLink": f"http://compute.googleapis.com/compute/v1/projects/{project}/global/firewalls/{name}"}

    def seed_run_service(self, project: str, region: str, name: str, image: str) -> None:
        """A Cloud Run service serving ``image``, as ``gcloud run deploy`` leaves it."""
        found = self.find_project(project)
        body = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name, "labels": {}},
                "spec": {"template": {"spec": {"containers": [{"image": image}]}}}}
        request = Request("POST", f"{region}-run.googleapis.com", "", {}, body)
        self.run_services[self._run_key(found, region, name)] = self._serve(found, request, body, 1)
        self.run_policies[self._run_key(found, region, name)] = Policy()

    # ------------------------------------------------------------------ helpers
    @property
    def project(self) -> Project:
        """The first project (most tests have one)."""
        return next(iter(self.projects.values()))

    def find_project(self, key: str, compute_api: bool = False) -> Project:
        for project in self.projects.values():
            if key in (project.id, project.number):
                return project
        if compute_api:
            raise errors.compute(404, "notFound", f"The resource 'projects/{key}' was not found")
        raise errors.status(403, "The caller does not have permission", "PERMISSION_DENIED")

    def _check(self, project: Project, request: Request, permission: str, resource: str) -> None:
        """The API is on, and the caller holds ``permission``."""
        api = SERVICES.get(request.service)
        if api and api[0] not in project.enabled:
            raise errors.service_disabled(api[0], api[1], project.number)
        if permission in project.denied:
            raise errors.permission_denied(permission, resource, compute_api=request.service == "compute")

    def _next(self) -> int:
        return next(self._counter)

    def route(self, request: Request) -> Answer:
        """Answer one request, or 501 for one the emulator does not know (recorded in ``unserved``)."""
        for method, service, pattern, handler, _ in self.routes:
            if request.method != method or request.service != service:
                continue
            match = pattern.fullmatch(request.path)
            if match:
                try:
                    return handler(request, **{k: unquote(v) for k, v in match.groupdict().items()})
                except ApiError as error:
                    return error.answer
                except Exception as error:  # a bug of the emulator: the test that met it fails (see the fixture)
                    self.unserved.append(f"{request.method} {request.path}: {type(error).__name__}: {error}")
                    return Answer(500, {"error": {"code": 500, "message": f"emulator error: {error}",
                                                  "status": "INTERNAL"}})
        self.unserved.append(f"{request.method} {request.host}{request.path}")
        return Answer(501, {"error": {"code": 501, "message": f"emulator: no route for {request.method} "
                                                             f"{request.path}", "status": "UNIMPLEMENTED"}})

    def route_name(self, request: Request) -> str | None:
        """The name of the route that answers ``request`` (the golden logs group by it)."""
        for method, service, pattern, _, name in self.routes:
            if request.method == method and request.service == service and pattern.fullmatch(request.path):
                return name
        return None

    def _add(self, method: str, service: str, pattern: str, handler: Callable[..., Answer], name: str) -> None:
        self.routes.append((method, service, re.compile(pattern), handler, name))

    def _register(self) -> None:
        p = r"(?P<project>[^/:]+)"
        compute = r"/compute/v1/projects/" + p
        # Resource Manager
        self._add("GET", "cloudresourcemanager", rf"/v1/projects/{p}", self.get_project, "projects.get")
        self._add("POST", "cloudresourcemanager", rf"/v1/projects/{p}:getIamPolicy",
                  self.get_project_policy, "projects.getIamPolicy")
        self._add("POST", "cloudresourcemanager", rf"/v1/projects/{p}:setIamPolicy",
                  self.set_project_policy, "projects.setIamPolicy")
        self._add("POST", "cloudresourcemanager", rf"/v1/projects/{p}:getEffectiveOrgPolicy",
                  self.effective_org_policy, "projects.getEffectiveOrgPolicy")
        # Service Usage, Cloud Billing
        self._add("POST", "serviceusage", rf"/v1/projects/{p}/services:batchEnable",
                  self.enable_services, "services.batchEnable")
        self._add("GET", "serviceusage", rf"/v1/projects/{p}/services/(?P<service>[^/]+)",
                  self.get_service, "services.get")
        self._add("GET", "serviceusage", rf"/v1/projects/{p}/services", self.list_services, "services.list")
        self._add("GET", "serviceusage", r"/v1/(?P<name>operations/[^/]+)", self.get_operation, "operations.get")
        self._add("GET", "cloudbilling", rf"/v1/projects/{p}/billingInfo", self.billing_info,
                  "projects.getBillingInfo")
        # Compute Engine
        self._add("GET", "compute", compute, self.compute_project, "compute.projects.get")
        self._add("GET", "compute", compute + r"/regions/(?P<region>[^/]+)", self.get_region, "compute.regions.get")
        self._add("GET", "compute", compute + r"/zones/(?P<zone>[^/]+)", self.get_zone, "compute.zones.get")
        self._add("GET", "compute", r"/compute/v1/projects/(?P<image_project>[^/]+)/global/images/family/"
                                    r"(?P<family>[^/]+)", self.image_from_family, "compute.images.getFromFamily")
        zone = compute + r"/zones/(?P<zone>[^/]+)"
        self._add("POST", "compute", zone + "/instances", self.insert_instance, "compute.instances.insert")
        self._add("GET", "compute", zone + "/instances", self.list_instances, "compute.instances.list")
        self._add("GET", "compute", compute + "/aggregated/instances", self.list_instances,
                  "compute.instances.aggregatedList")
        self._add("GET", "compute", zone + r"/instances/(?P<name>[^/]+)", self.get_instance, "compute.instances.get")
        self._add("DELETE", "compute", zone + r"/instances/(?P<name>[^/]+)", self.delete_instance,
                  "compute.instances.delete")
        self._add("POST", "compute", zone + r"/instances/(?P<name>[^/]+)/setMetadata", self.set_metadata,
                  "compute.instances.setMetadata")
        self._add("POST", "compute", zone + r"/instances/(?P<name>[^/]+)/reset", self.reset_instance,
                  "compute.instances.reset")
        self._add("GET", "compute", zone + r"/disks/(?P<name>[^/]+)", self.get_disk, "compute.disks.get")
        self._add("GET", "compute", zone + "/disks", self.list_disks, "compute.disks.list")
        self._add("GET", "compute", compute + "/aggregated/disks", self.list_disks, "compute.disks.aggregatedList")
        firewall = compute + r"/global/firewalls"
        self._add("POST", "compute", firewall, self.insert_firewall, "compute.firewalls.insert")
        self._add("GET", "compute", firewall, self.list_firewalls, "compute.firewalls.list")
        self._add("GET", "compute", firewall + r"/(?P<name>[^/]+)", self.get_firewall, "compute.firewalls.get")
        self._add("PATCH", "compute", firewall + r"/(?P<name>[^/]+)", self.patch_firewall, "compute.firewalls.patch")
        self._add("DELETE", "compute", firewall + r"/(?P<name>[^/]+)", self.delete_firewall,
                  "compute.firewalls.delete")
        for scope in (r"/zones/[^/]+", r"/global", r"/regions/[^/]+"):
            operation = compute + scope + r"/operations/(?P<name>[^/]+)"
            self._add("GET", "compute", operation, self.compute_operation, "compute.operations.get")
            self._add("POST", "compute", operation + "/wait", self.compute_operation, "compute.operations.wait")
        # Artifact Registry
        location = rf"/v1/projects/{p}/locations/(?P<location>[^/]+)"
        repository = location + r"/repositories/(?P<repository>[^/:]+)"
        self._add("POST", "artifactregistry", location + "/repositories", self.create_repository,
                  "artifactregistry.repositories.create")
        self._add("GET", "artifactregistry", repository, self.get_repository, "artifactregistry.repositories.get")
        self._add("DELETE", "artifactregistry", repository, self.delete_repository,
                  "artifactregistry.repositories.delete")
        self._add("GET", "artifactregistry", repository + ":getIamPolicy", self.get_repository_policy,
                  "artifactregistry.repositories.getIamPolicy")
        self._add("POST", "artifactregistry", repository + ":setIamPolicy", self.set_repository_policy,
                  "artifactregistry.repositories.setIamPolicy")
        self._add("GET", "artifactregistry", location + r"/operations/(?P<name>[^/]+)", self.get_ar_operation,
                  "artifactregistry.operations.get")
        package = repository + r"/packages/(?P<package>[^/]+)"
        self._add("GET", "artifactregistry", repository + "/packages", self.list_packages,
                  "artifactregistry.packages.list")
        self._add("DELETE", "artifactregistry", package, self.delete_package, "artifactregistry.packages.delete")
        self._add("GET", "artifactregistry", package + "/versions", self.list_versions,
                  "artifactregistry.versions.list")
        self._add("GET", "artifactregistry", package + r"/versions/(?P<version>[^/]+)", self.get_version,
                  "artifactregistry.versions.get")
        self._add("DELETE", "artifactregistry", package + r"/versions/(?P<version>[^/]+)", self.delete_version,
                  "artifactregistry.versions.delete")
        self._add("GET", "artifactregistry", package + "/tags", self.list_tags, "artifactregistry.tags.list")
        self._add("GET", "artifactregistry", package + r"/tags/(?P<tag>[^/]+)", self.get_tag,
                  "artifactregistry.tags.get")
        self._add("DELETE", "artifactregistry", package + r"/tags/(?P<tag>[^/]+)", self.delete_tag,
                  "artifactregistry.tags.delete")
        self._add("GET", "artifactregistry", repository + "/dockerImages", self.list_docker_images,
                  "artifactregistry.dockerImages.list")
        # Cloud Run: Knative on the regional host, IAM on the v1 API
        knative = rf"/apis/serving.knative.dev/v1/namespaces/{p}/services"
        self._add("GET", "run", knative + r"/(?P<name>[^/]+)", self.get_run_service, "run.services.get")
        self._add("POST", "run", knative, self.create_run_service, "run.services.create")
        self._add("PUT", "run", knative + r"/(?P<name>[^/]+)", self.replace_run_service, "run.services.replace")
        self._add("DELETE", "run", knative + r"/(?P<name>[^/]+)", self.delete_run_service, "run.services.delete")
        self._add("GET", "run", knative, self.list_run_services, "run.services.list")
        run_iam = rf"/v1/projects/{p}/locations/(?P<region>[^/]+)/services/(?P<name>[^/:]+)"
        self._add("GET", "run", run_iam + ":getIamPolicy", self.get_run_policy, "run.services.getIamPolicy")
        self._add("POST", "run", run_iam + ":setIamPolicy", self.set_run_policy, "run.services.setIamPolicy")
        # OAuth: refreshes a stored login (gcloud auth print-identity-token)
        self._add("POST", "oauth2", r"/token", self.token, "oauth2.token")

    # ------------------------------------------------------------------ Resource Manager
    def get_project(self, request: Request, project: str) -> Answer:
        found = self.find_project(project)
        return Answer(200, {"projectNumber": found.number, "projectId": found.id, "lifecycleState": "ACTIVE",
                            "name": found.id, "createTime": "2026-09-01T08:00:00.000Z",
                            "parent": {"type": "organization", "id": "987654321098"}})

    def get_project_policy(self, request: Request, project: str) -> Answer:
        found = self.find_project(project)
        self._check(found, request, "resourcemanager.projects.getIamPolicy", f"projects/{found.id}")
        return Answer(200, found.policy.body())

    def _domains_allowed(self, project: Project, policy: dict) -> None:
        if project.member_domains is None:
            return
        for binding in policy.get("bindings", []):
            for member in binding.get("members", []):
                kind, _, email = member.partition(":")
                domain = email.rsplit("@", 1)[-1]
                if kind in ("user", "group") and domain not in project.member_domains:
                    raise errors.member_domain_refused(member)

    def set_project_policy(self, request: Request, project: str) -> Answer:
        found = self.find_project(project)
        self._check(found, request, "resourcemanager.projects.setIamPolicy", f"projects/{found.id}")
        policy = request.body["policy"]
        self._domains_allowed(found, policy)
        return Answer(200, found.policy.replace(policy))

    def effective_org_policy(self, request: Request, project: str) -> Answer:
        found = self.find_project(project)
        constraint = request.body["constraint"]
        policy = found.org_policies.get(constraint)
        if policy is None:
            # No policy set: the constraint's default (none of the lab's four restricts anything by default).
            kind = "booleanPolicy" if constraint.endswith("requireOsLogin") else "listPolicy"
            policy = {kind: {}} if kind == "booleanPolicy" else {}
        return Answer(200, {"constraint": constraint, "etag": _etag(1), **policy})

    # ------------------------------------------------------------------ Service Usage, Billing
    def _service_body(self, project: Project, service: str) -> dict:
        state = "ENABLED" if service in project.enabled else "DISABLED"
        return {"name": f"projects/{project.number}/services/{service}", "config": {"name": service},
                "state": state, "parent": f"projects/{project.number}"}

    def enable_services(self, request: Request, project: str) -> Answer:
        found = self.find_project(project)
        services = request.body["serviceIds"]
        if "serviceusage.services.enable" in found.denied:
            raise errors.permission_denied("serviceusage.services.enable", f"projects/{found.id}")
        if not found.billing and set(services) & NEEDS_BILLING:
            raise errors.billing_disabled(found.number, services)
        found.enabled.update(services)
        name = f"operations/acat.p2-{found.number}-{self._next():08d}"
        operation = {"name": name, "done": True, "response": {
            "@type": "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse",
            "services": [self._service_body(found, service) for service in services]}}
        self.operations[name] = operation
        return Answer(200, operation)

    def get_service(self, request: Request, project: str, service: str) -> Answer:
        return Answer(200, self._service_body(self.find_project(project), service))

    def list_services(self, request: Request, project: str) -> Answer:
        found = self.find_project(project)
        services = sorted(found.enabled)
        return Answer(200, {"services": [self._service_body(found, service) for service in services]})

    def get_operation(self, request: Request, name: str) -> Answer:
        return Answer(200, self.operations[name])

    def billing_info(self, request: Request, project: str) -> Answer:
        found = self.find_project(project)
        self._check(found, request, "resourcemanager.projects.get", f"projects/{found.id}")
        account = "billingAccounts/0A1B2C-3D4E5F-6A7B8C" if found.billing else ""
        return Answer(200, {"name": f"projects/{found.id}/billingInfo", "projectId": found.id,
                            "billingAccountName": account, "billingEnabled": found.billing})

    # ------------------------------------------------------------------ Compute Engine
    def _base(self, request: Request) -> str:
        return f"http://{request.host}/compute/v1/"

    def _operation(self, request: Request, project: Project, scope: str, kind: str, target: str,
                   error: dict | None = None) -> Answer:
        name = f"operation-{self._next():06d}"
        link = f"{self._base(request)}projects/{project.id}/{scope}/operations/{name}"
        operation = {"kind": "compute#operation", "id": str(9000 + self._next()), "name": name,
                     "operationType": kind, "targetLink": target, "status": "DONE", "progress": 100,
                     "selfLink": link, "user": project.caller}
        if scope.startswith("zones/"):
            operation["zone"] = f"{self._base(request)}projects/{project.id}/{scope}"
        if error:
            operation["error"] = error
            operation["httpErrorStatusCode"] = 403
            operation["httpErrorMessage"] = "FORBIDDEN"
        self.operations[link] = operation
        return Answer(200, operation)

    def compute_operation(self, request: Request, project: str, name: str) -> Answer:
        link = f"{self._base(request)}{request.path.removeprefix('/compute/v1/').removesuffix('/wait')}"
        if link not in self.operations:
            raise errors.compute(404, "notFound", f"The resource '{request.path}' was not found")
        return Answer(200, self.operations[link])

    def compute_project(self, request: Request, project: str) -> Answer:
        found = self.find_project(project, compute_api=True)
        self._check(found, request, "compute.projects.get", f"projects/{found.id}")
        body = {"kind": "compute#project", "name": found.id, "id": found.number,
                "commonInstanceMetadata": {"kind": "compute#metadata", "fingerprint": "AAAA"},
                "selfLink": f"{self._base(request)}projects/{found.id}"}
        if found.default_service_account:
            body["defaultServiceAccount"] = found.service_account
        return Answer(200, body)

    def _usage(self, project: Project, region: str) -> dict[str, float]:
        usage = {"CPUS": 0.0, "IN_USE_ADDRESSES": 0.0, "DISKS_TOTAL_GB": 0.0}
        for key, instance in self.instances.items():
            if key.startswith(f"{project.id}/{region}-"):
                usage["CPUS"] += MACHINE_CPUS.get(instance["machineType"].rsplit("/", 1)[-1], 2)
                usage["IN_USE_ADDRESSES"] += sum(bool(n.get("accessConfigs")) for n in instance["networkInterfaces"])
        for key, disk in self.disks.items():
            if key.startswith(f"{project.id}/{region}-"):
                usage["DISKS_TOTAL_GB"] += float(disk["sizeGb"])
        return usage

    def get_region(self, request: Request, project: str, region: str) -> Answer:
        found = self.find_project(project, compute_api=True)
        self._check(found, request, "compute.regions.get", f"projects/{found.id}/regions/{region}")
        usage = self._usage(found, region)
        quotas = [{"metric": metric, "limit": limit, "usage": usage.get(metric, 0.0)}
                  for metric, limit in found.quotas.get(region, {}).items()]
        return Answer(200, {"kind": "compute#region", "name": region, "status": "UP", "quotas": quotas,
                            "selfLink": f"{self._base(request)}projects/{found.id}/regions/{region}"})

    def get_zone(self, request: Request, project: str, zone: str) -> Answer:
        found = self.find_project(project, compute_api=True)
        return Answer(200, {"kind": "compute#zone", "name": zone, "status": "UP",
                            "region": f"{self._base(request)}projects/{found.id}/regions/{zone.rsplit('-', 1)[0]}",
                            "selfLink": f"{self._base(request)}projects/{found.id}/zones/{zone}"})

    def image_from_family(self, request: Request, image_project: str, family: str) -> Answer:
        name = f"{family}-125-19216-104-47"
        return Answer(200, {"kind": "compute#image", "name": name, "family": family, "status": "READY",
                            "selfLink": f"{self._base(request)}projects/{image_project}/global/images/{name}"})

    def _instance(self, project: Project, zone: str, name: str, request: Request) -> dict:
        key = f"{project.id}/{zone}/{name}"
        if key not in self.instances:
            raise errors.compute(404, "notFound",
                                 f"The resource 'projects/{project.id}/zones/{zone}/instances/{name}' was not found")
        return self.instances[key]

    def insert_instance(self, request: Request, project: str, zone: str) -> Answer:
        found = self.find_project(project, compute_api=True)
        body = copy.deepcopy(request.body)
        name = body["name"]
        path = f"projects/{found.id}/zones/{zone}/instances/{name}"
        self._check(found, request, "compute.instances.create", path)
        key = f"{found.id}/{zone}/{name}"
        if key in self.instances:
            raise errors.compute(409, "alreadyExists", f"The resource '{path}' already exists")
        wants_ip = any(n.get("accessConfigs") for n in body.get("networkInterfaces", []))
        ip_policy = found.org_policies.get("constraints/compute.vmExternalIpAccess", {})
        if wants_ip and ip_policy.get("listPolicy", {}).get("allValues") == "DENY":
            raise errors.external_ip_refused(found.number, path)
        region = zone.rsplit("-", 1)[0]
        usage, limits = self._usage(found, region), found.quotas.get(region, {})
        needed = {"CPUS": MACHINE_CPUS.get(body["machineType"].rsplit("/", 1)[-1], 2),
                  "IN_USE_ADDRESSES": 1 if wants_ip else 0}
        link = f"{self._base(request)}{path}"
        for metric, amount in needed.items():
            if metric in limits and usage[metric] + amount > limits[metric]:
                return self._operation(request, found, f"zones/{zone}", "insert", link,
                                       errors.quota_exceeded(metric, limits[metric], region))
        for interface in body.get("networkInterfaces", []):
            for config in interface.get("accessConfigs", []):
                config["natIP"] = self.external_ip
            interface.setdefault("networkIP", "10.132.0.2")
        boot = body["disks"][0]
        size = boot.get("initializeParams", {}).get("diskSizeGb", "10")
        self.disks[key] = {"kind": "compute#disk", "name": name, "sizeGb": str(size), "status": "READY",
                           "zone": f"{self._base(request)}projects/{found.id}/zones/{zone}", "users": [link],
                           "selfLink": f"{self._base(request)}projects/{found.id}/zones/{zone}/disks/{name}"}
        body.update({"kind": "compute#instance", "id": str(4000 + self._next()), "status": "RUNNING",
                     "zone": f"{self._base(request)}projects/{found.id}/zones/{zone}", "selfLink": link})
        body["metadata"] = {"kind": "compute#metadata", "fingerprint": _etag(1),
                            "items": body.get("metadata", {}).get("items", [])}
        self.instances[key] = body
        return self._operation(request, found, f"zones/{zone}", "insert", link)

    def get_instance(self, request: Request, project: str, zone: str, name: str) -> Answer:
        found = self.find_project(project, compute_api=True)
        self._check(found, request, "compute.instances.get", f"projects/{found.id}/zones/{zone}/instances/{name}")
        return Answer(200, self._instance(found, zone, name, request))

    def delete_instance(self, request: Request, project: str, zone: str, name: str) -> Answer:
        found = self.find_project(project, compute_api=True)
        path = f"projects/{found.id}/zones/{zone}/instances/{name}"
        self._check(found, request, "compute.instances.delete", path)
        instance = self._instance(found, zone, name, request)
        key = f"{found.id}/{zone}/{name}"
        del self.instances[key]
        if instance["disks"][0].get("autoDelete", True):
            self.disks.pop(key, None)
        return self._operation(request, found, f"zones/{zone}", "delete", f"{self._base(request)}{path}")

    def set_metadata(self, request: Request, project: str, zone: str, name: str) -> Answer:
        found = self.find_project(project, compute_api=True)
        path = f"projects/{found.id}/zones/{zone}/instances/{name}"
        self._check(found, request, "compute.instances.setMetadata", path)
        instance = self._instance(found, zone, name, request)
        if request.body.get("fingerprint") != instance["metadata"]["fingerprint"]:
            raise errors.compute(412, "conditionNotMet", "Supplied fingerprint does not match current metadata "
                                                         "fingerprint.")
        serial = int(base64.b64decode(instance["metadata"]["fingerprint"]).decode().split("-")[1]) + 1
        instance["metadata"] = {"kind": "compute#metadata", "fingerprint": _etag(serial),
                                "items": request.body.get("items", [])}
        return self._operation(request, found, f"zones/{zone}", "setMetadata", f"{self._base(request)}{path}")

    def reset_instance(self, request: Request, project: str, zone: str, name: str) -> Answer:
        found = self.find_project(project, compute_api=True)
        path = f"projects/{found.id}/zones/{zone}/instances/{name}"
        self._check(found, request, "compute.instances.reset", path)
        self._instance(found, zone, name, request)
        self.resets.append(name)
        return self._operation(request, found, f"zones/{zone}", "reset", f"{self._base(request)}{path}")

    def _listing(self, request: Request, items: list[dict], kind: str, aggregated: bool, key: str) -> Answer:
        items = [item for item in items if _matches(request.query.get("filter", ""), item)]
        if not aggregated:
            return Answer(200, {"kind": f"compute#{kind}List", "items": items})
        scopes: dict[str, list[dict]] = {}
        for item in items:
            scopes.setdefault(f"zones/{item['zone'].rsplit('/', 1)[-1]}", []).append(item)
        return Answer(200, {"kind": f"compute#{kind}AggregatedList",
                            "items": {scope: {key: listed} for scope, listed in scopes.items()}})

    def list_instances(self, request: Request, project: str, zone: str | None = None) -> Answer:
        found = self.find_project(project, compute_api=True)
        self._check(found, request, "compute.instances.list", f"projects/{found.id}")
        items = [item for key, item in self.instances.items()
                 if key.startswith(f"{found.id}/{zone or ''}")]
        return self._listing(request, items, "instance", zone is None, "instances")

    def get_disk(self, request: Request, project: str, zone: str, name: str) -> Answer:
        found = self.find_project(project, compute_api=True)
        self._check(found, request, "compute.disks.get", f"projects/{found.id}/zones/{zone}/disks/{name}")
        key = f"{found.id}/{zone}/{name}"
        if key not in self.disks:
            raise errors.compute(404, "notFound",
                                 f"The resource 'projects/{found.id}/zones/{zone}/disks/{name}' was not found")
        return Answer(200, self.disks[key])

    def list_disks(self, request: Request, project: str, zone: str | None = None) -> Answer:
        found = self.find_project(project, compute_api=True)
        self._check(found, request, "compute.disks.list", f"projects/{found.id}")
        items = [item for key, item in self.disks.items() if key.startswith(f"{found.id}/{zone or ''}")]
        return self._listing(request, items, "disk", zone is None, "disks")

    def _firewall(self, project: Project, name: str) -> dict:
        key = f"{project.id}/{name}"
        if key not in self.firewalls:
            raise errors.compute(404, "notFound",
                                 f"The resource 'projects/{project.id}/global/firewalls/{name}' was not found")
        return self.firewalls[key]

    def insert_firewall(self, request: Request, project: str) -> Answer:
        found = self.find_project(project, compute_api=True)
        body = copy.deepcopy(request.body)
        path = f"projects/{found.id}/global/firewalls/{body['name']}"
        self._check(found, request, "compute.firewalls.create", path)
        key = f"{found.id}/{body['name']}"
        if key in self.firewalls:
            raise errors.compute(409, "alreadyExists", f"The resource '{path}' already exists")
        link = f"{self._base(request)}{path}"
        body.update({"kind": "compute#firewall", "id": str(7000 + self._next()), "priority": 1000,
                     "selfLink": link})
        self.firewalls[key] = body
        return self._operation(request, found, "global", "insert", link)

    def get_firewall(self, request: Request, project: str, name: str) -> Answer:
        found = self.find_project(project, compute_api=True)
        self._check(found, request, "compute.firewalls.get", f"projects/{found.id}/global/firewalls/{name}")
        return Answer(200, self._firewall(found, name))

    def list_firewalls(self, request: Request, project: str) -> Answer:
        found = self.find_project(project, compute_api=True)
        self._check(found, request, "compute.firewalls.list", f"projects/{found.id}")
        items = [item for key, item in self.firewalls.items() if key.startswith(f"{found.id}/")]
        return self._listing(request, items, "firewall", False, "firewalls")

    def patch_firewall(self, request: Request, project: str, name: str) -> Answer:
        found = self.find_project(project, compute_api=True)
        path = f"projects/{found.id}/global/firewalls/{name}"
        self._check(found, request, "compute.firewalls.update", path)
        self._firewall(found, name).update({k: v for k, v in request.body.items() if k != "name"})
        return self._operation(request, found, "global", "patch", f"{self._base(request)}{path}")

    def delete_firewall(self, request: Request, project: str, name: str) -> Answer:
        found = self.find_project(project, compute_api=True)
        path = f"projects/{found.id}/global/firewalls/{name}"
        self._check(found, request, "compute.firewalls.delete", path)
        self._firewall(found, name)
        del self.firewalls[f"{found.id}/{name}"]
        return self._operation(request, found, "global", "delete", f"{self._base(request)}{path}")

    # ------------------------------------------------------------------ Artifact Registry
    def _repository(self, project: Project, location: str, repository: str) -> tuple[str, dict]:
        name = f"projects/{project.id}/locations/{location}/repositories/{repository}"
        if name not in self.repositories:
            raise errors.status(404, "Requested entity was not found.")
        return name, self.repositories[name]

    def _ar_operation(self, project: Project, location: str, response: dict | None) -> Answer:
        name = f"projects/{project.id}/locations/{location}/operations/{self._next():08x}-0000-4000-8000-000000000000"
        operation: dict = {"name": name, "done": True}
        operation["response"] = response or {"@type": "type.googleapis.com/google.protobuf.Empty"}
        self.operations[name] = operation
        return Answer(200, operation)

    def create_repository(self, request: Request, project: str, location: str) -> Answer:
        found = self.find_project(project)
        repository = request.query["repositoryId"]
        name = f"projects/{found.id}/locations/{location}/repositories/{repository}"
        self._check(found, request, "artifactregistry.repositories.create",
                    f"//artifactregistry.googleapis.com/projects/{found.id}/locations/{location}")
        if name in self.repositories:
            raise errors.status(409, "the repository already exists", "ALREADY_EXISTS")
        body = {**copy.deepcopy(request.body), "name": name, "mode": "STANDARD_REPOSITORY",
                "createTime": "2026-12-01T09:00:00Z", "updateTime": "2026-12-01T09:00:00Z"}
        self.repositories[name] = body
        self.repository_policies[name] = Policy()
        return self._ar_operation(found, location, {
            "@type": "type.googleapis.com/google.devtools.artifactregistry.v1.Repository", **body})

    def get_repository(self, request: Request, project: str, location: str, repository: str) -> Answer:
        found = self.find_project(project)
        self._check(found, request, "artifactregistry.repositories.get",
                    f"projects/{found.id}/locations/{location}/repositories/{repository}")
        return Answer(200, self._repository(found, location, repository)[1])

    def delete_repository(self, request: Request, project: str, location: str, repository: str) -> Answer:
        found = self.find_project(project)
        self._check(found, request, "artifactregistry.repositories.delete",
                    f"projects/{found.id}/locations/{location}/repositories/{repository}")
        name, _ = self._repository(found, location, repository)
        del self.repositories[name]
        self.images = {key: value for key, value in self.images.items() if not key.startswith(name + "/")}
        return self._ar_operation(found, location, None)

    def get_repository_policy(self, request: Request, project: str, location: str, repository: str) -> Answer:
        found = self.find_project(project)
        self._check(found, request, "artifactregistry.repositories.getIamPolicy",
                    f"projects/{found.id}/locations/{location}/repositories/{repository}")
        name, _ = self._repository(found, location, repository)
        return Answer(200, self.repository_policies[name].body())

    def set_repository_policy(self, request: Request, project: str, location: str, repository: str) -> Answer:
        found = self.find_project(project)
        self._check(found, request, "artifactregistry.repositories.setIamPolicy",
                    f"projects/{found.id}/locations/{location}/repositories/{repository}")
        name, _ = self._repository(found, location, repository)
        self._domains_allowed(found, request.body["policy"])
        return Answer(200, self.repository_policies[name].replace(request.body["policy"]))

    def get_ar_operation(self, request: Request, project: str, location: str, name: str) -> Answer:
        return Answer(200, self.operations[f"projects/{project}/locations/{location}/operations/{name}"])

    def push(self, image: str, content: str) -> str:
        """The stand-in ``docker push``: ``REGION-docker.pkg.dev/PROJECT/REPOSITORY/NAME:TAG`` now holds
        ``content``'s digest. Raises KeyError (docker's "name unknown") when the repository does not exist."""
        host, project, repository, rest = image.split("/", 3)
        name, tag = rest.rsplit(":", 1)
        repo_name = f"projects/{project}/locations/{host.removesuffix('-docker.pkg.dev')}/repositories/{repository}"
        if repo_name not in self.repositories:
            raise KeyError(repository)
        digest = "sha256:" + hashlib.sha256(content.encode()).hexdigest()
        versions = self.images.setdefault(f"{repo_name}/packages/{name}", {})
        for tags in versions.values():
            tags.discard(tag)
        versions.setdefault(digest, set()).add(tag)
        return digest

    def _package(self, project: Project, location: str, repository: str, package: str) -> tuple[str, dict]:
        repo_name, _ = self._repository(project, location, repository)
        name = f"{repo_name}/packages/{package}"
        if name not in self.images:
            raise errors.status(404, "Requested entity was not found.")
        return name, self.images[name]

    def _version_body(self, package: str, digest: str, tags: set[str]) -> dict:
        return {"name": f"{package}/versions/{digest}", "createTime": "2026-12-01T09:05:00Z",
                "updateTime": "2026-12-01T09:05:00Z",
                "relatedTags": [{"name": f"{package}/tags/{tag}", "version": f"{package}/versions/{digest}"}
                                for tag in sorted(tags)]}

    def list_packages(self, request: Request, project: str, location: str, repository: str) -> Answer:
        found = self.find_project(project)
        repo_name, _ = self._repository(found, location, repository)
        return Answer(200, {"packages": [{"name": name} for name in self.images if name.startswith(repo_name + "/")]})

    def delete_package(self, request: Request, project: str, location: str, repository: str, package: str) -> Answer:
        found = self.find_project(project)
        self._check(found, request, "artifactregistry.packages.delete",
                    f"projects/{found.id}/locations/{location}/repositories/{repository}/packages/{package}")
        name, _ = self._package(found, location, repository, package)
        del self.images[name]
        return self._ar_operation(found, location, None)

    def list_versions(self, request: Request, project: str, location: str, repository: str, package: str) -> Answer:
        name, versions = self._package(self.find_project(project), location, repository, package)
        return Answer(200, {"versions": [self._version_body(name, digest, tags)
                                         for digest, tags in versions.items()]})

    def get_version(self, request: Request, project: str, location: str, repository: str, package: str,
                    version: str) -> Answer:
        name, versions = self._package(self.find_project(project), location, repository, package)
        if version not in versions:
            raise errors.status(404, "Requested entity was not found.")
        return Answer(200, self._version_body(name, version, versions[version]))

    def delete_version(self, request: Request, project: str, location: str, repository: str, package: str,
                       version: str) -> Answer:
        found = self.find_project(project)
        name, versions = self._package(found, location, repository, package)
        versions.pop(version, None)
        if not versions:
            del self.images[name]
        return self._ar_operation(found, location, None)

    def list_tags(self, request: Request, project: str, location: str, repository: str, package: str) -> Answer:
        name, versions = self._package(self.find_project(project), location, repository, package)
        wanted = request.query.get("filter", "")
        tags = [{"name": f"{name}/tags/{tag}", "version": f"{name}/versions/{digest}"}
                for digest, tagged in versions.items() for tag in sorted(tagged)
                if not wanted or f'"{name}/versions/{digest}"' in wanted]
        return Answer(200, {"tags": tags})

    def get_tag(self, request: Request, project: str, location: str, repository: str, package: str,
                tag: str) -> Answer:
        name, versions = self._package(self.find_project(project), location, repository, package)
        for digest, tags in versions.items():
            if tag in tags:
                return Answer(200, {"name": f"{name}/tags/{tag}", "version": f"{name}/versions/{digest}"})
        raise errors.status(404, "Requested entity was not found.")

    def delete_tag(self, request: Request, project: str, location: str, repository: str, package: str,
                   tag: str) -> Answer:
        name, versions = self._package(self.find_project(project), location, repository, package)
        for tags in versions.values():
            tags.discard(tag)
        return Answer(200, {})

    def list_docker_images(self, request: Request, project: str, location: str, repository: str) -> Answer:
        found = self.find_project(project)
        repo_name, _ = self._repository(found, location, repository)
        images = []
        for name, versions in self.images.items():
            if name.startswith(repo_name + "/"):
                package = name.rsplit("/", 1)[-1]
                for digest, tags in versions.items():
                    uri = f"{location}-docker.pkg.dev/{found.id}/{repository}/{package}@{digest}"
                    images.append({"name": f"{repo_name}/dockerImages/{package}@{digest}", "uri": uri,
                                   "tags": sorted(tags), "imageSizeBytes": "123456789",
                                   "uploadTime": "2026-12-01T09:05:00Z", "updateTime": "2026-12-01T09:05:00Z"})
        return Answer(200, {"dockerImages": images})

    # ------------------------------------------------------------------ Cloud Run
    def _run_key(self, project: Project, region: str, name: str) -> str:
        return f"{project.id}/{region}/{name}"

    def _region_of(self, request: Request) -> str:
        return request.host.split(".", 1)[0].removesuffix("-run")

    def _run_service(self, project: Project, request: Request, name: str) -> dict:
        key = self._run_key(project, self._region_of(request), name)
        if key not in self.run_services:
            raise errors.status(404, f"Resource '{name}' of kind 'SERVICE' in region '{self._region_of(request)}' "
                                     f"in project '{project.id}' does not exist.")
        return self.run_services[key]

    def _serve(self, project: Project, request: Request, body: dict, generation: int) -> dict:
        region = self._region_of(request)
        name = body["metadata"]["name"]
        url = f"https://{name}-{project.number}.{region}.run.app"
        revision = f"{name}-{generation:05d}-{hashlib.sha256(repr(body['spec']).encode()).hexdigest()[:3]}"
        body = copy.deepcopy(body)
        body["metadata"].update({"namespace": project.number, "generation": generation,
                                 "uid": f"uid-{name}", "resourceVersion": f"v{generation}",
                                 "creationTimestamp": "2026-12-01T09:10:00.000000Z"})
        conditions = [{"type": kind, "status": "True", "lastTransitionTime": "2026-12-01T09:10:05.000000Z"}
                      for kind in ("Ready", "ConfigurationsReady", "RoutesReady")]
        body["status"] = {"observedGeneration": generation, "conditions": conditions,
                          "latestReadyRevisionName": revision, "latestCreatedRevisionName": revision,
                          "url": url, "address": {"url": url},
                          "traffic": [{"revisionName": revision, "percent": 100, "latestRevision": True}]}
        return body

    def get_run_service(self, request: Request, project: str, name: str) -> Answer:
        found = self.find_project(project)
        self._check(found, request, "run.services.get", f"namespaces/{found.id}/services/{name}")
        return Answer(200, self._run_service(found, request, name))

    def create_run_service(self, request: Request, project: str) -> Answer:
        found = self.find_project(project)
        name = request.body["metadata"]["name"]
        self._check(found, request, "run.services.create", f"namespaces/{found.id}/services/{name}")
        key = self._run_key(found, self._region_of(request), name)
        if key in self.run_services:
            raise errors.status(409, f"Resource '{name}' already exists.", "ALREADY_EXISTS")
        self.run_services[key] = self._serve(found, request, request.body, 1)
        self.run_policies[key] = Policy()
        return Answer(200, self.run_services[key])

    def replace_run_service(self, request: Request, project: str, name: str) -> Answer:
        found = self.find_project(project)
        self._check(found, request, "run.services.update", f"namespaces/{found.id}/services/{name}")
        current = self._run_service(found, request, name)
        key = self._run_key(found, self._region_of(request), name)
        self.run_services[key] = self._serve(found, request, request.body, current["metadata"]["generation"] + 1)
        return Answer(200, self.run_services[key])

    def delete_run_service(self, request: Request, project: str, name: str) -> Answer:
        found = self.find_project(project)
        self._check(found, request, "run.services.delete", f"namespaces/{found.id}/services/{name}")
        self._run_service(found, request, name)
        key = self._run_key(found, self._region_of(request), name)
        del self.run_services[key]
        self.run_policies.pop(key, None)
        return Answer(200, {"status": "Success", "details": {"name": name, "kind": "services"}})

    def list_run_services(self, request: Request, project: str) -> Answer:
        found = self.find_project(project)
        prefix = f"{found.id}/{self._region_of(request)}/"
        return Answer(200, {"apiVersion": "serving.knative.dev/v1", "kind": "ServiceList",
                            "items": [body for key, body in self.run_services.items() if key.startswith(prefix)]})

    def _run_policy(self, project: Project, region: str, name: str) -> Policy:
        key = self._run_key(project, region, name)
        if key not in self.run_policies:
            raise errors.status(404, f"Resource '{name}' of kind 'SERVICE' in region '{region}' in project "
                                     f"'{project.id}' does not exist.")
        return self.run_policies[key]

    def get_run_policy(self, request: Request, project: str, region: str, name: str) -> Answer:
        found = self.find_project(project)
        self._check(found, request, "run.services.getIamPolicy", f"projects/{found.id}/locations/{region}/services/"
                                                                 f"{name}")
        return Answer(200, self._run_policy(found, region, name).body())

    def set_run_policy(self, request: Request, project: str, region: str, name: str) -> Answer:
        found = self.find_project(project)
        self._check(found, request, "run.services.setIamPolicy", f"projects/{found.id}/locations/{region}/services/"
                                                                 f"{name}")
        policy = self._run_policy(found, region, name)
        self._domains_allowed(found, request.body["policy"])
        return Answer(200, policy.replace(request.body["policy"]))

    def run_app(self, host: str, authorization: str) -> str | Answer | None:
        """Google's front door of the Cloud Run service at ``host``: the local URL that plays its container when the
        caller's identity token names a member of roles/run.invoker; a 403 otherwise; None for no service there."""
        url = f"https://{host}"
        for key, body in self.run_services.items():
            if body["status"]["url"] == url:
                members = self.run_policies[key].members("roles/run.invoker")
                email = token_email(authorization.removeprefix("Bearer ").strip()) if authorization else None
                if "allUsers" in members or (email and f"user:{email}" in members):
                    return self.run_backends.get(url) or Answer(503, {"error": "no container plays this service"})
                return Answer(403, {"error": {"code": 403, "status": "PERMISSION_DENIED", "message":
                                              "Your client does not have permission to get URL from this server."}})
        return None

    # ------------------------------------------------------------------ OAuth
    def token(self, request: Request) -> Answer:
        """A refreshed login: an access token, and an identity token naming the logged-in account."""
        account = self.project.caller
        claims = {"iss": "https://accounts.google.com", "aud": "32555940559.apps.googleusercontent.com",
                  "email": account, "email_verified": True, "iat": 1_800_000_000, "exp": 4_000_000_000}
        return Answer(200, {"access_token": f"access-{account}", "expires_in": 3599, "token_type": "Bearer",
                            "scope": "openid https://www.googleapis.com/auth/cloud-platform",
                            "id_token": identity_token(claims)})


def identity_token(claims: dict) -> str:
    """An unsigned JWT carrying ``claims`` (the emulator's Cloud Run door reads its e-mail)."""
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def token_email(token: str) -> str | None:
    """The ``email`` claim of an identity token made by :func:`identity_token`."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["email"]
    except (IndexError, ValueError, KeyError):
        return None


_FILTER_TERM = re.compile(r'\(?\s*(?P<field>[\w.]+)\s+(?P<op>eq|ne)\s+"?(?P<value>(?:[^"\\]|\\.)*)"?\s*\)?')


def _matches(expression: str, item: dict) -> bool:
    """Compute Engine's list filter, server side: ``FIELD eq|ne "RE2 regex"`` terms, all of which must hold.

    The regex must match the whole value, as RE2's FullMatch does; gcloud writes ``name=X`` as
    ``name eq ".*\\bX\\b.*"``, which a longer name that contains X as a word matches too.
    """
    for term in _FILTER_TERM.finditer(expression):
        value = item
        for part in term["field"].split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        found = re.fullmatch(term["value"].replace('\\"', '"'), str(value)) is not None
        if found != (term["op"] == "eq"):
            return False
    return True
