"""Every gcloud command the lab shows gets past the REAL gcloud's parser: the plans printed by `workshop gcp`, their
re-run checks and updates, the preflight's and the leftover checks' reads, notebook 06's cells (and any other
notebook's), and the commands of the README, the lab guide, the teacher notes and the troubleshooting pages.

Run without credentials and with no server behind gcloud's proxy (nothing can leave the machine): a command whose
flags gcloud accepts stops at "You do not currently have an active account selected" (exit 1); a flag gcloud does
not know, a bad value or a missing argument stops its parser (exit 2, "unrecognized arguments", "Invalid choice"...).
"""

from __future__ import annotations

import json
import re
import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gcloud_emulator import GcloudWorld
from support import REPO_ROOT
from workshop.deploy import notebook_cells, preflight
from workshop.deploy.gcp import (
    DeployConfig,
    Step,
    cloud_run_deploy_steps,
    cloud_run_leftover_checks,
    cloud_run_teardown_steps,
    deploy_steps,
    key_on_vm_command,
    leftover_checks,
    proxy_command,
    shell_words,
    teardown_steps,
)

#: Values for the shell variables and the placeholders the commands are written with.
VALUES = {
    "PROJECT_ID": "my-workshop-project", "STUDENT": "ada", "REGION": "europe-west1", "ZONE": "europe-west1-b",
    "PORT": "8000", "SERVICE_ACCOUNT": "123456789012-compute@developer.gserviceaccount.com",
    "IMAGE_DIGEST": "sha256:" + "0" * 64, "API_KEY": "KEY123", "SOURCE_RANGE": "203.0.113.7/32",
    "EXTERNAL_IP": "203.0.113.9", "API_URL": "http://203.0.113.9:8000",
}
PLACEHOLDERS = {
    "YOUR_PROJECT_ID": "my-workshop-project", "VOTRE_ID_DE_PROJET": "my-workshop-project",
    "ID_DU_PROJET": "my-workshop-project", "your-project-id": "my-workshop-project",
    "VOTRE_PROJET": "my-workshop-project", "SUFFIXE": "ada", "SUFFIX": "ada", "STUDENT_EMAIL": "ada@example.com",
    "EMAIL_ETUDIANT": "ada@example.com", "YOUR_ACCOUNT": "teacher@example.com",
    "VOTRE_COMPTE": "teacher@example.com", "ACCOUNT_ID": "104331234567890123456",
    "ID_DU_COMPTE": "104331234567890123456", "TEACHER_ACCOUNT": "teacher@example.com",
    "COMPTE_ENSEIGNANT": "teacher@example.com",
}
#: gcloud's parser refusing a command (it exits 2 for these), and a format it cannot read.
PARSER_ERRORS = ("unrecognized arguments", "Invalid choice", "Bad syntax", "Invalid value for")


def _plan_commands() -> list[tuple[str, ...]]:
    """Every gcloud command of the plans, as `workshop gcp` builds them: steps, checks, updates, leftovers."""
    vm = DeployConfig(project="my-workshop-project", student="ada", api_key="KEY123", source_range="203.0.113.7/32",
                      teacher_ip="192.0.2.10", work_dir=Path("/tmp/wd"))
    run = DeployConfig(project="my-workshop-project", student="ada", api_key="KEY123", teacher_account="t@example.com",
                       work_dir=Path("/tmp/wd"))
    steps: list[Step] = [*deploy_steps(vm), *cloud_run_deploy_steps(run),
                         *teardown_steps(vm, delete_image=True, delete_repository=True),
                         *cloud_run_teardown_steps(run, delete_image=True, delete_repository=True)]
    commands = []
    for step in steps:
        commands.append(step.command)
        if step.done:
            commands.append(step.done.command)
        if step.update:
            commands += [step.update.read, *step.update.commands]
    commands += [check.command for check in [*leftover_checks(vm, True, True), *cloud_run_leftover_checks(run, True,
                                                                                                           True)]]
    commands += [key_on_vm_command(vm), tuple(shell_words(proxy_command(run)))]
    return [tuple(_fill(word) for word in command) for command in commands if command[0] == "gcloud"]


