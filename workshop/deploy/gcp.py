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

Every function here only *builds* the plan: a list of :class:`Step`, one command each, written as a person
writes it. :mod:`workshop.deploy.runner` prints the plan (dry run, the default) or runs it (``--execute``), and
notebook 06's cells are the same steps (:mod:`workshop.deploy.notebook_cells`). What makes a step safe to run
again lives beside its command, not in a shell pipeline: a :class:`Check` that says it is already done (the
repository exists, the role is granted), and an :class:`Update` for a resource that exists but differs (the VM
runs another image, the firewall lets in another address). A few values are known only while the plan runs
(the project's service account, the pushed image's digest, the VM's IP): a step *captures* one into a shell
variable, ``VAR=$(gcloud ... --format='value(x)')``, and later steps use ``${VAR}``.
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

from workshop.checkpoints import Text, say

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
SERVICE_ACCOUNT = "SERVICE_ACCOUNT"
IMAGE_DIGEST = "IMAGE_DIGEST"
EXTERNAL_IP = "EXTERNAL_IP"
SERVICE_URL = "SERVICE_URL"

#: The local port ``gcloud run services proxy`` listens on, in the printed instructions.
PROXY_PORT = 8080

#: The longest per-student suffix: the longest name it ends ("workshop-allow-8000-" + suffix) stays far
#: below Compute Engine's 63 characters, with room for a longer --vm-name.
STUDENT_MAX = 20

#: What an API key may hold: it travels in an HTTP header and in gcloud's KEY=VALUE,KEY=VALUE lists
#: (--metadata, --set-env-vars), where a comma would cut it in two.
API_KEY_PATTERN = re.compile(r"[A-Za-z0-9._~-]{1,128}")

#: Where the teacher's address and account come from when no flag gives them.
TEACHER_IP_VARIABLE = "WORKSHOP_TEACHER_IP"
TEACHER_ACCOUNT_VARIABLE = "WORKSHOP_TEACHER_ACCOUNT"

_PUBLIC_IP_SERVICES = ("https://api.ipify.org", "https://ifconfig.me/ip")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")


def var(name: str) -> str:
    """A captured value, as later steps write it: ``${NAME}``."""
    return "${" + name + "}"


@dataclass(frozen=True)
class Check:
    """A read that says whether a step is already done: ``command`` succeeds (the resource exists), and, with
    ``expect``, also prints that exact line (the role is granted, the service runs this image)."""

    command: tuple[str, ...]
    expect: str | None = None


@dataclass(frozen=True)
class Update:
    """For a resource that exists: ``read`` prints its live value, ``want`` is the plan's; when they differ,
    ``commands`` bring it up to date. ``what`` names what changed, for the one line that says so."""

    read: tuple[str, ...]
    want: str
    commands: tuple[tuple[str, ...], ...]
    what: Text


@dataclass(frozen=True)
class Step:
    """One command of the plan.

    ``done``: a check run first; when it holds, the command is not run ("already exists: nothing to do").
    ``update``: when ``done`` holds, what brings an existing resource up to date.
    ``capture``: the name of a shell variable that receives the command's standard output (stderr apart).
    ``when_empty``: what to say when a capture prints nothing (gcloud's "no such value").
    ``missing_ok``: a "not found" answer counts as done (deletions: the resource is already gone).
    """

    title: Text
    command: tuple[str, ...]
    done: Check | None = None
    update: Update | None = None
    capture: str | None = None
    when_empty: Text | None = None
    missing_ok: bool = False

    def shell(self) -> str:
        """The step as a person writes it in a terminal (bash): one flag a line, a capture as VAR=$(...)."""
        text = command_text(self.command)
        return f"{self.capture}=$({text})" if self.capture else text


# ------------------------------------------------------------------------------------ shell text
_SAFE = re.compile(r"[\w@%+=:,./-]+")
_SAFE_WITH_VARIABLES = re.compile(r"[\w@%+=:,./${}-]+")


def shell_word(word: str) -> str:
    """``word`` quoted only where the shell needs it, the way people write flags: ``--format='value(x)'``."""
    flag, equals, value = word.partition("=") if word.startswith("--") and "=" in word else ("", "", word)
    if "${" in value:
        quoted = value if _SAFE_WITH_VARIABLES.fullmatch(value) else f'"{value}"'
    else:
        quoted = value if _SAFE.fullmatch(value) else shlex.quote(value)
    return f"{flag}{equals}{quoted}"


def command_text(command: tuple[str, ...], width: int = 100) -> str:
    """The command on one line when it is short, else its leading words then one flag a line with ``\\``."""
    words = [shell_word(word) for word in command]
    line = " ".join(words)
    flags = sum(1 for word in command if word.startswith("--"))
    if len(line) <= width and flags <= 3:
        return line
    first = next((index for index, word in enumerate(command) if word.startswith("--")), len(command))
    lines = [" ".join(words[:first])] + [f"    {word}" for word in words[first:]]
    return " \\\n".join(lines)


def shell_words(text: str) -> list[str]:
    """The words of a shell command as bash splits them (backslash-newlines joined, comments dropped)."""
    return shlex.split(text.replace("\\\n", " "), comments=True)


# ------------------------------------------------------------------------------------ names and values
def sanitise_student(name: str) -> str:
    """A name fit for the end of a Compute Engine name: lowercase letters, digits and single hyphens."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:STUDENT_MAX].strip("-")
    if not cleaned:
        raise ValueError(say(f"'{name}' gives no usable student name: use letters and digits, e.g. --student ada.",
                             f"'{name}' ne donne aucun nom d'étudiant utilisable : prenez des lettres et des "
                             "chiffres, par exemple --student ada."))
    return cleaned


def student_from_account(account: str) -> str:
    """The per-student suffix derived from a gcloud account: ``jean.dupont@univ.fr`` → ``jean-dupont-1a2b``.

    The part before the @ keeps it readable for the teacher; four hex digits of the whole address keep two
    students apart even when their names are cut short or written alike (jean.dupont, jean-dupont).
    """
    local = re.sub(r"[^a-z0-9]+", "-", account.split("@")[0].lower()).strip("-")[: STUDENT_MAX - 5].strip("-")
    digest = hashlib.sha256(account.strip().lower().encode()).hexdigest()[:4]
    return f"{local or 's'}-{digest}"


def gcloud_value(*args: str) -> str | None:
    """What ``gcloud ARGS`` prints on its standard output, stripped; None when it fails or prints nothing.

    Standard output alone: gcloud writes its warnings ("filter keys were not present...") and its "(unset)"
    to standard error, and neither is an answer.
    """
    try:
        result = subprocess.run(["gcloud", *args], capture_output=True, text=True, timeout=60)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    value = result.stdout.strip()
    return value if result.returncode == 0 and value and value != "(unset)" else None


def active_account() -> str | None:
    """The account gcloud is logged in with: the ACTIVE one of ``gcloud auth list``, if any."""
    return gcloud_value("auth", "list", "--filter=status:ACTIVE", "--format=value(account)")


def default_project() -> str | None:
    """The project gcloud is configured with (``gcloud config get-value project``), if any."""
    return gcloud_value("config", "get-value", "project")


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


def check_api_key(key: str) -> str:
    """``key``, when it can travel in a header and in gcloud's KEY=VALUE lists; else a ValueError saying why."""
    if not API_KEY_PATTERN.fullmatch(key):
        raise ValueError(say(
            "An API key may hold only letters, digits and - _ . ~ (128 at most): a comma, for one, would cut it "
            "in two in gcloud's --metadata and --set-env-vars lists; choose another, or leave --api-key out and one "
            "is generated.",
            "Une clé d'API ne peut contenir que des lettres, des chiffres et - _ . ~ (128 au plus) : une virgule, par "
            "exemple, la couperait en deux dans les listes --metadata et --set-env-vars de gcloud ; choisissez-en "
            "une autre, ou omettez --api-key pour qu'elle soit générée.",
        ))
    return key


def check_ip(address: str) -> str:
    """``address`` as a source range: ``1.2.3.4`` becomes ``1.2.3.4/32``; a range is kept."""
    range_ = address.strip() if "/" in address else f"{address.strip()}/32"
    if not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}", range_):
        raise ValueError(say(f"'{address}' is not an IPv4 address (write it like 203.0.113.7).",
                             f"'{address}' n'est pas une adresse IPv4 (écrivez-la comme 203.0.113.7)."))
    return range_


