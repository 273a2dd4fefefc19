"""Grade deployments of the back-end against the workshop's contract (``workshop check``).

In a notebook::

    from workshop.check import check_deployment
    report = check_deployment("http://localhost:8000", api_key=None)
    print(report)          # one line per check, what to fix under each failure
    report.passed          # True only when every check that ran passed

For a class, :func:`read_roster` (or :func:`parse_roster`, for text in memory) and :func:`check_roster`
grade every row of a CSV file (name, url, key) in parallel; :mod:`workshop.check.report` prints or
writes the results.
"""

from workshop.check.contract import (
    CHECKS,
    CONNECT_TIMEOUT_SECONDS,
    DEFAULT_LATENCY_BUDGET_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    Check,
    CheckResult,
    DeploymentReport,
    Picture,
    check_deployment,
    sample_picture,
)
from workshop.check.identity import identity_token, is_cloud_run
from workshop.check.report import (
    PLAIN_MARKS,
    UNICODE_MARKS,
    format_report,
    format_roster,
    marks_for,
    roster_csv,
    write_roster_csv,
)
from workshop.check.roster import (
    DEFAULT_WORKERS,
    ROSTER_COLUMNS,
    RosterEntry,
    RosterError,
    RosterResult,
    check_roster,
    parallel_checks,
    parse_roster,
    read_roster,
)

__all__ = [
    "CHECKS",
    "CONNECT_TIMEOUT_SECONDS",
    "DEFAULT_LATENCY_BUDGET_SECONDS",
    "DEFAULT_TIMEOUT_SECONDS",
    "DEFAULT_WORKERS",
    "PLAIN_MARKS",
    "ROSTER_COLUMNS",
    "UNICODE_MARKS",
    "Check",
    "CheckResult",
    "DeploymentReport",
    "Picture",
    "RosterEntry",
    "RosterError",
    "RosterResult",
    "check_deployment",
    "check_roster",
    "format_report",
    "format_roster",
    "identity_token",
    "is_cloud_run",
    "marks_for",
    "parallel_checks",
    "parse_roster",
    "read_roster",
    "roster_csv",
    "sample_picture",
    "write_roster_csv",
]
