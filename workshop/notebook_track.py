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

The solutions' outputs come from a real run, recorded as the tests run them (offline, fast mode), with the
paths a codespace shows::

    python -m workshop.notebook_track --record notebooks/solutions/fr/01_model_inference.ipynb

Each notebook has a **core** path, what a class does in its one session, and after it **stretch**
sections ("Going further" / "Pour aller plus loin") for those who go further. Every cell of a stretch
section carries the Jupyter cell tag ``stretch`` (cell ``metadata.tags``); no stretch cell holds what a
later core cell needs, so :func:`core_version` (the notebook without them) runs top to bottom on its own.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
from pathlib import Path

from workshop.lab import project_root

LANGUAGES = ("en", "fr")
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
PLACEHOLDER = {"en": "# YOUR CODE HERE", "fr": "# VOTRE CODE ICI"}
#: Checkpoint cells carry this tag; each exercise is followed by one.
CHECKPOINT_TAG = "checkpoint"
#: Cells of a "Going further" section carry this tag: a class can skip them all.
STRETCH_TAG = "stretch"

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
    """How many solution blocks the notebook holds (one exercise each)."""
    return sum(
        line.strip() == BEGIN
        for cell in notebook["cells"]
        if cell["cell_type"] == "code"
        for line in source(cell).split("\n")
    )


def tags(cell: dict) -> list[str]:
    """The cell's Jupyter tags."""
    return cell.get("metadata", {}).get("tags", [])


def is_stretch(cell: dict) -> bool:
    """True for a cell of a "Going further" section."""
    return STRETCH_TAG in tags(cell)


def core_version(notebook: dict) -> dict:
    """The notebook a class that skips every "Going further" section runs: its stretch cells removed."""
    core = copy.deepcopy(notebook)
    core["cells"] = [cell for cell in core["cells"] if not is_stretch(cell)]
    return core


#: The Compose project a codespace gets for the repository (its folder's name): the harness uses it too, so the
#: recorded outputs show the container names a student sees.
CODESPACE_COMPOSE_PROJECT = "deploy-ml-workshop"


def notebook_environment(scratch: Path) -> dict[str, str]:
    """The variables the test suite runs the notebooks with, on top of its own environment.

    Offline (the recorded outputs are the bundled model's), fast mode (tiny workloads, short load-test steps),
    private caches in ``scratch``, the Compose project a codespace gets (so container names are the same), and, on a machine that cannot pull images (``scripts/test.sh`` sets ``WORKSHOP_DOCKER_BASE_IMAGE``
    and ``WORKSHOP_TORCH_INDEX_URL``), the build arguments ``docker-compose.yml`` reads from the environment. The
    notebooks' cells hold none of this: they are what a student types in a codespace.
    """
    env = {
        "WORKSHOP_OFFLINE": "1",
        "WORKSHOP_NOTEBOOK_FAST": os.environ.get("WORKSHOP_NOTEBOOK_FAST", "1"),
        "YOLO_CONFIG_DIR": str(scratch / "ultralytics"),
        "WORKSHOP_WEIGHTS_DIR": str(scratch / "weights"),
        "COMPOSE_PROJECT_NAME": CODESPACE_COMPOSE_PROJECT,
    }
    if os.environ.get("WORKSHOP_DOCKER_BASE_IMAGE"):
        env["BASE_IMAGE"] = os.environ["WORKSHOP_DOCKER_BASE_IMAGE"]
    if "WORKSHOP_TORCH_INDEX_URL" in os.environ:
        env["TORCH_INDEX_URL"] = os.environ["WORKSHOP_TORCH_INDEX_URL"]
    return env


def needs_docker(path: Path) -> bool:
    """A notebook says it needs Docker in its metadata: ``"workshop": {"docker": true}``."""
    return bool(json.loads(path.read_text(encoding="utf-8"))["metadata"].get("workshop", {}).get("docker"))


#: Variables a notebook's kernel must not inherit from the process that runs it: the notebook's folder (en, fr)
#: gives its language, as in a codespace, and a WORKSHOP_LANG left in the test process by an earlier call of
#: go_to_project_root would print a French notebook's command output in English.
NOT_INHERITED = ("WORKSHOP_LANG",)


#: Where a codespace checks the repository out: recorded outputs show this path, not the recording machine's.
CODESPACE_CHECKOUT = "/workspaces/deploy-ml-workshop"


def _coalesced(outputs: list[dict]) -> list[dict]:
    """Consecutive stream outputs of the same stream merged into one, as nbval reads them."""
    merged: list[dict] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous and previous.get("output_type") == "stream"
                and previous.get("name") == output.get("name")):
            previous["text"] = "".join(previous["text"]) + "".join(output["text"])
        else:
            merged.append(output)
    return merged


def _as_in_a_codespace(text: str, root: Path) -> str:
    """Printed text with this checkout's path and folder name replaced by the codespace's."""
    return text.replace(str(root), CODESPACE_CHECKOUT).replace(f", {root.name}/", f", {Path(CODESPACE_CHECKOUT).name}/")


def record(path: Path, root: Path | None = None, timeout: int = 1800) -> None:
    """Run a solution notebook top to bottom as the tests do, and save it with its new outputs.

    The kernel starts in the notebook's folder (its name is the notebook's language) with
    :func:`notebook_environment`; streams are coalesced and paths shown as in a codespace. The caches
    (Ultralytics' settings, the bundled model's exports) are made once, before, in a folder kept between
    recordings: the outputs show a machine that has run the lab's servers before, as nbval's run does.
    """
    import tempfile

    import nbformat
    from nbclient import NotebookClient

    root = root or project_root()
    notebook = nbformat.read(path, as_version=4)
    scratch = Path(tempfile.gettempdir()) / f"workshop-record-{os.getuid()}"
    saved = dict(os.environ)
    try:
        os.environ.update(notebook_environment(scratch))
        for name in NOT_INHERITED:
            os.environ.pop(name, None)
        from workshop.registry import ModelRegistry
        from workshop.settings import BUNDLED_MODEL, Settings

        ModelRegistry(Settings()).get(BUNDLED_MODEL)  # its exports and engine choice, made once
        NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = [nbformat.from_dict(output) for output in _coalesced([dict(o) for o in cell.outputs])]
        for output in cell.outputs:
            if "text" in output:
                output["text"] = _as_in_a_codespace("".join(output["text"]), root)
            for kind, value in output.get("data", {}).items():
                if kind.startswith("text/"):
                    output["data"][kind] = _as_in_a_codespace("".join(value), root)
    path.write_text(render(nbformat.from_dict(notebook)), encoding="utf-8")


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
    """The file's text, as Jupyter writes it (so that saving it in Jupyter changes nothing): nbformat's JSON, with
    every cell's text as a list of lines."""
    import nbformat

    return nbformat.writes(nbformat.from_dict(notebook), version=nbformat.NO_CONVERT) + "\n"


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
    parser.add_argument("--record", nargs="+", type=Path, metavar="NOTEBOOK",
                        help="run these solution notebooks and save their outputs first, then regenerate")
    args = parser.parse_args(argv)
    for path in args.record or []:
        print("recording", path)
        record(path.resolve())
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