@dataclass
class DeployConfig:
    """Everything the deployment needs to know; defaults suit the lab.

    ``student``: a suffix added to every per-student name (VM, firewall rule, network tag, Cloud Run service,
    image), so a class shares one project without touching each other's resources. The repository is shared.
    ``teacher_ip``: the teacher's address, let in by the firewall too (the Teacher page grades every VM).
    ``teacher_account``: the teacher's Google account, allowed to call the Cloud Run service (run.invoker).
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
    teacher_ip: str | None = None
    teacher_account: str | None = None
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
            raise ValueError(say(
                f"'{self.project}' is not a Google Cloud project id (6-30 lowercase letters, digits and hyphens).",
                f"'{self.project}' n'est pas un id de projet Google Cloud (6 à 30 minuscules, chiffres et tirets).",
            ))
        if self.max_run_duration and not re.fullmatch(r"(\d+d)?(\d+h)?(\d+m)?(\d+s)?", self.max_run_duration):
            raise ValueError(say(f"'{self.max_run_duration}' is not a duration: write it like 4h, 90m or 1d2h.",
                                 f"'{self.max_run_duration}' n'est pas une durée : écrivez-la comme 4h, 90m ou 1d2h."))
        if self.api_key is not None:
            check_api_key(self.api_key)
        if self.teacher_ip:
            self.teacher_ip = check_ip(self.teacher_ip)
        if self.teacher_account and "@" not in self.teacher_account:
            raise ValueError(say(f"'{self.teacher_account}' is not a Google account (an e-mail address).",
                                 f"'{self.teacher_account}' n'est pas un compte Google (une adresse e-mail)."))
        self.zone = self.zone or f"{self.region}-b"
        # Absolute: the printed plan names these files, and it must run from wherever it is pasted.
        self.work_dir = Path(self.work_dir).absolute()
        if self.student:
            self.student = sanitise_student(self.student)
            for name in ("vm_name", "firewall_rule", "network_tag", "image_name", "service_name"):
                setattr(self, name, f"{getattr(self, name)}-{self.student}")
        if not 1 <= self.max_instances <= 100:
            raise ValueError(say(f"--max-instances {self.max_instances}: give a number from 1 to 100 (a small one: "
                                 "each instance bills while it runs).",
                                 f"--max-instances {self.max_instances} : donnez un nombre de 1 à 100 (petit : chaque "
                                 "instance est facturée tant qu'elle tourne)."))
        if self.concurrency < 1:
            raise ValueError(say(f"A concurrency of {self.concurrency} serves nobody: give 1 or more.",
                                 f"Une concurrence de {self.concurrency} ne sert personne : donnez 1 ou plus."))

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
    def member(self) -> str:
        """The IAM member of the project's default compute service account, the identity the VM pulls with."""
        return f"serviceAccount:{var(SERVICE_ACCOUNT)}"

    @property
    def source_ranges(self) -> str:
        """Who the firewall lets in: the student's range, and the teacher's address when given."""
        ranges = [self.source_range or "0.0.0.0/0"]
        if self.teacher_ip and self.teacher_ip not in ranges and ranges != ["0.0.0.0/0"]:
            ranges.append(self.teacher_ip)
        return ",".join(ranges)

    @property
    def labels(self) -> str:
        return f"{LABEL},student={self.student}" if self.student else LABEL


