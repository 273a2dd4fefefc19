"""Print a deployment plan (dry run), or run it step by step with live output.

Dry run is the default everywhere: a student first reads the exact commands,
then runs them by adding ``--execute`` (or ``RUN_IN_CLOUD = True`` in the notebook).

Running a step is where its re-run safety lives (:class:`workshop.deploy.gcp.Check` and
:class:`~workshop.deploy.gcp.Update`): before the command, the runner reads whether the step is already done
and says so in one line ("already exists: nothing to do"), or brings an existing resource up to date (a new
image, a changed IP) with the plan's own update commands. The notebook's cells run their steps here too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

import requests

from workshop.checkpoints import say
from workshop.deploy import preflight
from workshop.deploy.gcp import (
    API_KEY,
    EXTERNAL_IP,
    IMAGE_DIGEST,
    PROXY_PORT,
    SERVICE_ACCOUNT,
    SERVICE_URL,
    DeployConfig,
    Step,
    cloud_run_deploy_steps,
    cloud_run_leftover_checks,
    cloud_run_teardown_steps,
    command_text,
    deploy_steps,
    key_on_vm_command,
    leftover_checks,
    proxy_command,
    resolve_access,
    resolve_api_key,
    startup_script_text,
    teardown_steps,
    var,
)

# What a failing command's output means, and what to do about it: one sentence each. The first match wins,
# so the specific causes come before the general ones (an organisation policy is also a refusal). Each needle
# is a piece of what the real gcloud prints for Google's answer (tests/test_gcloud_faults_real_cli.py).
HINTS: tuple[tuple[str, tuple[str, str]], ...] = (
    ("iam.allowedpolicymemberdomains", (
        "An organisation policy (constraints/iam.allowedPolicyMemberDomains) lets IAM grant roles only to accounts of "
        "your organisation: use such an account (the teacher's too), or ask the administrator for an exception.",
        "Une règle d'administration (constraints/iam.allowedPolicyMemberDomains) ne laisse IAM donner de rôle qu'aux "
        "comptes de votre organisation : prenez un tel compte (celui de l'enseignant aussi), ou demandez une "
        "exception à l'administrateur.")),
    ("constraints/", (
        "An organisation policy ({constraint}) forbids this in your project: ask your organisation's administrator "
        "for an exception on this project, or use a project outside the organisation.",
        "Une règle d'administration ({constraint}) interdit cela dans votre projet : demandez à l'administrateur de "
        "votre organisation une exception pour ce projet, ou prenez un projet hors de l'organisation.")),
    ("organization policy", (
        "An organisation policy forbids this in your project: ask your organisation's administrator for an "
        "exception on this project, or use a project outside the organisation.",
        "Une règle d'administration interdit cela dans votre projet : demandez à l'administrateur de votre "
        "organisation une exception pour ce projet, ou prenez un projet hors de l'organisation.")),
    ("concurrent policy changes", (
        "Someone changed the project's permissions at the same moment (a classmate?): run the same command again.",
        "Quelqu'un a modifié les droits du projet au même moment (un camarade ?) : relancez la même commande.")),
    ("billing", (
        "Billing is not enabled on this project: link a billing account in the console (Billing).",
        "La facturation n'est pas activée sur ce projet : associez-lui un compte de facturation dans la console "
        "(Facturation).")),
    ("has not been used in project", (
        "The API named above is not enabled in this project: run the plan's 'Enable the APIs' step (gcloud services "
        "enable), wait a minute and run again.",
        "L'API nommée ci-dessus n'est pas activée dans ce projet : exécutez l'étape « Activer les API » du plan "
        "(gcloud services enable), attendez une minute et relancez.")),
    ("quota", (
        "A quota is exhausted (named above): pick another region, a smaller machine type or fewer Cloud Run CPUs and "
        "instances, or ask the project's owner for more quota.",
        "Un quota est épuisé (nommé ci-dessus) : prenez une autre région, une machine plus petite ou moins de CPU et "
        "d'instances Cloud Run, ou demandez plus de quota au propriétaire du projet.")),
    ("iam.serviceaccounts.actas", (
        "Your account may not deploy as the service's identity: ask the project's owner for the Service Account User "
        "role (roles/iam.serviceAccountUser) on the default compute service account.",
        "Votre compte ne peut pas déployer sous l'identité du service : demandez au propriétaire du projet le rôle "
        "Utilisateur du compte de service (roles/iam.serviceAccountUser) sur le compte de service Compute par "
        "défaut.")),
    ("container failed", (
        "The container did not become ready: open the logs URL above, check that --image is the back-end image "
        "and that it starts locally (docker run -p 8000:8000 IMAGE).",
        "Le conteneur n'est pas devenu prêt : ouvrez l'URL des logs ci-dessus, vérifiez que --image est l'image "
        "du back-end et qu'elle démarre en local (docker run -p 8000:8000 IMAGE).")),
    ("not currently have an active account", (
        "You are not logged in: run `gcloud auth login --no-launch-browser`.",
        "Vous n'êtes pas connecté : lancez `gcloud auth login --no-launch-browser`.")),
    ("unauthenticated request", (
        "Docker cannot push: run `gcloud auth configure-docker REGION-docker.pkg.dev` (step 'Let docker log in').",
        "Docker ne peut pas pousser : lancez `gcloud auth configure-docker REGION-docker.pkg.dev` (étape « Permettre "
        "à docker de se connecter »).")),
    ("permission", (
        "Your account lacks the permission named above on this project: ask the project's owner to grant it (the lab "
        "guide lists the roles) or to run this step for you, and check the project id.",
        "Votre compte n'a pas la permission nommée ci-dessus sur ce projet : demandez au propriétaire du projet de "
        "vous l'accorder (le guide liste les rôles) ou de faire cette étape pour vous, et vérifiez l'id du projet.")),
    ("already exists", (
        "The resource already exists: run the teardown first, or choose another name.",
        "La ressource existe déjà : lancez d'abord le nettoyage, ou choisissez un autre nom.")),
    ("not found", (
        "The resource does not exist (yet): check the names, zone and project id.",
        "La ressource n'existe pas (encore) : vérifiez les noms, la zone et l'id du projet.")),
    ("cannot find", (
        "The resource does not exist (yet): check the names, region and project id.",
        "La ressource n'existe pas (encore) : vérifiez les noms, la région et l'id du projet.")),
)

#: How gcloud says that a resource does not exist: Compute Engine's "was not found", Artifact Registry's
#: NOT_FOUND, Cloud Run's "Cannot find service [x]" (describe) and "Service [x] could not be found." (delete).
_MISSING = ("not found", "not_found", "could not be found", "cannot find")

#: Captured values that may be shown as they are read (the API key, for one, is never shown).
_SHOWN = (SERVICE_ACCOUNT, IMAGE_DIGEST, EXTERNAL_IP, SERVICE_URL)


class StepFailed(RuntimeError):
    """A step of the plan failed; the message says which, with the end of its output and a hint."""


@dataclass
class DeployResult:
    """Where the deployed back-end answers, and the key it needs."""

    url: str
    api_key: str
    health_seconds: float


@dataclass
class CloudRunResult:
    """The deployed service: its URL (IAM-protected), the key it needs, how to reach it from here."""

    url: str
    api_key: str
    proxy: str


def hint(output: str) -> str:
    """One sentence saying what to do about a failed command's output."""
    lowered = output.lower()
    for needle, (en, fr) in HINTS:
        if needle in lowered:
            constraint = re.search(r"constraints/[\w.]+", output)
            named = constraint.group(0) if constraint else say("named above", "nommée ci-dessus")
            return say(en, fr).format(constraint=named)
    return say("Read the output above; the troubleshooting page of the lab guide lists the usual causes.",
               "Lisez la sortie ci-dessus ; la page de dépannage du guide liste les causes habituelles.")


