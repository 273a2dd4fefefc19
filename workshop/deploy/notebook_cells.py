"""Notebook 06's shell cells, generated from :mod:`workshop.deploy`'s plan, and the cell magic that runs them.

The notebook deploys with the very commands of ``workshop gcp deploy``, one step per cell, each written as a
person writes it (one flag a line), so that a student reads each gcloud command, runs it, or types it into a
terminal. The cells are not written by hand: :func:`cells` renders the plan (:func:`workshop.deploy.gcp.deploy_steps`,
:func:`~workshop.deploy.gcp.teardown_steps`) for a placeholder project and student, then puts shell variables
where the placeholders were (``${PROJECT_ID}``, ``${STUDENT}``, ``${REGION}``, ``${ZONE}``, ``${PORT}``), with
comments in the notebook's language: one source of truth. After a change of the plan::

    python -m workshop.deploy.notebook_cells --write   # puts the rendering back into both notebooks
    python -m workshop.deploy.notebook_cells --check   # exit 1 when a notebook and the plan differ

The cell magic ``%%gcloud_step`` (``%load_ext workshop.deploy.notebook_cells``) takes a body of plain bash.
While ``RUN_IN_CLOUD`` is not ``True`` in the notebook, it runs nothing: it prints "not run" and the commands.
When it is, a body that is one of the plan's steps runs through :func:`workshop.deploy.runner.run_step`, which
makes it safe to run again (a resource already there: "already exists: nothing to do"; a new image or a changed
IP: the plan's update); any other body runs with bash. Each cell is a new process, so the plan's shell variables
(the project, the digest, the VM's IP, the API key...) are kept between cells in a state file,
``.workshop-deploy/notebook-state.sh`` (mode 600, ignored by git); the API key is never printed.
``%%gcloud_step I_REALLY_WANT_TO_DELETE`` also needs that second flag: "Run all" never deletes what it created.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from workshop.deploy.gcp import (
    API_KEY,
    EXTERNAL_IP,
    IMAGE_DIGEST,
    SERVICE_ACCOUNT,
    Check,
    DeployConfig,
    Step,
    Update,
    command_text,
    deploy_steps,
    firewall_step as plan_firewall_step,
    shell_words,
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
#: The shell variables kept from one cell to the next (each %%gcloud_step cell is a new process).
VARIABLES = (
    "PROJECT_ID", "STUDENT", "REGION", "ZONE", "PORT", "IMAGE", SERVICE_ACCOUNT, IMAGE_DIGEST, API_KEY,
    "SOURCE_RANGE", EXTERNAL_IP, API_URL,
)

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


def _say(language: str, en: str, fr: str) -> str:
    return fr if language == "fr" else en


def defaults() -> dict[str, str]:
    """The values the settings cell starts from: DeployConfig's own defaults (one source with ``workshop gcp``)."""
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
    text = text.replace(config.image_path, var("IMAGE"))  # your image's registry name, set once in the first cell
    assert config.zone is not None
    for value, name in ((config.zone, "ZONE"), (_REGION, "REGION"), (_PROJECT, "PROJECT_ID"),
                        (_STUDENT, "STUDENT"), (str(_PORT), "PORT")):
        text = text.replace(value, var(name))
    return text


def shell_step(step: Step, config: DeployConfig) -> Step:
    """The plan's step with shell variables in place of the placeholder project, student, region, zone, port."""
    def words(command: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_with_variables(word, config) for word in command)

    done = step.done and Check(words(step.done.command),
                               step.done.expect and _with_variables(step.done.expect, config))
    update = step.update and Update(words(step.update.read), _with_variables(step.update.want, config),
                                    tuple(words(command) for command in step.update.commands), step.update.what)
    return dataclasses.replace(step, command=words(step.command), done=done, update=update)


def plan_steps() -> list[Step]:
    """The deployment's steps, as the notebook runs them (shell variables in place of your values)."""
    config = _placeholder_config()
    return [shell_step(step, config) for step in deploy_steps(config)]