def generate_api_key() -> str:
    """A random API key: 32 URL-safe characters (letters, digits, - and _), about 190 bits."""
    return secrets.token_urlsafe(24)


def public_ip(timeout: float = 3.0) -> str | None:
    """This machine's public IPv4 address as the internet sees it, or None when it cannot be found."""
    for url in _PUBLIC_IP_SERVICES:
        try:
            answer = requests.get(url, timeout=timeout).text.strip()
        except requests.RequestException:
            continue
        if _IPV4.fullmatch(answer):
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
            notes.append(say("A new API key was given: the VM's metadata will be updated and the VM restarted.",
                             "Vous avez fourni une nouvelle clé d'API : les métadonnées de la VM seront mises à jour, "
                             "puis la VM redémarrée."))
    elif key_on_vm:
        config.api_key = key_on_vm
        notes.append(say("The VM already exists: its API key is kept.",
                         "La VM existe déjà : sa clé d'API est conservée."))
    elif saved and API_KEY_PATTERN.fullmatch(saved):
        config.api_key = saved
    else:
        config.api_key = generate_api_key()
        notes.append(say("Generated a new API key.", "Nouvelle clé d'API générée."))
    config.work_dir.mkdir(parents=True, exist_ok=True)
    config.api_key_file.write_text(config.api_key + "\n")
    config.api_key_file.chmod(0o600)
    path = shlex.quote(str(config.api_key_file))
    notes.append(say(f"API key: in {config.api_key_file} (read it with: cat {path})",
                     f"Clé d'API : dans {config.api_key_file} (pour la lire : cat {path})"))
    return notes


