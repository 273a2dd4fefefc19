"""Checkpoints of notebook 04, "One container at a time": they ask the Docker engine, never guess.

Each function inspects what the student really built or started (``docker inspect``, a command run
inside a container with ``docker exec``) and prints one ✅ line, or stops the notebook with one
sentence saying what to fix.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

from workshop.checkpoints import deployment_passes, expect, guarded, passed, say

#: Every container and image the notebook makes carries this prefix, so that it can remove them
#: all at the end without touching those of the other notebooks.
PREFIX = "workshop-nb04-"
BACKEND_IMAGE = "deploy-ml-workshop/backend"
#: Where the front-end listens inside its container, and the route Streamlit answers when it is up.
UI_PORT = 8501
#: A request from inside a container, with what every Python image has (the slim images have no curl).
_REQUEST = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)"


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``docker ARGS``; the caller reads the exit status (a missing container is an answer, not an error)."""
    return subprocess.run(["docker", *args], check=False, capture_output=True, text=True, timeout=timeout)


def _inspect(kind: str, name: str) -> dict | None:
    """``docker inspect`` of an image or a container; None when there is none of that name."""
    result = _docker("inspect", "--type", kind, name)
    return json.loads(result.stdout)[0] if result.returncode == 0 else None


def _existing(kind: str, name: str, en: str, fr: str) -> dict:
    """:func:`_inspect`, failing with the sentence ``en``/``fr`` when there is nothing of that name."""
    found = _inspect(kind, name)
    expect(found is not None, en, fr)
    return found


def _running_container(name: str) -> dict:
    """The container's ``docker inspect``; fails with a sentence when it does not exist or has stopped."""
    container = _existing(
        "container",
        name,
        f"There is no container named {name}: run your `docker run` command, with --name {name}.",
        f"Aucun conteneur ne s'appelle {name} : lancez votre commande `docker run`, avec --name {name}.",
    )
    state = container["State"]
    expect(
        state["Running"],
        f"{name} is not running ({state['Status']}, exit code {state['ExitCode']}): read `docker logs {name}`.",
        f"{name} ne tourne pas ({state['Status']}, code de sortie {state['ExitCode']}) : lisez `docker logs {name}`.",
    )
    return container


def reaches(container: str, url: str) -> bool:
    """True when a request to ``url``, sent from inside the running ``container``, gets an answer (200)."""
    return _docker("exec", container, "python3", "-c", _REQUEST, url, timeout=30).returncode == 0


def _docker_guarded(check: Callable[[], None], en: str, fr: str) -> None:
    """:func:`guarded`, saying that the Docker engine is what failed (not installed, not started...)."""
    guarded(check, f"Docker could not answer: {en}", f"Docker n'a pas pu répondre : {fr}")


def _health_command(test: list[str]) -> list[str]:
    """The command Docker runs for a HEALTHCHECK (``["CMD", ...]`` or ``["CMD-SHELL", "..."]``), to run it ourselves."""
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", test[1]]
    return test[1:]


def _health_command_passes(image: str, command: list[str], timeout: float) -> bool:
    """Start ``image`` (no port published), run ``command`` inside it until it exits 0 or ``timeout`` passes."""
    name = f"{PREFIX}exercise-{int(time.time() * 1000)}"
    if _docker("run", "-d", "--name", name, image).returncode != 0:
        return False
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _docker("exec", name, *command, timeout=30).returncode == 0:
                return True
            time.sleep(1)
        return False
    finally:
        _docker("rm", "-f", name)