def is_missing(output: str) -> bool:
    """Whether gcloud answered that the resource does not exist (for a deletion: already done)."""
    lowered = output.lower()
    return "billing" not in lowered and any(words in lowered for words in _MISSING)


def print_plan(steps: Sequence[Step], out: TextIO = sys.stdout) -> None:
    """The exact commands, numbered, ready to paste into a terminal (bash), from any directory."""
    for index, step in enumerate(steps, start=1):
        print(f"# {index}/{len(steps)} {step.title}", file=out)
        print(step.shell(), file=out)


def _not_installed(tool: str) -> StepFailed:
    advice = say(
        "Install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install); the codespace has it.",
        "Installez la Google Cloud CLI (https://cloud.google.com/sdk/docs/install) ; le codespace l'a déjà.",
    ) if tool == "gcloud" else say(f"Install {tool}.", f"Installez {tool}.")
    return StepFailed(say(f"'{tool}' is not installed. {advice}", f"'{tool}' n'est pas installé. {advice}"))


def _environment() -> dict[str, str]:
    # No colour codes in the output the notebook shows (gcloud bolds names in some messages).
    return {**os.environ, "CLOUDSDK_CORE_DISABLE_COLOR": "true"}


def _run(command: Sequence[str], out: TextIO, echo: bool) -> tuple[int, str]:
    """Run a command, echoing its output live (indented) when ``echo``; return its exit code and output."""
    try:
        process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env=_environment())
    except FileNotFoundError:
        raise _not_installed(command[0]) from None
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if echo:
            print(f"    {line}", end="", file=out, flush=True)
    return process.wait(), "".join(lines)


