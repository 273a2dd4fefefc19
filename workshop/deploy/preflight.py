"""What a project needs before the cloud step, checked with real gcloud calls, one line per check.

Two uses, one code: notebook 06's first cell (``workshop gcp preflight``: gcloud logged in, a project, billing,
the APIs on or switchable on) and the teacher's check before a class (``workshop gcp preflight --students N``:
the same, then the quotas for N VMs, the organisation policies that break the lab, the default compute service
account, and the teacher's own role). Each line says what to do, or what to ask the administrator, in one
sentence; the command exits 0 only when the class can run.

Every gcloud answer is read from its standard output alone: gcloud writes its warnings to standard error
(``auth list --filter=status:ACTIVE`` warns when nobody is logged in, and exits 0).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from workshop.checkpoints import say

#: The markers of a line: passed, failed, to check by hand (not blocking), not checked (a check before failed).
MARKS = {"ok": "✓", "fail": "✗", "warn": "!", "skip": "·"}

#: The roles that may switch APIs on, and those that may grant roles to the students.
ENABLERS = ("roles/owner", "roles/editor", "roles/serviceusage.serviceUsageAdmin")
GRANTERS = ("roles/owner", "roles/resourcemanager.projectIamAdmin")
#: vCPUs of the machine types the lab may use (e2 shared-core types count 2 against the CPUS quota).
MACHINE_CPUS = {"e2-micro": 2, "e2-small": 2, "e2-medium": 2, "e2-standard-2": 2, "e2-standard-4": 4}
#: Broad location groups of gcp.resourceLocations, by the start of a region's name.
LOCATION_GROUPS = {"in:eu-locations": ("europe-",), "in:europe-locations": ("europe-",),
                   "in:us-locations": ("us-",), "in:asia-locations": ("asia-",)}


@dataclass(frozen=True)
class Finding:
    """One check's result: ``status`` is ok, fail, warn (check by hand) or skip (not checked)."""

    name: str
    status: str
    detail: str
    advice: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "warn")

    def line(self) -> str:
        text = f"{MARKS[self.status]} {self.name}{say(': ', ' : ')}{self.detail}"
        return f"{text} {self.advice}".rstrip() if self.advice else text


