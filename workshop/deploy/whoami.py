"""``workshop gcp whoami``: who gcloud says you are, and the names your resources get from it.

In a project shared by a class, every student's VM, firewall rule, image and Cloud Run service ends with a
suffix of their own, derived from their gcloud account (:func:`workshop.deploy.gcp.student_from_account`):
the part before the @, lowercased, then four hex digits of the whole address, so that two students never
share a name. ``--suffix`` prints it alone, for ``STUDENT=$(workshop gcp whoami --suffix)``; ``--source-range``
prints who the firewall should let in (this machine's public IP, and the teacher's).
"""

from __future__ import annotations

import os
import sys

from workshop.checkpoints import say
from workshop.deploy.gcp import (
    TEACHER_IP_VARIABLE,
    DeployConfig,
    active_account,
    default_project,
    resolve_source_range,
    sanitise_student,
    student_from_account,
)

#: The project id the name-only configurations use (names do not depend on it).
NAMES_ONLY = "names-only-project"


def _not_logged_in() -> str:
    return say("Not logged in: run gcloud auth login --no-launch-browser, or pass --student NAME.",
               "Pas connecté : lancez gcloud auth login --no-launch-browser, ou passez --student NOM.")


def source_range(teacher_ip: str | None = None) -> tuple[str, list[str]]:
    """The firewall's source ranges (your public IP/32, and the teacher's address), and the notes that explain them."""
    config = DeployConfig(project=NAMES_ONLY, teacher_ip=teacher_ip or os.environ.get(TEACHER_IP_VARIABLE) or None)
    notes = resolve_source_range(config)
    return config.source_ranges, notes


def whoami(project: str | None = None, student: str | None = None, suffix_only: bool = False,
           source_range_only: bool = False, teacher_ip: str | None = None) -> int:
    """Print the account, the suffix and the names (or one of them alone); exit code 1 when not logged in."""
    if source_range_only:
        ranges, notes = source_range(teacher_ip)
        for note in notes:
            print(note, file=sys.stderr)
        print(ranges)
        return 0
    account = active_account()
    if student:
        suffix = sanitise_student(student)
        origin = say("given with --student", "donné par --student")
    elif account:
        suffix = student_from_account(account)
        origin = say("the account's name, then 4 hex digits of the whole address",
                     "le nom du compte, puis 4 chiffres hexadécimaux de l'adresse entière")
    else:
        print(_not_logged_in(), file=sys.stderr)
        return 1
    if suffix_only:
        print(suffix)
        return 0
    names = DeployConfig(project=NAMES_ONLY, student=suffix)
    print(say(f"Account: {account or 'none'}", f"Compte : {account or 'aucun'}"))
    print(say(f"Project: {project or default_project() or 'none set'}",
              f"Projet : {project or default_project() or 'aucun'}"))
    print(say(f"Your suffix: {suffix} ({origin})", f"Votre suffixe : {suffix} ({origin})"))
    print(say(f"Your names: VM {names.vm_name}, firewall rule {names.firewall_rule}, image {names.image_name}, "
              f"Cloud Run service {names.service_name}",
              f"Vos noms : VM {names.vm_name}, règle de pare-feu {names.firewall_rule}, image {names.image_name}, "
              f"service Cloud Run {names.service_name}"))
    ranges, notes = source_range(teacher_ip)
    print(say(f"The firewall will let in: {ranges}", f"Le pare-feu laissera entrer : {ranges}"))
    for note in notes:
        print(f"  {note}")
    return 0
