"""What a student runs works in both worlds: offline (the bundled model only) and online (yolo26n the default).

* **Offline world**: CI or a firewalled classroom. Only the bundled ``shapes`` model can be had, so the
  default model (``auto``) is ``shapes``.
* **Online world** (stands in for a networked codespace): the public ``yolo26n`` weights are cached in
  ``WORKSHOP_WEIGHTS_DIR``, so ``auto`` picks ``yolo26n``, as it does where they can be downloaded. The real
  weights cannot be downloaded here; they are stood in for by ``yolo26n`` built from its YAML (the same
  network, untrained: it finds nothing at the default confidence), and the back-end image is built with them
  inside, taken from ``weights/`` in the build context as an air-gapped classroom does.

The commands are read from the README and the guide (EN and FR) themselves, so a command written there that
assumes one world fails here. The notebooks run in the offline world under nbval (their recorded outputs are
checked); here the English track runs in the online world with nbclient, where every cell must run without
error and every back-end the notebooks start must default to ``yolo26n``: after each cell, the back-ends the
kernel holds (a ``BackgroundService``, a ``ComposeStack``) are asked their default on ``/ready``, and what the
cells printed is read too. Notebook 08 is left out: it trains and serves the bundled model, the same in both
worlds, and is the track's longest.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from workshop.containers import REPO_ROOT, docker_available
from workshop.notebook_track import NOT_INHERITED, needs_docker, solution_notebooks
from workshop.registry import ModelRegistry
from workshop.services import BackgroundService, start_backend
from workshop.settings import BUNDLED_MODEL, Settings

from support import kernel_value, missing_tool, notebook_leaves_nothing_running  # tests/ is on sys.path under pytest

PUBLIC_DEFAULT = "yolo26n"
NOTEBOOKS = [path for path in solution_notebooks("en", REPO_ROOT) if not path.name.startswith("08_")]
#: Notebooks that leave no back-end running after any cell, so no server's default can be asked there: 01 runs
#: the model in the kernel (its choose_model line is checked instead), 06 deploys nothing offline (dry runs) and
#: its one local back-end lives inside a checkpoint cell. Every other notebook must show a default.
NO_BACKEND_BETWEEN_CELLS = {"01_model_inference", "06_google_cloud"}

#: Run in the kernel after each cell: the default model of every back-end the kernel holds, from its /ready, as JSON.
DEFAULTS_PROBE = """\
import json as _json
import requests as _requests
from workshop.containers import ComposeStack as _Stack
from workshop.services import BackgroundService as _Service

_held = list(globals().values())
_urls = [_value.url for _value in _held if isinstance(_value, _Service) and _value.running]
for _stack in (_value for _value in _held if isinstance(_value, _Stack)):
    _urls.append(_stack.lb_url if "docker-compose.scale.yml" in _stack.files else _stack.backend_url)
_answers = []
for _url in _urls:
    try:
        _ready = _requests.get(_url + "/ready", timeout=10).json()
    except (OSError, ValueError):  # stopped, or not a back-end (a front-end's page)
        continue
    if isinstance(_ready, dict) and "default_model" in _ready:
        _answers.append({"url": _url, "default_model": _ready["default_model"]})
_json.dumps(_answers)
"""


@dataclass(frozen=True)
class World:
    """Where the workshop runs: which weights are at hand, so which model is the default."""

    name: str
    weights_dir: Path
    default_model: str

    @property
    def env(self) -> dict[str, str]:
        return {"WORKSHOP_WEIGHTS_DIR": str(self.weights_dir), "WORKSHOP_OFFLINE": "1"}


@pytest.fixture(scope="session")
def online_weights_dir(yolo26n_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder with yolo26n cached, as after its download in a codespace."""
    folder = tmp_path_factory.mktemp("online-weights")
    shutil.copyfile(yolo26n_weights, folder / f"{PUBLIC_DEFAULT}.pt")
    return folder


