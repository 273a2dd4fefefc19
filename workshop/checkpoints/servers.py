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
from workshop.services import BackgroundService, ServiceDidNotStart, start_process


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
    Python (the venv's ``bin``), so it is found where Jupyter runs without the venv activated.

    A server that does not start fails with one sentence, which says which of three things happened: the program
    is not installed here; it stopped as it started (its log is printed above the sentence; ``failure``, English
    and French, replaces the generic sentence for this case, the one a student's own code causes); or it ran but
    never answered within ``timeout`` seconds (log printed too).
    """
    print("$", shown_command(command, env))
    expanded = {key: os.path.expandvars(value) for key, value in (env or {}).items()}
    program = shutil.which(command[0], path=str(Path(sys.executable).parent)) or shutil.which(command[0])
    if program is None:
        fail(
            f"'{command[0]}' is not installed where this notebook runs (next to {sys.executable}, or on the PATH): "
            "choose the project's .venv as the notebook's kernel, or install the project into this one "
            "(scripts/setup.sh dev).",
            f"« {command[0]} » n'est pas installé là où tourne ce notebook (à côté de {sys.executable}, ou dans le "
            "PATH) : choisissez le .venv du projet comme noyau du notebook, ou installez-y le projet "
            "(scripts/setup.sh dev).",
        )
    try:
        return start_process(
            name, [program, *command[1:]], url, health_path=ready_path, env=expanded, log_dir=log_dir, timeout=timeout
        )
    except ServiceDidNotStart as error:
        print(error)
        if error.exit_code is None:
            fail(
                f"{name} did not answer at {url}{ready_path} within {timeout:g} s, and was stopped: read its log "
                "above; if it was still starting, run this cell again.",
                f"{name} n'a pas répondu à {url}{ready_path} en {timeout:g} s, et a été arrêté : lisez son journal "
                "ci-dessus ; s'il démarrait encore, relancez cette cellule.",
            )
        fail(
            failure[0] or f"{name} stopped as it started (exit code {error.exit_code}): read its log above, fix what "
            "it says, then run this cell again.",
            failure[1] or f"{name} s'est arrêté dès son démarrage (code de sortie {error.exit_code}) : lisez son "
            "journal ci-dessus, corrigez ce qu'il dit, puis relancez cette cellule.",
        )
        raise  # not reached: fail() raises
    except OSError as error:  # found, but it cannot be run (not executable, a broken interpreter line...)
        fail(
            f"{program} could not be run ({error.strerror or error}): reinstall the project (scripts/setup.sh dev).",
            f"{program} n'a pas pu être lancé ({error.strerror or error}) : réinstallez le projet (scripts/setup.sh dev).",
        )
        raise  # not reached: fail() raises
