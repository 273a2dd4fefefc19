"""Notebook 06's gcloud cells are workshop.deploy's plan: generated from it, checked against it, one command a cell
as a person writes it, and run (with the flags on) through the REAL gcloud against the loopback emulator of
Google's APIs (tests/gcloud_emulator/: Google itself cannot be reached here; `docker push` and `docker run` are
the emulator harness's stand-ins, the login a stored credential)."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from gcloud_emulator import Emulator, GcloudWorld, golden
from gcloud_emulator.fixtures import LAB_APIS, emulator, world  # noqa: F401 - pytest fixtures
from support import REPO_ROOT
from workshop.deploy import notebook_cells
from workshop.deploy.gcp import (
    Check,
    DeployConfig,
    Step,
    Update,
    deploy_steps,
    generate_api_key,
    shell_words,
    startup_script_text,
    student_from_account,
)
from workshop.deploy.notebook_cells import (
    METADATA_KEY,
    StepFailedInCell,
    cells,
    drift,
    gcloud_step,
    generated_in,
    notebook_paths,
    plan_steps,
    read_state,
    step_for,
    write,
)
from workshop.services import BackgroundService, start_backend

PROJECT = "my-workshop-project"
LANGUAGES = ("en", "fr")


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------ one source of truth
@pytest.mark.parametrize("path", notebook_paths(REPO_ROOT), ids=lambda path: path.parent.name)
def test_the_notebooks_gcloud_cells_are_the_plans_rendering(path: Path) -> None:
    notebook = load(path)
    rendered = cells(path.parent.name)
    assert drift(notebook, rendered) == [], "run: python -m workshop.deploy.notebook_cells --write"
    assert [key for key, _ in generated_in(notebook)] == [cell.key for cell in rendered]


def test_the_check_command_passes_on_the_committed_notebooks() -> None:
    result = subprocess.run([".venv/bin/python" if (REPO_ROOT / ".venv").exists() else "python", "-m",
                             "workshop.deploy.notebook_cells", "--check"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _bigger_vm(config: DeployConfig) -> list[Step]:
    """The plan after a change in gcp.py: another machine type, and one step more."""
    steps = [
        dataclasses.replace(step, command=tuple(
            "--machine-type=e2-standard-2" if word.startswith("--machine-type=") else word for word in step.command))
        for step in deploy_steps(config)
    ]
    return [*steps, dataclasses.replace(steps[0], title=dataclasses.replace(steps[0].title, en="Say goodbye"),
                                        command=("echo", "bye"))]


def test_a_change_in_the_plan_is_drift_until_written_back(monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = load(notebook_paths(REPO_ROOT)[0])
    monkeypatch.setattr(notebook_cells, "deploy_steps", _bigger_vm)
    problems = drift(notebook, cells("en"))
    assert problems and "say-goodbye" in problems[0]  # a step more: the list of cells differs
    rewritten = write(notebook, cells("en"))
    assert drift(rewritten, cells("en")) == []
    created = next(cell for cell in rewritten["cells"] if "--machine-type=e2-standard-2" in "".join(cell["source"]))
    assert created["outputs"] == [] and created["metadata"][METADATA_KEY] == "create-the-vm"
    keys = [cell["metadata"].get(METADATA_KEY) for cell in rewritten["cells"]]
    assert keys.index("say-goodbye") == keys.index("read-the-vm-s-external-ip") + 1  # after the step before it
    hand_written = [cell for cell in notebook["cells"] if METADATA_KEY not in cell["metadata"]]
    assert [cell for cell in rewritten["cells"] if METADATA_KEY not in cell["metadata"]] == hand_written


def test_a_hand_edit_of_a_generated_cell_is_drift() -> None:
    notebook = load(notebook_paths(REPO_ROOT)[1])
    vm = next(cell for cell in notebook["cells"] if cell["metadata"].get(METADATA_KEY) == "create-the-vm")
    vm["source"] = "".join(vm["source"]).replace("--machine-type=e2-medium", "--machine-type=n1-standard-2")
    assert drift(notebook, cells("fr")) == ["cell 'create-the-vm' differs from the plan"]


def _filled(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda match: values.get(match.group(1), match.group(0)), text)


def test_with_your_values_the_cells_are_the_plan_of_workshop_gcp_deploy(tmp_path: Path) -> None:
    """Fill the shell variables with a student's values: each step equals the CLI's plan for that student."""
    config = DeployConfig(project=PROJECT, student="ada", source_range="203.0.113.7/32", work_dir=tmp_path / "wd")
    values = {"PROJECT_ID": PROJECT, "STUDENT": "ada", "REGION": "europe-west1", "ZONE": "europe-west1-b",
              "PORT": "8000", "SOURCE_RANGE": "203.0.113.7/32", "IMAGE": config.image_path}
    paths = {notebook_cells.STARTUP_SCRIPT: str(config.startup_script), notebook_cells.WORK_DIR: str(config.work_dir)}

    def concrete(words: tuple[str, ...]) -> tuple[str, ...]:
        filled = []
        for word in words:
            word = _filled(word, values)
            for relative, absolute in paths.items():
                word = word.replace(relative, absolute)
            filled.append(word)
        return tuple(filled)

    rendered = [
        dataclasses.replace(
            step, command=concrete(step.command),
            done=step.done and Check(concrete(step.done.command), step.done.expect and _filled(step.done.expect,
                                                                                              values)),
            update=step.update and Update(concrete(step.update.read), _filled(step.update.want, values),
                                          tuple(concrete(c) for c in step.update.commands), step.update.what))
        for step in plan_steps()
    ]
    assert rendered == deploy_steps(config)
    for language in LANGUAGES:
        text = "\n".join(cell.source for cell in cells(language))
        assert str(Path.cwd()) not in text and "placeholder" not in text and "48999" not in text


# ------------------------------------------------------------------ cells a person can read and type
PLUMBING = re.compile(r"\|\||&&|(?<![|])\|(?![|])|\bgrep\b|\bsed\b|\bcase\b|\btr\b|\bcut\b|\bif\b|\buntil\b|"
                      r"2>/dev/null|>/dev/null")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_gcloud_step_cell_is_one_command_written_as_a_person_writes_it(language: str) -> None:
    for each in cells(language):
        if not each.source.startswith("%%"):
            continue
        body = each.source.split("\n", 1)[1]
        code = [line for line in body.splitlines() if not line.lstrip().startswith("#")]
        assert not PLUMBING.search("\n".join(code)), (each.key, body)
        step = step_for(body)
        if step is not None:  # a step of the plan: one command, or one VAR=$(command) capture
            assert len(re.findall(r"^\S", "\n".join(code), flags=re.M)) == 1, each.key
            words = shell_words("\n".join(code).split("=$(", 1)[1][:-1] if step.capture else "\n".join(code))
            assert tuple(words) == step.command
            if "\\\n" in body:  # one flag a line
                assert all(line.startswith("    --") for line in code[1:]), body
        else:  # the cells around the plan: short
            assert len(code) <= 7, each.key
        comment = body.splitlines()[0]
        assert comment.startswith("# ")
        if step is not None:
            assert comment.endswith(step.title.fr if language == "fr" else step.title.en), comment


@pytest.mark.parametrize("key", [cell.key for cell in cells("en") if cell.source.startswith("%%")])
def test_each_shell_cell_is_valid_bash(key: str) -> None:
    result = subprocess.run(["bash", "-n", "-c", notebook_cells.body(key)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_the_longest_cell_is_short() -> None:
    """The old cells were 300-900-character one-liners; a cell now reads as a command with its flags."""
    for language in LANGUAGES:
        for each in cells(language):
            assert len(each.source) < 700 and max(len(line) for line in each.source.splitlines()) < 170, each.key


def test_the_suffix_comes_from_workshop_gcp_whoami_through_the_real_gcloud(tmp_path: Path) -> None:
    """`STUDENT=$(workshop gcp whoami --suffix)` gives the suffix `workshop gcp deploy` derives, for any account."""
    accounts = ["Jean.Dupont@etu.univ-exemple.fr", "a.very.long.first.name.and.surname@example.com"]
    for number, account in enumerate(accounts):
        world = GcloudWorld(tmp_path / f"w{number}", None, account=account)
        result = world.workshop("gcp", "whoami", "--suffix", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout == student_from_account(account) + "\n"
    assert "jean-dupont-" in student_from_account(accounts[0])


# ------------------------------------------------------------------ the cell magic
def test_the_magic_runs_nothing_while_the_flag_is_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKSHOP_LANG", "en")
    out = io.StringIO()
    gcloud_step("", "touch made-by-the-cell", {"RUN_IN_CLOUD": False}, out)
    assert out.getvalue().startswith("not run: set RUN_IN_CLOUD = True") and "touch made-by-the-cell" in out.getvalue()
    gcloud_step("I_REALLY_WANT_TO_DELETE", "touch deleted", {"RUN_IN_CLOUD": True}, out)
    assert "set I_REALLY_WANT_TO_DELETE = True to run it" in out.getvalue()
    gcloud_step("", "touch truthy-is-not-true", {"RUN_IN_CLOUD": "yes"}, out)
    assert list(tmp_path.iterdir()) == []  # nothing ran, not even the state file


def test_the_magic_keeps_the_variables_between_cells_and_stops_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKSHOP_LANG", "en")
    on = {"RUN_IN_CLOUD": True}
    out = io.StringIO()
    gcloud_step("", "PROJECT_ID=my-project\nAPI_KEY='a key with spaces'\nOTHER=not-kept\necho first", on, out)
    gcloud_step("", 'echo "${PROJECT_ID}|${#API_KEY}|${OTHER}"', on, out)
    assert out.getvalue() == "first\nmy-project|17|\n"
    state = tmp_path / ".workshop-deploy" / "notebook-state.sh"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert read_state(state) == {"PROJECT_ID": "my-project", "API_KEY": "a key with spaces"}
    with pytest.raises(StepFailedInCell) as failure:
        gcloud_step("", "EXTERNAL_IP=1.2.3.4\necho 'ERROR: (gcloud.compute) Billing account ... is not found' >&2\n"
                        "false\necho never", on, out)
    assert str(failure.value).startswith("This step failed (exit code 1). Billing is not enabled")
    assert failure.value._render_traceback_() == [f"❌ {failure.value}"]
    assert "never" not in out.getvalue() and read_state(state)["EXTERNAL_IP"] == "1.2.3.4"  # kept what it had


def test_a_plan_cell_runs_through_the_runner_and_a_second_run_says_it_is_done(
    tmp_path: Path, world: GcloudWorld, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repository's cell, run twice through the real gcloud: created, then "already exists: nothing to do"."""
    world.patched(monkeypatch)
    monkeypatch.chdir(tmp_path)
    emulator.cloud.project.enabled |= LAB_APIS
    notebook_cells.save_state({"PROJECT_ID": PROJECT, "REGION": "europe-west1"})
    body = notebook_cells.body("create-the-artifact-registry-repository")
    on = {"RUN_IN_CLOUD": True}
    first, second = io.StringIO(), io.StringIO()
    gcloud_step("", body, on, first)
    gcloud_step("", body, on, second)
    assert "Created repository [workshop]" in first.getvalue()
    assert second.getvalue() == "    already exists: nothing to do\n"
    assert list(emulator.cloud.repositories) == [f"projects/{PROJECT}/locations/europe-west1/repositories/workshop"]
    edited = body.replace("--labels=app=deploy-ml-workshop", "--labels=app=mine")
    assert step_for(body) is not None and step_for(edited) is None  # an edited cell runs as typed, with bash


