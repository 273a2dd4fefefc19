"""The cloud step on Google Cloud, as exact commands: Artifact Registry, a Compute Engine VM, a firewall rule.

Why not the original lab's commands? Container Registry (``eu.gcr.io``) stopped
accepting pushes on 2025-03-18: images now go to Artifact Registry, named
``REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE:TAG``. And
``gcloud compute instances create-with-container`` relied on a container
start-up agent that stopped working for new VMs on 2026-07-31: the VM now runs
Container-Optimized OS (``cos-stable``), whose start-up script pulls and runs
the image itself (see ``startup.sh`` beside this file).

Every function here only *builds* commands (:class:`Step`); :mod:`workshop.deploy.runner`
prints them (dry run, the default) or runs them (``--execute``).
"""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import requests

#: Google Cloud APIs the deployment uses.
REQUIRED_APIS = ("artifactregistry.googleapis.com", "compute.googleapis.com")

#: Label put on everything this module creates, to find leftovers.
LABEL = "app=deploy-ml-workshop"

_PUBLIC_IP_SERVICES = ("https://api.ipify.org", "https://ifconfig.me/ip")


@dataclass(frozen=True)
class Step:
    """One command of the plan. ``unless``: a check; when it succeeds the step is already done (idempotence)."""

    title: str
    command: tuple[str, ...]
    unless: tuple[str, ...] | None = None

    def shell(self) -> str:
        """The step as one line to copy into a terminal."""
        line = shlex.join(self.command)
        if self.unless:
            return f"{shlex.join(self.unless)} >/dev/null 2>&1 || {line}"
        return line


@dataclass
class DeployConfig:
    """Everything the deployment needs to know; defaults suit the lab."""

    project: str
    region: str = "europe-west1"
    zone: str | None = None  # default: <region>-b
    repository: str = "workshop"
    image_name: str = "backend"
    tag: str = "latest"
    local_image: str = "deploy-ml-workshop/backend:latest"
    vm_name: str = "workshop-backend"
    machine_type: str = "e2-medium"
    boot_disk_size: str = "20GB"
    network_tag: str = "workshop-backend"
    firewall_rule: str = "workshop-allow-8000"
    port: int = 8000
    source_range: str | None = None  # default: the caller's public IP, else 0.0.0.0/0
    api_key: str | None = None  # default: a new random key
    startup_script: Path = field(default_factory=lambda: Path(".workshop-deploy") / "startup.sh")

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", self.project or ""):
            raise ValueError(
                f"'{self.project}' is not a Google Cloud project id (6-30 lowercase letters, digits and hyphens)."
            )
        self.zone = self.zone or f"{self.region}-b"

    @property
    def registry_host(self) -> str:
        return f"{self.region}-docker.pkg.dev"

    @property
    def remote_image(self) -> str:
        """The image's Artifact Registry name."""
        return f"{self.registry_host}/{self.project}/{self.repository}/{self.image_name}:{self.tag}"


