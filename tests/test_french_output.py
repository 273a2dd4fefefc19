"""What the `workshop` commands print reads French in a French notebook (``WORKSHOP_LANG=fr``, which
``go_to_project_root`` sets and the commands the notebook starts inherit), and stays English elsewhere."""

from __future__ import annotations

import pytest

from workshop.lab import describe_timings
from workshop.loadtest.runner import StepResult, failure_hint, format_table

STEP = StepResult(users=2, seconds=3, requests=40, failures=3, p50_ms=25.0, p95_ms=40.0, p99_ms=55.0,
                  requests_per_s=13.3,
                  errors={"ConnectionError: refused": 3})


@pytest.fixture(params=["en", "fr"])
def language(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("WORKSHOP_LANG", request.param)
    return request.param


def test_the_load_tests_table_and_hint_are_in_the_notebooks_language(language: str) -> None:
    table, hint = format_table([STEP]), failure_hint([STEP], "http://127.0.0.1:9")
    if language == "fr":
        assert table.splitlines()[0].split() == ["util.", "requêtes", "échecs", "p50", "ms", "p95", "ms", "p99", "ms",
                                                 "req./s"]
        assert "échec 3 fois : ConnectionError: refused" in table
        assert hint == ("3 requêtes sur 40 ont échoué ; rien n'a répondu à http://127.0.0.1:9 : le back-end "
                        "tourne-t-il, et l'adresse est-elle juste ?")
    else:
        assert table.splitlines()[0].split()[:3] == ["users", "requests", "failures"]
        assert "failed 3x: ConnectionError: refused" in table
        assert hint.startswith("3 of 40 requests failed; nothing answered at http://127.0.0.1:9")


def test_the_timings_of_notebook_01_are_in_the_notebooks_language(language: str) -> None:
    line = describe_timings([0.4, 0.1, 0.12, 0.11])
    expected = {
        "en": "first call 400 ms, then median 110 ms (min 100, max 120) over 3 calls",
        "fr": "premier appel 400 ms, puis médiane 110 ms (min 100, max 120) sur 3 appels",
    }
    assert line == expected[language]