def _read(command: Sequence[str]) -> tuple[int, str, str]:
    """Run a command that answers a value: its exit code, standard output and standard error, kept apart."""
    try:
        result = subprocess.run(list(command), capture_output=True, text=True, timeout=300, env=_environment())
    except FileNotFoundError:
        raise _not_installed(command[0]) from None
    return result.returncode, result.stdout, result.stderr


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with each ``${NAME}`` replaced by its value; a StepFailed names the first one not known yet."""
    def value(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise StepFailed(say(f"No value for {match.group(0)} yet: run the step that reads it first.",
                                 f"Pas encore de valeur pour {match.group(0)} : exécutez d'abord l'étape qui la lit."))
        return values[match.group(1)]

    return re.sub(r"\$\{(\w+)\}", value, text)


def filled(command: Sequence[str], values: dict[str, str]) -> tuple[str, ...]:
    return tuple(fill(arg, values) for arg in command)


def _lines(stdout: str) -> list[str]:
    return [line.strip() for line in stdout.splitlines()]


def _failed(index: int, total: int, step: Step, code: int, output: str) -> StepFailed:
    return StepFailed(say(
        f"Step {index}/{total} '{step.title}' failed (exit code {code}).\nCommand: {step.shell()}\n"
        f"Hint: {hint(output)}",
        f"L'étape {index}/{total} « {step.title} » a échoué (code de sortie {code}).\nCommande : {step.shell()}\n"
        f"Conseil : {hint(output)}",
    ))


def run_step(step: Step, values: dict[str, str], out: TextIO, label: str = "") -> dict[str, str]:
    """Run one step: its check first, then its command or its update; return the values it captured.

    ``label``: "n/N" in the messages, when the step is part of a plan. Raises StepFailed with a hint.
    """
    index, _, total = label.partition("/")
    index_, total_ = int(index or 1), int(total or 1)
    if step.done is not None:
        code, stdout, _ = _read(filled(step.done.command, values))
        done = code == 0 and (step.done.expect is None or fill(step.done.expect, values) in _lines(stdout))
        if done and step.update is None:
            print("    " + (say("already done: nothing to do", "déjà fait : rien à faire") if step.done.expect
                            else say("already exists: nothing to do", "existe déjà : rien à faire")), file=out)
            return {}
        if done and step.update is not None:
            code, stdout, stderr = _read(filled(step.update.read, values))
            wanted = fill(step.update.want, values)
            # gcloud's value() format joins a list with ";", where flags such as --source-ranges take ",".
            if code == 0 and (wanted in _lines(stdout) or wanted.replace(",", ";") in _lines(stdout)):
                print("    " + say("already exists, up to date: nothing to do",
                                   "existe déjà, à jour : rien à faire"), file=out)
                return {}
            print("    " + say(f"already exists, with {step.update.what}:", f"existe déjà, avec {step.update.what} :"),
                  file=out)
            for command in step.update.commands:
                print(f"    $ {command_text(command)}", file=out)
                code, output = _run(filled(command, values), out, echo=True)
                if code != 0:
                    raise _failed(index_, total_, step, code, output)
            return {}
    command = filled(step.command, values)
    if step.capture:
        code, stdout, stderr = _read(command)
        output = stderr + stdout
        for line in stderr.splitlines():
            print(f"    {line}", file=out)
    else:
        code, output = _run(command, out, echo=True)
    if code != 0:
        if step.missing_ok and is_missing(output):
            print("    " + say("already gone: nothing to do", "déjà supprimé : rien à faire"), file=out)
            return {}
        raise _failed(index_, total_, step, code, output)
    if not step.capture:
        return {}
    # The value is gcloud's standard output alone: warnings go to standard error.
    value = stdout.strip()
    if not value:
        reason = str(step.when_empty) if step.when_empty else hint(stderr)
        raise StepFailed(say(f"Step {label} '{step.title}' printed nothing. {reason}",
                             f"L'étape {label} « {step.title} » n'a rien affiché. {reason}"))
    shown = f"    {step.capture}={value}" if step.capture in _SHOWN else "    " + say(
        f"{step.capture} read: {len(value)} characters (never printed)",
        f"{step.capture} lue : {len(value)} caractères (jamais affichée)")
    print(shown, file=out)
    return {step.capture: value}


def execute(
    steps: Sequence[Step], out: TextIO = sys.stdout, total: int | None = None, start: int = 1,
    values: dict[str, str] | None = None,
) -> dict[str, str]:
    """Run the steps in order with a progress line each; stop at the first failure. Return the captured values.

    ``total``/``start``: the numbers shown, when these steps are part of a longer plan.
    ``values``: values captured by earlier steps (``${NAME}`` in the commands).
    """
    values = dict(values or {})
    total = total or len(steps)
    for index, step in enumerate(steps, start=start):
        print(f"[{index}/{total}] {step.title}", file=out, flush=True)
        values.update(run_step(step, values, out, label=f"{index}/{total}"))
    return values


def check_prerequisites(config: DeployConfig, out: TextIO) -> None:
    """Logged in, and the project exists: what every plan needs before its first command (else one sentence)."""
    for check in (preflight.logged_in, lambda: preflight.project_exists(config.project)):
        finding = check()
        print(finding.line(), file=out, flush=True)
        if not finding.ok:
            raise StepFailed(f"{finding.name}: {finding.detail} {finding.advice}")


def wait_for_health(
    url: str,
    timeout: float = 600.0,
    interval: float = 5.0,
    out: TextIO = sys.stdout,
    clock: Callable[[], float] = time.monotonic,
) -> float:
    """Poll ``url`` until it answers 200, printing progress; return the seconds it took."""
    started = clock()
    while True:
        elapsed = clock() - started
        try:
            if requests.get(url, timeout=5).status_code == 200:
                print("    " + say(f"{url} answered after {elapsed:.0f} s", f"{url} a répondu après {elapsed:.0f} s"),
                      file=out)
                return elapsed
            state = say("not ready", "pas prêt")
        except requests.RequestException:
            state = say("no answer yet", "pas encore de réponse")
        if elapsed > timeout:
            raise StepFailed(say(
                f"{url} did not answer within {timeout:.0f} s. Hint: the VM may still be pulling the image; check its "
                "serial output (gcloud compute instances get-serial-port-output) and the firewall rule.",
                f"{url} n'a pas répondu en {timeout:.0f} s. Conseil : la VM télécharge peut-être encore l'image ; "
                "regardez sa sortie série (gcloud compute instances get-serial-port-output) et la règle de pare-feu."))
        print("    " + say(f"waiting for {url}: {state} ({elapsed:.0f} s)",
                            f"attente de {url} : {state} ({elapsed:.0f} s)"), file=out, flush=True)
        time.sleep(interval)


def _no_student_note() -> str:
    return say("No student name (no gcloud account found): names carry no suffix; in a project shared by a class, "
               "pass --student NAME.",
               "Pas de nom d'étudiant (aucun compte gcloud trouvé) : les noms n'ont pas de suffixe ; dans un projet "
               "partagé par une promo, passez --student NOM.")


def _dry_run_header(steps: Sequence[Step], runs: str) -> str:
    """The dry run's first line: what the commands are, and what --execute adds (the re-run checks)."""
    if len(steps) == 1:
        return say(f"Dry run: the command below is what --execute runs{runs}.",
                   f"Simulation : voici la commande que lance --execute{runs}.")
    return say(f"Dry run: the {len(steps)} commands below are what --execute runs{runs}.",
               f"Simulation : voici les {len(steps)} commandes que lance --execute{runs}.")