def default_project() -> str | None:
    """The project gcloud is configured with (``gcloud config get-value project``), if any."""
    import subprocess

    try:
        result = subprocess.run(
            ["gcloud", "config", "get-value", "project"], capture_output=True, text=True, timeout=30
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    project = result.stdout.strip()
    return project if result.returncode == 0 and project and project != "(unset)" else None


def generate_api_key() -> str:
    """A random API key: 32 URL-safe characters, about 190 bits."""
    return secrets.token_urlsafe(24)


def public_ip(timeout: float = 3.0) -> str | None:
    """This machine's public IPv4 address as the internet sees it, or None when it cannot be found."""
    for url in _PUBLIC_IP_SERVICES:
        try:
            answer = requests.get(url, timeout=timeout).text.strip()
        except requests.RequestException:
            continue
        if re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", answer):
            return answer
    return None


def resolve_access(config: DeployConfig) -> list[str]:
    """Fill in the API key and the firewall's source range; return what the student must be told."""
    notes = []
    if config.api_key is None:
        config.api_key = generate_api_key()
        notes.append(f"Generated API key (shown once, keep it): {config.api_key}")
    if config.source_range is None:
        ip = public_ip()
        if ip:
            config.source_range = f"{ip}/32"
            notes.append(f"Port {config.port} will be open to this machine's public IP only: {config.source_range}")
        else:
            config.source_range = "0.0.0.0/0"
            notes.append(
                f"This machine's public IP could not be found: port {config.port} will be open to the whole "
                "internet, protected by the API key."
            )
    return notes


def startup_script_text() -> str:
    """The VM's start-up script (bash, run as root at every boot)."""
    return resources.files("workshop.deploy").joinpath("startup.sh").read_text()


def check_steps(config: DeployConfig) -> list[Step]:
    """1. gcloud installed and logged in, the project exists, the APIs are on."""
    return [
        Step("Check that gcloud is installed", ("gcloud", "--version")),
        Step(
            "Check that you are logged in",
            ("gcloud", "auth", "list", "--filter=status:ACTIVE", "--format=value(account)"),
        ),
        Step("Check the project", ("gcloud", "projects", "describe", config.project, "--format=value(projectId)")),
        Step("Enable the APIs", ("gcloud", "services", "enable", *REQUIRED_APIS, f"--project={config.project}")),
    ]


def push_steps(config: DeployConfig) -> list[Step]:
    """2. An Artifact Registry repository, docker auth for its host only, tag and push."""
    return [
        Step(
            "Create the Artifact Registry repository",
            (
                "gcloud", "artifacts", "repositories", "create", config.repository,
                "--repository-format=docker", f"--location={config.region}",
                "--description=deploy-ml-workshop images", f"--labels={LABEL}", f"--project={config.project}",
            ),
            unless=(
                "gcloud", "artifacts", "repositories", "describe", config.repository,
                f"--location={config.region}", f"--project={config.project}",
            ),
        ),
        Step("Let docker log in to that registry", ("gcloud", "auth", "configure-docker", config.registry_host, "--quiet")),
        Step("Tag the back-end image", ("docker", "tag", config.local_image, config.remote_image)),
        Step("Push the back-end image", ("docker", "push", config.remote_image)),
    ]


def vm_steps(config: DeployConfig) -> list[Step]:
    """3 and 4. The VM (cos-stable, start-up script, network tag, key as metadata) and its firewall rule."""
    metadata = f"image={config.remote_image},api-key={config.api_key},port={config.port},google-logging-enabled=true"
    return [
        Step(
            "Create the VM",
            (
                "gcloud", "compute", "instances", "create", config.vm_name,
                f"--project={config.project}", f"--zone={config.zone}", f"--machine-type={config.machine_type}",
                "--image-family=cos-stable", "--image-project=cos-cloud", f"--boot-disk-size={config.boot_disk_size}",
                f"--tags={config.network_tag}", f"--labels={LABEL}",
                f"--metadata={metadata}", f"--metadata-from-file=startup-script={config.startup_script}",
            ),
            unless=(
                "gcloud", "compute", "instances", "describe", config.vm_name,
                f"--zone={config.zone}", f"--project={config.project}",
            ),
        ),
        Step(
            "Open the port to the VM's tag",
            (
                "gcloud", "compute", "firewall-rules", "create", config.firewall_rule,
                f"--project={config.project}", "--network=default", "--direction=INGRESS", "--action=ALLOW",
                f"--rules=tcp:{config.port}", f"--target-tags={config.network_tag}",
                f"--source-ranges={config.source_range}",
            ),
            unless=("gcloud", "compute", "firewall-rules", "describe", config.firewall_rule, f"--project={config.project}"),
        ),
    ]


def external_ip_step(config: DeployConfig) -> Step:
    """5. The VM's external IP (then :func:`workshop.deploy.runner.wait_for_health` polls it)."""
    return Step(
        "Read the VM's external IP",
        (
            "gcloud", "compute", "instances", "describe", config.vm_name, f"--zone={config.zone}",
            f"--project={config.project}", "--format=get(networkInterfaces[0].accessConfigs[0].natIP)",
        ),
    )


def deploy_steps(config: DeployConfig) -> list[Step]:
    """The whole deployment, in order (the health wait comes after these)."""
    return [*check_steps(config), *push_steps(config), *vm_steps(config), external_ip_step(config)]


def teardown_steps(config: DeployConfig, delete_image: bool = False, delete_repository: bool = False) -> list[Step]:
    """6. Delete the VM and the firewall rule; the image and the repository when asked."""
    steps = [
        Step(
            "Delete the VM (and its boot disk)",
            ("gcloud", "compute", "instances", "delete", config.vm_name, f"--zone={config.zone}",
             f"--project={config.project}", "--quiet"),
        ),
        Step(
            "Delete the firewall rule",
            ("gcloud", "compute", "firewall-rules", "delete", config.firewall_rule, f"--project={config.project}", "--quiet"),
        ),
    ]
    if delete_image or delete_repository:
        steps.append(
            Step(
                "Delete the image",
                ("gcloud", "artifacts", "docker", "images", "delete", config.remote_image.rsplit(":", 1)[0],
                 "--delete-tags", "--quiet"),
            )
        )
    if delete_repository:
        steps.append(
            Step(
                "Delete the repository",
                ("gcloud", "artifacts", "repositories", "delete", config.repository, f"--location={config.region}",
                 f"--project={config.project}", "--quiet"),
            )
        )
    return steps


def leftover_steps(config: DeployConfig) -> list[Step]:
    """What may still cost money after a teardown: VMs, disks, static IPs, image repositories."""
    label = f"--filter=labels.{LABEL}"
    return [
        Step("VMs left", ("gcloud", "compute", "instances", "list", f"--project={config.project}", label)),
        Step("Disks left", ("gcloud", "compute", "disks", "list", f"--project={config.project}")),
        Step("Reserved IP addresses left", ("gcloud", "compute", "addresses", "list", f"--project={config.project}")),
        Step(
            "Image repositories left (storage is billed)",
            ("gcloud", "artifacts", "repositories", "list", f"--project={config.project}", f"--location={config.region}"),
        ),
    ]
