"""The cloud step on Google Cloud, as exact commands: Artifact Registry, then a Compute Engine VM and its
firewall rule, or a Cloud Run service (``--target cloud-run``).

Why not the original lab's commands? Container Registry (``eu.gcr.io``) stopped
accepting pushes on 2025-03-18: images now go to Artifact Registry, named
``REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE:TAG``. And
``gcloud compute instances create-with-container`` relied on the container
start-up agent, which Google deprecated: from 2026-07-31 the workflows that rely
on it stop working. The VM now runs Container-Optimized OS (``cos-stable``),
whose start-up script pulls and runs the image itself (see ``startup.sh`` beside
this file).

Every function here only *builds* commands (:class:`Step`); :mod:`workshop.deploy.runner`
prints them (dry run, the default) or runs them (``--execute``). A few values are
known only while the plan runs (the project's number, the pushed image's digest,
the VM's IP): a step *captures* them into a shell variable, and later steps use
``${NAME}``. The printed plan is therefore a shell script that runs as printed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shlex
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import requests

#: Google Cloud APIs the deployment uses.
REQUIRED_APIS = ("artifactregistry.googleapis.com", "compute.googleapis.com")
#: The same for the Cloud Run target: no VM, so no Compute Engine.
CLOUD_RUN_APIS = ("artifactregistry.googleapis.com", "run.googleapis.com")

#: The deployment targets: one VM that the student manages, or a Cloud Run service that Google scales.
TARGETS = ("vm", "cloud-run")

#: Label put on everything this module creates, to find leftovers.
LABEL = "app=deploy-ml-workshop"

#: Names of the values captured while the plan runs (shell variables in the printed plan).
API_KEY = "API_KEY"
PROJECT_NUMBER = "PROJECT_NUMBER"
IMAGE_DIGEST = "IMAGE_DIGEST"
EXTERNAL_IP = "EXTERNAL_IP"
SERVICE_URL = "SERVICE_URL"

#: The local port ``gcloud run services proxy`` listens on, in the printed instructions.
PROXY_PORT = 8080

#: The longest per-student suffix: the longest name it ends ("workshop-allow-8000-" + suffix) stays far
#: below Compute Engine's 63 characters, with room for a longer --vm-name.
STUDENT_MAX = 20

_PUBLIC_IP_SERVICES = ("https://api.ipify.org", "https://ifconfig.me/ip")


def var(name: str) -> str:
    """A captured value, as later steps write it: ``${NAME}``."""
    return "${" + name + "}"


def _shell_word(arg: str) -> str:
    # Arguments that use a captured value go in double quotes, so the shell expands them; ours never hold
    # a double quote, a backslash or a backquote.
    if "${" in arg:
        return f'"{arg}"'
    return shlex.quote(arg)


def _shell_line(command: tuple[str, ...]) -> str:
    return " ".join(_shell_word(arg) for arg in command)


@dataclass(frozen=True)
class Step:
    """One command of the plan.

    ``unless``: a check; when it succeeds the step is already done (idempotence). With ``expect``, the check
    must also print that exact line on its standard output (a value already up to date).
    ``then``: a second command, run only when the first one ran (restart after an update).
    ``capture``: the name of a shell variable that receives the command's standard output (stderr apart).
    ``missing_ok``: a "not found" answer counts as done (deletions: the resource is already gone).
    """

    title: str
    command: tuple[str, ...]
    unless: tuple[str, ...] | None = None
    expect: str | None = None
    then: tuple[str, ...] | None = None
    capture: str | None = None
    missing_ok: bool = False

    def shell(self) -> str:
        """The step as one line to paste into a terminal (bash), from any directory."""
        line = _shell_line(self.command)
        if self.capture:
            line = f"{self.capture}=$({line})"
        if self.then:
            line = f"{{ {line} && {_shell_line(self.then)}; }}"
        if self.missing_ok:
            line = f"{line} || true"
        if self.unless and self.expect is not None:
            return f"{_shell_line(self.unless)} 2>/dev/null | grep -qxF {_shell_word(self.expect)} || {line}"
        if self.unless:
            return f"{_shell_line(self.unless)} >/dev/null 2>&1 || {line}"
        return line


def sanitise_student(name: str) -> str:
    """A name fit for the end of a Compute Engine name: lowercase letters, digits and single hyphens."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:STUDENT_MAX].strip("-")
    if not cleaned:
        raise ValueError(f"'{name}' gives no usable student name: use letters and digits, e.g. --student ada.")
    return cleaned