def _print_dry_run(notes: Sequence[str], steps: Sequence[Step], closing: Sequence[str], out: TextIO) -> None:
    """The plan as a bash script: the notes and closing lines are comments, so the whole output can be pasted."""
    for note in notes:
        print(f"# {note}", file=out)
    print("# " + _dry_run_header(steps, ""), file=out)
    print("# " + say("Pasted into a terminal (bash), from any directory, they deploy into a project where none of it "
                     "exists yet; --execute first checks each step, so it can run again (already there, a new image, "
                     "a changed IP).",
                     "Collées dans un terminal (bash), depuis n'importe quel dossier, elles déploient tout dans un "
                     "projet vide. --execute vérifie d'abord chaque étape, si bien qu'on peut le relancer sans risque "
                     "(ressource déjà là, nouvelle image, IP changée)."), file=out)
    print_plan(steps, out)
    for line in closing:
        print(f"# {line}", file=out)


def _class_notes(config: DeployConfig) -> list[str]:
    notes = []
    if config.student:
        notes.append(say(f"Student '{config.student}': your VM is {config.vm_name}, your firewall rule "
                         f"{config.firewall_rule}, your image {config.image_name}.",
                         f"Étudiant '{config.student}' : votre VM est {config.vm_name}, votre règle de pare-feu "
                         f"{config.firewall_rule}, votre image {config.image_name}."))
    else:
        notes.append(_no_student_note())
    if config.max_run_duration:
        notes.append(say(f"Cost guard: the VM deletes itself {config.max_run_duration} after it starts "
                         "(--max-run-duration); deploy again for a new one.",
                         f"Garde-fou sur les coûts : la VM se supprime {config.max_run_duration} après son démarrage "
                         "(--max-run-duration) ; redéployez pour en avoir une nouvelle."))
    return notes