def resolve_source_range(config: DeployConfig) -> list[str]:
    """Fill in the firewall's source range (this machine's public IP, else everyone); return the note."""
    notes = []
    if config.source_range is None:
        ip = public_ip()
        if ip:
            config.source_range = f"{ip}/32"
            notes.append(say(
                f"Port {config.port} will be open to this machine's public IP only: {config.source_range} "
                "(a browser elsewhere is refused: see the guide)",
                f"Le port {config.port} ne sera ouvert qu'à l'IP publique de cette machine : {config.source_range} "
                "(un navigateur sur une autre machine sera refusé, voir le guide)"))
        else:
            config.source_range = "0.0.0.0/0"
            notes.append(say(
                f"This machine's public IP could not be found: port {config.port} will be open to the whole "
                "internet, protected by the API key.",
                f"L'IP publique de cette machine est introuvable : le port {config.port} sera ouvert à tout "
                "internet, protégé par la clé d'API."))
    if config.teacher_ip and config.source_range != "0.0.0.0/0":
        notes.append(say(f"The teacher's address {config.teacher_ip} is let in too (their page grades your VM).",
                         f"L'adresse de l'enseignant, {config.teacher_ip}, est autorisée aussi (sa page vérifie "
                         "votre VM)."))
    return notes


def resolve_access(config: DeployConfig, key_on_vm: str | None = None) -> list[str]:
    """Fill in the API key and the firewall's source range; save the key; return what the student must be told."""
    return [*resolve_api_key(config, key_on_vm), *resolve_source_range(config)]


def startup_script_text() -> str:
    """The VM's start-up script (bash, run as root at every boot)."""
    return resources.files("workshop.deploy").joinpath("startup.sh").read_text()


# ------------------------------------------------------------------------------------ the plan's steps
def enable_step(config: DeployConfig, apis: tuple[str, ...] = REQUIRED_APIS) -> Step:
    """1. The APIs, switched on (a no-op when they are; it fails without a billing account)."""
    return Step(Text("Enable the APIs", "Activer les API"),
                ("gcloud", "services", "enable", *apis, f"--project={config.project}"))