def student_from_account(account: str) -> str:
    """The per-student suffix derived from a gcloud account: ``jean.dupont@univ.fr`` → ``jean-dupont-1a2b``.

    The part before the @ keeps it readable for the teacher; four hex digits of the whole address keep two
    students apart even when their names are cut short or written alike (jean.dupont, jean-dupont).
    """
    local = re.sub(r"[^a-z0-9]+", "-", account.split("@")[0].lower()).strip("-")[: STUDENT_MAX - 5].strip("-")
    digest = hashlib.sha256(account.strip().lower().encode()).hexdigest()[:4]
    return f"{local or 's'}-{digest}"


def active_account() -> str | None:
    """The account gcloud is logged in with (``gcloud config get-value account``), if any."""
    return _gcloud_value("account")


def resolve_student(given: str | None) -> str | None:
    """The student suffix: the name given (``--student``), else one derived from the active gcloud account."""
    if given:
        return sanitise_student(given)
    account = active_account()
    return student_from_account(account) if account else None


def server_queue_size() -> int:
    """How many predictions one back-end lets wait at once (``WORKSHOP_MAX_PENDING_PREDICTIONS``)."""
    from workshop.settings import get_settings

    return get_settings().max_pending_predictions


@dataclass
class DeployConfig:
    """Everything the deployment needs to know; defaults suit the lab.

    ``student``: a suffix added to every per-student name (VM, firewall rule, network tag, Cloud Run service,
    image), so a class shares one project without touching each other's resources. The repository is shared.
    The ``service_name`` … ``concurrency`` fields are the Cloud Run target's; the VM ignores them.
    """

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
    api_key: str | None = None  # default: the VM's key on a re-run, else the saved one, else a new random key
    student: str | None = None
    max_run_duration: str = "4h"  # the VM deletes itself after this (cost guard); "" for no limit
    work_dir: Path = field(default_factory=lambda: Path(".workshop-deploy"))
    service_name: str = "workshop-backend"
    cpu: str = "2"
    memory: str = "2Gi"
    max_instances: int = 3  # cost guard: at most this many instances bill at once, whatever the load
    concurrency: int = field(default_factory=server_queue_size)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", self.project or ""):
            raise ValueError(
                f"'{self.project}' is not a Google Cloud project id (6-30 lowercase letters, digits and hyphens)."
            )
        if self.max_run_duration and not re.fullmatch(r"(\d+d)?(\d+h)?(\d+m)?(\d+s)?", self.max_run_duration):
            raise ValueError(f"'{self.max_run_duration}' is not a duration: write it like 4h, 90m or 1d2h.")
        self.zone = self.zone or f"{self.region}-b"
        # Absolute: the printed plan names these files, and it must run from wherever it is pasted.
        self.work_dir = Path(self.work_dir).absolute()
        if self.student:
            self.student = sanitise_student(self.student)
            for name in ("vm_name", "firewall_rule", "network_tag", "image_name", "service_name"):
                setattr(self, name, f"{getattr(self, name)}-{self.student}")
        if not 1 <= self.max_instances <= 100:
            raise ValueError(f"--max-instances {self.max_instances}: give a number from 1 to 100 (a small one: "
                             "each instance bills while it runs).")
        if self.concurrency < 1:
            raise ValueError(f"A concurrency of {self.concurrency} serves nobody: give 1 or more.")

    @property
    def registry_host(self) -> str:
        return f"{self.region}-docker.pkg.dev"

    @property
    def image_path(self) -> str:
        """The image's Artifact Registry name, without tag or digest."""
        return f"{self.registry_host}/{self.project}/{self.repository}/{self.image_name}"

    @property
    def remote_image(self) -> str:
        """The image's Artifact Registry name, with its tag (what docker pushes)."""
        return f"{self.image_path}:{self.tag}"

    @property
    def pinned_image(self) -> str:
        """The image by digest (what the VM runs): a new push is a new name, so a re-run sees the change."""
        return f"{self.image_path}@{var(IMAGE_DIGEST)}"

    @property
    def startup_script(self) -> Path:
        return self.work_dir / "startup.sh"

    @property
    def api_key_file(self) -> Path:
        """Where the key is kept (git-ignored): the plan reads it from there, so it never shows the key."""
        return self.work_dir / "api-key"

    @property
    def service_account(self) -> str:
        """The project's default compute service account, the identity the VM pulls the image with."""
        return f"serviceAccount:{var(PROJECT_NUMBER)}-compute@developer.gserviceaccount.com"

    @property
    def labels(self) -> str:
        return f"{LABEL},student={self.student}" if self.student else LABEL


