"""Printing the grades: one deployment's report as lines, a class's as a table and as a CSV file.

The grading (:mod:`workshop.check.contract`, :mod:`workshop.check.roster`) returns data; this
module only turns it into text, so a notebook, the command line and a teacher's page can each
show the same results their own way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from workshop.check.contract import DeploymentReport
from workshop.check.roster import ROSTER_COLUMNS, RosterResult
from workshop.checkpoints import number, say


@dataclass(frozen=True)
class Marks:
    """The signs in front of each line: check marks where the terminal can print them, words elsewhere."""

    passed: str
    failed: str
    skipped: str
    fix: str


UNICODE_MARKS = Marks(passed="✓", failed="✗", skipped="–", fix="→")
PLAIN_MARKS = Marks(passed="ok", failed="FAIL", skipped="skip", fix="fix:")


def marks_for(stream: TextIO) -> Marks:
    """:data:`UNICODE_MARKS` when ``stream`` can encode them, else :data:`PLAIN_MARKS` (a C locale, an old console)."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "".join(UNICODE_MARKS.__dict__.values()).encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return PLAIN_MARKS
    return UNICODE_MARKS


def _mark(status: str, marks: Marks) -> str:
    return {"pass": marks.passed, "fail": marks.failed, "skip": marks.skipped}[status]


def format_report(report: DeploymentReport, marks: Marks = UNICODE_MARKS) -> str:
    """The report as lines for a terminal or a notebook: one per check, the fix under each failure, a verdict.

    In the notebook's language (``WORKSHOP_LANG``), as the report's details and fixes are; English by default.
    """
    sign_width = max(len(marks.passed), len(marks.failed), len(marks.skipped))
    title_width = max(len(check.title) for check in report.checks)
    lines = [say(f"Checking {report.url}", f"Vérification de {report.url}")]
    for check in report.checks:
        lines.append(f"  {_mark(check.status, marks):<{sign_width}}  {check.title:<{title_width}}  {check.detail}")
        if check.fix:
            lines.append(f"  {'':<{sign_width}}  {marks.fix} {check.fix}")
    took = f"{number(report.seconds, 1)} s"
    if report.passed:
        lines.append(say(f"All {report.checks_run} checks passed ({took}).",
                         f"Les {report.checks_run} contrôles passent ({took})."))
    elif not report.reachable:
        lines.append(say(f"Unreachable: no check could run ({took}).",
                         f"Injoignable : aucun contrôle n'a pu être lancé ({took})."))
    else:
        names = ", ".join(check.name for check in report.failures)
        lines.append(say(f"{report.score} checks passed; to fix: {names} ({took}).",
                         f"{report.score} contrôles passent ; à corriger : {names} ({took})."))
    return "\n".join(lines)


def roster_rows(results: Sequence[RosterResult]) -> list[dict[str, str]]:
    """One row of text per student, with the columns of :data:`ROSTER_COLUMNS` (the CSV's and the table's)."""
    return [result.row() for result in results]


def roster_csv(results: Sequence[RosterResult]) -> str:
    """The class's results as CSV text: a header line, one row per student, every fix in full, never a key."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=ROSTER_COLUMNS)
    writer.writeheader()
    writer.writerows(roster_rows(results))
    return buffer.getvalue()


def write_roster_csv(results: Sequence[RosterResult], path: Path) -> Path:
    """Write :func:`roster_csv` to ``path`` (UTF-8); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        file.write(roster_csv(results))
    return path


def format_roster(results: Sequence[RosterResult], marks: Marks = UNICODE_MARKS) -> str:
    """The class as a table, one line per student, a count, then each failing student's most urgent fix in full.

    The fixes go under the table rather than in a column: a sentence does not fit in a terminal's
    last column, and the CSV file (:func:`write_roster_csv`) has all of them.
    """
    rows = roster_rows(results)
    for row, result in zip(rows, results, strict=True):
        row["name"] = f"{marks.passed if result.passed else marks.failed} {row['name']}"
    columns = [column for column in ROSTER_COLUMNS if column != "fix"]
    widths = {column: max([len(column), *(len(row[column]) for row in rows)]) for column in columns}

    def line(values: dict[str, str]) -> str:
        return "  ".join(f"{values[column]:<{widths[column]}}" for column in columns).rstrip()

    lines = [line({column: column for column in columns}), line({column: "-" * len(column) for column in columns})]
    lines += [line(row) for row in rows]
    lines.append(f"{sum(result.passed for result in results)}/{len(results)} deployments pass every check.")
    to_fix = [(result.entry.name, result.report.fixes[0]) for result in results if result.report.fixes]
    if to_fix:
        lines.append("What to fix first:")
        lines += [f"  {name}: {fix}" for name, fix in to_fix]
    return "\n".join(lines)