def _before(config: DeployConfig) -> str:
    return say(f"Before: gcloud auth login --no-launch-browser, then gcloud config set project {config.project} "
               "(workshop gcp preflight checks both).",
               f"Avant : gcloud auth login --no-launch-browser, puis gcloud config set project {config.project} "
               "(workshop gcp preflight vérifie les deux).")


def deploy(
    config: DeployConfig, execute_steps: bool = False, out: TextIO = sys.stdout, timeout: float = 600.0
) -> DeployResult | None:
    """Print (dry run) or run the deployment; when run, wait until the VM's API answers.

    A re-run keeps one working key: the VM's own, unless a new one is given (then the VM gets it); a new
    image reaches the VM by its digest; the firewall rule follows this machine's IP.
    """
    config.work_dir.mkdir(parents=True, exist_ok=True)
    config.startup_script.write_text(startup_script_text())
    steps = deploy_steps(config)
    if not execute_steps:
        health = f"curl http://{var(EXTERNAL_IP)}:{config.port}/health"
        _print_dry_run([*_class_notes(config), *resolve_access(config), _before(config)], steps,
                       [say(f"then, within a few minutes: {health}", f"puis, en quelques minutes : {health}")], out)
        return None
    for note in _class_notes(config):
        print(note, file=out)
    check_prerequisites(config, out)
    # The key already on the VM, if it exists: reading it fails when there is no VM, which is fine.
    code, stdout, _ = _read(key_on_vm_command(config))
    for note in resolve_access(config, key_on_vm=stdout.strip() if code == 0 and stdout.strip() else None):
        print(note, file=out)
    total = len(steps) + 1
    values = execute(steps, out, total=total)
    url = f"http://{values[EXTERNAL_IP]}:{config.port}"
    print(f"[{total}/{total}] " + say("Wait until the API answers", "Attendre que l'API réponde"), file=out)
    seconds = wait_for_health(f"{url}/health", timeout=timeout, out=out)
    print("\n" + say(f"The back-end answers at {url} (docs: {url}/docs).",
                     f"Le back-end répond à {url} (docs : {url}/docs)."), file=out)
    ui = f"WORKSHOP_API_KEY=$(cat {config.api_key_file}) workshop ui --backend-url {url}"
    print(say(f"Point the front-end at it: {ui}", f"Branchez le front-end dessus : {ui}"), file=out)
    assert config.api_key is not None
    return DeployResult(url=url, api_key=config.api_key, health_seconds=seconds)