def _gcloud_value(key: str) -> str | None:
    try:
        result = subprocess.run(
            ["gcloud", "config", "get-value", key], capture_output=True, text=True, timeout=30
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    value = result.stdout.strip()
    return value if result.returncode == 0 and value and value != "(unset)" else None


def default_project() -> str | None:
    """The project gcloud is configured with (``gcloud config get-value project``), if any."""
    return _gcloud_value("project")


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


def resolve_api_key(config: DeployConfig, key_on_vm: str | None = None) -> list[str]:
    """Fill in the API key and save it (mode 600); return what the student must be told.

    The key, in this order: the one given, the one the VM already has (a re-run keeps it working),
    the one saved by an earlier run, a new one.
    """
    notes = []
    saved = config.api_key_file.read_text().strip() if config.api_key_file.is_file() else None
    if config.api_key:
        if key_on_vm and key_on_vm != config.api_key:
            notes.append("A new API key was given: the VM's metadata will be updated and the VM restarted.")
    elif key_on_vm:
        config.api_key = key_on_vm
        notes.append("The VM already exists: its API key is kept.")
    elif saved:
        config.api_key = saved
    else:
        config.api_key = generate_api_key()
        notes.append("Generated a new API key.")
    config.work_dir.mkdir(parents=True, exist_ok=True)
    config.api_key_file.write_text(config.api_key + "\n")
    config.api_key_file.chmod(0o600)
    notes.append(f"API key: in {config.api_key_file} (read it with: cat {shlex.quote(str(config.api_key_file))})")
    return notes


def resolve_access(config: DeployConfig, key_on_vm: str | None = None) -> list[str]:
    """Fill in the API key and the firewall's source range; save the key; return what the student must be told.

    The key, in this order: the one given, the one the VM already has (a re-run keeps it working),
    the one saved by an earlier run, a new one.
    """
    notes = resolve_api_key(config, key_on_vm)
    if config.source_range is None:
        ip = public_ip()
        if ip:
            config.source_range = f"{ip}/32"
            notes.append(
                f"Port {config.port} will be open to this machine's public IP only: {config.source_range} "
                "(a browser elsewhere is refused: see the guide)"
            )
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


def check_steps(config: DeployConfig, apis: tuple[str, ...] = REQUIRED_APIS) -> list[Step]:
    """1. gcloud installed and logged in, the project exists (its number read), the APIs are on."""
    return [
        Step("Check that gcloud is installed", ("gcloud", "--version")),
        Step(
            "Check that you are logged in",
            ("gcloud", "auth", "list", "--filter=status:ACTIVE", "--format=value(account)"),
        ),
        Step(
            "Check the project and read its number",
            ("gcloud", "projects", "describe", config.project, "--format=value(projectNumber)"),
            capture=PROJECT_NUMBER,
        ),
        Step("Enable the APIs", ("gcloud", "services", "enable", *apis, f"--project={config.project}")),
    ]


def _iam_check(what: tuple[str, ...], role: str) -> tuple[str, ...]:
    # Lists the members holding the role; the step is done when the service account is one of them.
    # Reading first keeps 30 students from rewriting the same policy at once (and lets a student without
    # the right to change IAM pass once the teacher has granted it).
    return (
        *what, "--flatten=bindings[].members", f"--filter=bindings.role={role}", "--format=value(bindings.members)",
    )


def access_steps(config: DeployConfig) -> list[Step]:
    """2. The VM's identity may pull from the repository and write logs (new organisations no longer give it Editor)."""
    member = config.service_account
    repository = (config.repository, f"--location={config.region}", f"--project={config.project}")
    reader, writer = "roles/artifactregistry.reader", "roles/logging.logWriter"
    return [
        Step(
            "Let the VM's service account pull from the repository",
            ("gcloud", "artifacts", "repositories", "add-iam-policy-binding", *repository,
             f"--member={member}", f"--role={reader}", "--format=none"),
            unless=_iam_check(("gcloud", "artifacts", "repositories", "get-iam-policy", *repository), reader),
            expect=member,
        ),
        Step(
            "Let the VM's service account write logs",
            ("gcloud", "projects", "add-iam-policy-binding", config.project,
             f"--member={member}", f"--role={writer}", "--condition=None", "--format=none"),
            unless=_iam_check(("gcloud", "projects", "get-iam-policy", config.project), writer),
            expect=member,
        ),
    ]


def push_steps(config: DeployConfig) -> list[Step]:
    """3. An Artifact Registry repository, the VM's right to pull, docker auth for its host only, tag, push, digest."""
    create, *upload = registry_steps(config)
    return [create, *access_steps(config), *upload]


def registry_steps(config: DeployConfig) -> list[Step]:
    """The repository, docker auth for its host only, tag, push, read the digest: what both targets share."""
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
        Step("Let docker log in to that registry",
             ("gcloud", "auth", "configure-docker", config.registry_host, "--quiet")),
        Step("Tag the back-end image", ("docker", "tag", config.local_image, config.remote_image)),
        Step("Push the back-end image", ("docker", "push", config.remote_image)),
        Step(
            "Read the pushed image's digest",
            ("gcloud", "artifacts", "docker", "images", "describe", config.remote_image,
             "--format=value(image_summary.digest)"),
            capture=IMAGE_DIGEST,
        ),
    ]


