"""Who the grader is, for a Cloud Run service: the teacher's Google identity token.

A Cloud Run service deployed with ``--no-allow-unauthenticated`` answers only callers whose identity IAM lets
in (``roles/run.invoker``): Google checks an ``Authorization: Bearer`` identity token before the request reaches
the container. The student grants the teacher that role (``workshop gcp deploy --target cloud-run
--teacher-account TEACHER``); the grader then sends the teacher's identity token, the one
``gcloud auth print-identity-token`` prints, to every Cloud Run URL, and to no other host.
"""

from __future__ import annotations

import subprocess
from urllib.parse import urlsplit

from workshop.checkpoints import say

#: The host names of Cloud Run services (``https://SERVICE-PROJECTNUMBER.REGION.run.app``).
CLOUD_RUN_DOMAIN = ".run.app"


def is_cloud_run(url: str) -> bool:
    """Whether ``url`` is a Cloud Run service's (so IAM, not only the API key, decides who gets in)."""
    host = urlsplit(url if "://" in url else f"http://{url}").hostname or ""
    return host.endswith(CLOUD_RUN_DOMAIN)


def identity_token() -> str | None:
    """The logged-in gcloud account's identity token (``gcloud auth print-identity-token``), or None when gcloud is
    missing or has none (not logged in): Cloud Run then refuses, and the report says why."""
    try:
        result = subprocess.run(["gcloud", "auth", "print-identity-token"], capture_output=True, text=True,
                                timeout=60)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    token = result.stdout.strip()
    return token if result.returncode == 0 and token else None


def authorization(url: str, token: str | None) -> dict[str, str]:
    """The header that carries ``token`` to ``url`` when it is a Cloud Run service's; nothing otherwise (a VM, a
    classmate's server: the teacher's identity goes to Google only)."""
    return {"Authorization": f"Bearer {token}"} if token and is_cloud_run(url) else {}


def cloud_run_refused_fix() -> str:
    """What to do when Cloud Run refuses the grader (a 403 before the back-end), in the notebook's language."""
    return say(
        "Cloud Run refused the caller before the back-end saw the request: the student grants your account the right "
        "to call it (workshop gcp deploy --target cloud-run --teacher-account YOUR_ACCOUNT, or gcloud run services "
        "add-iam-policy-binding ... --member=user:YOUR_ACCOUNT --role=roles/run.invoker), and you check while logged "
        "in to gcloud as that account.",
        "Cloud Run a refusé l'appelant avant que le back-end ne voie la requête. L'étudiant doit donner à votre "
        "compte le droit d'appeler le service (workshop gcp deploy --target cloud-run --teacher-account VOTRE_COMPTE, "
        "ou gcloud run services add-iam-policy-binding ... --member=user:VOTRE_COMPTE --role=roles/run.invoker), et "
        "vous lancez la vérification connecté à gcloud avec ce compte.",
    )