def frontend_image(image: str, health_timeout: float = 60) -> None:
    """The image built from the student's Dockerfile: a non-root user that exists, port 8501 exposed, and a
    HEALTHCHECK whose command, run in a container of the image, succeeds once the UI is up."""

    def check() -> None:
        found = _existing(
            "image",
            image,
            f"There is no image {image}: run the build cell above and read the end of its output.",
            f"Il n'y a pas d'image {image} : lancez la cellule de construction ci-dessus et lisez la fin de sa sortie.",
        )
        config = found["Config"]
        user = config.get("User") or ""
        expect(
            user not in {"", "root", "0"},
            "The image still runs as root: add a `USER` line with the user the Dockerfile creates (workshop).",
            "L'image tourne encore en root : ajoutez une ligne `USER` avec l'utilisateur que crée le Dockerfile (workshop).",
        )
        account = _docker("run", "--rm", image, "id", "-un")
        expect(
            account.returncode == 0,
            f"The image's user '{user}' does not exist in it: use the one `useradd` creates (workshop).",
            f"L'utilisateur '{user}' n'existe pas dans l'image : prenez celui que crée `useradd` (workshop).",
        )
        expect(
            f"{UI_PORT}/tcp" in (config.get("ExposedPorts") or {}),
            f"The image does not say which port it listens on: add `EXPOSE {UI_PORT}` (Streamlit's port).",
            f"L'image ne dit pas sur quel port elle écoute : ajoutez `EXPOSE {UI_PORT}` (le port de Streamlit).",
        )
        test = (config.get("Healthcheck") or {}).get("Test") or []
        expect(
            bool(test) and test[0] != "NONE",
            "The image has no HEALTHCHECK: add one that asks http://127.0.0.1:8501/_stcore/health.",
            "L'image n'a pas de HEALTHCHECK : ajoutez-en un qui interroge http://127.0.0.1:8501/_stcore/health.",
        )
        command = _health_command(test)
        expect(
            _health_command_passes(image, command, health_timeout),
            f"Your HEALTHCHECK command ({' '.join(command)}) never succeeds in the container: slim images have no "
            "curl, use `workshop healthcheck http://127.0.0.1:8501/_stcore/health`.",
            f"La commande de votre HEALTHCHECK ({' '.join(command)}) n'aboutit jamais dans le conteneur. Les images "
            "slim n'ont pas curl, utilisez `workshop healthcheck http://127.0.0.1:8501/_stcore/health`.",
        )
        passed(
            f"{image}: runs as '{user}', exposes {UI_PORT}, and its health check answers.",
            f"{image} : tourne en tant que '{user}', expose {UI_PORT}, et son contrôle de santé répond.",
        )

    _docker_guarded(check, f"could not inspect {image}.", f"impossible d'inspecter {image}.")


def _published(name: str, port: int, image: str) -> str:
    """Fail unless the running container ``name`` comes from ``image`` and publishes its port 8000 on ``port``;
    return the image it runs."""
    container = _running_container(name)
    used = container["Config"]["Image"]
    expect(
        used.split(":")[0] == image.split(":")[0],
        f"{name} runs the image {used}, not {image}: remove it (docker rm -f {name}) and start it from {image}.",
        f"{name} exécute l'image {used} et non {image} : supprimez-le (docker rm -f {name}) et relancez-le depuis {image}.",
    )
    published = (container["NetworkSettings"].get("Ports") or {}).get("8000/tcp") or []
    host_ports = sorted({binding["HostPort"] for binding in published})
    expect(
        str(port) in host_ports,
        f"{name} publishes the container's port 8000 on {', '.join(host_ports) or 'no port'}, not on {port}: "
        f"remove it (docker rm -f {name}) and run it again with -p {port}:8000.",
        f"{name} publie le port 8000 du conteneur sur {', '.join(host_ports) or 'aucun port'} et non sur {port} : "
        f"supprimez-le (docker rm -f {name}) et relancez-le avec -p {port}:8000.",
    )
    return used


def backend_container(name: str, port: int, image: str = BACKEND_IMAGE) -> None:
    """``name`` runs ``image`` and publishes the container's port 8000 on ``port`` of this machine."""

    def check() -> None:
        used = _published(name, port, image)
        passed(
            f"{name} runs {used}: localhost:{port} on this machine leads to port 8000 in the container.",
            f"{name} exécute {used} : localhost:{port} sur cette machine mène au port 8000 du conteneur.",
        )

    _docker_guarded(check, f"could not inspect {name}.", f"impossible d'inspecter {name}.")


def container_answers(name: str, port: int, image: str = BACKEND_IMAGE) -> None:
    """The container ``name``, published on ``port``, passes ``workshop check`` (health, readiness, predictions,
    a bad image refused...): first checked to be the one answering there, not some other server on that port."""
    _docker_guarded(lambda: _published(name, port, image), f"could not inspect {name}.", f"impossible d'inspecter {name}.")
    deployment_passes(f"http://localhost:{port}", what=say("Your container", "Votre conteneur"))