def teardown_plan_steps() -> list[Step]:
    """The clean-up's steps (the VM, the firewall rule, the image), as the notebook runs them."""
    config = _placeholder_config()
    return [shell_step(step, config) for step in teardown_steps(config, delete_image=True)]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:48].strip("-")


def _gcloud_cell(key: str, lines: list[str], guard: str = "") -> Cell:
    header = f"%%{MAGIC} {guard}".rstrip()
    return Cell(key, "\n".join([header, *lines]))


def _prerequisites_cell(language: str) -> Cell:
    return _gcloud_cell("check-the-prerequisites", [
        _say(language, "# Logged in? A project? Billing? The APIs? One line each, and what to do when it fails",
             "# Connecté ? Un projet ? La facturation ? Les API ? Une ligne par point, et quoi faire en cas d'échec"),
        "workshop gcp preflight",
    ])


def _settings_cell(language: str) -> Cell:
    values = defaults()
    return _gcloud_cell("your-project", [
        _say(language, "# Your project, your suffix (workshop gcp whoami says where it comes from), your image's name",
             "# Votre projet, votre suffixe (workshop gcp whoami dit d'où il vient), le nom de votre image"),
        "PROJECT_ID=$(gcloud config get-value project)",
        "STUDENT=$(workshop gcp whoami --suffix)",
        f"REGION={values['REGION']}",
        "ZONE=${REGION}-b",
        f"PORT={values['PORT']}",
        "IMAGE=" + _image_in_the_registry(),
        'echo "PROJECT_ID=${PROJECT_ID} STUDENT=${STUDENT} IMAGE=${IMAGE}"',
    ])


def _image_in_the_registry() -> str:
    """Your image's name in Artifact Registry, in shell variables: ``${REGION}-docker.pkg.dev/${PROJECT_ID}/...``."""
    config = _placeholder_config()
    path = config.image_path
    for value, name in ((_REGION, "REGION"), (_PROJECT, "PROJECT_ID"), (_STUDENT, "STUDENT")):
        path = path.replace(value, var(name))
    return path


def _api_key_cell(language: str) -> Cell:
    return _gcloud_cell("make-the-api-key", [
        _say(language, f"# Your API key: made once (32 random characters), kept in {WORK_DIR}/api-key, readable by you "
                       "only", f"# Votre clé d'API : créée une fois (32 caractères au hasard), gardée dans "
                               f"{WORK_DIR}/api-key, lisible par vous seul"),
        "workshop gcp api-key",
    ])


def _source_range_cell(language: str) -> Cell:
    return _gcloud_cell("your-public-ip", [
        _say(language, "# Who may connect: this codespace's public IP (and your teacher's, when WORKSHOP_TEACHER_IP "
                       "is set)", "# Qui peut se connecter : l'IP publique de ce codespace (et celle de l'enseignant, "
                                  "si WORKSHOP_TEACHER_IP est défini)"),
        "SOURCE_RANGE=$(workshop gcp whoami --source-range)",
    ])


def firewall_step() -> Step:
    """The plan's step that creates the firewall rule (the exercise's model answer)."""
    return shell_step(plan_firewall_step(_placeholder_config()), _placeholder_config())


def _firewall_exercise() -> Cell:
    """The firewall rule's command, one flag a line, ``--source-ranges`` left for the student to write."""
    from workshop.notebook_track import BEGIN, END

    lines = command_text(firewall_step().command, width=0).split("\n")
    at = next(index for index, line in enumerate(lines) if "--source-ranges=" in line)
    lines[at:at + 1] = [f"    {BEGIN}", lines[at].removesuffix(" \\"), f"    {END}"]
    return Cell("firewall-exercise", 'my_firewall_rule = r"""\n' + "\n".join(lines) + '\n"""')


def _health_cell(language: str) -> Cell:
    return _gcloud_cell("wait-until-the-api-answers", [
        _say(language, "# Wait until the VM's API answers: the VM boots, its start-up script pulls the image (a few "
                       "minutes)", "# Attendre que l'API de la VM réponde : la VM démarre, son script de démarrage "
                               "télécharge l'image (quelques minutes)"),
        f"{API_URL}=http://{var(EXTERNAL_IP)}:{var('PORT')}",
        f"curl --no-progress-meter --fail --retry 60 --retry-delay 10 --retry-all-errors {var(API_URL)}/health",
    ])


