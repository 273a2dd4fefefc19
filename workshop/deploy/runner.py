"""Print a deployment plan (dry run), or run it step by step with live output.

Dry run is the default everywhere: a student first reads the exact commands,
then runs them by adding ``--execute`` (or ``execute=True`` in the notebook).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

import requests

from workshop.deploy.gcp import (
    DeployConfig,
    Step,
    deploy_steps,
    leftover_steps,
    resolve_access,
    startup_script_text,
    teardown_steps,
)

# What a failing command's output means, and what to do about it.
HINTS: tuple[tuple[str, str], ...] = (
    ("billing", "Billing is not enabled on this project: link a billing account in the console (Billing)."),
    ("quota", "A quota is exhausted: pick another region/zone or a smaller machine type, or ask for more quota."),
    ("not currently have an active account", "You are not logged in: run `gcloud auth login`."),
    ("permission_denied", "Your account lacks a permission on this project: ask its owner for Editor, or check the project id."),
    ("denied: ", "Docker cannot push: run `gcloud auth configure-docker REGION-docker.pkg.dev` (step 'Let docker log in')."),
    ("already exists", "The resource already exists: run the teardown first, or choose another name."),
    ("was not found", "The resource does not exist (yet): check the names, zone and project id."),
)


class StepFailed(RuntimeError):
    """A step of the plan failed; the message says which, with the end of its output and a hint."""


@dataclass
class DeployResult:
    """Where the deployed back-end answers, and the key it needs."""

    url: str
    api_key: str
    health_seconds: float


def _hint(output: str) -> str:
    lowered = output.lower()
    for needle, advice in HINTS:
        if needle in lowered:
            return advice
    return "Read the output above; the troubleshooting page of the lab guide lists the usual causes."


def print_plan(steps: Sequence[Step], out: TextIO = sys.stdout) -> None:
    """The exact commands, numbered, ready to copy into a terminal."""
    for index, step in enumerate(steps, start=1):
        print(f"# {index}/{len(steps)} {step.title}", file=out)
        print(step.shell(), file=out)


def _run(command: Sequence[str], out: TextIO, echo: bool) -> tuple[int, str]:
    """Run a command, echoing its output live (indented) when ``echo``; return its exit code and output."""
    try:
        process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError:
        tool = command[0]
        advice = (
            "Install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install); the codespace has it."
            if tool == "gcloud" else f"Install {tool}."
        )
        raise StepFailed(f"'{tool}' is not installed. {advice}") from None
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if echo:
            print(f"    {line}", end="", file=out)
    return process.wait(), "".join(lines)


def execute(steps: Sequence[Step], out: TextIO = sys.stdout, total: int | None = None) -> str:
    """Run the steps in order with a progress line each; stop at the first failure. Return the last output.

    ``total``: the number shown after the slash, when more steps follow these (the health wait).
    """
    output = ""
    total = total or len(steps)
    for index, step in enumerate(steps, start=1):
        print(f"[{index}/{total}] {step.title}", file=out, flush=True)
        if step.unless is not None:
            code, _ = _run(step.unless, out, echo=False)
            if code == 0:
                print("    already done", file=out)
                continue
        code, output = _run(step.command, out, echo=True)
        if code != 0:
            raise StepFailed(
                f"Step {index}/{total} '{step.title}' failed (exit code {code}).\n"
                f"Command: {step.shell()}\nHint: {_hint(output)}"
            )
        if step.command[:3] == ("gcloud", "auth", "list") and not output.strip():
            raise StepFailed(f"Step {index}/{total} '{step.title}': no active account. Hint: run `gcloud auth login`.")
    return output


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


def deploy(config: DeployConfig, execute_steps: bool = False, out: TextIO = sys.stdout, timeout: float = 600.0) -> DeployResult | None:
    """Print (dry run) or run the deployment; when run, wait until the VM's API answers."""
    for note in resolve_access(config):
        print(note, file=out)
    config.startup_script.parent.mkdir(parents=True, exist_ok=True)
    config.startup_script.write_text(startup_script_text())
    steps = deploy_steps(config)
    if not execute_steps:
        print(f"Dry run: the {len(steps)} commands below are what --execute runs (start-up script: "
              f"{config.startup_script}).", file=out)
        print_plan(steps, out)
        print(f"# then: wait until http://EXTERNAL_IP:{config.port}/health answers", file=out)
        return None
    external_ip = execute(steps, out, total=len(steps) + 1).strip().splitlines()[-1].strip()
    url = f"http://{external_ip}:{config.port}"
    print(f"[{len(steps) + 1}/{len(steps) + 1}] Wait until the API answers", file=out)
    seconds = wait_for_health(f"{url}/health", timeout=timeout, out=out)
    print(f"\nThe back-end answers at {url} (docs: {url}/docs).", file=out)
    print(f"Point the front-end at it: workshop ui --backend-url {url}   (API key: the one above)", file=out)
    assert config.api_key is not None
    return DeployResult(url=url, api_key=config.api_key, health_seconds=seconds)


def teardown(
    config: DeployConfig, execute_steps: bool = False, delete_image: bool = False, delete_repository: bool = False,
    out: TextIO = sys.stdout,
) -> None:
    """Print (dry run) or run the clean-up, then list what may still cost money."""
    steps = teardown_steps(config, delete_image=delete_image, delete_repository=delete_repository)
    checks = leftover_steps(config)
    if not execute_steps:
        print(f"Dry run: the {len(steps)} commands below are what --execute runs, then these checks.", file=out)
        print_plan([*steps, *checks], out)
        return
    execute(steps, out)
    print("\nWhat is left in the project (each of these may still cost money):", file=out)
    execute(checks, out)
