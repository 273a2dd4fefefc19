"""Notebook 06's shell cells, generated from :mod:`workshop.deploy`'s plan, and the cell magic that runs them.

The notebook deploys with the very commands of ``workshop gcp deploy``, one step per cell, so that a student
reads each gcloud command, runs it, or pastes it into a terminal. The cells are not written by hand:
:func:`cells` renders the plan (:func:`workshop.deploy.gcp.deploy_steps`, :func:`~workshop.deploy.gcp.teardown_steps`,
...) for a placeholder project and student, then puts shell variables where the placeholders were
(``${PROJECT_ID}``, ``${STUDENT}``, ``${REGION}``, ``${ZONE}``, ``${PORT}``): one source of truth. After a
change of the plan::

    python -m workshop.deploy.notebook_cells --write   # puts the rendering back into both notebooks
    python -m workshop.deploy.notebook_cells --check   # exit 1 when a notebook and the plan differ

The cell magic ``%%gcloud_step`` (``%load_ext workshop.deploy.notebook_cells``) takes a body of plain bash.
While ``RUN_IN_CLOUD`` is not ``True`` in the notebook, it runs nothing: it prints "not run" and the commands.
When it is, it runs the body with bash and streams its output. Each cell is a new bash process, so the plan's
shell variables (the project, the digest, the VM's IP, the API key...) are kept between cells in a state file,
``.workshop-deploy/notebook-state.sh`` (mode 600, ignored by git); the API key is never printed.
``%%gcloud_step I_REALLY_WANT_TO_DELETE`` also needs that second flag: "Run all" never deletes what it created.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from workshop.deploy.gcp import (
    API_KEY,
    EXTERNAL_IP,
    IMAGE_DIGEST,
    PROJECT_NUMBER,
    DeployConfig,
    Step,
    deploy_steps,
    leftover_checks,
    teardown_steps,
    var,
)

#: The notebook the cells belong to (same file name in notebooks/solutions/en and notebooks/solutions/fr).
NOTEBOOK = "06_google_cloud.ipynb"
#: Where a generated cell keeps its name, in the cell's metadata.
METADATA_KEY = "gcloud_cell"
#: The cell magic, and the flags that let it run.
MAGIC = "gcloud_step"
RUN_FLAG = "RUN_IN_CLOUD"
DELETE_FLAG = "I_REALLY_WANT_TO_DELETE"
#: Paths as a terminal at the project's root reads them (the notebook works from there too).
WORK_DIR = ".workshop-deploy"
STATE_FILE = f"{WORK_DIR}/notebook-state.sh"
STARTUP_SCRIPT = "workshop/deploy/startup.sh"
#: The URL the curl cells call: set once the VM's IP is known.
API_URL = "API_URL"
#: The shell variables kept from one cell to the next (each %%gcloud_step cell is a new bash process).
VARIABLES = (
    "PROJECT_ID", "ACCOUNT", "STUDENT", "REGION", "ZONE", "PORT", PROJECT_NUMBER, IMAGE_DIGEST, API_KEY,
    "SOURCE_RANGE", EXTERNAL_IP, API_URL,
)
#: Captured values worth showing when they are read (the API key, for one, never is).
_SHOWN = (PROJECT_NUMBER, IMAGE_DIGEST, EXTERNAL_IP)

# The plan is rendered for these placeholders, then each becomes a shell variable. None of them can
# appear in a command by chance.
_PROJECT = "project-id-placeholder"
_STUDENT = "studentplaceholder"
_REGION = "regionplaceholder"
_PORT = 48_999


@dataclass(frozen=True)
class Cell:
    """A generated cell: its name (kept in the cell's metadata) and its text."""

    key: str
    source: str


def defaults() -> dict[str, str]:
    """The values the first cell starts from: DeployConfig's own defaults (one source with ``workshop gcp``)."""
    fields = {field.name: field.default for field in dataclasses.fields(DeployConfig)}
    return {"REGION": str(fields["region"]), "PORT": str(fields["port"])}


def _placeholder_config() -> DeployConfig:
    return DeployConfig(
        project=_PROJECT, region=_REGION, student=_STUDENT, port=_PORT, source_range=var("SOURCE_RANGE"),
        work_dir=Path(WORK_DIR),
    )


def _with_variables(text: str, config: DeployConfig) -> str:
    """``text`` from the placeholder plan, with shell variables (and paths from the project's root) instead."""
    text = text.replace(str(config.startup_script), STARTUP_SCRIPT).replace(str(config.work_dir), WORK_DIR)
    assert config.zone is not None
    for value, name in ((config.zone, "ZONE"), (_REGION, "REGION"), (_PROJECT, "PROJECT_ID"),
                        (_STUDENT, "STUDENT"), (str(_PORT), "PORT")):
        text = text.replace(value, var(name))
    return text


def shell_step(step: Step, config: DeployConfig) -> Step:
    """The plan's step with shell variables in place of the placeholder project, student, region, zone, port."""
    def words(command: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if command is None else tuple(_with_variables(word, config) for word in command)

    expect = None if step.expect is None else _with_variables(step.expect, config)
    return dataclasses.replace(
        step, command=words(step.command), unless=words(step.unless), then=words(step.then), expect=expect,
    )


def plan_steps() -> list[Step]:
    """The deployment's steps, as the notebook runs them (shell variables in place of your values)."""
    config = _placeholder_config()
    return [shell_step(step, config) for step in deploy_steps(config)]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:48].strip("-")


def _gcloud_cell(key: str, lines: list[str], guard: str = "") -> Cell:
    header = f"%%{MAGIC} {guard}".rstrip()
    return Cell(key, "\n".join([header, *lines]))


def _capture_note(step: Step) -> list[str]:
    if step.capture in _SHOWN:
        return [f'echo "{step.capture}={var(step.capture)}"']
    if step.capture:
        return [f'echo "{step.capture} read: ${{#{step.capture}}} characters (never printed)"']
    return []


def _first_cell() -> Cell:
    values = defaults()
    account = var("ACCOUNT")
    return _gcloud_cell("your-project", [
        "# Your project, your account, and the suffix of your names (the one `workshop gcp deploy` derives)",
        "PROJECT_ID=$(gcloud config get-value project)",
        "ACCOUNT=$(gcloud config get-value account)",
        # gcloud says "(unset)" when there is none
        "case \"$PROJECT_ID\" in ''|'(unset)') echo 'No project: run gcloud config set project YOUR_PROJECT_ID, "
        "then this cell again.' >&2; false;; esac",
        "case \"$ACCOUNT\" in ''|'(unset)') echo 'Not logged in: run gcloud auth login --no-launch-browser, "
        "then this cell again.' >&2; false;; esac",
        f"REGION={values['REGION']}",
        'ZONE="${REGION}-b"',
        f"PORT={values['PORT']}",
        # student_from_account, in bash: the account's name part, lowercase, other characters as single
        # hyphens, 15 at most; then 4 hex digits of the whole address (tests check both give the same).
        f"NAME=$(printf '%s' \"${{ACCOUNT%%@*}}\" | tr '[:upper:]' '[:lower:]' | sed -E 's/[^a-z0-9]+/-/g; "
        "s/^-+|-+$//g' | cut -c1-15 | sed -E 's/-+$//')",
        f"STUDENT=\"${{NAME:-s}}-$(printf '%s' \"{account}\" | tr '[:upper:]' '[:lower:]' | sha256sum | cut -c1-4)\"",
        'echo "project ${PROJECT_ID}, region ${REGION}, your suffix: ${STUDENT}"',
    ])


def _api_key_cell() -> Cell:
    return _gcloud_cell("make-the-api-key", [
        f"# Your API key: made once (32 random characters), kept in {WORK_DIR}/api-key, readable by you only",
        f"mkdir -p {WORK_DIR}",
        f"[ -s {WORK_DIR}/api-key ] || (umask 077 && head -c 24 /dev/urandom | base64 | tr '+/' '-_' "
        f"> {WORK_DIR}/api-key)",
        f"ls -l {WORK_DIR}/api-key",
    ])


def _source_range_cell() -> Cell:
    return _gcloud_cell("your-public-ip", [
        "# The public IP your requests come from (the codespace's): the firewall will let in that one only",
        "MY_IP=$(curl -s --max-time 5 https://api.ipify.org || true)",
        "# Not found (no answer, or not an address): open to everyone, and the API key alone guards the API",
        'if [[ "$MY_IP" =~ ^[0-9]+(\\.[0-9]+){3}$ ]]; then SOURCE_RANGE="${MY_IP}/32"; else SOURCE_RANGE=0.0.0.0/0; fi',
        'echo "SOURCE_RANGE=${SOURCE_RANGE}"',
    ])


def firewall_step() -> Step:
    """The plan's step that creates the firewall rule (the exercise's model answer)."""
    return next(step for step in plan_steps() if step.command[:4] == ("gcloud", "compute", "firewall-rules", "create"))


def _firewall_exercise() -> Cell:
    """The firewall rule's command, one flag a line, ``--source-ranges`` left for the student to write."""
    from workshop.notebook_track import BEGIN, END

    command = firewall_step().command
    first = next(index for index, word in enumerate(command) if word.startswith("--"))
    lines = [" ".join(command[:first]) + " \\"]
    for word in command[first:]:
        if word.startswith("--source-ranges="):
            lines += [f"    {BEGIN}", f"    {word} \\", f"    {END}"]
        else:
            lines.append(f"    {word} \\")
    lines[-1] = lines[-1].removesuffix(" \\")
    if lines[-1].strip() == END:  # the flag was the last one: no backslash after it
        lines[-2] = lines[-2].removesuffix(" \\")
    text = "\n".join(lines)
    return Cell("firewall-exercise", f'my_firewall_rule = r"""\n{text}\n"""')


def _health_cell() -> Cell:
    url = var(API_URL)
    return _gcloud_cell("wait-until-the-api-answers", [
        "# Wait until the VM's API answers: the VM boots, its start-up script pulls the image (a few minutes)",
        f'{API_URL}="http://{var(EXTERNAL_IP)}:{var("PORT")}"',
        f"timeout 600 bash -c \"until curl -sf --max-time 5 {url}/health; do echo 'no answer yet, "
        "next try in 10 s'; sleep 10; done\"",
        "echo",
    ])


#: The request without the key; the prediction's checkpoint runs this very text against a local back-end.
CURL_WITHOUT_KEY = f"curl -s -w '\\nHTTP %{{http_code}}\\n' \"{var(API_URL)}/models\""
#: The same request with the key, in the header the back-end reads.
CURL_WITH_KEY = f"curl -s -w '\\nHTTP %{{http_code}}\\n' -H \"X-API-Key: {var(API_KEY)}\" \"{var(API_URL)}/models\""


def _teardown_cells() -> list[Cell]:
    config = _placeholder_config()
    steps = [shell_step(step, config) for step in teardown_steps(config, delete_image=True)]
    lines = ["# Delete your VM (and its disk), your firewall rule and your image: what costs money"]
    for index, step in enumerate(steps, start=1):
        lines += [f"# {index}/{len(steps)} {step.title}", step.shell()]
    checks = leftover_checks(config, delete_image=True)
    left = ["# What is left, kind by kind (each command prints one name a line: nothing under a kind means none)"]
    for check in checks:
        left.append(f'echo "-- {check.kind}"; {shell_step(check.step, config).shell()}')
    return [_gcloud_cell("teardown", lines, guard=DELETE_FLAG), _gcloud_cell("what-is-left", left)]


def cells() -> list[Cell]:
    """Every generated cell of notebook 06, in order: the plan, one step a cell, with the cells around it."""
    steps = plan_steps()
    firewall = firewall_step()
    rendered = [_first_cell()]
    for index, step in enumerate(steps, start=1):
        if step.capture == API_KEY:  # the VM's part: its start-up script, then its key
            rendered += [Cell("show-the-startup-script", f"%%bash\ncat {STARTUP_SCRIPT}"), _api_key_cell()]
        if step == firewall:
            rendered += [_source_range_cell(), _firewall_exercise()]
        rendered.append(_gcloud_cell(_slug(step.title), [f"# {index}/{len(steps)} {step.title}", step.shell(),
                                                         *_capture_note(step)]))
    rendered += [
        _health_cell(),
        _gcloud_cell("curl-without-the-key", ["# The API without the key", CURL_WITHOUT_KEY]),
        _gcloud_cell("curl-with-the-key", ["# The same request with the key (sent, never printed)", CURL_WITH_KEY]),
        *_teardown_cells(),
    ]
    return rendered


def cell(key: str) -> Cell:
    """One generated cell, by name."""
    return next(each for each in cells() if each.key == key)


def body(key: str) -> str:
    """A generated cell's text without its magic line: the shell commands as a terminal takes them."""
    return cell(key).source.split("\n", 1)[1]


# ----------------------------------------------------------------------------- the notebooks
def notebook_paths(root: Path | None = None) -> list[Path]:
    """Notebook 06's solution notebooks, English then French."""
    from workshop.notebook_track import LANGUAGES, solutions_dir

    return [solutions_dir(language, root) / NOTEBOOK for language in LANGUAGES]


def _text(notebook_cell: dict) -> str:
    text = notebook_cell.get("source", "")
    return text if isinstance(text, str) else "".join(text)


def generated_in(notebook: dict) -> list[tuple[str, str]]:
    """The generated cells a notebook holds, in order: (name, text)."""
    return [(c["metadata"][METADATA_KEY], _text(c)) for c in notebook["cells"] if METADATA_KEY in c.get("metadata", {})]


def drift(notebook: dict, rendered: list[Cell] | None = None) -> list[str]:
    """How a notebook's generated cells differ from the plan's rendering, as sentences (none: up to date)."""
    rendered = cells() if rendered is None else rendered
    held = generated_in(notebook)
    expected = [(each.key, each.source) for each in rendered]
    if [key for key, _ in held] != [key for key, _ in expected]:
        return [f"the generated cells are {[key for key, _ in held]}, the plan gives {[key for key, _ in expected]}"]
    return [f"cell '{key}' differs from the plan" for (key, text), (_, want) in zip(held, expected) if text != want]


def _new_cell(each: Cell) -> dict:
    import nbformat

    made = nbformat.v4.new_code_cell(each.source)
    made["metadata"][METADATA_KEY] = each.key
    return dict(made)


def write(notebook: dict, rendered: list[Cell] | None = None) -> dict:
    """The notebook with its generated cells set to the rendering: texts replaced, new cells placed after the
    previous generated one, cells the plan no longer has removed. Outputs of changed cells are cleared."""
    rendered = cells() if rendered is None else rendered
    keys = {each.key for each in rendered}
    kept = [c for c in notebook["cells"]
            if METADATA_KEY not in c.get("metadata", {}) or c["metadata"][METADATA_KEY] in keys]
    position = {c["metadata"][METADATA_KEY]: c for c in kept if METADATA_KEY in c.get("metadata", {})}
    previous = None
    for each in rendered:
        existing = position.get(each.key)
        if existing is None:
            existing = _new_cell(each)
            at = kept.index(previous) + 1 if previous is not None else len(kept)
            kept.insert(at, existing)
        elif _text(existing) != each.source:
            existing["source"] = each.source
            existing["outputs"], existing["execution_count"] = [], None
        previous = existing
    return {**notebook, "cells": kept}


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Put workshop.deploy's plan into notebook 06's gcloud cells.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="rewrite the generated cells of both notebooks")
    group.add_argument("--check", action="store_true", help="exit 1 when a notebook differs from the plan")
    args = parser.parse_args(argv)
    from workshop.notebook_track import render

    problems = []
    for path in notebook_paths():
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if args.write:
            path.write_text(render(write(notebook)), encoding="utf-8")
            print(f"wrote {path}")
        else:
            problems += [f"{path}: {problem}" for problem in drift(notebook)]
    for problem in problems:
        print(problem)
    if args.write:
        print("Now regenerate the student versions: python -m workshop.notebook_track")
    elif problems:
        print("Run: python -m workshop.deploy.notebook_cells --write")
    return 1 if problems else 0