#: The request without the key; the prediction's checkpoint runs this very text against a local back-end.
CURL_WITHOUT_KEY = f"curl -s -w '\\nHTTP %{{http_code}}\\n' {var(API_URL)}/models"
#: The same request with the key, in the header the back-end reads.
CURL_WITH_KEY = f"curl -s -w '\\nHTTP %{{http_code}}\\n' -H \"X-API-Key: {var(API_KEY)}\" {var(API_URL)}/models"
#: The front-end's container (notebook 05's image), pointed at the VM.
FRONTEND_CONTAINER = "workshop-frontend-vm"


def _payoff_cells(language: str) -> list[Cell]:
    """The original lab's step 7: a prediction served by the VM, and the front-end pointed at it."""
    return [
        _gcloud_cell("curl-without-the-key", [_say(language, "# The API without the key", "# L'API sans la clé"),
                                              CURL_WITHOUT_KEY]),
        _gcloud_cell("curl-with-the-key", [
            _say(language, "# The same request with the key (sent, never printed)",
                 "# La même requête avec la clé (envoyée, jamais affichée)"), CURL_WITH_KEY]),
        _gcloud_cell("a-prediction-served-by-the-vm", [
            _say(language, "# A prediction served by the VM: a sample picture, sent as the front-end sends it",
                 "# Une prédiction servie par la VM : une image d'exemple, envoyée comme le front-end l'envoie"),
            "workshop samples samples --shapes 1",
            f'curl -s -H "X-API-Key: {var(API_KEY)}" -F file=@samples/cat.png {var(API_URL)}/predict/upload',
        ]),
        _gcloud_cell("the-front-end-on-the-vm", [
            _say(language, "# The front-end's container (notebook 05), pointed at the VM instead of localhost",
                 "# Le conteneur du front-end (notebook 05), branché sur la VM au lieu de localhost"),
            command_text(("docker", "run", "--detach", f"--name={FRONTEND_CONTAINER}", "--publish=8501:8501",
                          f"--env=WORKSHOP_BACKEND_URL={var(API_URL)}", f"--env=WORKSHOP_API_KEY={var(API_KEY)}",
                          "deploy-ml-workshop/frontend:latest"), width=0),
        ]),
    ]


def _teardown_cells(language: str) -> list[Cell]:
    stop = _gcloud_cell("stop-the-front-end", [
        _say(language, "# Stop the front-end's container", "# Arrêter le conteneur du front-end"),
        f"docker rm --force {FRONTEND_CONTAINER}",
    ])
    steps = teardown_plan_steps()
    deletions = [
        _gcloud_cell(_slug(step.title.en), [f"# {index}/{len(steps)} {_say(language, step.title.en, step.title.fr)}",
                                            step.shell()], guard=DELETE_FLAG)
        for index, step in enumerate(steps, start=1)
    ]
    return [stop, *deletions]


def cells(language: str = "en") -> list[Cell]:
    """Every generated cell of notebook 06, in order: the plan, one step a cell, with the cells around it."""
    steps = plan_steps()
    firewall = firewall_step()
    rendered = [_prerequisites_cell(language), _settings_cell(language)]
    for index, step in enumerate(steps, start=1):
        if step.capture == API_KEY:
            rendered.append(_api_key_cell(language))
        if step == firewall:
            rendered += [_source_range_cell(language), _firewall_exercise()]
        title = _say(language, step.title.en, step.title.fr)
        rendered.append(_gcloud_cell(_slug(step.title.en), [f"# {index}/{len(steps)} {title}", step.shell()]))
    rendered += [_health_cell(language), *_payoff_cells(language), *_teardown_cells(language)]
    return rendered


def cell(key: str, language: str = "en") -> Cell:
    """One generated cell, by name."""
    return next(each for each in cells(language) if each.key == key)


