"""The teacher notes' timing table and the notebooks' time lines are computed from the notebooks, and the lab fits.

``workshop.track_timing`` holds the model; these tests keep the committed text in step with it, check its
counting on small notebooks whose answer is known, and hold the lab to one session.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from support import REPO_ROOT
from workshop import track_timing as timing
from workshop.notebook_track import LANGUAGES, STRETCH_TAG, render

#: The lab's budget of prose in the core of notebooks 01 to 05 (06 has 1,300 of the 6,000 words of 01-06).
CORE_WORDS_01_TO_05 = 4450


def markdown(text: str, *tags: str) -> dict:
    return {"cell_type": "markdown", "metadata": {"tags": list(tags)}, "source": text}


def code(text: str, *tags: str, seconds: float = 0.0) -> dict:
    execution = {"iopub.execute_input": "2026-12-01T10:00:00.000000Z",
                 "shell.execute_reply": f"2026-12-01T10:00:{seconds:09.6f}Z"} if seconds else {}
    return {"cell_type": "code", "metadata": {"tags": list(tags), "execution": execution}, "source": text,
            "outputs": [], "execution_count": None}


def test_prose_words_leave_fenced_code_out_and_count_inline_code() -> None:
    cells = [markdown("One two `three`\n\n```bash\ndocker build -t x .\n```\nfour"), code("not prose here")]
    assert timing.prose_words(cells) == 4


def test_solution_lines_count_code_not_comments_or_blank_lines() -> None:
    cell = "x = 1\n### BEGIN SOLUTION\n# a comment\ny = 2\n\nz = 3\n### END SOLUTION\n### BEGIN SOLUTION\nw = 4\n### END SOLUTION"
    assert timing.solution_lines(cell) == [2, 1]


@pytest.fixture
def tiny_track(tmp_path: Path) -> Path:
    """A repository with one notebook per language whose figures are known."""
    for language in LANGUAGES:
        prefix = timing.TEXT[language]["time_prefix"]
        notebook = {"metadata": {}, "nbformat": 4, "nbformat_minor": 5, "cells": [
            markdown(f"# 01 · A title\n\n{prefix} old"),              # 7 words
            code("print(1)", seconds=30),                             # a code cell, 30 s of machine
            code("### BEGIN SOLUTION\na = 1\nb = 2\n### END SOLUTION"),  # an exercise of 2 lines
            code("check.it(a)", "checkpoint"),                         # its checkpoint: part of the exercise
            code("check.again(a)", "checkpoint"),                      # another checkpoint: a code cell
            markdown(" ".join(["word"] * 150), STRETCH_TAG),          # 150 words of stretch
            code("docker build -f backend/Dockerfile -t x .", STRETCH_TAG, seconds=2),
        ]}
        folder = tmp_path / "notebooks" / "solutions" / language
        folder.mkdir(parents=True)
        # A notebook numbered 04 so that the back-end build's wait applies to its cell.
        (folder / "04_tiny.ipynb").write_text(render(notebook), encoding="utf-8")
    return tmp_path


def test_the_model_adds_reading_cells_exercises_and_waits(tiny_track: Path) -> None:
    [english] = timing.track_timings("en", tiny_track)
    assert english.number == "04" and english.title == "A title"
    assert (english.core.words, english.core.exercises, english.core.code_cells) == (7, 1, 2)
    expected_core = (7 / 150 + 2 * timing.CODE_CELL_MINUTES + timing.EXERCISE_MINUTES
                     + 2 * timing.EXERCISE_MINUTES_PER_LINE + 0.5)
    assert english.core.minutes == pytest.approx(expected_core)
    backend_build = next(w for w in timing.WAITS if w.marker == "docker build -f backend/Dockerfile")
    assert english.stretch.minutes == pytest.approx(1 + timing.CODE_CELL_MINUTES + backend_build.minutes)
    [french] = timing.track_timings("fr", tiny_track)
    assert french.stretch.reading_minutes == pytest.approx(150 / timing.READING_WORDS_PER_MINUTE["fr"])


def test_the_time_line_is_written_from_the_model(tiny_track: Path) -> None:
    [english] = timing.track_timings("en", tiny_track)
    path = tiny_track / "notebooks/solutions/en/04_tiny.ipynb"
    written = timing.with_time_line(json.loads(path.read_text()), english, "en")
    core, stretch = timing.rounded_to_five(english.core.minutes), timing.rounded_to_five(english.stretch.minutes)
    assert f"**Time:** {core} minutes for the core, {stretch} more to go further." in written["cells"][0]["source"]


def test_a_page_without_the_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="timing table"):
        timing.with_table("# Teacher notes\n", "en")


def test_the_committed_table_and_time_lines_are_in_step_with_the_notebooks() -> None:
    stale = [str(path.relative_to(REPO_ROOT)) for path in timing.stale_files(REPO_ROOT)]
    assert not stale, f"{stale}: run `python -m workshop.track_timing`"


def test_a_changed_notebook_makes_the_table_stale(tmp_path: Path) -> None:
    """The check above can fail: two more words in a notebook's core move the table."""
    for folder in ("notebooks/solutions", "docs"):
        shutil.copytree(REPO_ROOT / folder, tmp_path / folder)
    timing.write_expected_files(tmp_path)  # in step, whatever the checkout's state
    assert timing.stale_files(tmp_path) == []
    path = tmp_path / "notebooks/solutions/fr/01_model_inference.ipynb"
    notebook = json.loads(path.read_text())
    notebook["cells"][1]["source"] += " " + " ".join(["mot"] * 200)
    path.write_text(render(notebook))
    stale = {p.relative_to(tmp_path).as_posix() for p in timing.stale_files(tmp_path)}
    assert stale == {"docs/fr/notes-enseignant.md", "notebooks/solutions/fr/01_model_inference.ipynb"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_lab_fits_one_session(language: str) -> None:
    """Set-up and the core of 01 to 06 in 2 h 30 at most, notebook 06 (the cloud) started by 1 h 45."""
    lab, start06 = timing.lab_minutes(language, REPO_ROOT)
    assert start06 <= timing.CLOUD_STEP_START_LIMIT_MINUTES, f"notebook 06 starts at {timing.clock(start06)}"
    assert lab <= timing.SESSION_LIMIT_MINUTES, f"set-up and the core of 01 to 06 take {timing.clock(lab)}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_core_of_01_to_05_holds_its_share_of_the_prose(language: str) -> None:
    words = sum(t.core.words for t in timing.track_timings(language, REPO_ROOT) if t.number in ("01", "02", "03", "04", "05"))
    assert words <= CORE_WORDS_01_TO_05, f"{words} words of prose in the core of 01 to 05"
