"""Checkpoint cells: check a student's exercise and say, in one sentence, what to fix.

Each notebook's exercises are followed by a checkpoint cell that calls a function from
this package (one module per notebook). A checkpoint either prints a line starting
with ✅, or raises :class:`CheckpointFailed`, which the notebook shows as one sentence,
not as a traceback, and which stops "Run all" right where the student must act.

Messages come in the notebook's language: the French notebooks (in a folder named
``fr``) get French sentences, the others English ones. :func:`workshop.lab.go_to_project_root`
records the language before it changes the working directory; ``WORKSHOP_LANG`` overrides it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: Set by ``go_to_project_root`` from the folder the notebook was opened in.
LANGUAGE_VARIABLE = "WORKSHOP_LANG"


def language() -> str:
    """``fr`` or ``en``: the notebook's language (its folder's name, unless ``WORKSHOP_LANG`` says otherwise)."""
    chosen = os.environ.get(LANGUAGE_VARIABLE, "").lower()
    if chosen in {"fr", "en"}:
        return chosen
    return "fr" if Path.cwd().name == "fr" else "en"


def say(en: str, fr: str) -> str:
    """The sentence in the notebook's language."""
    return fr if language() == "fr" else en


def number(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals, as the notebook's language writes it: 0.44 in English, 0,44 in French."""
    text = f"{value:.{digits}f}"
    return say(text, text.replace(".", ","))


@dataclass(frozen=True)
class Text:
    """A sentence in English and in French, kept as data (a step's title, a check's); ``str()`` gives the one of
    the notebook's language, chosen when it is shown."""

    en: str
    fr: str

    def __str__(self) -> str:
        return say(self.en, self.fr)


class CheckpointFailed(Exception):
    """An exercise is not done yet. IPython shows only the sentence (``_render_traceback_``), never a traceback."""

    def __init__(self, en: str, fr: str) -> None:
        self.en, self.fr = en, fr
        super().__init__(en)

    def __str__(self) -> str:
        return say(self.en, self.fr)

    def _render_traceback_(self) -> list[str]:
        return [f"❌ {self}"]


def passed(en: str, fr: str) -> None:
    """Print that a checkpoint passed."""
    print(f"✅ {say(en, fr)}")


def fail(en: str, fr: str) -> None:
    """Stop the notebook with one sentence saying what to fix."""
    raise CheckpointFailed(en, fr)


def expect(condition: bool, en: str, fr: str) -> None:
    """:func:`fail` with this sentence unless ``condition`` holds."""
    if not condition:
        fail(en, fr)


def guarded(check: Callable[[], None], en: str, fr: str) -> None:
    """Run ``check``; any unexpected error becomes a one-sentence failure (the student never reads a traceback)."""
    try:
        check()
    except CheckpointFailed:
        raise
    except Exception as error:  # a checkpoint must never crash on a half-done exercise
        fail(f"{en} ({type(error).__name__}: {error})", f"{fr} ({type(error).__name__} : {error})")


def deployment_passes(url: str, api_key: str | None = None, *, what: str = "") -> None:
    """Grade a running back-end with ``workshop check``'s contract: print each line, fail on the first problem.

    ``what`` names the deployment in the sentences ("your container", "your VM"); the URL by default.
    """
    from workshop.check import check_deployment

    report = check_deployment(url, api_key=api_key)
    print(report)
    where = what or url
    if not report.passed:
        first = report.failures[0] if report.failures else None
        fix = (first.fix or first.detail) if first else say("it did not answer: is it running, on this port?",
                                                             "il n'a pas répondu : tourne-t-il, sur ce port ?")
        name = first.title if first else say("reachable", "joignable")
        fail(f"{where} fails '{name}': {fix}", f"{where} échoue à « {name} » : {fix}")
    passed(f"{where} passes {report.score} checks.", f"{where} passe {report.score} contrôles.")