def body(key: str, language: str = "en") -> str:
    """A generated cell's text without its magic line: the shell commands as a terminal takes them."""
    return cell(key, language).source.split("\n", 1)[1]


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


def drift(notebook: dict, rendered: list[Cell]) -> list[str]:
    """How a notebook's generated cells differ from the plan's rendering, as sentences (none: up to date)."""
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


def write(notebook: dict, rendered: list[Cell]) -> dict:
    """The notebook with its generated cells set to the rendering: texts replaced, new cells placed after the
    previous generated one, cells the plan no longer has removed. Outputs of changed cells are cleared."""
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
        rendered = cells(path.parent.name)
        if args.write:
            path.write_text(render(write(notebook, rendered)), encoding="utf-8")
            print(f"wrote {path}")
        else:
            problems += [f"{path}: {problem}" for problem in drift(notebook, rendered)]
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


_CAPTURE = re.compile(r"(\w+)=\$\((.*)\)", re.DOTALL)


def step_for(text: str) -> Step | None:
    """The plan's step a cell's body is (comments and line breaks aside), or None for any other body."""
    lines = [line for line in text.strip().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ").strip()
    found = _CAPTURE.fullmatch(joined)
    capture, command = (found.group(1), found.group(2)) if found else (None, joined)
    try:
        words = tuple(shell_words(command))
    except ValueError:
        return None
    for step in (*plan_steps(), *teardown_plan_steps()):
        if step.command == words and step.capture == capture:
            return step
    return None


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
        text=True, start_new_session=True, env={**os.environ, "CLOUDSDK_CORE_DISABLE_COLOR": "true"},
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
        if any(line.startswith("✗") for line in lines):  # workshop gcp preflight: each line says what to do
            advice = say("Fix the lines marked ✗ above, then run this cell again.",
                         "Corrigez les lignes marquées ✗ ci-dessus, puis relancez cette cellule.")
        else:
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


def save_state(values: dict[str, str], state_file: str | Path = STATE_FILE) -> None:
    """Add ``values`` to the kept variables (bash syntax, mode 600)."""
    path = Path(state_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = {**read_state(path), **values}
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("".join(f"{name}={shlex.quote(kept[name])}\n" for name in VARIABLES if name in kept))


def run_plan_step(step: Step, out=None) -> None:
    """Run one of the plan's steps with the kept variables (its re-run checks included); keep what it captures."""
    from workshop.deploy.runner import StepFailed, run_step

    out = out or sys.stdout
    try:
        captured = run_step(step, read_state(), out)
    except StepFailed as error:
        raise StepFailedInCell(str(error)) from None
    if captured:
        save_state(captured)


def gcloud_step(line: str, cell_text: str, namespace: dict, out=None) -> None:
    """The cell magic's work: run ``cell_text`` when the flags allow (a plan step through the runner, anything else
    with bash), else print it, not run."""
    from workshop.checkpoints import say

    out = out or sys.stdout
    flags = [RUN_FLAG, *line.split()]
    off = [name for name in flags if not _flag(namespace, name)]
    if off:
        flags_on = [f"{name} = True" for name in off]
        print(say(f"not run: set {' and '.join(flags_on)} to run it. The same commands, for a terminal at the "
                  "project's root:",
                  f"non exécuté : mettez {' et '.join(flags_on)} pour l'exécuter. À taper dans un terminal, à "
                  "la racine du projet :"), file=out)
        print(cell_text.strip("\n"), file=out)
        return
    step = step_for(cell_text)
    if step is None:
        run_body(cell_text, out)
    else:
        run_plan_step(step, out)


def load_ipython_extension(ipython) -> None:  # noqa: ANN001 - IPython's InteractiveShell
    """``%load_ext workshop.deploy.notebook_cells``: registers ``%%gcloud_step``."""

    def magic(line: str, cell_text: str) -> None:
        gcloud_step(line, cell_text, ipython.user_ns)

    ipython.register_magic_function(magic, magic_kind="cell", magic_name=MAGIC)


if __name__ == "__main__":
    sys.exit(_main())