# ------------------------------------------------------------------ the whole notebook, flags on, real gcloud
def _project_copy(tmp_path: Path, port: int, language: str, delete: bool) -> tuple[Path, nbformat.NotebookNode]:
    """The project as go_to_project_root finds it, in tmp_path; the notebook with its flag(s) on."""
    root = tmp_path / "project"
    (root / "notebooks" / "solutions" / language).mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "docker-compose.yml", root / "docker-compose.yml")
    if not (root / "workshop").exists():
        (root / "workshop").symlink_to(REPO_ROOT / "workshop")
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "solutions" / language / notebook_cells.NOTEBOOK, as_version=4)
    notebook.cells = [cell for cell in notebook.cells if "stretch" not in cell.metadata.get("tags", [])]
    edits = {"RUN_IN_CLOUD = False": "RUN_IN_CLOUD = True",
             "\nPORT=8000\n": f"\nPORT={port}\n"}  # the "VM" is a real back-end on this machine, on a free port
    if delete:
        edits["I_REALLY_WANT_TO_DELETE = False"] = "I_REALLY_WANT_TO_DELETE = True"
    for old, new in edits.items():
        holders = [cell for cell in notebook.cells if cell.cell_type == "code" and old in cell.source]
        assert len(holders) == 1, old
        holders[0].source = holders[0].source.replace(old, new)
    return root, notebook


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundService, str]]:
    """The "VM": a real back-end on this machine, with an API key, as the start-up script runs it."""
    key = generate_api_key()
    server = start_backend(env={"WORKSHOP_API_KEY": key}, log_dir=tmp_path_factory.mktemp("logs"))
    yield server, key
    server.stop()


