"""How the test suite runs the notebooks (nbval): offline, fast mode, private caches.

The solutions (``solutions/en``, ``solutions/fr``) are what runs; the student versions
(``en/``, ``fr/``) are generated from them with their exercises blanked, so they are not run
(``tests/test_notebook_track.py`` checks they are up to date).

Kernels inherit this process's environment, so these variables reach the notebooks
(:func:`workshop.notebook_track.notebook_environment` says which, and why). Offline on purpose:
the checked outputs were recorded with the bundled model.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from workshop.notebook_track import NOT_INHERITED, needs_docker, notebook_environment

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="workshop-notebooks-"))
os.environ.update(notebook_environment(_SESSION_DIR))
atexit.register(shutil.rmtree, _SESSION_DIR, ignore_errors=True)  # the kernels have stopped by then

collect_ignore_glob = ["en/*", "fr/*", "[0-9][0-9]_*.ipynb"]


def pytest_collection_modifyitems(items):
    """Notebook cells start servers, train models, build images: mark them so `-m "not slow"` skips them."""
    import pytest

    needs_docker_of: dict[str, bool] = {}
    for item in items:
        path = str(item.fspath)
        if path.endswith(".ipynb"):
            item.add_marker(pytest.mark.slow)
            if path not in needs_docker_of:
                needs_docker_of[path] = needs_docker(Path(path))
            if needs_docker_of[path]:
                item.add_marker(pytest.mark.docker)


def pytest_runtest_setup(item):
    """In CI a notebook that needs Docker must fail without an engine, not pass by skipping its cells.

    A notebook's kernel starts with its first cell: what it must not inherit from this process (a language an
    earlier test left behind) is removed first, so that the notebook's folder gives its language.
    """
    import pytest

    for name in NOT_INHERITED:
        os.environ.pop(name, None)

    if item.get_closest_marker("docker") and os.environ.get("CI"):
        from workshop.containers import docker_available

        if not docker_available():
            pytest.fail("No Docker engine in CI: scripts/docker-offline.sh should have started one")