def service_account_step(config: DeployConfig) -> Step:
    """2. The project's default compute service account: the identity the VM (or the service) runs as.

    gcloud itself creates a VM without any access scope when the project has none (deleted, or an organisation
    that stops its creation): that VM could never pull its image. So the plan reads it first, and stops there.
    """
    return Step(
        Text("Read the project's default compute service account (the identity the back-end runs as)",
             "Lire le compte de service Compute par défaut du projet (l'identité du back-end)"),
        ("gcloud", "compute", "project-info", "describe", f"--project={config.project}",
         "--format=value(defaultServiceAccount)"),
        capture=SERVICE_ACCOUNT,
        when_empty=Text(
            "This project has no default compute service account (deleted, or your organisation stops its "
            "creation): ask the project's owner to restore it (gcloud beta iam service-accounts undelete) or to "
            "allow it, since a VM without it cannot pull its image.",
            "Ce projet n'a pas de compte de service Compute par défaut (supprimé, ou bloqué par votre organisation) : "
            "demandez au propriétaire du projet de le restaurer (gcloud beta iam service-accounts undelete) ou de "
            "l'autoriser, car une VM sans lui ne peut pas télécharger son image."),
    )


def repository_step(config: DeployConfig) -> Step:
    """3. The class's Artifact Registry repository (created once, by the first student or the teacher)."""
    where = (f"--location={config.region}", f"--project={config.project}")
    return Step(
        Text("Create the Artifact Registry repository", "Créer le dépôt Artifact Registry"),
        ("gcloud", "artifacts", "repositories", "create", config.repository, "--repository-format=docker",
         *where, "--description=deploy-ml-workshop images", f"--labels={LABEL}"),
        done=Check(("gcloud", "artifacts", "repositories", "describe", config.repository, *where,
                    "--format=value(name)")),
    )


def _granted(read: tuple[str, ...], role: str, member: str) -> Check:
    # The policy, one binding member a line: "ROLE<tab>MEMBER". Reading first keeps 30 students from rewriting
    # the same policy at once, and lets a student without the right to change IAM pass once the teacher granted it.
    return Check((*read, "--flatten=bindings[].members", "--format=value(bindings.role,bindings.members)"),
                 expect=f"{role}\t{member}")


def access_steps(config: DeployConfig) -> list[Step]:
    """4 and 5. The VM's identity may pull from the repository and write logs (new organisations no longer give it
    Editor)."""
    repository = (config.repository, f"--location={config.region}", f"--project={config.project}")
    reader, writer = "roles/artifactregistry.reader", "roles/logging.logWriter"
    return [
        Step(
            Text("Let the VM's service account pull from the repository",
                 "Autoriser le compte de service de la VM à lire le dépôt"),
            ("gcloud", "artifacts", "repositories", "add-iam-policy-binding", *repository,
             f"--member={config.member}", f"--role={reader}", "--format=none"),
            done=_granted(("gcloud", "artifacts", "repositories", "get-iam-policy", *repository), reader,
                          config.member),
        ),
        Step(
            Text("Let the VM's service account write logs",
                 "Autoriser le compte de service de la VM à écrire des journaux"),
            ("gcloud", "projects", "add-iam-policy-binding", config.project, f"--member={config.member}",
             f"--role={writer}", "--condition=None", "--format=none"),
            done=_granted(("gcloud", "projects", "get-iam-policy", config.project), writer, config.member),
        ),
    ]


def push_steps(config: DeployConfig) -> list[Step]:
    """6 to 9. Docker auth for the registry's host only, tag, push, the pushed image's digest."""
    return [
        Step(Text("Let docker log in to that registry", "Permettre à docker de se connecter à ce registre"),
             ("gcloud", "auth", "configure-docker", config.registry_host, "--quiet")),
        Step(Text("Tag the back-end image", "Nommer l'image du back-end pour le registre"),
             ("docker", "tag", config.local_image, config.remote_image)),
        Step(Text("Push the back-end image", "Pousser l'image du back-end"), ("docker", "push", config.remote_image)),
        Step(Text("Read the pushed image's digest", "Lire l'empreinte de l'image poussée"),
             ("gcloud", "artifacts", "docker", "images", "describe", config.remote_image,
              "--format=value(image_summary.digest)"),
             capture=IMAGE_DIGEST),
    ]