def list_leftovers(checks: Sequence, values: dict[str, str] | None = None, out: TextIO = sys.stdout) -> list[str]:
    """Print what is left, kind by kind (each by its exact name); return those this teardown counts."""
    print("\n" + say("What is left in the project (each may still cost money):",
                     "Ce qui reste dans le projet (chaque élément peut encore coûter) :"), file=out)
    left = []
    for check in checks:
        code, stdout, stderr = _read(filled(check.command, values or {}))
        if code != 0 and not is_missing(stderr + stdout):
            names = [say(f"unknown ({hint(stderr + stdout)})", f"inconnu ({hint(stderr + stdout)})")]
        else:
            names = [line.strip() for line in stdout.splitlines() if line.strip()] if code == 0 else []
        kept = "" if check.counts or not names else say(" (kept: you did not ask to delete it)",
                                                         " (gardé : vous n'avez pas demandé sa suppression)")
        colon = say(":", " :")  # French sets its colons apart
        print(f"  {check.kind}{colon} {', '.join(names) if names else say('none', 'aucun')}{kept}", file=out)
        if check.counts:
            left += [f"{check.kind}{colon} {name}" for name in names]
    if left:
        print("\n" + say(f"Still there ({len(left)}): run the teardown again, or delete them in the console.",
                         f"Encore là ({len(left)}) : relancez le ménage, ou supprimez-les dans la console."),
              file=out)
    else:
        print("\n" + say("Nothing that you asked to delete is left.",
                         "Tout ce que vous avez demandé de supprimer a disparu."), file=out)
    return left


def teardown(
    config: DeployConfig, execute_steps: bool = False, delete_image: bool = False, delete_repository: bool = False,
    out: TextIO = sys.stdout, target: str = "vm",
) -> list[str]:
    """Print (dry run) or run the clean-up to the end, then list what is left. Return what is left.

    ``target``: ``vm`` (the VM, its disk and firewall rule) or ``cloud-run`` (the service).

    Every deletion runs, whatever happened to the one before: a resource already gone counts as done, a
    failure is reported and the others still go. What is left counts only what this teardown was asked to
    delete (the shared repository, for one, is listed but not counted unless ``delete_repository``).
    """
    plan, listing = (cloud_run_teardown_steps, cloud_run_leftover_checks) if target == "cloud-run" else (
        teardown_steps, leftover_checks)
    steps = plan(config, delete_image=delete_image, delete_repository=delete_repository)
    checks = listing(config, delete_image=delete_image, delete_repository=delete_repository)
    if not execute_steps:
        print("# " + _dry_run_header(steps, say(", then these checks (each prints what is left, nothing once it is "
                                                "gone)", ", puis ces vérifications (chacune affiche ce qui reste, rien "
                                                "une fois supprimé)")), file=out)
        print_plan([*steps, *(Step(check.kind, check.command) for check in checks)], out)
        return []
    failures = []
    for index, step in enumerate(steps, start=1):
        try:
            execute([step], out, total=len(steps), start=index)
        except StepFailed as error:
            failures.append(str(error))
            print("    " + say(f"FAILED, going on. {error}", f"ÉCHEC, on continue. {error}"), file=out)
    return list_leftovers(checks, out=out)