def _vm(config: DeployConfig) -> tuple[str, ...]:
    return (config.vm_name, f"--zone={config.zone}", f"--project={config.project}")


def vm_steps(config: DeployConfig) -> list[Step]:
    """4 and 5. The VM (cos-stable, start-up script, tag, metadata, deletion time), kept current; its firewall rule."""
    metadata = f"image={config.pinned_image},api-key={var(API_KEY)},port={config.port},google-logging-enabled=true"
    cost_guard = (
        (f"--max-run-duration={config.max_run_duration}", "--instance-termination-action=DELETE")
        if config.max_run_duration else ()
    )
    rule = (config.firewall_rule, f"--project={config.project}")
    return [
        Step("Read the API key (kept out of the printed plan)", ("cat", str(config.api_key_file)), capture=API_KEY),
        Step(
            "Create the VM",
            (
                "gcloud", "compute", "instances", "create", *_vm(config), f"--machine-type={config.machine_type}",
                "--image-family=cos-stable", "--image-project=cos-cloud", f"--boot-disk-size={config.boot_disk_size}",
                f"--tags={config.network_tag}", f"--labels={config.labels}", *cost_guard,
                f"--metadata={metadata}", f"--metadata-from-file=startup-script={config.startup_script}",
            ),
            unless=("gcloud", "compute", "instances", "describe", *_vm(config)),
        ),
        Step(
            "Give an existing VM the new image and key, then restart it",
            ("gcloud", "compute", "instances", "add-metadata", *_vm(config),
             f"--metadata=image={config.pinned_image},api-key={var(API_KEY)}"),
            unless=("gcloud", "compute", "instances", "describe", *_vm(config),
                    "--format=csv[no-heading](metadata.items.image,metadata.items.api-key)"),
            expect=f"{config.pinned_image},{var(API_KEY)}",
            # The start-up script reads the metadata at boot. A reset keeps the VM running, so its
            # automatic deletion time stays; a stop would clear it.
            then=("gcloud", "compute", "instances", "reset", *_vm(config)),
        ),
        Step(
            "Open the port to the VM's tag",
            (
                "gcloud", "compute", "firewall-rules", "create", *rule, "--network=default", "--direction=INGRESS",
                "--action=ALLOW", f"--rules=tcp:{config.port}", f"--target-tags={config.network_tag}",
                f"--source-ranges={config.source_range}",
            ),
            unless=("gcloud", "compute", "firewall-rules", "describe", *rule),
        ),
        Step(
            "Let the firewall follow this machine's IP",
            ("gcloud", "compute", "firewall-rules", "update", *rule, f"--source-ranges={config.source_range}"),
            unless=("gcloud", "compute", "firewall-rules", "describe", *rule, "--format=value(sourceRanges)"),
            # gcloud's value() format joins a list with ";", where --source-ranges takes ",".
            expect=str(config.source_range).replace(",", ";"),
        ),
    ]


def external_ip_step(config: DeployConfig) -> Step:
    """6. The VM's external IP (then :func:`workshop.deploy.runner.wait_for_health` polls it)."""
    return Step(
        "Read the VM's external IP",
        ("gcloud", "compute", "instances", "describe", *_vm(config),
         "--format=get(networkInterfaces[0].accessConfigs[0].natIP)"),
        capture=EXTERNAL_IP,
    )


