"""How the suite shares this machine between pytest-xdist's workers (``scripts/test.sh`` runs two).

The tests that share the machine's single resources run in one worker, one after the other: the Docker engine
(images, the Compose project a codespace gets, its ports 8000 and 8501), the repository's working files (the
notebooks' my_api/ and loadtest-results/, the online world's weights/) and the notebooks' kernels, whose cells
must run in order. The rest of the suite runs beside them in the other worker, a module at a time, so that a
module's fixtures are made once. Without ``-n`` nothing changes.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

#: The modules whose tests use the Docker engine or run notebooks (the notebooks themselves are all shared).
SHARED_STATE_MODULES = {
    "test_checkpoints_compose.py", "test_checkpoints_containers.py", "test_checkpoints_scaling.py",
    "test_containers.py", "test_devcontainer.py", "test_frontend_behind_proxy.py", "test_notebook_core_path.py",
    "test_notebook_gcloud_cells.py", "test_replicas.py", "test_student_notebooks.py", "test_torch_index.py",
    "test_two_worlds.py", "test_vm_startup_script.py",
}


def shares_the_machine(nodeid: str) -> bool:
    """True for a test that must run one at a time with the others that use the engine or the notebooks."""
    path = PurePosixPath(nodeid.split("::", 1)[0])
    return path.parts[:1] == ("notebooks",) or path.name in SHARED_STATE_MODULES


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """pytest-xdist's scheduling by module, with every test that shares the machine in one scope."""
    from xdist.scheduler import LoadScopeScheduling

    class OneMachineScope(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "the machine" if shares_the_machine(nodeid) else nodeid.split("::", 1)[0]

    return OneMachineScope(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A Docker test outside :data:`SHARED_STATE_MODULES` would run beside the others: collection says so."""
    strays = sorted({item.nodeid.split("::", 1)[0] for item in items
                     if item.get_closest_marker("docker") and not shares_the_machine(item.nodeid)})
    if strays:
        raise pytest.UsageError(f"Docker tests in {', '.join(strays)}: add their modules to SHARED_STATE_MODULES "
                                "in conftest.py, so that they run one at a time with the others that use the engine")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """After the run (in the main process, once the workers are done), remove the project's superseded images.

    The suite builds every image of the project, some of them several times: each rebuild leaves the previous
    image untagged, about 600 MB a run in all (12 images, measured after a fresh-clone run), which a machine
    that runs the suite every day would keep.
    """
    if hasattr(session.config, "workerinput"):
        return
    from workshop.containers import CommandFailed, docker_available, remove_superseded_images

    if docker_available():
        try:
            remove_superseded_images()
        except CommandFailed as error:  # housekeeping: it must not turn a run's result into an error
            print(f"\nThe project's superseded images were left in place: {error}")