def prediction(predicted: object, container: str, url: str) -> None:
    """The student's guess (True: the front-end's container reaches ``url``), then what happens, in one sentence.

    Any recorded guess passes: the lesson is the comparison, which the notebook explains right after.
    """

    def check() -> None:
        expect(
            isinstance(predicted, bool),
            "Write your prediction first: set frontend_reaches_backend to True or False, then run this cell again.",
            "Notez d'abord votre pronostic : donnez à frontend_reaches_backend la valeur True ou False, puis "
            "relancez cette cellule.",
        )
        _running_container(container)
        reached = reaches(container, url)
        outcome_en = "answers" if reached else "does not answer"
        outcome_fr = "répond" if reached else "ne répond pas"
        if predicted == reached:
            passed(
                f"Well predicted: from inside {container}, {url} {outcome_en}.",
                f"Bien vu : depuis {container}, {url} {outcome_fr}.",
            )
        else:
            passed(
                f"You predicted {'an answer' if predicted else 'no answer'}; from inside {container}, {url} "
                f"{outcome_en}: read on to see why.",
                f"Vous aviez prévu {'une réponse' if predicted else 'aucune réponse'}, mais depuis {container}, {url} "
                f"{outcome_fr}. La suite explique pourquoi.",
            )

    _docker_guarded(check, f"could not run a request in {container}.", f"impossible de lancer une requête dans {container}.")


def frontend_reaches_backend(container: str, url: str) -> None:
    """``container`` shares this machine's network (``--network host``) and reaches the back-end at ``url``."""

    def check() -> None:
        mode = _running_container(container)["HostConfig"]["NetworkMode"]
        expect(
            mode == "host",
            f"{container} has a network of its own ({mode}): remove it (docker rm -f {container}) and run it "
            "again with --network host.",
            f"{container} a son propre réseau ({mode}) : supprimez-le (docker rm -f {container}) et relancez-le "
            "avec --network host.",
        )
        expect(
            reaches(container, url),
            f"{container} shares this machine's network but {url} does not answer: is the back-end's container "
            "running (docker ps)?",
            f"{container} partage le réseau de cette machine mais {url} ne répond pas : le conteneur du back-end "
            "tourne-t-il (docker ps) ?",
        )
        passed(
            f"{container} shares this machine's network: {url} answers from inside it.",
            f"{container} partage le réseau de cette machine : {url} y répond.",
        )

    _docker_guarded(check, f"could not inspect {container}.", f"impossible d'inspecter {container}.")


def start_clean(prefix: str = PREFIX) -> None:
    """Remove the containers an earlier run of the notebook left (their names start with ``prefix``), saying so."""
    listed = _docker("ps", "-a", "--filter", f"name={prefix}", "--format", "{{.Names}}").stdout.split()
    names = [name for name in listed if name.startswith(prefix)]
    if names:
        _docker("rm", "-f", *names)
        print(say(f"Removed what an earlier run left: {', '.join(names)}",
                  f"Supprimé ce qu'une exécution précédente avait laissé : {', '.join(names)}"))


def nothing_left(prefix: str = PREFIX) -> None:
    """No container whose name starts with ``prefix`` is left, running or stopped."""

    def check() -> None:
        listed = _docker("ps", "-a", "--filter", f"name={prefix}", "--format", "{{.Names}}").stdout.split()
        # Docker's name filter also matches in the middle of a name: keep those that start with the prefix.
        names = [name for name in listed if name.startswith(prefix)]
        expect(
            not names,
            f"Still there: {', '.join(names)}: stop and remove them (docker rm -f {' '.join(names)}).",
            f"Conteneurs encore présents : {', '.join(names)}. Arrêtez-les et supprimez-les avec "
            f"docker rm -f {' '.join(names)}.",
        )
        passed(
            f"No container left whose name starts with {prefix}.",
            f"Plus aucun conteneur dont le nom commence par {prefix}.",
        )

    _docker_guarded(check, "could not list the containers.", "impossible de lister les conteneurs.")
