"""The Teacher page: paste or upload the class's roster, see every student's deployment checked at once.

A Streamlit page script: ``app.py`` runs it after drawing the sidebar (whose
back-end settings this page does not use: each student's URL and key come from
the roster). The grading is ``workshop check --roster``'s own
(:mod:`workshop.check`); this page only reads the roster, asks and shows.

The checks run on the server that runs Streamlit, not in the browser: the
students' URLs must be reachable from there (a VM's public address is, from a
codespace or a laptop alike). A Cloud Run service also checks the caller's
Google identity: the page sends the identity token of that server's gcloud
account to Cloud Run URLs (and to no other).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from workshop.check import (
    DEFAULT_WORKERS,
    UNICODE_MARKS,
    RosterEntry,
    RosterError,
    RosterResult,
    check_roster,
    identity_token,
    is_cloud_run,
    parallel_checks,
    parse_roster,
    roster_csv,
)
from workshop.check.report import roster_rows

#: What the text area shows until the teacher pastes the class's roster.
ROSTER_PLACEHOLDER = "name,url,key\nAlice,http://203.0.113.10:8000,her-api-key\nBob,http://203.0.113.11:8000,"

#: What Markdown would read as markup: st.table renders each cell as Markdown, and a cell holds what a
#: student's server answered (its model's name, its error messages), shown to the teacher as it came.
_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^&])")

#: Where the last grading is kept between reruns: a widget touched must not check the class again.
_RESULTS_KEY = "teacher_grading"


@dataclass(frozen=True)
class Grading:
    """One check of the whole class: the roster it was for, the results in its order, and when it ran."""

    entries: tuple[RosterEntry, ...]
    results: list[RosterResult]
    checked_at: float
    seconds: float

    @property
    def passed(self) -> int:
        return sum(result.passed for result in self.results)


def roster_source() -> tuple[str | bytes, str, str] | None:
    """The roster the teacher gave: (its content, its name in messages, the results' file name); None when none yet.

    An uploaded file wins over the text area: the upload is the deliberate act.
    """
    upload = st.file_uploader("Roster file (CSV: name, url, key)", type=["csv", "txt"], key="roster_file")
    pasted = st.text_area(
        "Or paste the roster", key="roster_text", height=160, placeholder=ROSTER_PLACEHOLDER,
        help="One line per student under a header naming the columns name,url,key; the key may be empty. "
        "Commas, semicolons (Excel in French) or tabs.",
    )
    if upload is not None:
        return upload.getvalue(), upload.name, f"{Path(upload.name).stem}-results.csv"
    if pasted and pasted.strip():
        return pasted, "you pasted", "roster-results.csv"
    return None


def grade(entries: list[RosterEntry]) -> Grading:
    """Check every deployment of the roster, a few at a time, as ``workshop check --roster`` does."""
    workers = parallel_checks(DEFAULT_WORKERS, len(entries))
    token = None
    if any(is_cloud_run(entry.url) for entry in entries):
        # Cloud Run checks the caller's Google identity: this server's gcloud account, which each student lets in.
        token = identity_token()
        if token is None:
            st.warning("The roster has Cloud Run URLs, but gcloud gives no identity token on the machine that runs "
                       "this page: log in there (`gcloud auth login`) with the account your students let in.")
    started = time.monotonic()
    with st.spinner(f"Checking {len(entries)} deployments, {workers} at a time..."):
        results = check_roster(entries, workers=workers, identity_token=token)
    return Grading(tuple(entries), results, time.time(), time.monotonic() - started)


def as_text(value: str) -> str:
    """``value`` escaped so that ``st.table`` shows it as written, on one line: no image, formula or emphasis."""
    return _MARKUP.sub(r"\\\1", " ".join(value.split()))


def results_table(results: list[RosterResult]) -> pd.DataFrame:
    """The class's table: a mark, then the CSV's columns (never the key); one row per student, the roster's order."""
    rows = roster_rows(results)
    for row, result in zip(rows, results, strict=True):
        row["pass"] = UNICODE_MARKS.passed if result.passed else UNICODE_MARKS.failed
    columns = ["pass", *(column for column in rows[0] if column != "pass")]
    return pd.DataFrame([{column: as_text(row[column]) for column in columns} for row in rows], columns=columns)


def show(grading: Grading, results_name: str) -> None:
    total = len(grading.results)
    checked = time.strftime("%H:%M:%S", time.localtime(grading.checked_at))
    summary = (
        f"**{grading.passed} of {total}** deployments pass every check "
        f"(checked at {checked}, in {grading.seconds:.1f} s)."
    )
    (st.success if grading.passed == total else st.warning)(summary)
    st.table(results_table(grading.results), hide_index=True)
    st.download_button(
        "Download the results (CSV)", roster_csv(grading.results), file_name=results_name, mime="text/csv",
        key="download_results", icon=":material/download:",
    )


def main() -> None:
    st.title("Teacher: check the class's deployments")
    st.markdown(
        "Give the roster (a CSV file with the columns `name`, `url` and `key`): every student's back-end is "
        "checked against the workshop's contract, as `workshop check --roster` does. "
        "Press **Refresh** to check again."
    )
    source = roster_source()
    if source is None:
        st.info("Upload the roster or paste it above: one line per student, under the header `name,url,key`.")
        return
    content, name, results_name = source
    try:
        entries = parse_roster(content, name)
    except RosterError as error:
        st.error(str(error))
        return
    refresh = st.button("Refresh", key="refresh", icon=":material/refresh:", help="Check every deployment again.")
    grading: Grading | None = st.session_state.get(_RESULTS_KEY)
    # A new roster is checked at once; the same one only on Refresh (each check sends a few requests per student).
    if refresh or grading is None or grading.entries != tuple(entries):
        grading = grade(entries)
        st.session_state[_RESULTS_KEY] = grading
    show(grading, results_name)


main()
