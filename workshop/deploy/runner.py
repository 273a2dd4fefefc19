"""Print a deployment plan (dry run), or run it step by step with live output.

Dry run is the default everywhere: a student first reads the exact commands,
then runs them by adding ``--execute`` (or ``execute=True`` in the notebook).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

import requests

from workshop.deploy.gcp import (
    EXTERNAL_IP,
    IMAGE_DIGEST,
    PROXY_PORT,
    SERVICE_URL,
    DeployConfig,
    Step,
    check_steps,
    cloud_run_deploy_steps,
    cloud_run_leftover_checks,
    cloud_run_teardown_steps,
    deploy_steps,
    key_on_vm_step,
    leftover_checks,
    proxy_command,
    resolve_access,
    resolve_api_key,
    startup_script_text,
    teardown_steps,
    var,
)

# What a failing command's output means, and what to do about it: one sentence each. The first match wins,
# so the specific causes come before the general ones (an organisation policy is also a refusal).
HINTS: tuple[tuple[str, str], ...] = (
    ("constraints/", "An organisation policy ({constraint}) forbids this in your project: ask your organisation's "
                     "administrator for an exception on this project, or use a project outside the organisation."),
    ("organization policy", "An organisation policy forbids this in your project: ask your organisation's "
                            "administrator for an exception on this project, or use a project outside the "
                            "organisation."),
    ("concurrent policy changes", "Someone changed the project's permissions at the same moment (a classmate?): "
                                  "run the same command again."),
    ("billing", "Billing is not enabled on this project: link a billing account in the console (Billing)."),
    # gcloud run deploy, when the Cloud Run API is off (GoogleCloudPlatform/community#1339).
    ("has not been used in project", "The API named above is not enabled in this project: run the plan's "
                                     "'Enable the APIs' step (gcloud services enable), wait a minute and run "
                                     "again."),
    ("quota", "A quota is exhausted (named above): pick another region/zone, a smaller machine type or fewer Cloud "
              "Run CPUs and instances, or ask the project's owner for more quota."),
    # gcloud run deploy runs the service as the project's compute service account (googlecodelabs/feedback#751).
    ("iam.serviceaccounts.actas", "Your account may not deploy as the service's identity: ask the project's owner "
                                  "for the Service Account User role (roles/iam.serviceAccountUser) on the "
                                  "default compute service account."),
    # The revision did not start: it failed to listen on --port, or /ready never answered 200 in time.
    ("container failed", "The container did not become ready: open the logs URL above, check that --image is the "
                         "lean back-end image and that it starts locally (docker run -p 8000:8000 IMAGE)."),
    ("not currently have an active account", "You are not logged in: run `gcloud auth login`."),
    ("unauthenticated request", "Docker cannot push: run `gcloud auth configure-docker REGION-docker.pkg.dev` "
                                "(step 'Let docker log in')."),
    ("permission", "Your account lacks the permission named above on this project: ask the project's owner to grant "
                   "it (the lab guide lists the roles) or to run this step for you, and check the project id."),
    ("already exists", "The resource already exists: run the teardown first, or choose another name."),
    ("not found", "The resource does not exist (yet): check the names, zone and project id."),
    ("not_found", "The resource does not exist (yet): check the names, zone and project id."),
    ("could not be found", "The resource does not exist (yet): check the names, region and project id."),
    ("cannot find", "The resource does not exist (yet): check the names, region and project id."),
)

#: How gcloud says that a resource does not exist: Compute Engine's "was not found", Artifact Registry's
#: NOT_FOUND, Cloud Run's "Cannot find service [x]" (describe) and "Service [x] could not be found." (delete).
_MISSING = ("not found", "not_found", "could not be found", "cannot find")

#: Captured values that may be shown as they are read (the API key, for one, is never shown).
_SHOWN = (IMAGE_DIGEST, EXTERNAL_IP, SERVICE_URL)


class StepFailed(RuntimeError):
    """A step of the plan failed; the message says which, with the end of its output and a hint."""


@dataclass
class DeployResult:
    """Where the deployed back-end answers, and the key it needs."""

    url: str
    api_key: str
    health_seconds: float


@dataclass
class CloudRunResult:
    """The deployed service: its URL (IAM-protected), the key it needs, how to reach it from here."""

    url: str
    api_key: str
    proxy: str


def hint(output: str) -> str:
    """One sentence saying what to do about a failed command's output."""
    lowered = output.lower()
    for needle, advice in HINTS:
        if needle in lowered:
            constraint = re.search(r"constraints/[\w.]+", output)
            return advice.format(constraint=constraint.group(0) if constraint else "named above")
    return "Read the output above; the troubleshooting page of the lab guide lists the usual causes."