def _preflight_commands(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The gcloud calls `workshop gcp preflight --students 30` makes (answers that let every check run)."""
    called: list[tuple[str, ...]] = []
    answers = {"auth": "teacher@example.com", "projects": "roles/owner\tuser:teacher@example.com",
               "billing": "True", "services": "compute.googleapis.com", "compute": "{}",
               "resource-manager": "{}"}

    def record(*args: str) -> tuple[int, str, str]:
        called.append(("gcloud", *args))
        if args[:2] == ("projects", "describe"):
            return 0, "123456789012", ""
        return 0, answers.get(args[0], ""), ""

    monkeypatch.setattr(preflight, "_gcloud", record)
    preflight.run("my-workshop-project", ("compute.googleapis.com",), students=30)
    return called


def _fill(text: str) -> str:
    text = re.sub(r"\$\{(\w+)\}", lambda match: VALUES.get(match.group(1), match.group(0)), text)
    text = re.sub(r"\$([A-Z_]+)", lambda match: VALUES.get(match.group(1), match.group(0)), text)
    for placeholder, value in PLACEHOLDERS.items():
        text = re.sub(rf"(?<![\w-]){placeholder}(?![\w-])", value, text)
    return text


def _commands_in_text(text: str, code: bool) -> list[str]:
    """gcloud commands written in Markdown (``code`` False: inline code spans and the lines of fenced blocks) or
    shell (``code`` True: every line); continuations joined, a pipe ends a command, a `VAR=$(` capture unwrapped."""
    found = re.findall(r"`(gcloud [^`]+)`", text) if not code else []
    if not code:
        text = "\n".join(re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.M | re.S))
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        capture = re.match(r"\w+=\$\((gcloud .*)\)$", line)
        if capture:
            found.append(capture.group(1))
        elif line.startswith("gcloud "):
            found.append(line)
    commands = []
    for command in found:
        command = command.split(" | ", 1)[0].split("  #", 1)[0].strip()
        if "..." in command or "…" in command:  # an elided example ("gcloud services enable ...")
            continue
        commands.append(command)
    return commands


def _shown_commands() -> dict[str, list[str]]:
    """By file: the gcloud commands the notebooks (sources) and the documents hold."""
    files = sorted((REPO_ROOT / "notebooks" / "solutions").glob("*/*.ipynb"))
    files += [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*/*.md"))]
    shown = {}
    for path in files:
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            commands = [command for cell in cells
                        for command in _commands_in_text("".join(cell["source"]), cell["cell_type"] == "code")]
        else:
            commands = _commands_in_text(path.read_text(encoding="utf-8"), code=False)
        if commands:
            shown[str(path.relative_to(REPO_ROOT))] = commands
    return shown


def test_the_documents_and_notebooks_show_the_lab_s_gcloud_commands() -> None:
    """The collection finds what it must (a guard against a parser that finds nothing, so checks nothing)."""
    shown = _shown_commands()
    notebook = shown["notebooks/solutions/fr/06_google_cloud.ipynb"]
    assert any(command.startswith("gcloud compute instances create workshop-backend-${STUDENT}")
               for command in notebook)
    assert "gcloud auth login --no-launch-browser" in shown["docs/fr/index.md"]
    assert any(command.startswith("gcloud projects add-iam-policy-binding") for command in
               shown["docs/en/teacher-notes.md"])
    assert len(_plan_commands()) > 40


def _named_only(command: tuple[str, ...], stderr: str) -> bool:
    """A command named in prose without its arguments (`gcloud run deploy`): a name, not a command to type."""
    return not any(word.startswith("-") for word in command) and "must be specified" in stderr.lower()


@pytest.mark.slow
def test_every_gcloud_command_the_lab_shows_gets_past_the_real_gclouds_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a student's: the project set (`gcloud config set project`, the guide's first commands), nobody logged in.
    world = GcloudWorld(tmp_path / "world", None, account=None, project="my-workshop-project")
    commands = {tuple(_plan_commands_one) for _plan_commands_one in _plan_commands()}
    commands |= set(_preflight_commands(monkeypatch))
    for path, shown in _shown_commands().items():
        for command in shown:
            commands.add(tuple(shlex.split(_fill(command))))
    commands.add(tuple(shell_words(_fill(notebook_cells.body("your-project").split("$(", 1)[1].split(")", 1)[0]))))
    ordered = sorted(commands)

    def parse(command: tuple[str, ...]):
        return command, world.run(*command[1:], timeout=90)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(parse, ordered))
    named = [command for command, result in results if _named_only(command, result.stderr)]
    refused = [f"{shlex.join(command)}\n  -> exit {result.returncode}: {result.stderr.strip()[:400]}"
               for command, result in results if command not in named
               and (result.returncode == 2 or any(error in result.stderr for error in PARSER_ERRORS))]
    assert not refused, "gcloud's parser refused:\n" + "\n".join(refused)
    stopped_at_login = sum("do not currently have an active account" in result.stderr for _, result in results)
    print(f"\n{len(ordered) - len(named)} distinct gcloud commands parsed by the real CLI, {stopped_at_login} of them "
          f"stopped at the login; {len(named)} more only named in prose: {[shlex.join(c) for c in named]}")
    assert len(named) <= 8 and stopped_at_login > len(ordered) // 2
