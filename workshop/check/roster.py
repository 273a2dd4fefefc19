"""Grade a whole class: a roster CSV (name, url, key) in, one graded row per student out.

:func:`read_roster` reads the teacher's file (:func:`parse_roster` the same text, pasted or uploaded)
and says in one sentence what is wrong with it when it cannot be used; :func:`check_roster` runs
:func:`~workshop.check.contract.check_deployment` on every row in a bounded thread pool (the work is
waiting on the network, so threads suffice) and returns the results in the roster's order. None of
them prints anything.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from workshop.check.contract import (
    DEFAULT_LATENCY_BUDGET_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    DeploymentReport,
    Picture,
    check_deployment,
    sample_picture,
)

#: The roster's columns: ``key`` may be missing or empty (a server without a key).
REQUIRED_COLUMNS = ("name", "url")
OPTIONAL_COLUMNS = ("key",)
#: The result's columns, in the table and in the CSV file.
ROSTER_COLUMNS = ("name", "url", "reachable", "ready", "contract", "model", "latency_ms", "failed", "fix")
#: Deployments checked at once by default; a class of 40 takes a few rounds, not 40.
DEFAULT_WORKERS = 8
#: No more than this many at once, whatever is asked: each holds a connection and a thread.
MAX_WORKERS = 32

_EXPECTED_HEADER = "its first line must name the columns name,url,key (the key may be empty)"


class RosterError(ValueError):
    """The roster cannot be used; the message is one sentence that says why and what to do."""


@dataclass(frozen=True)
class RosterEntry:
    """One student's deployment: who, where, and the key it needs (``None`` for none)."""

    name: str
    url: str
    api_key: str | None = None


@dataclass(frozen=True)
class RosterResult:
    """One student's entry and the report of the checks run on it."""

    entry: RosterEntry
    report: DeploymentReport

    @property
    def passed(self) -> bool:
        return self.report.passed

    def row(self) -> dict[str, str]:
        """The row of the class's table, as text, with the columns of :data:`ROSTER_COLUMNS`."""
        report = self.report
        return {
            "name": self.entry.name,
            "url": report.url,
            "reachable": "yes" if report.reachable else "no",
            "ready": {True: "yes", False: "no", None: "-"}[report.ready],
            "contract": report.score,
            "model": report.model or "",
            "latency_ms": f"{report.latency * 1000:.0f}" if report.latency is not None else "",
            "failed": " ".join(check.name for check in report.failures),
            "fix": " | ".join(report.fixes),
        }


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel in French saves "CSV (séparateur : point-virgule)" in Windows-1252, not UTF-8.
        return raw.decode("cp1252", errors="replace")


def _delimiter(header: str) -> str:
    # Excel in French separates with semicolons, since the comma is the decimal separator there.
    return max((",", ";", "\t"), key=header.count)


def read_roster(path: Path | str) -> list[RosterEntry]:
    """The roster's rows; raise :class:`RosterError` with one sentence when the file cannot be used.

    The file is a CSV with a header line naming ``name``, ``url`` and optionally ``key`` (in any
    order and case); commas, semicolons or tabs separate the fields; blank lines are skipped.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RosterError(
            f"The roster {path} does not exist: give the path of a CSV file whose first line names the columns "
            "name,url,key."
        ) from None
    except OSError as error:
        raise RosterError(f"The roster {path} cannot be read ({error.strerror or error}).") from None
    return parse_roster(raw, str(path))


def parse_roster(content: str | bytes, source: str) -> list[RosterEntry]:
    """The rows of a roster already in memory (pasted text, an uploaded file), read as :func:`read_roster` reads one.

    ``source`` names the roster in the error's sentence: "The roster {source} has no 'url' column...".
    """
    text = _decode(content) if isinstance(content, bytes) else content
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise RosterError(f"The roster {source} is empty: {_EXPECTED_HEADER}, then one line per student.")
    reader = csv.DictReader(lines, delimiter=_delimiter(lines[0]))
    header = [(column or "").strip().lower() for column in reader.fieldnames or []]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise RosterError(
            f"The roster {source} has no {' and no '.join(repr(column) for column in missing)} column "
            f"(its header reads {lines[0].strip()!r}): {_EXPECTED_HEADER}."
        )
    reader.fieldnames = header
    entries = []
    for row in reader:
        url = (row.get("url") or "").strip()
        name = (row.get("name") or "").strip() or url or f"row {reader.line_num}"
        entries.append(RosterEntry(name=name, url=url, api_key=(row.get("key") or "").strip() or None))
    if not entries:
        raise RosterError(
            f"The roster {source} names the columns but no student: add one line per student under them."
        )
    return entries


def check_roster(
    entries: Sequence[RosterEntry],
    workers: int = DEFAULT_WORKERS,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    latency_budget: float = DEFAULT_LATENCY_BUDGET_SECONDS,
    picture: Picture | None = None,
    on_result: Callable[[RosterResult], None] | None = None,
    identity_token: str | None = None,
) -> list[RosterResult]:
    """Check every entry, at most ``workers`` at once (capped at :data:`MAX_WORKERS`); results in the roster's order.

    ``on_result`` is called as each student's grade arrives (from a worker thread), for a progress line.
    ``identity_token``: the teacher's Google identity token, sent to the Cloud Run URLs only.
    """
    picture = picture or sample_picture()  # one picture for the class: the same test for everyone

    def grade(entry: RosterEntry) -> RosterResult:
        result = RosterResult(entry, check_deployment(entry.url, entry.api_key, timeout, latency_budget, picture,
                                                      identity_token))
        if on_result is not None:
            on_result(result)
        return result

    if not entries:
        return []
    workers = parallel_checks(workers, len(entries))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="workshop-check") as pool:
        return list(pool.map(grade, entries))


def parallel_checks(workers: int, entries: int) -> int:
    """How many deployments :func:`check_roster` checks at once: ``workers``, within 1 and :data:`MAX_WORKERS`,
    and no more than there are entries."""
    return max(1, min(workers, MAX_WORKERS, entries))