@pytest.fixture(scope="module", params=["offline", "online"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> World:
    if request.param == "offline":
        return World("offline", tmp_path_factory.mktemp("offline-weights"), BUNDLED_MODEL)
    return World("online", request.getfixturevalue("online_weights_dir"), PUBLIC_DEFAULT)


@pytest.fixture(scope="module")
def world_server(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundService]:
    """A real ``workshop serve`` in that world."""
    service = start_backend(env=world.env, log_dir=tmp_path_factory.mktemp(f"logs-{world.name}"))
    yield service
    service.stop()


def test_the_default_model_is_the_worlds(world: World) -> None:
    assert ModelRegistry(Settings(weights_dir=world.weights_dir)).default_name == world.default_model


# --- The README's and the guide's commands, as written -----------------------------------------------------

#: (file, the heading of the section whose bash blocks are run).
DOCUMENTED_COMMANDS = [
    ("README.md", "## Calling the API"),
    ("docs/en/index.md", "## Step 1"),
    ("docs/en/index.md", "## Step 2"),
    ("docs/fr/index.md", "## Étape 1"),
    ("docs/fr/index.md", "## Étape 2"),
]
#: Commands sent to the deployed VM: the section's first block only (the next ones tear the cloud down).
#: The VM is stood in for by a local back-end that requires an API key, the key in the file the deploy writes.
VM_COMMANDS = [
    ("docs/en/index.md", "### Use it, then clean up", "EXTERNAL_IP"),
    ("docs/fr/index.md", "### S'en servir, puis faire le ménage", "IP_EXTERNE"),
]


def bash_blocks(markdown: str, heading: str) -> list[str]:
    """The fenced bash blocks of the section that starts with ``heading`` (up to the next heading of its level)."""
    level = heading.split(" ", 1)[0]
    start = markdown.index("\n" + heading) + 1
    end = markdown.find(f"\n{level} ", start + len(heading))
    section = markdown[start: end if end != -1 else None]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)


def commands_of(block: str) -> list[str]:
    """The block's commands: continuation lines and multi-line quoted arguments joined, servers left out."""
    commands, current = [], ""
    for line in block.splitlines(keepends=True):
        current += re.sub(r"\s+#\s.*$", "", line)  # an end-of-line comment (its apostrophes are no quotes)
        if current.count('"') % 2 == 0 and current.count("'") % 2 == 0 and not current.rstrip().endswith("\\"):
            command = current.strip()
            current = ""
            # Servers are started by the test (on a free port), not by the documented line.
            if command and not re.search(r"\bworkshop (serve|ui)\b|^uvicorn\b", command):
                commands.append(command)
    assert not current.strip(), f"unterminated command in the block: {current!r}"
    return commands


def test_documented_sections_hold_the_commands_this_test_checks() -> None:
    """The extraction finds what it should: if a heading is renamed, this test says so instead of checking nothing."""
    for file, heading in DOCUMENTED_COMMANDS:
        commands = [c for block in bash_blocks((REPO_ROOT / file).read_text(), heading) for c in commands_of(block)]
        assert any("predict" in command for command in commands) or "1" in heading, (file, heading, commands)
        assert commands, f"{file}: no bash command under {heading!r}"


@pytest.fixture
def student_shell(tmp_path: Path, world: World, world_server: BackgroundService) -> dict[str, str]:
    """A terminal as the student has it: the venv active, in a copy of the repository root with ``.venv``."""
    (tmp_path / ".venv").symlink_to(REPO_ROOT / ".venv")
    venv_bin = str(REPO_ROOT / ".venv" / "bin")
    return {
        **os.environ, **world.env,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}",
        "WORKSHOP_BACKEND_URL": world_server.url,
    }


@pytest.mark.slow
@pytest.mark.parametrize(("file", "heading"), DOCUMENTED_COMMANDS, ids=lambda value: str(value).replace(" ", ""))
def test_documented_commands_run_in_this_world(
    file: str, heading: str, world: World, world_server: BackgroundService, student_shell: dict[str, str],
    tmp_path: Path,
) -> None:
    subprocess.run(["workshop", "samples", "samples/"], cwd=tmp_path, env=student_shell, check=True,
                   capture_output=True, timeout=120)
    commands = [c for block in bash_blocks((REPO_ROOT / file).read_text(), heading) for c in commands_of(block)]
    for command in commands:
        # The guide's back-end listens on port 8000; the test's on a free port.
        command = command.replace("http://localhost:8000", world_server.url)
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=student_shell, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, f"{file} ({world.name}): {command}\n{result.stdout}\n{result.stderr}"
        check_output(command, result.stdout, world)


@pytest.fixture(scope="module")
def vm_stand_in(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundService]:
    """The deployed VM's stand-in: the same back-end, with the API key the deploy generated."""
    service = start_backend(env={**world.env, "WORKSHOP_API_KEY": "key-from-the-deploy"},
                            log_dir=tmp_path_factory.mktemp(f"vm-logs-{world.name}"))
    yield service
    service.stop()


@pytest.mark.slow
@pytest.mark.parametrize(("file", "heading", "address"), VM_COMMANDS, ids=lambda value: str(value).replace(" ", ""))
def test_commands_sent_to_the_vm_run_in_this_world(
    file: str, heading: str, address: str, world: World, vm_stand_in: BackgroundService,
    student_shell: dict[str, str], tmp_path: Path,
) -> None:
    subprocess.run(["workshop", "samples", "samples/"], cwd=tmp_path, env=student_shell, check=True,
                   capture_output=True, timeout=120)
    (tmp_path / ".workshop-deploy").mkdir()
    (tmp_path / ".workshop-deploy" / "api-key").write_text("key-from-the-deploy\n")
    commands = commands_of(bash_blocks((REPO_ROOT / file).read_text(), heading)[0])
    assert sum("workshop predict" in command for command in commands) == 2, commands
    for command in commands:
        command = command.replace(f"http://{address}:8000", vm_stand_in.url)
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=student_shell, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, f"{file} ({world.name}): {command}\n{result.stdout}\n{result.stderr}"
        check_output(command, result.stdout, world)