def deploy_steps(config: DeployConfig) -> list[Step]:
    """The whole deployment, in order (the health wait comes after these)."""
    return [*check_steps(config), *push_steps(config), *vm_steps(config), external_ip_step(config)]


def key_on_vm_step(config: DeployConfig) -> Step:
    """The API key in an existing VM's metadata (a re-run keeps it); fails when there is no VM."""
    return Step(
        "Read the API key of the VM, if it exists",
        ("gcloud", "compute", "instances", "describe", *_vm(config), "--format=value(metadata.items.api-key)"),
        capture=API_KEY,
    )


def teardown_steps(config: DeployConfig, delete_image: bool = False, delete_repository: bool = False) -> list[Step]:
    """7. Delete the VM and the firewall rule; the image and the repository when asked. Gone already is fine."""
    steps = [
        Step("Delete the VM (and its boot disk)",
             ("gcloud", "compute", "instances", "delete", *_vm(config), "--quiet"), missing_ok=True),
        Step("Delete the firewall rule",
             ("gcloud", "compute", "firewall-rules", "delete", config.firewall_rule, f"--project={config.project}",
              "--quiet"), missing_ok=True),
    ]
    return [*steps, *registry_teardown_steps(config, delete_image, delete_repository)]


def registry_teardown_steps(config: DeployConfig, delete_image: bool, delete_repository: bool) -> list[Step]:
    """The student's image and the class's repository, when asked (both targets)."""
    steps = []
    if delete_image or delete_repository:
        steps.append(Step("Delete the image",
                          ("gcloud", "artifacts", "docker", "images", "delete", config.image_path, "--delete-tags",
                           "--quiet"), missing_ok=True))
    if delete_repository:
        steps.append(Step("Delete the repository",
                          ("gcloud", "artifacts", "repositories", "delete", config.repository,
                           f"--location={config.region}", f"--project={config.project}", "--quiet"), missing_ok=True))
    return steps


@dataclass(frozen=True)
class Leftover:
    """A check for one kind of resource that may be left: its command prints one line per resource left."""

    kind: str
    step: Step
    counts: bool  # whether this teardown was asked to delete it (then it decides the exit code)


def leftover_checks(
    config: DeployConfig, delete_image: bool = False, delete_repository: bool = False
) -> list[Leftover]:
    """What may still cost money after a teardown: this student's VM, disk, firewall rule, image; the repository."""
    project = f"--project={config.project}"
    return [
        _listing("VMs", ("gcloud", "compute", "instances", "list", project, f"--filter=name={config.vm_name}",
                         "--format=value(name)"), True),
        _listing("Boot disks", ("gcloud", "compute", "disks", "list", project, f"--filter=name={config.vm_name}",
                                "--format=value(name)"), True),
        _listing("Firewall rules", ("gcloud", "compute", "firewall-rules", "list", project,
                                    f"--filter=name={config.firewall_rule}", "--format=value(name)"), True),
        *registry_leftover_checks(config, delete_image, delete_repository),
    ]


def _listing(kind: str, command: tuple[str, ...], counts: bool) -> Leftover:
    return Leftover(kind, Step(f"Left: {kind}", command, missing_ok=True), counts)


def registry_leftover_checks(config: DeployConfig, delete_image: bool, delete_repository: bool) -> list[Leftover]:
    """The student's image and the class's repository (both targets); they count only when asked to go."""
    return [
        _listing("Images", ("gcloud", "artifacts", "docker", "images", "list", config.image_path,
                            "--format=value(version)"), delete_image or delete_repository),
        _listing("Repository (shared by the class)", ("gcloud", "artifacts", "repositories", "describe",
                                                      config.repository, f"--location={config.region}",
                                                      f"--project={config.project}", "--format=value(name)"),
                 delete_repository),
    ]



# ------------------------------------------------------------------------------------------- Cloud Run
# The same image registry, then one command: Google runs the container, starts instances when requests
# come, stops them when none do, and checks every caller's identity (IAM) before a request reaches it.

#: The start-up probe: Cloud Run sends no traffic to a new instance before /ready answers 200 (the model is
#: loaded and warmed up), and replaces an instance that is not ready after periodSeconds × failureThreshold
#: = 120 s (Cloud Run's limit is 600 s). Flag syntax as ``gcloud run deploy --startup-probe`` takes it.
STARTUP_PROBE = "httpGet.path=/ready,httpGet.port={port},periodSeconds=5,timeoutSeconds=3,failureThreshold=24"