def api_key_step(config: DeployConfig) -> Step:
    """The API key, read from its file (the plan never shows it)."""
    return Step(Text("Read the API key (kept out of the printed plan)", "Lire la clé d'API (absente du plan affiché)"),
                ("cat", str(config.api_key_file)), capture=API_KEY)


def _vm(config: DeployConfig) -> tuple[str, ...]:
    return (config.vm_name, f"--zone={config.zone}", f"--project={config.project}")


def vm_step(config: DeployConfig) -> Step:
    """10. The VM (cos-stable, start-up script, tag, metadata, deletion time); an existing one gets a new image or
    key through its metadata, then a restart (the start-up script reads the metadata at boot)."""
    metadata = f"image={config.pinned_image},api-key={var(API_KEY)},port={config.port},google-logging-enabled=true"
    cost_guard = (
        (f"--max-run-duration={config.max_run_duration}", "--instance-termination-action=DELETE")
        if config.max_run_duration else ()
    )
    return Step(
        Text("Create the VM", "Créer la VM"),
        (
            "gcloud", "compute", "instances", "create", *_vm(config), f"--machine-type={config.machine_type}",
            "--image-family=cos-stable", "--image-project=cos-cloud", f"--boot-disk-size={config.boot_disk_size}",
            f"--tags={config.network_tag}", f"--labels={config.labels}", *cost_guard,
            f"--metadata={metadata}", f"--metadata-from-file=startup-script={config.startup_script}",
        ),
        done=Check(("gcloud", "compute", "instances", "describe", *_vm(config), "--format=value(name)")),
        update=Update(
            read=("gcloud", "compute", "instances", "describe", *_vm(config),
                  "--format=value(metadata.items.image,metadata.items.api-key)"),
            want=f"{config.pinned_image}\t{var(API_KEY)}",
            commands=(
                ("gcloud", "compute", "instances", "add-metadata", *_vm(config),
                 f"--metadata=image={config.pinned_image},api-key={var(API_KEY)}"),
                # A reset keeps the VM running, so its automatic deletion time stays; a stop would clear it.
                ("gcloud", "compute", "instances", "reset", *_vm(config)),
            ),
            what=Text("another image or API key: its metadata is updated, then it restarts",
                      "une autre image ou une autre clé d'API : ses métadonnées sont mises à jour, puis elle "
                      "redémarre"),
        ),
    )


def firewall_step(config: DeployConfig) -> Step:
    """11. The firewall rule: port 8000 of the VM's tag, open to the given addresses; it follows a changed IP."""
    rule = (config.firewall_rule, f"--project={config.project}")
    return Step(
        Text("Open the port to the VM's tag, for your address only", "Ouvrir le port aux VM de ce tag, pour votre "
                                                                      "adresse seulement"),
        (
            "gcloud", "compute", "firewall-rules", "create", *rule, "--network=default", "--direction=INGRESS",
            "--action=ALLOW", f"--rules=tcp:{config.port}", f"--target-tags={config.network_tag}",
            f"--source-ranges={config.source_ranges}",
        ),
        done=Check(("gcloud", "compute", "firewall-rules", "describe", *rule, "--format=value(name)")),
        update=Update(
            read=("gcloud", "compute", "firewall-rules", "describe", *rule, "--format=value(sourceRanges)"),
            want=config.source_ranges,
            commands=(("gcloud", "compute", "firewall-rules", "update", *rule,
                       f"--source-ranges={config.source_ranges}"),),
            what=Text("other addresses: its source ranges are updated",
                      "d'autres adresses : ses plages sources sont mises à jour"),
        ),
    )


def external_ip_step(config: DeployConfig) -> Step:
    """12. The VM's external IP (then :func:`workshop.deploy.runner.wait_for_health` polls it)."""
    return Step(
        Text("Read the VM's external IP", "Lire l'IP externe de la VM"),
        ("gcloud", "compute", "instances", "describe", *_vm(config),
         "--format=value(networkInterfaces[0].accessConfigs[0].natIP)"),
        capture=EXTERNAL_IP,
    )