def check_output(command: str, output: str, world: World) -> None:
    """What the guide promises for each kind of command, in this world."""
    names_shapes = "--model shapes" in command or "model=shapes" in command
    if "workshop predict" in command:
        model = "shapes" if names_shapes else world.default_model
        assert f"by '{model}'" in output, (command, output)
        if "shapes_" in command:
            assert not output.startswith(f"{command.split()[2]}: 0 detections"), output
    elif "/predict/upload" in command:
        answer = json.loads(output)
        assert answer["model"] == ("shapes" if names_shapes else world.default_model)
        assert answer["detections"], output
    elif command.endswith("/models"):
        defaults = [model["name"] for model in json.loads(output) if model["default"]]
        assert defaults == [world.default_model]
    elif "not base64" in command or "pas du base64" in command:
        assert "base64" in json.loads(output)["detail"]
    elif command.endswith("/health"):
        assert json.loads(output)["status"] == "ok"
    elif command.startswith("python -c"):
        assert "Detection(" in output


# --- The notebooks, in the online world ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def online_build_context(online_weights_dir: Path) -> Iterator[Path]:
    """yolo26n exported into ``weights/exports`` for the image build, as scripts/setup.sh does in a codespace."""
    target = REPO_ROOT / "weights" / f"{PUBLIC_DEFAULT}.pt"
    export = REPO_ROOT / "weights" / "exports" / f"{PUBLIC_DEFAULT}-onnx"
    ours = not target.exists()
    if ours:
        shutil.copyfile(online_weights_dir / f"{PUBLIC_DEFAULT}.pt", target)
    ours_export = not export.exists()
    subprocess.run([sys.executable, "-m", "workshop", "export", PUBLIC_DEFAULT, "--engines", "onnx"], cwd=REPO_ROOT,
                   env={**os.environ, "WORKSHOP_WEIGHTS_DIR": "weights"}, check=True, capture_output=True, timeout=600)
    yield target
    if ours_export:
        shutil.rmtree(export, ignore_errors=True)
    if ours:
        target.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def online_notebook_env(online_weights_dir: Path, online_build_context: Path,
                        tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The kernel's environment (it inherits this process's): online world, fast mode."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKSHOP_WEIGHTS_DIR", str(online_weights_dir))
        patch.setenv("WORKSHOP_OFFLINE", "1")
        patch.setenv("WORKSHOP_NOTEBOOK_FAST", "1")
        patch.setenv("YOLO_CONFIG_DIR", str(tmp_path_factory.mktemp("ultralytics-online")))
        for name in NOT_INHERITED:
            patch.delenv(name, raising=False)
        yield


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_in_the_online_world(notebook: Path, online_notebook_env: None) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    docker = needs_docker(notebook)
    if docker and not docker_available():
        missing_tool("No Docker engine (scripts/docker-offline.sh starts one where that is possible)")
    client = NotebookClient(nb, timeout=1200, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook.parent)}})
    asked: list[dict] = []  # what the back-ends held by the kernel said after each cell
    with notebook_leaves_nothing_running(docker), client.setup_kernel():
        for index, cell in enumerate(list(nb.cells)):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, index)  # raises CellExecutionError, with the cell's traceback, when it fails
            asked += kernel_value(client, nb, DEFAULTS_PROBE)
    printed = "".join(
        output.get("text", "") for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
    )
    if any("choose_model(" in cell.source for cell in nb.cells if cell.cell_type == "code"):
        assert f"Using the public model '{PUBLIC_DEFAULT}'" in printed
    # The servers' defaults: asked on /ready after each cell, and printed (`workshop check`'s models line, /ready).
    defaults = [answer["default_model"] for answer in asked]
    defaults += re.findall(r"default: '([\w-]+)'", printed) + re.findall(r'"default_model":\s*"([\w-]+)"', printed)
    servers = sorted({(answer["url"], answer["default_model"]) for answer in asked})
    assert set(defaults) <= {PUBLIC_DEFAULT}, f"a server of the online world defaulted to {set(defaults)}: {servers}"
    if notebook.stem not in NO_BACKEND_BETWEEN_CELLS:
        assert defaults, "no back-end of this notebook said its default model: the check above checks nothing"
