"""Errors as Google's APIs return them, so that the real gcloud prints them as it prints Google's.

Two shapes: the ``google.rpc.Status`` of the newer APIs (Artifact Registry, Resource Manager, Service Usage,
Cloud Run's v1 IAM), with ``details`` such as ``ErrorInfo`` (reason and domain) or ``PreconditionFailure``;
and Compute Engine's older one, with an ``errors`` list of ``{reason, domain, message}`` (its long-running
operations carry the same list). The messages are Google's wording, as the public error reports show it.
"""

from __future__ import annotations

from .proxy import Answer

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
PRECONDITION_FAILURE = "type.googleapis.com/google.rpc.PreconditionFailure"
HELP = "type.googleapis.com/google.rpc.Help"
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"

_STATUS_OF = {400: "FAILED_PRECONDITION", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS",
              412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED"}


class ApiError(Exception):
    """Raised by a handler; becomes the HTTP answer."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.body)
        self.answer = answer


def status(code: int, message: str, status_name: str | None = None, details: list[dict] | None = None) -> ApiError:
    """A ``google.rpc.Status`` error."""
    error = {"code": code, "message": message, "status": status_name or _STATUS_OF.get(code, "UNKNOWN")}
    if details:
        error["details"] = details
    return ApiError(Answer(code, {"error": error}))


def error_info(reason: str, domain: str, **metadata: str) -> dict:
    return {"@type": ERROR_INFO, "reason": reason, "domain": domain, "metadata": metadata}


def compute(code: int, reason: str, message: str) -> ApiError:
    """Compute Engine's error shape (what gcloud prints as ``Could not fetch resource: - MESSAGE``)."""
    return ApiError(Answer(code, {"error": {"code": code, "message": message,
                                            "errors": [{"message": message, "domain": "global", "reason": reason}]}}))


# ----------------------------------------------------------------------------- the lab's fault cases
def service_disabled(service: str, title: str, project_number: str) -> ApiError:
    """An API not enabled in the project (every Google API answers so, in this shape)."""
    url = f"https://console.developers.google.com/apis/api/{service}/overview?project={project_number}"
    return status(
        403,
        f"{title} has not been used in project {project_number} before or it is disabled. Enable it by visiting "
        f"{url} then retry. If you enabled this API recently, wait a few minutes for the action to propagate to "
        "our systems and retry.",
        details=[error_info("SERVICE_DISABLED", "googleapis.com", service=service,
                            consumer=f"projects/{project_number}", serviceTitle=title, activationUrl=url,
                            containerInfo=project_number),
                 {"@type": HELP, "links": [{"description": "Google developers console API activation", "url": url}]}],
    )


def billing_disabled(project_number: str, services: list[str]) -> ApiError:
    """``services enable`` on a project with no billing account (Service Usage's answer)."""
    names = ",".join(services)
    return status(
        400,
        f"Billing account for project '{project_number}' is not found. Billing must be enabled for activation of "
        f"service(s) '{names}' to proceed.",
        details=[{"@type": PRECONDITION_FAILURE, "violations": [{
            "type": "googleapis.com/billing-enabled", "subject": f"?error_code=390001&project={project_number}"
            f"&services={names}", "description": f"Billing account for project '{project_number}' is not found. "
            f"Billing must be enabled for activation of service(s) '{names}' to proceed."}]},
                 error_info("UREQ_PROJECT_BILLING_NOT_FOUND", "serviceusage.googleapis.com", services=names)],
    )


def permission_denied(permission: str, resource: str, compute_api: bool = False) -> ApiError:
    """The caller lacks ``permission`` on ``resource``."""
    if compute_api:
        return compute(403, "forbidden", f"Required '{permission}' permission for '{resource}'")
    return status(403, f"Permission '{permission}' denied on resource '{resource}' (or it may not exist).",
                  details=[error_info("IAM_PERMISSION_DENIED", "iam.googleapis.com", permission=permission,
                                      resource=resource)])


def quota_exceeded(metric: str, limit: float, region: str) -> dict:
    """A Compute operation's error: a regional quota exhausted (``CPUS``, ``IN_USE_ADDRESSES``)."""
    names = {"CPUS": ("compute.googleapis.com/cpus", "CPUS-per-project-region"),
             "IN_USE_ADDRESSES": ("compute.googleapis.com/in_use_addresses",
                                  "IN-USE-ADDRESSES-per-project-region")}
    metric_name, limit_name = names[metric]
    return {"errors": [{
        "code": "QUOTA_EXCEEDED",
        "message": f"Quota '{metric}' exceeded.  Limit: {limit:.1f} in region {region}.",
        "errorDetails": [{"quotaInfo": {"metricName": metric_name, "limitName": limit_name,
                                        "dimensions": {"region": region}, "limit": limit}}],
    }]}


def external_ip_refused(project_number: str, instance: str) -> ApiError:
    """Organisation policy ``compute.vmExternalIpAccess``: no external IP on this VM."""
    return compute(
        412, "conditionNotMet",
        f"Constraint constraints/compute.vmExternalIpAccess violated for project {project_number}. Add instance "
        f"{instance} to the constraint to use external IP with it.",
    )


def member_domain_refused(member: str) -> ApiError:
    """Organisation policy ``iam.allowedPolicyMemberDomains``: a member from outside the organisation."""
    return status(
        400,
        "One or more users named in the policy do not belong to a permitted customer,  perhaps due to an "
        "organization policy.",
        details=[{"@type": PRECONDITION_FAILURE, "violations": [{
            "type": "constraints/iam.allowedPolicyMemberDomains", "subject": member,
            "description": f"User {member} is not in permitted organization."}]}],
    )