def deploy_steps(config: DeployConfig) -> list[Step]:
    """The whole VM deployment, in order (the health wait comes after these)."""
    return [
        enable_step(config), service_account_step(config), repository_step(config), *access_steps(config),
        *push_steps(config), api_key_step(config), vm_step(config), firewall_step(config), external_ip_step(config),
    ]


def key_on_vm_command(config: DeployConfig) -> tuple[str, ...]:
    """The API key in an existing VM's metadata (a re-run keeps it); fails when there is no VM."""
    return ("gcloud", "compute", "instances", "describe", *_vm(config), "--format=value(metadata.items.api-key)")


def teardown_steps(config: DeployConfig, delete_image: bool = False, delete_repository: bool = False) -> list[Step]:
    """Delete the VM and the firewall rule; the image and the repository when asked. Gone already is fine."""
    steps = [
        Step(Text("Delete the VM (and its boot disk)", "Supprimer la VM et son disque"),
             ("gcloud", "compute", "instances", "delete", *_vm(config), "--quiet"), missing_ok=True),
        Step(Text("Delete the firewall rule", "Supprimer la règle de pare-feu"),
             ("gcloud", "compute", "firewall-rules", "delete", config.firewall_rule, f"--project={config.project}",
              "--quiet"), missing_ok=True),
    ]
    return [*steps, *registry_teardown_steps(config, delete_image, delete_repository)]


def registry_teardown_steps(config: DeployConfig, delete_image: bool, delete_repository: bool) -> list[Step]:
    """The student's image and the class's repository, when asked (both targets)."""
    steps = []
    if delete_image or delete_repository:
        steps.append(Step(Text("Delete the image", "Supprimer l'image"),
                          ("gcloud", "artifacts", "docker", "images", "delete", config.image_path, "--delete-tags",
                           "--quiet"), missing_ok=True))
    if delete_repository:
        steps.append(Step(Text("Delete the repository", "Supprimer le dépôt"),
                          ("gcloud", "artifacts", "repositories", "delete", config.repository,
                           f"--location={config.region}", f"--project={config.project}", "--quiet"), missing_ok=True))
    return steps


@dataclass(frozen=True)
class Leftover:
    """A check for one resource that may be left, by its exact name: its command prints the name (or the image's
    digests) while it exists, and fails with "not found" once it is gone."""

    kind: Text
    command: tuple[str, ...]
    counts: bool  # whether this teardown was asked to delete it (then it decides the exit code)


def leftover_checks(
    config: DeployConfig, delete_image: bool = False, delete_repository: bool = False
) -> list[Leftover]:
    """What may still cost money after a teardown: this student's VM, disk, firewall rule, image; the repository.

    Each by its exact name (a describe), never by a list filter: gcloud sends ``--filter=name=X`` to Compute as a
    word match, which also finds a classmate whose name starts with X and a hyphen.
    """
    zone = (f"--zone={config.zone}", f"--project={config.project}", "--format=value(name)")
    return [
        Leftover(Text("VMs", "VM"), ("gcloud", "compute", "instances", "describe", config.vm_name, *zone), True),
        Leftover(Text("Boot disks", "Disques"), ("gcloud", "compute", "disks", "describe", config.vm_name, *zone),
                 True),
        Leftover(Text("Firewall rules", "Règles de pare-feu"),
                 ("gcloud", "compute", "firewall-rules", "describe", config.firewall_rule,
                  f"--project={config.project}", "--format=value(name)"), True),
        *registry_leftover_checks(config, delete_image, delete_repository),
    ]