def _outputs(notebook: nbformat.NotebookNode) -> dict[str, str]:
    return {
        cell["metadata"].get(METADATA_KEY, str(number)): "".join(
            output.get("text") or json.dumps(output.get("data", {})) for output in cell.get("outputs", []))
        for number, cell in enumerate(notebook["cells"])
    }


@pytest.mark.slow
def test_notebook_runs_twice_then_cleans_up_through_the_real_gcloud(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Emulator, vm: tuple[BackgroundService, str]
) -> None:
    """Run all with RUN_IN_CLOUD = True (core cells only, as a student who skips the stretch), then Run all again
    with I_REALLY_WANT_TO_DELETE = True: the second run changes nothing, then deletes what the first created."""
    server, key = vm
    port = int(server.url.rsplit(":", 1)[1])
    world = GcloudWorld(tmp_path / "world", emulator, project=PROJECT)
    world.patched(monkeypatch)
    monkeypatch.setenv("WORKSHOP_LANG", "en")
    student = student_from_account("student@example.com")
    image = f"europe-west1-docker.pkg.dev/{PROJECT}/workshop/backend-{student}"
    runs = {}
    for delete in (False, True):
        emulator.forget()
        root, executed = _project_copy(tmp_path, port, "en", delete)
        (root / ".workshop-deploy").mkdir(exist_ok=True)
        (root / ".workshop-deploy" / "api-key").write_text(key + "\n")  # the VM's key: the cell keeps it
        NotebookClient(executed, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(root / "notebooks" / "solutions" / "en")}}).execute()
        runs[delete] = _outputs(executed)
        log = [type(r)(r.method, r.host, r.path, r.query, _stable(r.body, port, key), r.status) for r in emulator.log]
        golden.compare("notebook-06-run-all-again-then-clean-up" if delete else "notebook-06-run-all", log,
                       emulator.cloud)
        if not delete:
            instance = emulator.cloud.instances[f"{PROJECT}/europe-west1-b/workshop-backend-{student}"]
            metadata = {item["key"]: item["value"] for item in instance["metadata"]["items"]}
            assert metadata["image"].startswith(f"{image}@sha256:") and metadata["api-key"] == key
            assert metadata["startup-script"] == startup_script_text()
            state = read_state(root / ".workshop-deploy" / "notebook-state.sh")
            rule = emulator.cloud.firewalls[f"{PROJECT}/workshop-allow-8000-{student}"]
            assert rule["sourceRanges"] == [state["SOURCE_RANGE"]] and state["API_KEY"] == key

    first, second = runs[False], runs[True]
    assert "✓ gcloud logged in: student@example.com" in first["check-the-prerequisites"]
    assert "Ready: you may deploy." in first["check-the-prerequisites"]
    assert f"STUDENT={student} IMAGE={image}\n" in first["your-project"]
    assert "Created repository [workshop]" in first["create-the-artifact-registry-repository"]
    assert first["delete-the-vm-and-its-boot-disk"].startswith("not run: set I_REALLY_WANT_TO_DELETE = True")
    assert f"VMs: workshop-backend-{student}" in first[str(_index(executed, "check.what_is_left"))]
    assert "HTTP 401" in first["curl-without-the-key"] and "HTTP 200" in first["curl-with-the-key"]
    assert "shapes" in first["curl-with-the-key"] and '"detections"' in first["a-prediction-served-by-the-vm"]
    assert "EXTERNAL_IP=127.0.0.1" in first["read-the-vm-s-external-ip"]
    assert any("✅ Your VM passes" in text for text in first.values())
    docker = world.docker_calls()
    assert ["docker", "run", "--detach", "--name=workshop-frontend-vm", "--publish=8501:8501",
            f"--env=WORKSHOP_BACKEND_URL=http://127.0.0.1:{port}", f"--env=WORKSHOP_API_KEY={key}",
            "deploy-ml-workshop/frontend:latest"] in docker

    assert second["create-the-artifact-registry-repository"] == "    already exists: nothing to do\n"
    assert second["create-the-vm"] == "    already exists, up to date: nothing to do\n"
    assert "already done: nothing to do" in second["let-the-vm-s-service-account-write-logs"]
    assert emulator.cloud.instances == {} and emulator.cloud.firewalls == {} and emulator.cloud.images == {}
    assert "✅ Nothing of yours is left" in second[str(_index(executed, "check.what_is_left"))]
    everything = "".join(first.values()) + "".join(second.values())
    assert "not run" not in "".join(second.values()) and key not in everything


def _index(notebook: nbformat.NotebookNode, text: str) -> int:
    return next(number for number, cell in enumerate(notebook.cells) if text in cell.source)


def _stable(body: object, port: int, key: str) -> object:
    """A request's body with what changes from run to run named instead: the local back-end's port, its key."""
    text = json.dumps(body).replace(f'"{port}"', '"PORT"').replace(f"tcp:{port}", "tcp:PORT").replace(key, "KEY")
    return json.loads(text)
