"""The notebook track: where the notebooks live, and the student versions made from the solutions.

Layout (one source for both versions)::

    notebooks/solutions/en/NN_name.ipynb   the solutions, with outputs from a real run: what the tests run
    notebooks/solutions/fr/NN_name.ipynb   the same notebooks in French: same cells, same code
    notebooks/en/NN_name.ipynb             what a student opens: generated, solutions blanked, no outputs
    notebooks/fr/NN_name.ipynb

An exercise's solution sits between two marker lines (nbgrader's convention)::

    ### BEGIN SOLUTION
    ...
    ### END SOLUTION

The student version replaces the lines between them with one placeholder comment (and, in a Python
cell, ``...``, so that a function body stays valid Python). Regenerate after editing a solution::

    python -m workshop.notebook_track          # writes notebooks/en and notebooks/fr
    python -m workshop.notebook_track --check  # exit 1 when they are out of date (the tests run this)
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

from workshop.lab import project_root

LANGUAGES = ("en", "fr")
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
PLACEHOLDER = {"en": "# YOUR CODE HERE", "fr": "# VOTRE CODE ICI"}
#: Checkpoint cells carry this tag; each exercise is followed by one.
CHECKPOINT_TAG = "checkpoint"

# Solutions sit one folder deeper than the student versions: their relative links to the rest of the
# repository (the guide, the pictures) lose one "../" in the student version.
_SOLUTION_LINK = re.compile(r"(\]\(|src=\")\.\./\.\./\.\./")


def solutions_dir(language: str, root: Path | None = None) -> Path:
    """Where the solution notebooks of ``language`` are."""
    return (root or project_root()) / "notebooks" / "solutions" / language


def student_dir(language: str, root: Path | None = None) -> Path:
    """Where the generated student notebooks of ``language`` are."""
    return (root or project_root()) / "notebooks" / language


def solution_notebooks(language: str, root: Path | None = None) -> list[Path]:
    """The track's solution notebooks in ``language``, in order (``01_...`` to ``08_...``)."""
    return sorted(solutions_dir(language, root).glob("[0-9][0-9]_*.ipynb"))


def source(cell: dict) -> str:
    """A cell's text (notebooks store it as a string or a list of lines)."""
    text = cell.get("source", "")
    return text if isinstance(text, str) else "".join(text)


def is_python(text: str) -> bool:
    """False for cells run by a cell magic (``%%bash``, ``%%writefile``...), whose body is not Python."""
    first = text.lstrip().split("\n", 1)[0]
    return not first.startswith("%%")


def strip_solutions(text: str, language: str) -> str:
    """``text`` with each ``BEGIN SOLUTION``/``END SOLUTION`` block replaced by a placeholder."""
    lines, kept, inside = text.split("\n"), [], False
    python = is_python(text)
    for number, line in enumerate(lines, 1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"line {number}: '{BEGIN}' inside another solution block")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            kept.append(indent + PLACEHOLDER[language])
            if python:
                kept.append(indent + "...")
        elif marker == END:
            if not inside:
                raise ValueError(f"line {number}: '{END}' without a '{BEGIN}' before it")
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise ValueError(f"a '{BEGIN}' block is never closed by '{END}'")
    return "\n".join(kept)


def exercise_count(notebook: dict) -> int:
    """How many solution blocks the notebook holds."""
    return sum(
        line.strip() == BEGIN
        for cell in notebook["cells"]
        if cell["cell_type"] == "code"
        for line in source(cell).split("\n")
    )


def student_version(notebook: dict, language: str) -> dict:
    """The notebook a student opens: solutions blanked, outputs and run metadata removed, links one level up."""
    student = copy.deepcopy(notebook)
    for cell in student["cells"]:
        if cell["cell_type"] == "code":
            cell["source"] = strip_solutions(source(cell), language)
            cell["outputs"] = []
            cell["execution_count"] = None
            cell.get("metadata", {}).pop("execution", None)
        else:
            cell["source"] = _SOLUTION_LINK.sub(r"\1../../", source(cell))
    student["metadata"].pop("widgets", None)
    return student


def render(notebook: dict) -> str:
    """The file's text, as Jupyter writes it (so that saving it in Jupyter changes nothing)."""
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def expected_student_files(root: Path | None = None) -> dict[Path, str]:
    """Every student notebook's path and the text it must hold."""
    files = {}
    for language in LANGUAGES:
        for path in solution_notebooks(language, root):
            notebook = json.loads(path.read_text(encoding="utf-8"))
            files[student_dir(language, root) / path.name] = render(student_version(notebook, language))
    return files


def stale_student_files(root: Path | None = None) -> list[str]:
    """What is out of date among the student notebooks (missing, different, or left over), as sentences."""
    expected = expected_student_files(root)
    problems = [
        f"{path.relative_to(path.parents[2])} is out of date"
        for path, text in expected.items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]
    for language in LANGUAGES:
        for path in sorted(student_dir(language, root).glob("*.ipynb")):
            if path not in expected:
                problems.append(f"{path.relative_to(path.parents[2])} has no solution notebook")
    return problems


def write_student_files(root: Path | None = None) -> list[Path]:
    """Write every student notebook; remove those whose solution is gone. Returns the files written."""
    expected = expected_student_files(root)
    for language in LANGUAGES:
        for path in student_dir(language, root).glob("*.ipynb"):
            if path not in expected:
                path.unlink()
    for path, text in expected.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(expected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the student notebooks from the solutions.")
    parser.add_argument("--check", action="store_true", help="only say whether they are up to date (exit 1 if not)")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_student_files()
        for problem in problems:
            print(problem)
        if problems:
            print("Run: python -m workshop.notebook_track")
        return 1 if problems else 0
    for path in write_student_files():
        print("wrote", path.relative_to(project_root()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