def _cloud_run_closing(config: DeployConfig) -> list[str]:
    key = f"$(cat {config.api_key_file})"
    local = f"http://localhost:{PROXY_PORT}"
    proxy = proxy_command(config).replace(" \\\n    ", " ")
    return [
        say("The service has no public door: Google checks each caller's identity (IAM) before a request reaches it.",
            "Le service n'a pas de porte publique : Google vérifie l'identité de chaque appelant (IAM) avant qu'une "
            "requête ne l'atteigne."),
        say(f"Reach it through gcloud, which signs your requests (leave it running): {proxy}",
            f"Passez par gcloud, qui signe vos requêtes (laissez-le tourner) : {proxy}"),
        say(f"then, in another terminal: curl {local}/health", f"puis, dans un autre terminal : curl {local}/health"),
        say(f'and with the key: curl -H "X-API-Key: {key}" {local}/models',
            f'et avec la clé : curl -H "X-API-Key: {key}" {local}/models'),
        say(f"Point the front-end at it: WORKSHOP_API_KEY={key} workshop ui --backend-url {local}",
            f"Branchez le front-end dessus : WORKSHOP_API_KEY={key} workshop ui --backend-url {local}"),
    ]


def _cloud_run_notes(config: DeployConfig) -> list[str]:
    if config.student:
        notes = [say(f"Student '{config.student}': your Cloud Run service is {config.service_name}, your image "
                     f"{config.image_name}.",
                     f"Étudiant '{config.student}' : votre service Cloud Run est {config.service_name}, votre image "
                     f"{config.image_name}.")]
    else:
        notes = [_no_student_note()]
    notes.append(say(f"Cost guard: at most {config.max_instances} instances (--max-instances), none when idle "
                     "(--min-instances 0: nothing billed then; the first request after a pause waits for a cold "
                     "start).",
                     f"Garde-fou sur les coûts : au plus {config.max_instances} instances (--max-instances), aucune au "
                     "repos (--min-instances 0 : rien n'est facturé alors ; la première requête après une pause attend "
                     "un démarrage à froid)."))
    notes.append(say(f"Scaling: Cloud Run adds instances when, over about a minute, the running ones use more than "
                     f"60 % of their CPU or near {config.concurrency} requests at once each (--concurrency, the "
                     "server's own queue: WORKSHOP_MAX_PENDING_PREDICTIONS); it never sends one instance more.",
                     f"Mise à l'échelle : Cloud Run ajoute des instances quand, sur une minute environ, celles qui "
                     f"tournent dépassent 60 % de leur CPU ou approchent {config.concurrency} requêtes simultanées "
                     "chacune (--concurrency, la file du serveur : WORKSHOP_MAX_PENDING_PREDICTIONS) ; il n'en envoie "
                     "jamais davantage à une instance."))
    if config.teacher_account:
        notes.append(say(f"The teacher ({config.teacher_account}) may call your service too (roles/run.invoker).",
                         f"L'enseignant ({config.teacher_account}) peut aussi appeler votre service "
                         "(roles/run.invoker)."))
    return notes


def deploy_cloud_run(
    config: DeployConfig, execute_steps: bool = False, out: TextIO = sys.stdout
) -> CloudRunResult | None:
    """Print (dry run) or run the Cloud Run deployment; ``gcloud run deploy`` itself waits for the start-up probe.

    A re-run changes nothing when the service already runs the same image digest with the same settings
    (a label keeps their fingerprint); a new image or setting makes a new revision.
    """
    config.work_dir.mkdir(parents=True, exist_ok=True)
    notes = [*_cloud_run_notes(config), *resolve_api_key(config)]
    steps = cloud_run_deploy_steps(config)
    if not execute_steps:
        _print_dry_run([*notes, _before(config)], steps, _cloud_run_closing(config), out)
        return None
    for note in notes:
        print(note, file=out)
    check_prerequisites(config, out)
    values = execute(steps, out)
    print("\n" + say(f"The back-end runs at {values[SERVICE_URL]}.", f"Le back-end tourne à {values[SERVICE_URL]}."),
          file=out)
    for line in _cloud_run_closing(config):
        print(line, file=out)
    assert config.api_key is not None
    return CloudRunResult(url=values[SERVICE_URL], api_key=config.api_key, proxy=proxy_command(config))


__all__ = [
    "API_KEY", "CloudRunResult", "DeployResult", "HINTS", "StepFailed", "deploy", "deploy_cloud_run", "execute",
    "hint", "is_missing", "list_leftovers", "print_plan", "run_step", "teardown", "wait_for_health",
]