def _gcloud(*args: str) -> tuple[int, str, str]:
    try:
        result = subprocess.run(["gcloud", *args], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        return 127, "", "gcloud: command not found"
    except subprocess.TimeoutExpired:
        return 124, "", "gcloud did not answer within 120 s"
    return result.returncode, result.stdout, result.stderr


def _error(stderr: str) -> str:
    """The first sentence of gcloud's error, without its prefixes: "Compute Engine API has not been used in ..."."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    text = next((line for line in lines if line.startswith("ERROR:")), lines[-1] if lines else "no answer")
    text = re.sub(r"^ERROR: \(gcloud[\w.-]*\) ", "", text)
    text = re.sub(r"^.*\(or it may not exist\): ", "", text)
    text = re.sub(r"^[A-Z_]+: ", "", text)
    return text.split(". ", 1)[0].rstrip(".")


def logged_in() -> Finding:
    """gcloud has an active account (``gcloud auth list``: the answer on stdout, not its warning on stderr)."""
    name = say("gcloud logged in", "gcloud connecté")
    code, stdout, stderr = _gcloud("auth", "list", "--filter=status:ACTIVE", "--format=value(account)")
    if code == 127:
        return Finding(name, "fail", say("gcloud is not installed.", "gcloud n'est pas installé."),
                       say("Install the Google Cloud CLI (the codespace has it).",
                           "Installez la Google Cloud CLI (le codespace l'a déjà)."))
    account = stdout.strip().splitlines()[0] if code == 0 and stdout.strip() else ""
    if not account:
        return Finding(name, "fail", say("no active account.", "aucun compte actif."),
                       say("Run gcloud auth login --no-launch-browser, then this again.",
                           "Lancez gcloud auth login --no-launch-browser, puis recommencez."))
    return Finding(name, "ok", account)


def project_exists(project: str | None) -> Finding:
    """A project is set and gcloud can read it."""
    name = say("project", "projet")
    if not project:
        return Finding(name, "fail", say("none set.", "aucun n'est défini."),
                       say("Run gcloud config set project YOUR_PROJECT_ID (the id your teacher gave you), then this "
                           "again.", "Lancez gcloud config set project ID_DU_PROJET (celui que l'enseignant vous a "
                                     "donné), puis recommencez."))
    code, stdout, stderr = _gcloud("projects", "describe", project, "--format=value(projectNumber)")
    if code != 0 or not stdout.strip():
        return Finding(name, "fail", say(f"{project} cannot be read ({_error(stderr)}).",
                                         f"{project} est illisible ({_error(stderr)})."),
                       say("Check the project id (gcloud projects list) and that your teacher added your account.",
                           "Vérifiez l'id du projet (gcloud projects list) et que l'enseignant a ajouté votre compte."))
    return Finding(name, "ok", say(f"{project} (number {stdout.strip()})", f"{project} (numéro {stdout.strip()})"))


def billing(project: str) -> Finding:
    """A billing account is linked (``gcloud billing projects describe``)."""
    name = say("billing", "facturation")
    code, stdout, stderr = _gcloud("billing", "projects", "describe", project, "--format=value(billingEnabled)")
    if code != 0:
        return Finding(name, "skip", say(f"not checked ({_error(stderr)}).", f"non vérifiée ({_error(stderr)})."),
                       say("Look at the console's Billing page for this project.",
                           "Regardez la page Facturation de la console pour ce projet."))
    if stdout.strip().lower() != "true":
        return Finding(name, "fail", say("no billing account linked.", "aucun compte de facturation associé."),
                       say("Link one in the console (Billing > Account management), or ask the project's owner.",
                           "Associez-en un dans la console (Facturation > Gestion du compte), ou demandez au "
                           "propriétaire du projet."))
    return Finding(name, "ok", say("linked", "associée"))


def roles_of(project: str, account: str) -> list[str] | None:
    """The roles ``account`` holds on the project directly (not through a group); None when unreadable."""
    code, stdout, _ = _gcloud("projects", "get-iam-policy", project, "--flatten=bindings[].members",
                              "--format=value(bindings.role,bindings.members)")
    if code != 0:
        return None
    members = {f"user:{account}", f"serviceAccount:{account}"}
    return sorted({line.split("\t")[0] for line in stdout.splitlines() if "\t" in line
                   and line.split("\t")[1].strip() in members})


def apis(project: str, wanted: Iterable[str], roles: list[str] | None) -> Finding:
    """The APIs are on, or the caller may switch them on (the plan's first step does)."""
    name = "API"
    wanted = list(wanted)
    code, stdout, stderr = _gcloud("services", "list", "--enabled", f"--project={project}",
                                   "--format=value(config.name)")
    if code != 0:
        return Finding(name, "skip", say(f"not checked ({_error(stderr)}).", f"non vérifiées ({_error(stderr)})."))
    missing = [api for api in wanted if api not in stdout.split()]
    if not missing:
        return Finding(name, "ok", say(f"{', '.join(wanted)} enabled", f"{', '.join(wanted)} activées"))
    command = f"gcloud services enable {' '.join(missing)} --project={project}"
    if roles is not None and set(roles) & set(ENABLERS):
        return Finding(name, "ok", say(f"{', '.join(missing)} off, and you may switch them on (the plan's first "
                                       "step does).",
                                       f"{', '.join(missing)} désactivées, et vous pouvez les activer (la première "
                                       "étape du plan le fait)."))
    return Finding(name, "fail", say(f"{', '.join(missing)} off, and your roles cannot switch them on.",
                                     f"{', '.join(missing)} désactivées, et vos rôles ne permettent pas de les "
                                     "activer."),
                   say(f"Ask the project's owner to run: {command}", f"Demandez au propriétaire du projet de lancer : "
                                                                       f"{command}"))


def default_service_account(project: str) -> Finding:
    """The project's default compute service account exists (without it, a VM gets no scopes and cannot pull)."""
    name = say("default compute service account", "compte de service Compute par défaut")
    code, stdout, stderr = _gcloud("compute", "project-info", "describe", f"--project={project}",
                                   "--format=value(defaultServiceAccount)")
    if code != 0:
        return Finding(name, "skip", say(f"not checked ({_error(stderr)}).", f"non vérifié ({_error(stderr)})."),
                       say("Enable Compute Engine first (gcloud services enable compute.googleapis.com), then run this "
                           "again.", "Activez d'abord Compute Engine (gcloud services enable compute.googleapis.com), "
                                     "puis recommencez."))
    if not stdout.strip():
        return Finding(name, "fail", say("missing (deleted, or your organisation stops its creation).",
                                         "absent (supprimé, ou bloqué par votre organisation)."),
                       say("Restore it (gcloud beta iam service-accounts undelete) or ask the administrator to allow "
                           "it: without it a VM cannot pull its image.",
                           "Restaurez-le (gcloud beta iam service-accounts undelete) ou demandez à l'administrateur de "
                           "l'autoriser : sans lui, une VM ne peut pas télécharger son image."))
    return Finding(name, "ok", stdout.strip())


def quotas(project: str, region: str, students: int, machine_type: str, disk_gb: int) -> list[Finding]:
    """The regional quotas a class of ``students`` VMs uses: CPUs, in-use IP addresses, disk."""
    code, stdout, stderr = _gcloud("compute", "regions", "describe", region, f"--project={project}",
                                   "--format=json(quotas)")
    name = say(f"quotas in {region}", f"quotas dans {region}")
    if code != 0:
        return [Finding(name, "skip", say(f"not checked ({_error(stderr)}).", f"non vérifiés ({_error(stderr)})."))]
    quota = {item["metric"]: item for item in json.loads(stdout or "{}").get("quotas", [])}
    needs = {"CPUS": students * MACHINE_CPUS.get(machine_type, 2), "IN_USE_ADDRESSES": students,
             "DISKS_TOTAL_GB": students * disk_gb}
    findings = []
    for metric, needed in needs.items():
        if metric not in quota:
            continue
        free = quota[metric]["limit"] - quota[metric].get("usage", 0)
        detail = say(f"{metric} {free:g} free of {quota[metric]['limit']:g}, {needed:g} needed",
                     f"{metric} {free:g} libres sur {quota[metric]['limit']:g}, {needed:g} nécessaires")
        if free >= needed:
            findings.append(Finding(f"quota {metric}", "ok", detail))
        else:
            findings.append(Finding(f"quota {metric}", "fail", detail + ".", say(
                f"Ask for {needed:g} in the console (IAM & Admin > Quotas, {metric} in {region}); approval can take "
                "a few days.",
                f"Demandez {needed:g} dans la console (IAM et administration > Quotas, {metric} dans {region}) ; "
                "l'accord peut prendre quelques jours.")))
    return findings


def _effective(project: str, constraint: str) -> dict | None:
    code, stdout, _ = _gcloud("resource-manager", "org-policies", "describe", constraint, f"--project={project}",
                              "--effective", "--format=json")
    return json.loads(stdout or "{}") if code == 0 else None


def org_policies(project: str, region: str) -> list[Finding]:
    """The organisation policies that break the lab, as they apply to this project (effective)."""
    findings = []
    unread = say("not readable.", "illisible.")
    ask = say("Ask your administrator for the roles/orgpolicy.policyViewer role, or to check it for you.",
              "Demandez à l'administrateur le rôle roles/orgpolicy.policyViewer, ou de vérifier pour vous.")

    external = _effective(project, "constraints/compute.vmExternalIpAccess")
    name = "compute.vmExternalIpAccess"
    if external is None:
        findings.append(Finding(name, "skip", unread, ask))
    elif external.get("listPolicy", {}).get("allValues") == "DENY" or external.get("listPolicy", {}).get(
            "allowedValues"):
        findings.append(Finding(name, "fail", say("VMs may not have an external IP.", "les VM ne peuvent pas avoir "
                                                                                      "d'IP externe."),
                                say("Ask the administrator to allow external IPs in this project (the lab's VMs need "
                                    "one), or use Cloud Run.",
                                    "Demandez à l'administrateur d'autoriser les IP externes dans ce projet (les VM du "
                                    "TP en ont besoin), ou utilisez Cloud Run.")))
    else:
        findings.append(Finding(name, "ok", say("external IPs allowed", "IP externes autorisées")))

    domains = _effective(project, "constraints/iam.allowedPolicyMemberDomains")
    name = "iam.allowedPolicyMemberDomains"
    allowed = (domains or {}).get("listPolicy", {}).get("allowedValues")
    if domains is None:
        findings.append(Finding(name, "skip", unread, ask))
    elif allowed:
        findings.append(Finding(name, "warn", say(f"IAM accepts only the accounts of {', '.join(allowed)}.",
                                                  f"IAM n'accepte que les comptes de {', '.join(allowed)}."),
                                say("Students with other accounts (gmail.com...) cannot be granted a role: give them "
                                    "accounts of your organisation, or ask for an exception.",
                                    "Un étudiant avec un autre compte (gmail.com...) ne peut recevoir aucun rôle : "
                                    "donnez-leur des comptes de votre organisation, ou demandez une exception.")))
    else:
        findings.append(Finding(name, "ok", say("any account may be granted a role",
                                                "tout compte peut recevoir un rôle")))

    os_login = _effective(project, "constraints/compute.requireOsLogin")
    name = "compute.requireOsLogin"
    if os_login is None:
        findings.append(Finding(name, "skip", unread, ask))
    elif os_login.get("booleanPolicy", {}).get("enforced"):
        findings.append(Finding(name, "warn", say("OS Login is required.", "OS Login est obligatoire."),
                                say("The lab needs no SSH; to debug a VM with gcloud compute ssh, a student needs "
                                    "roles/compute.osAdminLogin.",
                                    "Le TP se passe de SSH ; pour déboguer une VM avec gcloud compute ssh, un "
                                    "étudiant a besoin de roles/compute.osAdminLogin.")))
    else:
        findings.append(Finding(name, "ok", say("not enforced", "non imposé")))

    locations = _effective(project, "constraints/gcp.resourceLocations")
    name = "gcp.resourceLocations"
    values = (locations or {}).get("listPolicy", {}).get("allowedValues")
    if locations is None:
        findings.append(Finding(name, "skip", unread, ask))
    elif not values or any(_location_allows(value, region) for value in values):
        findings.append(Finding(name, "ok", say(f"{region} allowed", f"{region} autorisée")))
    else:
        findings.append(Finding(name, "fail", say(f"{region} is not among {', '.join(values)}.",
                                                  f"{region} n'est pas parmi {', '.join(values)}."),
                                say("Run the lab in an allowed region (workshop gcp deploy --region ...), or ask the "
                                    "administrator to add this one.",
                                    "Faites le TP dans une région autorisée (workshop gcp deploy --region ...), ou "
                                    "demandez à l'administrateur d'ajouter celle-ci.")))
    return findings


def _location_allows(value: str, region: str) -> bool:
    value = value.removeprefix("under:")
    if value in (region, f"in:{region}-locations"):
        return True
    return region.startswith(LOCATION_GROUPS.get(value, ("\0",)))


def teacher_role(project: str, account: str, roles: list[str] | None) -> Finding:
    """The teacher may grant the students their roles."""
    name = say("your role", "votre rôle")
    if roles is None:
        return Finding(name, "skip", say("the project's IAM policy is not readable.",
                                         "la stratégie IAM du projet est illisible."))
    held = ", ".join(roles) or say("none directly", "aucun en direct")
    if set(roles) & set(GRANTERS):
        return Finding(name, "ok", say(f"{held}: you may grant each student roles/editor",
                                       f"{held} : vous pouvez donner roles/editor à chaque étudiant"))
    return Finding(name, "fail", say(f"{held}: you cannot grant roles.",
                                     f"{held} : vous ne pouvez pas donner de rôle."),
                   say("Ask the administrator for roles/resourcemanager.projectIamAdmin on this project (roles through "
                       "a group are not seen here).",
                       "Demandez à l'administrateur roles/resourcemanager.projectIamAdmin sur ce projet (les rôles "
                       "reçus par un groupe ne sont pas vus ici)."))


def run(project: str | None, apis_needed: Iterable[str], students: int | None = None, region: str = "europe-west1",
        machine_type: str = "e2-medium", disk_gb: int = 20) -> list[Finding]:
    """The checks, in order; those that need an earlier one to pass are skipped when it failed."""
    findings = [logged_in()]
    account = findings[0].detail if findings[0].ok else None
    findings.append(project_exists(project) if account else Finding(say("project", "projet"), "skip",
                                                                    say("not checked.", "non vérifié.")))
    if not (account and findings[-1].ok):
        return findings
    assert project is not None
    roles = roles_of(project, account)
    findings += [billing(project), apis(project, apis_needed, roles)]
    if students:
        findings += [default_service_account(project), *quotas(project, region, students, machine_type, disk_gb),
                     *org_policies(project, region), teacher_role(project, account, roles)]
    return findings


def report(findings: list[Finding], students: int | None) -> str:
    """The lines, then one sentence: ready or not."""
    lines = [finding.line() for finding in findings]
    failed = sum(finding.status == "fail" for finding in findings)
    unchecked = sum(finding.status == "skip" for finding in findings)
    if failed or unchecked:
        plural, unchecked_plural = "s" * (failed > 1), "s" * (unchecked > 1)
        later = say(f" ({unchecked} could not be checked yet)",
                    f" ({unchecked} point{unchecked_plural} pas encore vérifiable{unchecked_plural})") \
            if unchecked else ""
        lines.append(say(f"Not ready: {failed} check(s) above to fix, then run this again{later}.",
                         f"Pas prêt : {failed} point{plural} ci-dessus à corriger, puis relancez{later}."))
    elif students:
        lines.append(say(f"Ready for a class of {students}.", f"Prêt pour une promo de {students}."))
    else:
        lines.append(say("Ready: you may deploy.", "Prêt : vous pouvez déployer."))
    return "\n".join(lines)