# ----------------------------------------------------------------------------- the cell magic
def _flag(namespace: dict, name: str) -> bool:
    return namespace.get(name) is True


class StepFailedInCell(Exception):
    """A cell's command failed: the notebook shows one sentence (no traceback), and "Run all" stops."""

    def _render_traceback_(self) -> list[str]:
        return [f"❌ {self}"]


def wrapped(script: str) -> str:
    """The body, run by bash between reading and saving the state file (the variables of the cells before)."""
    names = " ".join(VARIABLES)
    return "\n".join([
        "set -e",
        f"mkdir -p {WORK_DIR} && touch {STATE_FILE} && chmod 600 {STATE_FILE}",
        f"source {STATE_FILE}",
        "_save_state() {",
        f"  for _name in {names}; do",
        "    if [ -n \"${!_name+x}\" ]; then printf '%s=%q\\n' \"$_name\" \"${!_name}\"; fi",
        f"  done > {STATE_FILE}",
        "}",
        "trap _save_state EXIT",
        script,
    ])


def run_body(script: str, out=None) -> int:
    """Run a cell's bash with the kept variables, streaming its output; raise with a hint when it fails."""
    from workshop.checkpoints import say
    from workshop.deploy.runner import hint

    out = out or sys.stdout
    process = subprocess.Popen(
        ["bash", "-c", wrapped(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        text=True, start_new_session=True,
    )
    lines = []
    assert process.stdout is not None
    try:
        for line in process.stdout:
            lines.append(line)
            print(line, end="", file=out, flush=True)
        code = process.wait()
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGTERM)  # the whole command, curl and gcloud included
        process.wait()
        raise
    if code != 0:
        advice = hint("".join(lines))
        raise StepFailedInCell(say(f"This step failed (exit code {code}). {advice}",
                                   f"Cette étape a échoué (code de sortie {code}). {advice}"))
    return code


def read_state(state_file: str | Path = STATE_FILE) -> dict[str, str]:
    """The variables the cells have kept so far (an empty mapping before the first cell ran)."""
    if not Path(state_file).is_file():
        return {}
    names = " ".join(VARIABLES)
    printer = f'source "$1"; for _name in {names}; do printf "%s=%s\\0" "$_name" "${{!_name}}"; done'
    result = subprocess.run(["bash", "-c", printer, "state", str(state_file)], capture_output=True, text=True,
                            check=True, timeout=30)
    pairs = (item.split("=", 1) for item in result.stdout.split("\0") if item)
    return {name: value for name, value in pairs if value}


def gcloud_step(line: str, cell_text: str, namespace: dict, out=None) -> None:
    """The cell magic's work: run ``cell_text`` with bash when the flags allow, else print it, not run."""
    from workshop.checkpoints import say

    out = out or sys.stdout
    flags = [RUN_FLAG, *line.split()]
    off = [name for name in flags if not _flag(namespace, name)]
    if off:
        flags_on = [f"{name} = True" for name in off]
        print(say(f"not run: set {' and '.join(flags_on)} to run it. The same commands, for a terminal at the "
                  "project's root:",
                  f"non exécuté : mettez {' et '.join(flags_on)} pour l'exécuter. Les mêmes commandes, pour un "
                  "terminal à la racine du projet :"), file=out)
        print(cell_text.strip("\n"), file=out)
        return
    run_body(cell_text, out)


def load_ipython_extension(ipython) -> None:  # noqa: ANN001 - IPython's InteractiveShell
    """``%load_ext workshop.deploy.notebook_cells``: registers ``%%gcloud_step``."""

    def magic(line: str, cell_text: str) -> None:
        gcloud_step(line, cell_text, ipython.user_ns)

    ipython.register_magic_function(magic, magic_kind="cell", magic_name=MAGIC)


if __name__ == "__main__":
    sys.exit(_main())
