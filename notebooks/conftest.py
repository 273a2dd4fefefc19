"""How the test suite runs the notebooks (nbval): offline, fast mode, private caches.

Kernels inherit this process's environment, so these variables reach the notebooks.
Offline on purpose: the checked outputs were recorded with the bundled model.
"""

import os
import tempfile

_scratch = tempfile.mkdtemp(prefix="workshop-notebooks-")
os.environ["WORKSHOP_OFFLINE"] = "1"
os.environ.setdefault("WORKSHOP_NOTEBOOK_FAST", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(_scratch, "ultralytics"))
os.environ["WORKSHOP_WEIGHTS_DIR"] = os.path.join(_scratch, "weights")


def pytest_collection_modifyitems(items):
    """Notebook cells start servers, train models, build images: mark them so `-m "not slow"` skips them."""
    import pytest

    for item in items:
        path = str(item.fspath)
        if path.endswith(".ipynb"):
            item.add_marker(pytest.mark.slow)
            if "docker" in path:
                item.add_marker(pytest.mark.docker)


def pytest_runtest_setup(item):
    """In CI a notebook that needs Docker must fail without an engine, not pass by skipping its cells."""
    import pytest

    if item.get_closest_marker("docker") and os.environ.get("CI"):
        from workshop.containers import docker_available

        if not docker_available():
            pytest.fail("No Docker engine in CI: scripts/docker-offline.sh should have started one")
