"""The notebook track: eight steps in English and French, same code, exercises with checkpoints,
student versions generated from the solutions and up to date."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from support import REPO_ROOT
from workshop.notebook_track import (
    BEGIN,
    CHECKPOINT_TAG,
    END,
    LANGUAGES,
    core_version,
    exercise_count,
    is_stretch,
    solution_notebooks,
    source,
    stale_student_files,
    strip_solutions,
    student_version,
)

TRACK = [
    "01_model_inference",
    "02_first_api",
    "03_frontend",
    "04_containers",
    "05_docker_compose",
    "06_google_cloud",
    "07_beyond_one_vm",
    "08_bonus_train_your_own",
]
OPENING = {"en": ("**Goal:**", "**Time:**", "**You should see:**"), "fr": ("**Objectif :**", "**Durée :**", "**Résultat attendu :**")}
GOING_FURTHER = {"en": "## Going further", "fr": "## Pour aller plus loin"}
#: At most this many exercises in a notebook's core; more go to its stretch sections.
CORE_EXERCISES = 2
CLOSING = {"en": ("remember", "docs/en/index.md", "Step"), "fr": ("retenir", "docs/fr/index.md", "Étape")}
GUIDE = {"en": ("docs/en/index.md", "## Step"), "fr": ("docs/fr/index.md", "## Étape")}


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def without_comments(code: str) -> list[str]:
    """Code lines without comments (whole-line ones, and inline ones written "  # ..." outside quotes)."""
    kept = []
    for line in code.split("\n"):
        if line.strip().startswith("#"):
            continue
        for match in re.finditer(r"  #", line):
            before = line[: match.start()]
            if before.count('"') % 2 == 0 and before.count("'") % 2 == 0:
                line = before
                break
        if line.strip():
            kept.append(line.rstrip())
    return kept


def notebooks(language: str) -> list[Path]:
    return solution_notebooks(language, REPO_ROOT)


def test_the_track_has_eight_notebooks_in_each_language() -> None:
    for language in LANGUAGES:
        assert [path.stem for path in notebooks(language)] == TRACK, language


@pytest.mark.parametrize("name", TRACK)
def test_french_and_english_notebooks_hold_the_same_code(name: str) -> None:
    english = load(REPO_ROOT / "notebooks/solutions/en" / f"{name}.ipynb")
    french = load(REPO_ROOT / "notebooks/solutions/fr" / f"{name}.ipynb")
    assert [cell["cell_type"] for cell in english["cells"]] == [cell["cell_type"] for cell in french["cells"]], (
        "the two notebooks must have the same cells, in the same order"
    )
    for number, (en_cell, fr_cell) in enumerate(zip(english["cells"], french["cells"]), 1):
        if en_cell["cell_type"] != "code":
            continue
        assert without_comments(source(en_cell)) == without_comments(source(fr_cell)), f"code cell {number} differs"
        assert en_cell["metadata"].get("tags", []) == fr_cell["metadata"].get("tags", []), f"cell {number}'s tags"
    assert english["metadata"].get("workshop") == french["metadata"].get("workshop")


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_notebook_has_exercises_each_followed_by_a_checkpoint(language: str) -> None:
    for path in notebooks(language):
        notebook = load(path)
        assert exercise_count(notebook) >= 2, f"{path.name}: fewer than two exercises"
        waiting_for_checkpoint = None
        for number, cell in enumerate(notebook["cells"], 1):
            if cell["cell_type"] != "code":
                continue
            if CHECKPOINT_TAG in cell["metadata"].get("tags", []):
                assert re.search(r"\b(check|checkpoints)\.\w+\(", source(cell)), (
                    f"{path.name} cell {number}: a checkpoint that calls no check of workshop.checkpoints"
                )
                waiting_for_checkpoint = None
            if BEGIN in source(cell):
                assert waiting_for_checkpoint is None, (
                    f"{path.name}: the exercise in cell {waiting_for_checkpoint} has no checkpoint before the next one"
                )
                waiting_for_checkpoint = number
        assert waiting_for_checkpoint is None, f"{path.name}: the exercise in cell {waiting_for_checkpoint} is never checked"


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_notebook_opens_with_its_goal_and_ends_with_what_to_remember(language: str) -> None:
    guide = (REPO_ROOT / GUIDE[language][0]).read_text(encoding="utf-8")
    for number, path in enumerate(notebooks(language), 1):
        cells = load(path)["cells"]
        first, last = source(cells[0]), source(cells[-1])
        assert cells[0]["cell_type"] == "markdown" and first.startswith(f"# {number:02d} ·"), path.name
        for words in OPENING[language]:
            alternatives = (words,) if isinstance(words, str) else words
            assert any(each in first for each in alternatives), f"{path.name}: the first cell lacks {words}"
        remember, guide_path, step = CLOSING[language]
        assert cells[-1]["cell_type"] == "markdown" and remember in last.lower(), f"{path.name}: no '{remember}'"
        assert guide_path in last and f"{step} {number}" in last, f"{path.name}: no link to the guide's {step} {number}"
        assert f"{GUIDE[language][1]} {number} " in guide, f"the guide has no {step} {number}"
        assert f"notebooks/{language}/{path.name}" in guide, f"the guide does not link to {path.name}"
        for anchor in re.findall(re.escape(guide_path) + r"#([\w-]+)", last):
            assert anchor in guide_anchors(guide), f"{path.name} links to #{anchor}, which the guide lacks"


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_notebook_has_a_core_then_going_further_sections_then_what_to_remember(language: str) -> None:
    """Core cells first, then stretch sections (each opening with its heading), then the core's clean-up, if any,
    and the closing cell: a class skips one block of stretch cells, and finds the end of the core after it."""
    for path in notebooks(language):
        cells = load(path)["cells"]
        stretch = [number for number, cell in enumerate(cells) if is_stretch(cell)]
        assert stretch, f"{path.name}: no section tagged 'stretch' ({GOING_FURTHER[language]})"
        assert stretch == list(range(stretch[0], stretch[-1] + 1)), f"{path.name}: the stretch cells must come together"
        for number, cell in enumerate(cells[stretch[-1] + 1:], stretch[-1] + 1):
            assert BEGIN not in source(cell), f"{path.name} cell {number}: an exercise after the stretch sections"
        for number in stretch:
            text = source(cells[number])
            if cells[number]["cell_type"] == "markdown" and text.startswith("## "):
                assert text.startswith(GOING_FURTHER[language]), f"{path.name} cell {number}: {text.splitlines()[0]}"
        first = cells[stretch[0]]
        assert first["cell_type"] == "markdown" and source(first).startswith(GOING_FURTHER[language]), (
            f"{path.name}: the first stretch cell must be a heading '{GOING_FURTHER[language]}...'"
        )
        assert not is_stretch(cells[-1])


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_core_holds_at_most_two_exercises(language: str) -> None:
    for path in notebooks(language):
        core = exercise_count(core_version(load(path)))
        assert 1 <= core <= CORE_EXERCISES, f"{path.name}: {core} exercises in the core"


def guide_anchors(markdown: str) -> set[str]:
    """The anchors MkDocs gives the guide's headings (Python-Markdown's default slugify)."""
    from markdown.extensions.toc import slugify

    return {slugify(heading, "-") for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.M)}


def test_student_notebooks_are_up_to_date() -> None:
    problems = stale_student_files(REPO_ROOT)
    assert not problems, "; ".join(problems) + ": run `python -m workshop.notebook_track`"


@pytest.mark.parametrize("language", LANGUAGES)
def test_student_notebooks_hold_no_solution_and_no_output(language: str) -> None:
    for path in sorted((REPO_ROOT / "notebooks" / language).glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        assert BEGIN not in text and END not in text, path
        cells = load(path)["cells"]
        assert all(not cell.get("outputs") for cell in cells if cell["cell_type"] == "code"), path


CODESPACE_CHECKOUT = "/workspaces/deploy-ml-workshop"


@pytest.mark.parametrize("language", LANGUAGES)
def test_recorded_outputs_show_the_codespaces_checkout_not_the_recording_machines(language: str) -> None:
    """A student compares their outputs with these: the paths must be the ones a codespace shows."""
    for path in solution_notebooks(language, REPO_ROOT):
        for cell in load(path)["cells"]:
            for output in cell.get("outputs", []):
                text = "".join(output.get("text", ""))
                for folder in re.findall(r"(?:root|racine du projet), ([^\s/]+)/", text):
                    assert folder == Path(CODESPACE_CHECKOUT).name, f"{path.name}: the project's root shown as {folder}/"
                for found in re.findall(r"(/[\w./-]+?)/\.workshop-deploy/", text):
                    assert found == CODESPACE_CHECKOUT, f"{path.name}: {found}/.workshop-deploy/"


def test_stripping_a_solution_leaves_a_placeholder_that_still_runs() -> None:
    cell = textwrap.dedent(
        """\
        def health():
            ### BEGIN SOLUTION
            return {"status": "ok"}
            ### END SOLUTION
        """
    )
    stripped = strip_solutions(cell, "en")
    assert "return" not in stripped and "    # YOUR CODE HERE\n    ..." in stripped
    namespace: dict = {}
    exec(compile(stripped, "cell", "exec"), namespace)
    assert namespace["health"]() is None
    shell = "%%bash\n### BEGIN SOLUTION\ndocker ps\n### END SOLUTION\necho done"
    assert strip_solutions(shell, "fr") == "%%bash\n# VOTRE CODE ICI\necho done"


@pytest.mark.parametrize("broken", [f"{BEGIN}\nx = 1", f"x = 1\n{END}", f"{BEGIN}\n{BEGIN}\n{END}\n{END}"])
def test_unbalanced_solution_markers_are_refused(broken: str) -> None:
    with pytest.raises(ValueError, match="SOLUTION"):
        strip_solutions(broken, "en")


def test_student_links_climb_one_folder_less() -> None:
    notebook = {
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": "![x](../../../docs/assets/a.png) [s](../../../docs/en/index.md)"}],
        "metadata": {},
    }
    assert source(student_version(notebook, "en")["cells"][0]) == "![x](../../docs/assets/a.png) [s](../../docs/en/index.md)"


def _run(cells: list[str], folder: Path) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells])
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    return notebook


@pytest.mark.parametrize(("language", "sentence"), [("en", "Set answer to 42."), ("fr", "Donnez 42 à answer.")])
def test_a_failed_checkpoint_shows_one_sentence_in_the_notebooks_language(
    tmp_path: Path, language: str, sentence: str
) -> None:
    folder = tmp_path / language
    folder.mkdir()
    checkpoint = "from workshop import checkpoints\ncheckpoints.expect(answer == 42, 'Set answer to 42.', 'Donnez 42 à answer.')"
    with pytest.raises(CellExecutionError) as failure:
        _run(["answer = 41", checkpoint], folder)
    assert f"❌ {sentence}" in str(failure.value)
    assert "Traceback" not in str(failure.value) and "File " not in str(failure.value)
    passed = _run(["answer = 42", checkpoint.replace("expect(", "expect(").rstrip() + "\ncheckpoints.passed('ok', 'ok')"], folder)
    assert passed.cells[1].outputs[0]["text"] == "✅ ok\n"
