"""Notebook 06's gcloud cells are workshop.deploy's plan: generated from it, checked against it, and run (with
the flags on) against the FAKE gcloud of tests/fake_gcloud.py, since Google Cloud itself cannot exist here."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support import REPO_ROOT
from workshop.deploy import notebook_cells
from workshop.deploy.gcp import (
    DeployConfig,
    Step,
    deploy_steps,
    generate_api_key,
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
    write,
)
from workshop.services import BackgroundService, start_backend

from fake_gcloud import PROJECT, PROJECT_NUMBER, FakeProject  # tests/ is on sys.path under pytest


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------ one source of truth
@pytest.mark.parametrize("path", notebook_paths(REPO_ROOT), ids=lambda path: path.parent.name)
def test_the_notebooks_gcloud_cells_are_the_plans_rendering(path: Path) -> None:
    notebook = load(path)
    assert drift(notebook) == [], "run: python -m workshop.deploy.notebook_cells --write"
    assert [key for key, _ in generated_in(notebook)] == [cell.key for cell in cells()]


def test_the_check_command_passes_on_the_committed_notebooks() -> None:
    result = subprocess.run([sys.executable, "-m", "workshop.deploy.notebook_cells", "--check"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _bigger_vm(config: DeployConfig) -> list[Step]:
    """The plan after a change in gcp.py: another machine type, and one step more."""
    steps = [
        dataclasses.replace(step, command=tuple(
            "--machine-type=e2-standard-2" if word.startswith("--machine-type=") else word for word in step.command))
        for step in deploy_steps(config)
    ]
    return [*steps, Step("Say goodbye", ("echo", "bye"))]


def test_a_change_in_the_plan_is_drift_until_written_back(monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = load(notebook_paths(REPO_ROOT)[0])
    monkeypatch.setattr(notebook_cells, "deploy_steps", _bigger_vm)
    problems = drift(notebook)
    assert problems and "say-goodbye" in problems[0]  # a step more: the list of cells differs
    rewritten = write(notebook)
    assert drift(rewritten) == []
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
    assert drift(notebook) == ["cell 'create-the-vm' differs from the plan"]


@pytest.mark.parametrize("key", [cell.key for cell in cells() if cell.source.startswith("%%")])
def test_each_shell_cell_is_valid_bash(key: str) -> None:
    result = subprocess.run(["bash", "-n", "-c", notebook_cells.body(key)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def _filled(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda match: values.get(match.group(1), match.group(0)), text)


def test_with_your_values_the_cells_are_the_plan_of_workshop_gcp_deploy(tmp_path: Path) -> None:
    """Fill the shell variables with a student's values: each step equals the CLI's plan for that student."""
    config = DeployConfig(project=PROJECT, student="ada", source_range="203.0.113.7/32", work_dir=tmp_path / "wd")
    values = {"PROJECT_ID": PROJECT, "STUDENT": "ada", "REGION": "europe-west1", "ZONE": "europe-west1-b",
              "PORT": "8000", "SOURCE_RANGE": "203.0.113.7/32"}
    paths = {notebook_cells.STARTUP_SCRIPT: str(config.startup_script), notebook_cells.WORK_DIR: str(config.work_dir)}

    def concrete(words: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if words is None:
            return None
        filled = []
        for word in words:
            word = _filled(word, values)
            for relative, absolute in paths.items():
                word = word.replace(relative, absolute)
            filled.append(word)
        return tuple(filled)

    rendered = [
        dataclasses.replace(step, command=concrete(step.command), unless=concrete(step.unless),
                            then=concrete(step.then), expect=step.expect and _filled(step.expect, values))
        for step in plan_steps()
    ]
    assert rendered == deploy_steps(config)
    text = "\n".join(cell.source for cell in cells())
    assert str(Path.cwd()) not in text and "placeholder" not in text and "48999" not in text


def test_the_suffix_computed_in_bash_is_the_one_workshop_gcp_derives() -> None:
    first = notebook_cells.cell("your-project").source.split("\n")
    lines = [line for line in first if line.startswith(("NAME=", "STUDENT="))]
    accounts = ["jean.dupont@etu.univ-exemple.fr", "Jean.Dupont@etu.univ-exemple.fr", "jean-dupont@etu.univ-exemple.fr",
                "a.very.long.first.name.and.surname@example.com", "42@example.com", "élève.ç@example.com",
                "--x--@example.com", "ab.-.cd----efghijklmnop@example.com"]
    for account in accounts:
        result = subprocess.run(["bash", "-c", "\n".join([*lines, 'printf "%s" "$STUDENT"'])],
                                env={**os.environ, "ACCOUNT": account}, capture_output=True, text=True, timeout=30)
        assert result.stdout == student_from_account(account), account


# ------------------------------------------------------------------ the cell magic
def test_the_magic_runs_nothing_while_the_flag_is_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
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


def test_the_first_cell_stops_with_a_sentence_when_the_fake_gcloud_has_no_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeProject(tmp_path, monkeypatch)  # its gcloud answers "(unset)" for the project
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with pytest.raises(StepFailedInCell, match="This step failed"):
        gcloud_step("", notebook_cells.body("your-project"), {"RUN_IN_CLOUD": True}, out)
    assert "No project: run gcloud config set project YOUR_PROJECT_ID, then this cell again." in out.getvalue()
    assert "your suffix" not in out.getvalue()


# ------------------------------------------------------------------ the whole notebook, flags on, fake gcloud
def _project_copy(tmp_path: Path, port: int, delete: bool) -> tuple[Path, nbformat.NotebookNode]:
    """The project as go_to_project_root finds it, in tmp_path; the English notebook with its flag(s) on."""
    root = tmp_path / "project"
    (root / "notebooks" / "solutions" / "en").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "docker-compose.yml", root / "docker-compose.yml")
    (root / "workshop").symlink_to(REPO_ROOT / "workshop")
    notebook = nbformat.read(notebook_paths(REPO_ROOT)[0], as_version=4)
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


@pytest.mark.parametrize("delete", [True, False], ids=["and-delete", "run-all-keeps-the-vm"])
def test_notebook_runs_with_the_flags_on_against_a_fake_gcloud(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delete: bool, vm: tuple[BackgroundService, str]
) -> None:
    """Run all, RUN_IN_CLOUD = True: each step's gcloud command, in order; the teardown only with its own flag."""
    fake = FakeProject(tmp_path, monkeypatch)
    # gcloud config get-value project: the one thing the fake leaves unset; a wrapper answers it, and logs it.
    wrapper = tmp_path / "wrapper-bin" / "gcloud"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/bash\n"
        'if [ "$*" = "config get-value project" ]; then\n'
        '  echo \'["gcloud", "config", "get-value", "project"]\' >> "$FAKE_CALLS"; echo ' + PROJECT + "; exit 0\n"
        "fi\n"
        f'exec {tmp_path}/fake-bin/gcloud "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    server, key = vm
    root, executed = _project_copy(tmp_path, int(server.url.rsplit(":", 1)[1]), delete)
    (root / ".workshop-deploy").mkdir()
    (root / ".workshop-deploy" / "api-key").write_text(key + "\n")  # the VM's key: the cell keeps it
    NotebookClient(executed, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(root / "notebooks" / "solutions" / "en")}}).execute()
    port = int(server.url.rsplit(":", 1)[1])
    outputs = {
        cell["metadata"].get(METADATA_KEY, str(number)): "".join(
            output.get("text") or json.dumps(output.get("data", {})) for output in cell.get("outputs", []))
        for number, cell in enumerate(executed["cells"])
    }
    student = student_from_account("student@example.com")
    image = f"europe-west1-docker.pkg.dev/{PROJECT}/workshop/backend-{student}"
    assert [" ".join(call[:4]) for call in fake.calls()] == [
        "gcloud config get-value project", "gcloud config get-value account",
        "gcloud --version", "gcloud auth list --filter=status:ACTIVE", f"gcloud projects describe {PROJECT}",
        "gcloud services enable artifactregistry.googleapis.com",
        "gcloud artifacts repositories describe", "gcloud artifacts repositories create",
        "gcloud artifacts repositories get-iam-policy", "gcloud artifacts repositories add-iam-policy-binding",
        f"gcloud projects get-iam-policy {PROJECT}", f"gcloud projects add-iam-policy-binding {PROJECT}",
        "gcloud auth configure-docker europe-west1-docker.pkg.dev",
        f"docker tag deploy-ml-workshop/backend:latest {image}:latest", f"docker push {image}:latest",
        "gcloud artifacts docker images",  # the digest
        "gcloud compute instances describe", "gcloud compute instances create",
        "gcloud compute instances describe",  # metadata up to date: no restart
        "gcloud compute firewall-rules describe", "gcloud compute firewall-rules create",
        "gcloud compute firewall-rules describe",  # source range up to date
        "gcloud compute instances describe",  # the external IP
        *(["gcloud compute instances delete", "gcloud compute firewall-rules delete", "gcloud artifacts docker images"]
          if delete else []),
        "gcloud compute instances list", "gcloud compute disks list", "gcloud compute firewall-rules list",
        "gcloud artifacts docker images", "gcloud artifacts repositories describe",
    ]
    calls = fake.calls()
    create = next(call for call in calls if call[1:4] == ["compute", "instances", "create"])
    assert f"--metadata=image={image}@sha256:" in " ".join(create) and f",port={port}," in " ".join(create)
    assert f"--labels=app=deploy-ml-workshop,student={student}" in create
    assert f"serviceAccount:{PROJECT_NUMBER}-compute@developer.gserviceaccount.com" in " ".join(
        next(call for call in calls if call[1:4] == ["projects", "add-iam-policy-binding", PROJECT]))
    state = read_state(root / ".workshop-deploy" / "notebook-state.sh")
    rule = next(call for call in calls if call[1:4] == ["compute", "firewall-rules", "create"])
    assert f"--source-ranges={state['SOURCE_RANGE']}" in rule and state["API_KEY"] == key
    if delete:
        assert fake.state["vms"] == {} and fake.state["rules"] == {} and image not in fake.state["images"]
    else:
        assert list(fake.state["vms"]) == [f"workshop-backend-{student}"] and image in fake.state["images"]
        assert outputs["teardown"].startswith("not run: set I_REALLY_WANT_TO_DELETE = True to run it.")
        assert f"-- VMs\nworkshop-backend-{student}\n-- Boot disks" in outputs["what-is-left"]
    assert "HTTP 401" in outputs["curl-without-the-key"] and "HTTP 200" in outputs["curl-with-the-key"]
    assert "shapes" in outputs["curl-with-the-key"]
    assert "EXTERNAL_IP=127.0.0.1" in outputs["read-the-vm-s-external-ip"]
    assert any("✅ Your VM passes" in text for text in outputs.values())
    everything = "".join(outputs.values())
    assert ("not run" in everything) is not delete and key not in everything
    assert outputs["show-the-startup-script"].startswith(startup_script_text().split("\n", 1)[0])