def _service(config: DeployConfig) -> tuple[str, ...]:
    return (config.service_name, f"--region={config.region}", f"--project={config.project}")


def cloud_run_fingerprint(config: DeployConfig) -> str:
    """Twelve hex digits that change with any setting of the service but the image (the key included, unreadable).

    Kept in a label of the service: a re-run compares it with its own, as it compares the image digest,
    and deploys a new revision only when one of them changed.
    """
    settings = (config.port, config.cpu, config.memory, config.concurrency, config.max_instances,
                STARTUP_PROBE, hashlib.sha256((config.api_key or "").encode()).hexdigest())
    return hashlib.sha256(repr(settings).encode()).hexdigest()[:12]


def cloud_run_deploy_step(config: DeployConfig) -> Step:
    """``gcloud run deploy`` of the pushed image, by digest, unless the service already runs it as configured."""
    fingerprint = cloud_run_fingerprint(config)
    return Step(
        "Deploy the Cloud Run service (a new revision when the image or a setting changed)",
        (
            "gcloud", "run", "deploy", *_service(config), f"--image={config.pinned_image}",
            f"--port={config.port}", f"--cpu={config.cpu}", f"--memory={config.memory}",
            # One instance takes as many requests at once as the server's own queue lets wait
            # (WORKSHOP_MAX_PENDING_PREDICTIONS): fewer, and Cloud Run would start instances while one still
            # had room; more, and the extra requests would get the server's 503 "busy" instead of a new instance.
            f"--concurrency={config.concurrency}",
            # Min 0: no request, no instance, nothing billed (the price: a cold start). Max: the cost guard.
            "--min-instances=0", f"--max-instances={config.max_instances}",
            f"--startup-probe={STARTUP_PROBE.format(port=config.port)}",
            # Only callers that IAM lets invoke the service get in: no public URL, no open port.
            "--no-allow-unauthenticated",
            f"--labels={config.labels},workshop-config={fingerprint}",
            # The key as a plain environment variable: anyone who may read the service's settings in this
            # project can read it too. Secret Manager (--set-secrets) would hide it, at the price of another API
            # and a role for the service's identity; here IAM is the lock and the key a second one, as on the VM.
            f"--set-env-vars=WORKSHOP_API_KEY={var(API_KEY)}",
        ),
        unless=("gcloud", "run", "services", "describe", *_service(config),
                "--format=csv[no-heading](spec.template.spec.containers[0].image,metadata.labels.workshop-config)"),
        expect=f"{config.pinned_image},{fingerprint}",
    )


def cloud_run_deploy_steps(config: DeployConfig) -> list[Step]:
    """The whole Cloud Run deployment: checks, the shared registry steps, the service, its URL."""
    return [
        *check_steps(config, apis=CLOUD_RUN_APIS),
        *registry_steps(config),
        Step("Read the API key (kept out of the printed plan)", ("cat", str(config.api_key_file)), capture=API_KEY),
        cloud_run_deploy_step(config),
        Step("Read the service's URL (it answers only to callers IAM lets in)",
             ("gcloud", "run", "services", "describe", *_service(config), "--format=value(status.url)"),
             capture=SERVICE_URL),
    ]


def proxy_command(config: DeployConfig) -> str:
    """How the student reaches the service: gcloud signs each request with their identity, on localhost."""
    return _shell_line(("gcloud", "run", "services", "proxy", *_service(config), f"--port={PROXY_PORT}"))


def cloud_run_teardown_steps(
    config: DeployConfig, delete_image: bool = False, delete_repository: bool = False
) -> list[Step]:
    """Delete the service (its revisions go with it); the image and the repository when asked."""
    return [
        Step("Delete the Cloud Run service", ("gcloud", "run", "services", "delete", *_service(config), "--quiet"),
             missing_ok=True),
        *registry_teardown_steps(config, delete_image, delete_repository),
    ]


def cloud_run_leftover_checks(
    config: DeployConfig, delete_image: bool = False, delete_repository: bool = False
) -> list[Leftover]:
    """What may still cost money after a Cloud Run teardown: this student's service and image; the repository."""
    return [
        _listing("Cloud Run services", ("gcloud", "run", "services", "list", f"--region={config.region}",
                                        f"--project={config.project}", f"--filter=metadata.name={config.service_name}",
                                        "--format=value(metadata.name)"), True),
        *registry_leftover_checks(config, delete_image, delete_repository),
    ]
