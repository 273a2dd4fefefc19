"""Servers a notebook starts "as in a second terminal": the command shown, run in the background, waited for.

The notebooks run ``uvicorn``, ``workshop serve`` and ``streamlit run`` this way, so a cell does not
block while the server runs; the student still reads the exact command a terminal would take.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from workshop.checkpoints import fail
from workshop.services import BackgroundService, start_process


def shown_command(command: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """The command line as typed in a terminal: ``NAME=value`` first, then the command (``$VAR`` left as written)."""
    assignments = [f"{name}={value}" for name, value in (env or {}).items()]
    return " ".join([*assignments, shlex.join(command)])


def start_in_background(
    command: Sequence[str],
    url: str,
    *,
    name: str,
    ready_path: str = "/health",
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    timeout: float = 120.0,
    failure: tuple[str, str] = ("", ""),
) -> BackgroundService:
    """Print ``command``, run it in the background and wait until ``url + ready_path`` answers.

    ``env`` values may name the kernel's variables as a shell would (``{"WORKSHOP_API_KEY": "$API_KEY"}``): the
    command is shown with ``$API_KEY`` and run with its value. The program is looked up first next to the kernel's
    Python (the venv's ``bin``), so it is found where Jupyter runs without the venv activated. A server that does
    not start prints its log and fails with one sentence: ``failure`` (English, French), or a generic one.
    """
    print("$", shown_command(command, env))
    expanded = {key: os.path.expandvars(value) for key, value in (env or {}).items()}
    program = shutil.which(command[0], path=str(Path(sys.executable).parent)) or command[0]
    try:
        return start_process(
            name, [program, *command[1:]], url, health_path=ready_path, env=expanded, log_dir=log_dir, timeout=timeout
        )
    except (RuntimeError, OSError) as error:
        print(error)
        fail(
            failure[0] or f"{name} did not start: read its log above, then run this cell again.",
            failure[1] or f"{name} n'a pas démarré : lisez son journal ci-dessus, puis relancez cette cellule.",
        )
        raise  # not reached: fail() raises
