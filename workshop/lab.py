"""Small helpers for the notebooks: which model to use, links that work in a codespace, timing.

Each notebook imports what it needs from here and from the rest of the
package; the cells themselves hold no logic worth testing on its own.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from workshop.checkpoints import LANGUAGE_VARIABLE, language, say
from workshop.links import public_url
from workshop.registry import ModelRegistry
from workshop.samples import photo, shapes_sample
from workshop.settings import BUNDLED_MODEL, Settings
from workshop.yolo_env import network_available


def project_root(start: Path | None = None) -> Path:
    """The project's folder (where ``docker-compose.yml`` is): the first such folder above ``start`` (the
    working directory), else the one this package was installed from."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "docker-compose.yml").is_file() and (folder / "workshop").is_dir():
            return folder
    return Path(__file__).resolve().parents[1]


def go_to_project_root() -> Path:
    """Make the project's folder the working directory, as a terminal in the codespace starts.

    The notebooks' shell commands (``docker build -f backend/Dockerfile .``...) are written as a student
    types them in a terminal at the project's root. The language of the checkpoints' messages is taken
    from the notebook's folder (``fr`` or ``en``) first, since the working directory changes here.
    """
    os.environ.setdefault(LANGUAGE_VARIABLE, language())
    # The shell cells run the venv's commands (uvicorn, workshop, streamlit) even when Jupyter was
    # started without activating the venv (scripts/test.sh runs .venv/bin/python -m pytest).
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    root = project_root()
    os.chdir(root)
    print(say(f"Working directory: the project's root, {root.name}/",
              f"Répertoire de travail : la racine du projet, {root.name}/"))
    return root


def fast_mode() -> bool:
    """True when ``WORKSHOP_NOTEBOOK_FAST=1``: CI runs the notebooks with tiny workloads."""
    return os.environ.get("WORKSHOP_NOTEBOOK_FAST", "").lower() in {"1", "true", "yes"}


def choose_model(registry: ModelRegistry | None = None) -> str:
    """The model the notebooks use, said out loud: the public default online, the bundled one offline."""
    registry = registry or ModelRegistry(Settings())
    name = registry.default_name
    if name != BUNDLED_MODEL:
        print(say(f"Using the public model '{name}': 80 COCO classes (people, cats, cups...).",
                  f"Modèle public '{name}' : 80 classes COCO (personnes, chats, tasses...)."))
    else:
        if network_available():
            reason = say("online, but the public weights are not cached",
                         "en ligne, mais les poids publics ne sont pas en cache")
        else:
            reason = say("offline", "hors ligne")
        print(say(f"Using the bundled model '{name}' ({reason}): it finds circles, squares and triangles.",
                  f"Modèle embarqué '{name}' ({reason}) : il trouve des cercles, des carrés et des triangles."))
    return name


def sample_image(model: str, seed: int = 0) -> Image.Image:
    """A picture the model knows: generated shapes for the bundled model, a cat photo for the others."""
    return shapes_sample(seed=seed).image if model == BUNDLED_MODEL else photo("cat")


def link(port: int, path: str = "", label: str = "Open") -> None:
    """Print a link to a local port, as the student's browser reaches it (codespace or laptop).

    Printed, not returned: a cell that ends with ``link(...)`` shows the link once.
    """
    print(f"{label}: {public_url(port, path)}")


def time_calls(function: Callable[[], object], runs: int) -> list[float]:
    """Seconds taken by each of ``runs`` calls of ``function``."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return seconds


def describe_timings(seconds: list[float]) -> str:
    """``first call 812 ms, then median 41 ms (min 39, max 47) over 9 calls``, in the notebook's language."""
    first, rest = seconds[0], seconds[1:]
    if not rest:
        return say(f"one call: {first * 1000:.0f} ms", f"un appel : {first * 1000:.0f} ms")
    median, low, high = (round(value * 1000) for value in (statistics.median(rest), min(rest), max(rest)))
    return say(
        f"first call {first * 1000:.0f} ms, then median {median} ms (min {low}, max {high}) over {len(rest)} calls",
        f"premier appel {first * 1000:.0f} ms, puis médiane {median} ms (min {low}, max {high}) sur {len(rest)} appels",
    )