def is_missing(output: str) -> bool:
    """Whether gcloud answered that the resource does not exist (for a deletion: already done)."""
    lowered = output.lower()
    return "billing" not in lowered and any(words in lowered for words in _MISSING)


def print_plan(steps: Sequence[Step], out: TextIO = sys.stdout) -> None:
    """The exact commands, numbered, ready to paste into a terminal (bash), from any directory."""
    for index, step in enumerate(steps, start=1):
        print(f"# {index}/{len(steps)} {step.title}", file=out)
        print(step.shell(), file=out)


def _not_installed(tool: str) -> StepFailed:
    advice = (
        "Install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install); the codespace has it."
        if tool == "gcloud" else f"Install {tool}."
    )
    return StepFailed(f"'{tool}' is not installed. {advice}")


def _run(command: Sequence[str], out: TextIO, echo: bool) -> tuple[int, str]:
    """Run a command, echoing its output live (indented) when ``echo``; return its exit code and output."""
    try:
        process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError:
        raise _not_installed(command[0]) from None
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if echo:
            print(f"    {line}", end="", file=out)
    return process.wait(), "".join(lines)


def _read(command: Sequence[str]) -> tuple[int, str, str]:
    """Run a command that answers a value: its exit code, standard output and standard error, kept apart."""
    try:
        result = subprocess.run(list(command), capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        raise _not_installed(command[0]) from None
    return result.returncode, result.stdout, result.stderr


def _fill(text: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise StepFailed(f"No value for {match.group(0)}: the step that reads it did not run.")
        return values[match.group(1)]

    return re.sub(r"\$\{(\w+)\}", value, text)


def _filled(command: Sequence[str], values: dict[str, str]) -> tuple[str, ...]:
    return tuple(_fill(arg, values) for arg in command)


def _already_done(step: Step, values: dict[str, str], out: TextIO) -> bool:
    assert step.unless is not None
    if step.expect is None:
        code, _ = _run(_filled(step.unless, values), out, echo=False)
        return code == 0
    code, stdout, _ = _read(_filled(step.unless, values))
    return code == 0 and _fill(step.expect, values) in (line.strip() for line in stdout.splitlines())


def _failed(index: int, total: int, step: Step, code: int, output: str) -> StepFailed:
    return StepFailed(
        f"Step {index}/{total} '{step.title}' failed (exit code {code}).\n"
        f"Command: {step.shell()}\nHint: {hint(output)}"
    )


def execute(
    steps: Sequence[Step], out: TextIO = sys.stdout, total: int | None = None, start: int = 1,
    values: dict[str, str] | None = None,
) -> dict[str, str]:
    """Run the steps in order with a progress line each; stop at the first failure. Return the captured values.

    ``total``/``start``: the numbers shown, when these steps are part of a longer plan.
    ``values``: values captured by earlier steps (``${NAME}`` in the commands).
    """
    values = dict(values or {})
    total = total or len(steps)
    for index, step in enumerate(steps, start=start):
        print(f"[{index}/{total}] {step.title}", file=out, flush=True)
        if step.unless is not None and _already_done(step, values, out):
            print("    already done" if step.expect is None else "    already up to date", file=out)
            continue
        command = _filled(step.command, values)
        if step.capture:
            code, stdout, stderr = _read(command)
            output = stderr + stdout
            for line in stderr.splitlines():
                print(f"    {line}", file=out)
        else:
            code, output = _run(command, out, echo=True)
        if code != 0:
            if step.missing_ok and is_missing(output):
                print("    already gone", file=out)
                continue
            raise _failed(index, total, step, code, output)
        if step.capture:
            # The value is gcloud's standard output alone: warnings go to standard error.
            value = stdout.strip()
            if not value:
                raise StepFailed(f"Step {index}/{total} '{step.title}' printed nothing. Hint: {hint(stderr)}")
            values[step.capture] = value
            print(f"    {step.capture}={value}" if step.capture in _SHOWN else f"    {step.capture} read", file=out)
        if step.then:
            code, output = _run(_filled(step.then, values), out, echo=True)
            if code != 0:
                raise _failed(index, total, step, code, output)
        if step.command[:3] == ("gcloud", "auth", "list") and not output.strip():
            raise StepFailed(f"Step {index}/{total} '{step.title}': no active account. Hint: run `gcloud auth login`.")
    return values


def wait_for_health(
    url: str,
    timeout: float = 600.0,
    interval: float = 5.0,
    out: TextIO = sys.stdout,
    clock: Callable[[], float] = time.monotonic,
) -> float:
    """Poll ``url`` until it answers 200, printing progress; return the seconds it took."""
    started = clock()
    while True:
        elapsed = clock() - started
        try:
            if requests.get(url, timeout=5).status_code == 200:
                print(f"    {url} answered after {elapsed:.0f} s", file=out)
                return elapsed
            state = "not ready"
        except requests.RequestException:
            state = "no answer yet"
        if elapsed > timeout:
            raise StepFailed(
                f"{url} did not answer within {timeout:.0f} s. Hint: the VM may still be pulling the image; check "
                "its serial output (gcloud compute instances get-serial-port-output) and the firewall rule."
            )
        print(f"    waiting for {url}: {state} ({elapsed:.0f} s)", file=out, flush=True)
        time.sleep(interval)


_NO_STUDENT_NOTE = (
    "No student name (no gcloud account found): names carry no suffix; in a project shared by a class, "
    "pass --student NAME."
)


def _commands_below(steps: Sequence[Step]) -> str:
    """The dry run's subject: "the command below is" for one step, "the 12 commands below are" for twelve."""
    return "the command below is" if len(steps) == 1 else f"the {len(steps)} commands below are"


def _print_dry_run(notes: Sequence[str], steps: Sequence[Step], closing: Sequence[str], out: TextIO) -> None:
    """The plan as a bash script: the notes and closing lines are comments, so the whole output can be pasted."""
    for note in notes:
        print(f"# {note}", file=out)
    print(f"# Dry run: {_commands_below(steps)} what --execute runs; pasted into a terminal "
          "(bash), they do the same from any directory.", file=out)
    print_plan(steps, out)
    for line in closing:
        print(f"# {line}", file=out)


def _class_notes(config: DeployConfig) -> list[str]:
    notes = []
    if config.student:
        notes.append(f"Student '{config.student}': your VM is {config.vm_name}, your firewall rule "
                     f"{config.firewall_rule}, your image {config.image_name}.")
    else:
        notes.append(_NO_STUDENT_NOTE)
    if config.max_run_duration:
        notes.append(f"Cost guard: the VM deletes itself {config.max_run_duration} after it starts "
                     "(--max-run-duration); deploy again for a new one.")
    return notes


def deploy(
    config: DeployConfig, execute_steps: bool = False, out: TextIO = sys.stdout, timeout: float = 600.0
) -> DeployResult | None:
    """Print (dry run) or run the deployment; when run, wait until the VM's API answers.

    A re-run keeps one working key: the VM's own, unless a new one is given (then the VM gets it); a new
    image reaches the VM by its digest; the firewall rule follows this machine's IP.
    """
    config.work_dir.mkdir(parents=True, exist_ok=True)
    config.startup_script.write_text(startup_script_text())
    if not execute_steps:
        _print_dry_run(
            [*_class_notes(config), *resolve_access(config)], deploy_steps(config),
            [f"then, within a few minutes: curl http://{var(EXTERNAL_IP)}:{config.port}/health"], out,
        )
        return None
    for note in _class_notes(config):
        print(note, file=out)
    checks = check_steps(config)
    total = len(deploy_steps(config)) + 1
    values = execute(checks, out, total=total)
    # The key already on the VM, if it exists: reading it fails when there is no VM, which is fine.
    code, stdout, _ = _read(_filled(key_on_vm_step(config).command, values))
    for note in resolve_access(config, key_on_vm=stdout.strip() if code == 0 and stdout.strip() else None):
        print(note, file=out)
    values = execute(deploy_steps(config)[len(checks):], out, total=total, start=len(checks) + 1, values=values)
    url = f"http://{values[EXTERNAL_IP]}:{config.port}"
    print(f"[{total}/{total}] Wait until the API answers", file=out)
    seconds = wait_for_health(f"{url}/health", timeout=timeout, out=out)
    print(f"\nThe back-end answers at {url} (docs: {url}/docs).", file=out)
    print(f"Point the front-end at it: WORKSHOP_API_KEY=$(cat {config.api_key_file}) workshop ui --backend-url {url}",
          file=out)
    assert config.api_key is not None
    return DeployResult(url=url, api_key=config.api_key, health_seconds=seconds)


def teardown(
    config: DeployConfig, execute_steps: bool = False, delete_image: bool = False, delete_repository: bool = False,
    out: TextIO = sys.stdout, target: str = "vm",
) -> list[str]:
    """Print (dry run) or run the clean-up to the end, then list what is left. Return what is left.

    ``target``: ``vm`` (the VM, its disk and firewall rule) or ``cloud-run`` (the service).

    Every deletion runs, whatever happened to the one before: a resource already gone counts as done, a
    failure is reported and the others still go. What is left counts only what this teardown was asked to
    delete (the shared repository, for one, is listed but not counted unless ``delete_repository``).
    """
    plan, listing = (cloud_run_teardown_steps, cloud_run_leftover_checks) if target == "cloud-run" else (
        teardown_steps, leftover_checks)
    steps = plan(config, delete_image=delete_image, delete_repository=delete_repository)
    checks = listing(config, delete_image=delete_image, delete_repository=delete_repository)
    if not execute_steps:
        print(f"# Dry run: {_commands_below(steps)} what --execute runs, then these checks "
              "(each prints what is left, one name a line).", file=out)
        print_plan([*steps, *(check.step for check in checks)], out)
        return []
    failures = []
    for index, step in enumerate(steps, start=1):
        try:
            execute([step], out, total=len(steps), start=index)
        except StepFailed as error:
            failures.append(str(error))
            print(f"    FAILED, going on. {error}", file=out)
    print("\nWhat is left in the project (each may still cost money):", file=out)
    left = []
    for check in checks:
        code, stdout, stderr = _read(check.step.command)
        if code != 0 and not is_missing(stderr + stdout):
            names = [f"unknown ({hint(stderr + stdout)})"]
        else:
            names = [line.strip() for line in stdout.splitlines() if line.strip()] if code == 0 else []
        kept = "" if check.counts or not names else " (kept: you did not ask to delete it)"
        print(f"  {check.kind}: {', '.join(names) if names else 'none'}{kept}", file=out)
        if check.counts:
            left += [f"{check.kind}: {name}" for name in names]
    if left:
        print(f"\nStill there ({len(left)}): run the teardown again, or delete them in the console.", file=out)
    else:
        print("\nNothing that you asked to delete is left.", file=out)
    return left


def _cloud_run_closing(config: DeployConfig) -> list[str]:
    key = f"$(cat {shlex.quote(str(config.api_key_file))})"
    local = f"http://localhost:{PROXY_PORT}"
    return [
        "The service has no public door: Google checks each caller's identity (IAM) before a request reaches it.",
        f"Reach it through gcloud, which signs your requests (leave it running): {proxy_command(config)}",
        f"then, in another terminal: curl {local}/health",
        f'and with the key: curl -H "X-API-Key: {key}" {local}/models',
        f"Point the front-end at it: WORKSHOP_API_KEY={key} workshop ui --backend-url {local}",
    ]


def _cloud_run_notes(config: DeployConfig) -> list[str]:
    if config.student:
        notes = [f"Student '{config.student}': your Cloud Run service is {config.service_name}, your image "
                 f"{config.image_name}."]
    else:
        notes = [_NO_STUDENT_NOTE]
    notes.append(f"Cost guard: at most {config.max_instances} instances (--max-instances), none when idle "
                 f"(--min-instances 0: nothing billed then; the first request after a pause waits for a cold start).")
    notes.append(f"Each instance takes {config.concurrency} requests at once, the server's own queue "
                 "(WORKSHOP_MAX_PENDING_PREDICTIONS); more requests start another instance.")
    return notes


def deploy_cloud_run(
    config: DeployConfig, execute_steps: bool = False, out: TextIO = sys.stdout
) -> CloudRunResult | None:
    """Print (dry run) or run the Cloud Run deployment; ``gcloud run deploy`` itself waits for the start-up probe.

    A re-run changes nothing when the service already runs the same image digest with the same settings
    (a label keeps their fingerprint); a new image or setting makes a new revision.
    """
    config.work_dir.mkdir(parents=True, exist_ok=True)
    notes = [*_cloud_run_notes(config), *resolve_api_key(config)]
    steps = cloud_run_deploy_steps(config)
    if not execute_steps:
        _print_dry_run(notes, steps, _cloud_run_closing(config), out)
        return None
    for note in notes:
        print(note, file=out)
    values = execute(steps, out)
    print(f"\nThe back-end runs at {values[SERVICE_URL]}.", file=out)
    for line in _cloud_run_closing(config):
        print(line, file=out)
    assert config.api_key is not None
    return CloudRunResult(url=values[SERVICE_URL], api_key=config.api_key, proxy=proxy_command(config))
