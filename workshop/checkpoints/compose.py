"""Checkpoints of notebook 05, Docker Compose: the front-end's service, the stack, the service name, ``down``.

Each one talks to the real tools: ``compose config`` reads the student's file as Compose will, the
stack is graded over HTTP with ``workshop check``'s contract, the service name is tried from inside
the front-end's container, and what ``down`` left is asked of the Docker engine.
"""

from __future__ import annotations

import subprocess
from collections.abc import Collection
from pathlib import Path
from urllib.parse import urlsplit

from workshop.checkpoints import deployment_passes, expect, fail, guarded, passed, say
from workshop.containers import ComposeStack, compose_command, compose_project, run

#: Where the front-end's container reaches the back-end: its service name, its container port.
BACKEND_URL = "http://backend:8000"
#: What ``compose down`` could leave behind, in the words of the prediction exercise.
LEFTOVER_KINDS = ("containers", "network", "images")
#: The images docker-compose.yml builds (their tag comes from ``WORKSHOP_IMAGE_TAG``).
IMAGES = ("deploy-ml-workshop/backend", "deploy-ml-workshop/frontend")


def _config(path: Path) -> dict:
    """The file as Compose reads it (``compose -f FILE config``: variables filled in, short forms expanded)."""
    import yaml  # comes with Ultralytics; imported here so that the other checkpoints do not need it

    result = subprocess.run([*compose_command(), "-f", str(path), "config"], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no message"])[-1]
        fail(
            f"Compose refuses {path.name} ({reason}): check the indentation, two spaces per level, as in docker-compose.yml.",
            f"Compose refuse {path.name} ({reason}) : vérifiez l'indentation, deux espaces par niveau, comme dans docker-compose.yml.",
        )
    return yaml.safe_load(result.stdout) or {}


def _environment(service: dict) -> dict[str, str]:
    """A service's environment as a mapping (Compose accepts a list of ``KEY=value`` too)."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    return {str(key): str(value or "") for key, value in environment.items()}


def frontend_service(path: str | Path) -> None:
    """Exercise: the front-end's service reads the back-end's URL by service name and waits for it to be healthy."""
    path = Path(path)

    def check() -> None:
        expect(
            path.is_file(),
            f"{path} does not exist yet: run the %%writefile cell above.",
            f"{path} n'existe pas encore : exécutez la cellule %%writefile ci-dessus.",
        )
        frontend = (_config(path).get("services") or {}).get("frontend")
        expect(
            isinstance(frontend, dict),
            "Your file has no service named frontend: keep the names backend and frontend.",
            "Votre fichier n'a pas de service nommé frontend : gardez les noms backend et frontend.",
        )
        url = _environment(frontend).get("WORKSHOP_BACKEND_URL", "").rstrip("/")
        expect(
            url != "",
            "The frontend service needs WORKSHOP_BACKEND_URL under environment: the address where it finds the back-end.",
            "Le service frontend a besoin de WORKSHOP_BACKEND_URL sous environment : l'adresse où il trouve le back-end.",
        )
        host = urlsplit(url).hostname or ""
        expect(
            host not in {"localhost", "127.0.0.1", "0.0.0.0"},
            f"{url} points at the front-end's own container: inside the compose network, name the back-end by its service name.",
            f"{url} désigne le conteneur du front-end lui-même : dans le réseau Compose, appelez le back-end par son nom de service.",
        )
        expect(
            url == BACKEND_URL,
            f"WORKSHOP_BACKEND_URL is {url}: use the back-end's service name and the port it listens on inside its container.",
            f"WORKSHOP_BACKEND_URL vaut {url} : mettez le nom de service du back-end et le port qu'il écoute dans son conteneur.",
        )
        condition = ((frontend.get("depends_on") or {}).get("backend") or {}).get("condition")
        expect(
            condition is not None,
            "The frontend service must list backend under depends_on, or Compose may start it first.",
            "Le service frontend doit citer backend sous depends_on, sinon Compose peut le démarrer en premier.",
        )
        expect(
            condition == "service_healthy",
            f"depends_on gives backend the condition {condition}: use service_healthy, so the front-end waits for a ready back-end.",
            f"depends_on donne à backend la condition {condition} : mettez service_healthy, pour que le front-end attende un back-end prêt.",
        )

    guarded(check, f"Could not read {path.name} with Compose", f"Impossible de lire {path.name} avec Compose")
    passed(
        "Compose accepts your file, and the front-end finds the back-end by name once it is healthy.",
        "Compose accepte votre fichier, et le front-end trouve le back-end par son nom une fois celui-ci prêt.",
    )


def stack_answers(port: int | str) -> None:
    """The stack's back-end, on the port Compose published, passes ``workshop check``."""
    deployment_passes(f"http://127.0.0.1:{port}", what=say("Your compose stack", "Votre stack Compose"))


def _running_container(project: str, service: str) -> str:
    """The id of a service's running container in a compose project; fail with one sentence when there is none."""
    found: list[str] = []
    guarded(
        lambda: found.append(ComposeStack(project=project).container(service)),
        "Could not ask Compose for the containers: is Docker running?",
        "Impossible de demander les conteneurs à Compose : Docker tourne-t-il ?",
    )
    expect(
        bool(found[0]),
        f"No {service} container is running in the project {project}: run the cell with 'up' again.",
        f"Aucun conteneur {service} ne tourne dans le projet {project} : relancez la cellule « up ».",
    )
    return found[0]


def _answers_from(container: str, url: str) -> bool:
    """True when ``url``/health answers 200 from inside ``container`` (its own network, its own localhost)."""
    command = ["docker", "exec", container, "workshop", "healthcheck", url.rstrip("/") + "/health"]
    return subprocess.run(command, capture_output=True, timeout=30).returncode == 0


def backend_url_prediction(prediction: object, project: str | None = None) -> None:
    """Exercise: the URL the front-end's container uses for the back-end, guessed, then tried from inside that container.

    Any recorded guess passes: the sentence says whether it answered, and why. ``project``: the Compose project
    (by default the one a plain ``docker compose`` here belongs to).
    """
    expect(
        isinstance(prediction, str) and prediction.startswith("http"),
        "Write your prediction first: set my_url_prediction to the URL you expect, a string such as 'http://...:8000'.",
        "Notez d'abord votre pronostic : donnez à my_url_prediction l'URL que vous attendez, une chaîne comme "
        "'http://...:8000'.",
    )
    assert isinstance(prediction, str)
    project = project or compose_project()
    container = _running_container(project, "frontend")
    host = urlsplit(prediction).hostname or ""
    answered = _answers_from(container, prediction)
    right = _answers_from(container, BACKEND_URL)
    expect(
        right,
        f"{BACKEND_URL} does not answer from inside the front-end's container: is the stack healthy? Run the cell "
        "with 'up' again.",
        f"{BACKEND_URL} ne répond pas depuis le conteneur du front-end : la stack est-elle en bonne santé ? Relancez "
        "la cellule « up ».",
    )
    if answered and host == "backend":
        passed(
            f"Well predicted: {prediction} answers from inside the front-end's container: on the compose network, a "
            "service's name is a host name.",
            f"Bien vu : {prediction} répond depuis le conteneur du front-end : sur le réseau Compose, le nom d'un "
            "service est un nom d'hôte.",
        )
        return
    if host in {"localhost", "127.0.0.1"}:
        why_en = "there, localhost is that container itself, and the back-end is not in it"
        why_fr = "dans ce conteneur, localhost désigne le conteneur lui-même, et le back-end n'y est pas"
    elif host == "backend":
        why_en = "the port must be the one the back-end listens on in its own container (the published one is for the host)"
        why_fr = "il faut le port qu'écoute le back-end dans son conteneur, le port publié sert à l'hôte"
    else:
        why_en = "Compose registers each container under its service's name"
        why_fr = "Compose inscrit chaque conteneur sous le nom de son service"
    passed(
        f"You predicted {prediction}, which {'answers' if answered else 'does not answer'} from inside the front-end's "
        f"container; {BACKEND_URL} does: {why_en}.",
        f"Vous aviez prévu {prediction}, qui {'répond' if answered else 'ne répond pas'} depuis le conteneur du "
        f"front-end. C'est {BACKEND_URL} qui répond, car {why_fr}.",
    )


def _images_present(image_tag: str) -> bool:
    """True when the images docker-compose.yml builds are still on the machine."""
    return all(run(["docker", "image", "ls", "-q", f"{name}:{image_tag}"]).strip() for name in IMAGES)


def down_prediction(prediction: object, project: str | None = None, image_tag: str = "latest") -> None:
    """Exercise: what ``compose down`` leaves behind, guessed, then compared with what the Docker engine still holds.

    Any recorded guess passes, with what remains and why in one sentence.
    """
    expect(
        isinstance(prediction, Collection) and not isinstance(prediction, str)
        and all(word in LEFTOVER_KINDS for word in prediction),
        "Write your prediction first: set my_down_prediction to a set of what remains, taken from 'containers', "
        "'network', 'images' (set() for nothing).",
        "Notez d'abord votre pronostic : donnez à my_down_prediction l'ensemble de ce qui reste, pris parmi "
        "'containers', 'network', 'images' (set() pour rien).",
    )
    assert isinstance(prediction, Collection)
    project = project or compose_project()
    found: dict = {}

    def look() -> None:
        found.update(ComposeStack(project=project).leftovers())
        found["images"] = _images_present(image_tag)

    guarded(look, "Could not ask Docker what is left", "Impossible de demander à Docker ce qui reste")
    expect(
        not found["containers"],
        f"The project {project} still has containers: run the 'down' cell above first.",
        f"Le projet {project} a encore des conteneurs : exécutez d'abord la cellule « down » ci-dessus.",
    )
    remains = {kind for kind, there in (("network", found["networks"]), ("images", found["images"])) if there}
    shown = ", ".join(sorted(remains)) or "nothing"
    guessed = ", ".join(sorted(prediction)) or "nothing"
    if set(prediction) == remains:
        passed(
            f"Well predicted: after down, what remains is: {shown}; nothing of the project runs any more.",
            f"Bien vu : après down, ce qui reste : {shown.replace('nothing', 'rien')} ; plus rien du projet ne tourne.",
        )
        return
    passed(
        f"You predicted {guessed}; what remains is: {shown}. down removes the containers and the network that up "
        "created; the images stay, so the next up starts in seconds (down --rmi all removes them too).",
        f"Vous aviez prévu {guessed.replace('nothing', 'rien')}, et il reste : {shown.replace('nothing', 'rien')}. "
        "down supprime les conteneurs et le réseau créés par up. Les images restent, si bien que le prochain up "
        "démarre en quelques secondes. down --rmi all les supprime aussi.",
    )