def registry_leftover_checks(config: DeployConfig, delete_image: bool, delete_repository: bool) -> list[Leftover]:
    """The student's image and the class's repository (both targets); they count only when asked to go."""
    return [
        Leftover(Text("Images", "Images"), ("gcloud", "artifacts", "docker", "images", "list", config.image_path,
                                            "--format=value(version)"), delete_image or delete_repository),
        Leftover(Text("Repository (shared by the class)", "Dépôt (partagé par la promo)"),
                 ("gcloud", "artifacts", "repositories", "describe", config.repository, f"--location={config.region}",
                  f"--project={config.project}", "--format=value(name)"), delete_repository),
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
        Text("Deploy the Cloud Run service (a new revision when the image or a setting changed)",
             "Déployer le service Cloud Run (une nouvelle révision quand l'image ou un réglage change)"),
        (
            "gcloud", "run", "deploy", *_service(config), f"--image={config.pinned_image}",
            f"--port={config.port}", f"--cpu={config.cpu}", f"--memory={config.memory}",
            # At most this many requests at once in one instance: the server's own queue
            # (WORKSHOP_MAX_PENDING_PREDICTIONS), so a request Cloud Run sends never meets the server's 503 "busy".
            # Cloud Run starts more instances when the ones running near it, or near 60 % of their CPU.
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
        done=Check(("gcloud", "run", "services", "describe", *_service(config),
                    "--format=value(spec.template.spec.containers[0].image,metadata.labels.workshop-config)"),
                   expect=f"{config.pinned_image}\t{fingerprint}"),
    )


def teacher_invoker_step(config: DeployConfig) -> Step:
    """The teacher may call the service too (their Teacher page and ``workshop check --roster`` grade it)."""
    member, role = f"user:{config.teacher_account}", "roles/run.invoker"
    return Step(
        Text("Let the teacher call the service", "Autoriser l'enseignant à appeler le service"),
        ("gcloud", "run", "services", "add-iam-policy-binding", *_service(config), f"--member={member}",
         f"--role={role}", "--format=none"),
        done=_granted(("gcloud", "run", "services", "get-iam-policy", *_service(config)), role, member),
    )


def cloud_run_deploy_steps(config: DeployConfig) -> list[Step]:
    """The whole Cloud Run deployment: the APIs, the shared registry steps, the service, its URL.

    No service-account step: without the default compute service account, ``gcloud run deploy`` itself stops and
    says so, where a VM would be created without scopes and fail later, silently.
    """
    steps = [
        enable_step(config, CLOUD_RUN_APIS), repository_step(config),
        *push_steps(config), api_key_step(config), cloud_run_deploy_step(config),
    ]
    if config.teacher_account:
        steps.append(teacher_invoker_step(config))
    steps.append(Step(Text("Read the service's URL (it answers only to callers IAM lets in)",
                           "Lire l'URL du service (il ne répond qu'aux appelants admis par IAM)"),
                      ("gcloud", "run", "services", "describe", *_service(config), "--format=value(status.url)"),
                      capture=SERVICE_URL))
    return steps


def proxy_command(config: DeployConfig) -> str:
    """How the student reaches the service: gcloud signs each request with their identity, on localhost."""
    return command_text(("gcloud", "run", "services", "proxy", *_service(config), f"--port={PROXY_PORT}"))


def cloud_run_teardown_steps(
    config: DeployConfig, delete_image: bool = False, delete_repository: bool = False
) -> list[Step]:
    """Delete the service (its revisions go with it); the image and the repository when asked."""
    return [
        Step(Text("Delete the Cloud Run service", "Supprimer le service Cloud Run"),
             ("gcloud", "run", "services", "delete", *_service(config), "--quiet"), missing_ok=True),
        *registry_teardown_steps(config, delete_image, delete_repository),
    ]


def cloud_run_leftover_checks(
    config: DeployConfig, delete_image: bool = False, delete_repository: bool = False
) -> list[Leftover]:
    """What may still cost money after a Cloud Run teardown: this student's service and image; the repository."""
    return [
        Leftover(Text("Cloud Run services", "Services Cloud Run"),
                 ("gcloud", "run", "services", "describe", *_service(config), "--format=value(metadata.name)"), True),
        *registry_leftover_checks(config, delete_image, delete_repository),
    ]
