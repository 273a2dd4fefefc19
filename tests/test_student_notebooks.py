"""The notebooks as handed out (``notebooks/en``, ``notebooks/fr``: exercises blank), run as a student runs them.

A student who runs every cell without writing anything must be stopped by a checkpoint, with its one sentence
(``❌ ...``, in the notebook's language), and by nothing else first: not a ``NameError`` from a later cell that
needed the exercise's answer, not a traceback from code the student did not write. Each notebook runs offline,
in fast mode, up to its first error, which is where a student's "Run all" stops too, and that error is checked:
the exception the kernel holds is a ``CheckpointFailed`` raised in a checkpoint cell, shown as one line.

The solutions (``notebooks/solutions``) are what nbval runs, every cell; ``tests/test_notebook_track.py`` checks
that the student versions are generated from them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# tests/ is on sys.path under pytest
from support import REPO_ROOT, kernel_value, missing_tool, notebook_leaves_nothing_running
from workshop.containers import docker_available
from workshop.notebook_track import NOT_INHERITED, needs_docker

STUDENT_NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[a-z][a-z]/[0-9][0-9]_*.ipynb"))

#: Run in the kernel after the first error: what it raised, as IPython kept it (``sys.last_value``), as JSON.
PROBE = """\
import json, sys
_error = getattr(sys, "last_value", None)
json.dumps({"type": type(_error).__name__, "module": type(_error).__module__,
            "en": getattr(_error, "en", None), "fr": getattr(_error, "fr", None)})
"""


@pytest.fixture(scope="module")
def as_in_class(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The kernels' environment (they inherit this process's): offline, fast mode, as notebooks/conftest.py sets."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKSHOP_OFFLINE", "1")
        patch.setenv("WORKSHOP_NOTEBOOK_FAST", "1")
        patch.setenv("YOLO_CONFIG_DIR", str(tmp_path_factory.mktemp("ultralytics-students")))
        for name in NOT_INHERITED:
            patch.delenv(name, raising=False)
        yield


def run_to_the_first_error(path: Path) -> tuple[object, int, dict] | None:
    """Run the notebook's code cells in order until one fails; return that cell, its index and what the kernel
    raised (:data:`PROBE`'s answer), or None when every cell ran."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=1200, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellExecutionError:
                return cell, index, kernel_value(client, notebook, PROBE)
    return None


@pytest.mark.slow
@pytest.mark.parametrize("path", STUDENT_NOTEBOOKS, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_run_all_stops_at_a_checkpoint_with_its_one_sentence(path: Path, as_in_class: None) -> None:
    language = path.parent.name
    docker = needs_docker(path)
    if docker and not docker_available():
        missing_tool("No Docker engine (scripts/docker-offline.sh starts one where that is possible)")
    with notebook_leaves_nothing_running(docker):
        stopped = run_to_the_first_error(path)
    assert stopped is not None, f"{path.name} ran to its end with every exercise blank: a checkpoint passed on nothing"
    cell, index, raised = stopped
    (error,) = [output for output in cell.outputs if output["output_type"] == "error"]
    where = f"{path.parent.name}/{path.name}, cell {index}:\n{cell.source}\n--> {error['ename']}: {error['evalue']}"
    assert raised["type"] == "CheckpointFailed" and raised["module"] == "workshop.checkpoints", where
    assert "checkpoint" in cell.metadata.get("tags", []), f"a CheckpointFailed outside a checkpoint cell: {where}"
    assert len(error["traceback"]) == 1, f"not one line (a traceback?): {where}"
    sentence = raised[language]
    assert error["traceback"] == [f"❌ {sentence}"], f"not the sentence in the notebook's language: {where}"
    assert sentence and "\n" not in sentence and sentence.strip() == sentence, where
    if language == "fr":
        assert sentence != raised["en"], f"the French sentence is the English one: {where}"
