"""A class that skips every "Going further" section still has notebooks that run top to bottom.

Each solution notebook, in both languages, runs here with its cells tagged ``stretch`` removed
(:func:`workshop.notebook_track.core_version`), offline and in fast mode, as nbval runs the whole notebooks
(``notebooks/conftest.py``): a stretch cell that holds what a later core cell needs (a variable, a server, a
file, an image) makes a core cell fail here. Outputs are not compared (nbval does that on the whole notebooks);
every core cell must run without error, and its checkpoints must pass.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from support import REPO_ROOT, notebook_leaves_nothing_running
from workshop.containers import docker_available
from workshop.notebook_track import (
    LANGUAGES, NOT_INHERITED, core_version, needs_docker, notebook_environment, solution_notebooks,
)

NOTEBOOKS = [(language, path) for language in LANGUAGES for path in solution_notebooks(language, REPO_ROOT)]


def params() -> list:
    marks = lambda path: [pytest.mark.docker] if needs_docker(path) else []  # noqa: E731
    return [pytest.param(path, id=f"{language}-{path.stem}", marks=marks(path)) for language, path in NOTEBOOKS]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One weights folder for every notebook here, as in nbval's session: the bundled model is exported once."""
    return tmp_path_factory.mktemp("notebooks-core")


@pytest.fixture
def notebook_env(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel's environment (it inherits this process's): what nbval gives the whole notebooks."""
    for name, value in notebook_environment(scratch).items():
        monkeypatch.setenv(name, value)
    for name in NOT_INHERITED:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.slow
@pytest.mark.parametrize("path", params())
def test_the_core_alone_runs_top_to_bottom(path: Path, notebook_env: None) -> None:
    if needs_docker(path) and not docker_available():
        if os.environ.get("CI"):
            pytest.fail("No Docker engine in CI: scripts/docker-offline.sh should have started one")
        pytest.skip("No Docker engine (scripts/docker-offline.sh starts one where that is possible)")
    # nbformat.reads normalises the cells (a source stored as a list of lines becomes one string).
    notebook = nbformat.reads(json.dumps(core_version(json.loads(path.read_text(encoding="utf-8")))), as_version=4)
    # The kernel starts in the notebook's folder, as Jupyter does: its name (en, fr) is the notebook's language.
    client = NotebookClient(notebook, timeout=1200, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    try:
        with notebook_leaves_nothing_running(needs_docker(path)):
            client.execute()
    except CellExecutionError as error:
        pytest.fail(f"{path.parent.name}/{path.name} without its stretch cells: {error}")
    print(f"{path.parent.name}/{path.stem}: core ran in {time.perf_counter() - started:.0f} s")
