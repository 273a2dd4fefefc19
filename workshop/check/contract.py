"""Grade one deployment of the back-end against the workshop's contract, over plain HTTP.

:func:`check_deployment` sends what any client would send: ``GET /health``, ``GET /ready``,
``GET /models``, one picture as base64 and as an upload, bytes that are not a picture,
predictions without the API key and with a wrong one, one more prediction to time. It returns a
:class:`DeploymentReport`: one :class:`CheckResult` per check, with what was seen and,
when the check fails, one sentence saying what to fix.

The checks are data (:data:`CHECKS`: a name, a title, a function), so a notebook cell, the
command line (``workshop check URL``) and the teacher's page run the same ones. Only
``requests`` talks to the server: nothing here imports the back-end, so it grades any server
that claims the contract (this project's, a student's own, the original lab's) wherever it
runs: on this machine, in Compose, on a VM, behind ``gcloud run services proxy``.

The picture sent is a generated shapes picture. Which model answers is the server's
business: the check asks ``/models`` for its default and looks at the answer's shape
(boxes inside the picture, confidences between 0 and 1), never at its classes.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import requests

from workshop.check.identity import authorization, cloud_run_refused_fix, is_cloud_run
from workshop.checkpoints import Text, say
from workshop.schemas import API_KEY_HEADER

#: Seconds one request may take before the server counts as not answering.
DEFAULT_TIMEOUT_SECONDS = 30.0
#: Seconds to open a connection: a firewall that drops packets is found out quickly.
CONNECT_TIMEOUT_SECONDS = 5.0
#: Longest round trip of one (warm) prediction that passes the latency check.
DEFAULT_LATENCY_BUDGET_SECONDS = 2.0

Status = Literal["pass", "fail", "skip"]
Outcome = tuple[Status, str, str]  # status, detail, fix (in the notebook's language, see workshop.checkpoints.say)

# The original lab's answer to a prediction; the workshop's back-end adds fields, never removes these.
_PREDICTION_FIELDS: dict[str, tuple[tuple[type, ...], Text]] = {
    "detections": ((list,), Text("a list", "une liste")),
    "time": ((int, float), Text("a number", "un nombre")),
    "model": ((str,), Text("a string", "une chaîne")),
}
_BOX_FIELDS = ("x_min", "y_min", "x_max", "y_max")
# Boxes may round a pixel beyond the edge of the picture.
_BOX_TOLERANCE_PIXELS = 1.0
_NOT_A_PICTURE = b"These bytes are text, not a picture."
_SHOWN_CHARACTERS = 160


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: ``status`` is ``pass``, ``fail`` or ``skip`` (not run, or not applicable).

    ``title``, ``detail`` and ``fix`` are in the language of the run (``WORKSHOP_LANG``); ``name`` never changes.
    """

    name: str
    title: str
    status: Status
    detail: str
    fix: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def failed(self) -> bool:
        return self.status == "fail"


@dataclass
class DeploymentReport:
    """Every check's result for one URL, and the summary a teacher's table shows.

    ``ready`` is ``None`` when the server has no readiness route (or was not reached);
    ``model`` is the model that answered the predictions (else the one asked for);
    ``latency`` is the round trip of one warm prediction, in seconds.
    """

    url: str
    checks: list[CheckResult]
    reachable: bool
    ready: bool | None
    model: str | None
    latency: float | None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True when the server answered and no check failed.

        A skipped check does not count: the key check without a key, say.
        """
        return self.reachable and not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        return [check for check in self.checks if check.failed]

    @property
    def fixes(self) -> list[str]:
        """What to fix, most urgent first (the checks' order), each sentence once."""
        return list(dict.fromkeys(check.fix for check in self.failures if check.fix))

    @property
    def checks_run(self) -> int:
        """Checks that ran (not skipped)."""
        return sum(check.status != "skip" for check in self.checks)

    @property
    def checks_passed(self) -> int:
        return sum(check.passed for check in self.checks)

    @property
    def score(self) -> str:
        """Checks passed out of checks run, e.g. ``"8/8"``."""
        return f"{self.checks_passed}/{self.checks_run}"

    def result(self, name: str) -> CheckResult:
        """The result of the check called ``name`` (see :data:`CHECKS`)."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"No check named {name!r}; the checks are {[check.name for check in CHECKS]}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: the fields, and the verdict with its score."""
        return {**asdict(self), "passed": self.passed, "score": self.score}

    def __str__(self) -> str:
        from workshop.check.report import format_report  # the printing lives apart from the grading

        return format_report(self)


# ---------------------------------------------------------------------------------------- talking to the server


@dataclass(frozen=True)
class Picture:
    """The picture every prediction check sends: PNG bytes and their size in pixels."""

    data: bytes
    width: int
    height: int


def sample_picture(seed: int = 0) -> Picture:
    """A generated shapes picture: the bundled model finds its shapes, any other detector answers about it."""
    # Imported here: numpy and the generator are needed only when a check runs.
    from workshop.imaging import encode_image
    from workshop.samples import shapes_sample

    image = shapes_sample(seed).image
    return Picture(encode_image(image), image.width, image.height)


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: its status, its JSON body (``None`` when it is not JSON) and its round-trip time.

    ``location`` is where a redirect points (empty for any other answer): redirects are not followed.
    """

    status: int
    body: Any
    is_json: bool
    content_type: str
    text: str
    seconds: float
    location: str = ""

    @property
    def detail(self) -> str:
        """The server's reason, from a ``{"detail": ...}`` body (FastAPI's errors), else the start of the body."""
        if isinstance(self.body, dict) and self.body.get("detail"):
            detail = self.body["detail"]
            return detail if isinstance(detail, str) else json.dumps(detail)
        return self.text

    def shown(self) -> str:
        """The status and the reason, shortened for a one-line report."""
        reason = self.detail
        return f"{self.status}: {_shorten(reason)}" if reason.strip() else str(self.status)


class NoAnswer(Exception):
    """No HTTP answer came back: refused, timed out, not a URL. Carries the report's line and its fix."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


class KeyRefused(Exception):
    """The server answered 401 to a request that carried the key we were given (or no key, if none)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.shown())
        self.answer = answer


class Probe:
    """One deployment being checked: its URL and key, the picture sent, and what the checks have learnt."""

    def __init__(self, url: str, api_key: str | None, timeout: float, latency_budget: float, picture: Picture,
                 identity_token: str | None = None) -> None:
        self.url = normalize_url(url)
        self.api_key = api_key or None
        self.timeout = timeout
        self.latency_budget = latency_budget
        self.picture = picture
        self.session = requests.Session()
        # A Cloud Run service checks the caller's Google identity before the request reaches the back-end.
        self.session.headers.update(authorization(self.url, identity_token))
        self.reachable = False
        self.ready: bool | None = None
        self.default_model: str | None = None  # from /ready, when it says
        self.model: str | None = None  # the model the predictions ask for
        self.answered_model: str | None = None  # the model a prediction said answered
        self.prediction_route: str | None = None  # a prediction route that worked, for the latency check
        self.latency: float | None = None
        self.key_refused = False
        self.stopped: str | None = None  # why the remaining checks are not run

    def call(self, method: str, path: str, *, send_key: bool = True, key: str | None = None, **kwargs: Any) -> Answer:
        """Send one request; raise :class:`NoAnswer` when nothing comes back, :class:`KeyRefused` on a 401.

        The key we were given goes in the ``X-API-Key`` header unless ``send_key`` is false;
        ``key`` sends that one instead (the check of a wrong key).
        """
        if not self.url.removeprefix("http://"):
            raise NoAnswer(say("no URL given", "aucune URL donnée"), _url_fix())
        headers = {}
        if key is not None:
            headers[API_KEY_HEADER] = key
        elif send_key and self.api_key:
            headers[API_KEY_HEADER] = self.api_key
        started = time.perf_counter()
        try:
            # Redirects are not followed: the URL given is the one graded, and a redirected POST
            # would come back a GET (a Cloud Run URL given as http://, a private codespace port).
            response = self.session.request(
                method, f"{self.url}{path}", headers=headers, allow_redirects=False,
                timeout=(min(CONNECT_TIMEOUT_SECONDS, self.timeout), self.timeout), **kwargs,
            )
        except requests.RequestException as error:
            raise _no_answer(error, self.url, method, path, self.timeout, self.reachable) from None
        answer = _answer(response, time.perf_counter() - started)
        if answer.status == 403 and is_cloud_run(self.url):
            self.reachable = True
            raise NoAnswer(say(f"{method} {path}: Cloud Run answered 403 (this caller may not invoke the service)",
                               f"{method} {path} : Cloud Run a répondu 403 (cet appelant n'a pas le droit "
                               "d'invoquer le service)"),
                           cloud_run_refused_fix())
        if answer.status == 401 and send_key and key is None:
            raise KeyRefused(answer)
        return answer

    def predict(self, route: str, picture_bytes: bytes | None = None, **call_options: Any) -> Answer:
        """Send a picture (the test picture by default) to ``/predict`` (base64) or ``/predict/upload`` (a file)."""
        data = self.picture.data if picture_bytes is None else picture_bytes
        if route == "/predict/upload":
            form = {"model": self.model} if self.model else {}
            return self.call("POST", route, files={"file": ("check.png", data, "image/png")}, data=form, **call_options)
        payload = {"image": base64.b64encode(data).decode("ascii")}
        if self.model:
            payload["model"] = self.model
        return self.call("POST", route, json=payload, **call_options)


def normalize_url(url: str) -> str:
    """``url`` without its trailing slash; ``http://`` added when no scheme is given (``34.1.2.3:8000``)."""
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


def _answer(response: requests.Response, seconds: float) -> Answer:
    content_type = response.headers.get("content-type", "")
    try:
        body, is_json = response.json(), True
    except ValueError:  # requests' JSONDecodeError
        body, is_json = None, False
    return Answer(
        response.status_code, body, is_json, content_type, response.text[:_SHOWN_CHARACTERS * 4], seconds,
        response.headers.get("location", "") if response.is_redirect else "",
    )


_URL_FIX = Text(
    "Give the back-end's address as http://HOST:PORT, e.g. http://localhost:8000 or http://EXTERNAL_IP:8000.",
    "Donnez l'adresse du back-end sous la forme http://HÔTE:PORT, par exemple http://localhost:8000 ou "
    "http://IP_EXTERNE:8000.",
)


def _url_fix() -> str:
    return str(_URL_FIX)


# Failures without an HTTP answer: the errors, the report's line, its fix. The first match wins, so a
# subclass comes before its base (ConnectTimeout and SSLError are ConnectionErrors).
_NO_ANSWER_REASONS: tuple[tuple[tuple[type[requests.RequestException], ...], Text, Text], ...] = (
    ((requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL),
     Text("{url} is not a valid URL ({error})", "{url} n'est pas une URL valide ({error})"), _URL_FIX),
    ((requests.exceptions.ConnectTimeout,),
     Text("no connection to {url} within {connect_timeout:g} s", "pas de connexion à {url} en {connect_timeout:g} s"),
     Text("Nothing answers at that address: check that the machine is running, that a firewall rule opens the port "
          "to you, and that the address is right (a VM's external IP, not its internal one).",
          "Rien ne répond à cette adresse. Vérifiez que la machine tourne, qu'une règle de pare-feu vous ouvre le "
          "port et que l'adresse est la bonne (l'IP externe de la VM, pas son IP interne).")),
    ((requests.exceptions.ReadTimeout,),
     Text("connected, but {method} {path} got no answer within {timeout:g} s",
          "connecté, mais {method} {path} n'a pas eu de réponse en {timeout:g} s"),
     Text("The server accepts connections but does not answer: read its log (the terminal running it, or docker "
          "logs) and restart it.",
          "Le serveur accepte les connexions mais ne répond pas. Lisez son journal (le terminal où il tourne, ou "
          "docker logs) et redémarrez-le.")),
    ((requests.exceptions.SSLError,),
     Text("the TLS handshake with {url} failed", "la négociation TLS avec {url} a échoué"),
     Text("Use http:// for a server that speaks plain HTTP (uvicorn, a VM on port 8000); https:// only behind a "
          "proxy that terminates TLS.",
          "Utilisez http:// pour un serveur qui parle HTTP simple (uvicorn, une VM sur le port 8000), et https:// "
          "seulement derrière un proxy qui termine TLS.")),
)


def _no_answer(
    error: requests.RequestException, url: str, method: str, path: str, timeout: float, reachable: bool
) -> NoAnswer:
    """The report's line and fix for a request that got no HTTP answer at all."""
    for kinds, detail, fix in _NO_ANSWER_REASONS:
        if isinstance(error, kinds):
            return NoAnswer(str(detail).format(url=url, error=error, method=method, path=path, timeout=timeout,
                                               connect_timeout=min(CONNECT_TIMEOUT_SECONDS, timeout)), str(fix))
    reason = _os_reason(error)
    if isinstance(error, requests.exceptions.ConnectionError) and reason and not reachable:
        return NoAnswer(
            say(f"cannot connect to {url}: {reason}", f"impossible de se connecter à {url} : {reason}"),
            say("Nothing listens there: start the back-end (workshop serve, docker run -p 8000:8000 ..., docker "
                "compose up) or correct the URL's host and port.",
                "Rien n'écoute à cette adresse. Démarrez le back-end (workshop serve, docker run -p 8000:8000 ..., "
                "docker compose up) ou corrigez l'hôte et le port de l'URL."),
        )
    shown = _shorten(str(error), 100)
    if isinstance(error, requests.exceptions.ConnectionError):
        # It answered before (or the connection opened): the process died or dropped this request.
        return NoAnswer(
            say(f"{method} {path}: the connection closed without an answer ({shown})",
                f"{method} {path} : la connexion s'est fermée sans réponse ({shown})"),
            say("The server stopped or crashed on this request: read its log (the terminal running it, or docker "
                "logs), then restart it.",
                "Le serveur s'est arrêté ou a planté sur cette requête. Lisez son journal (le terminal où il "
                "tourne, ou docker logs), puis redémarrez-le."),
        )
    return NoAnswer(say(f"{method} {path} failed: {shown}", f"{method} {path} a échoué : {shown}"),
                    say("Check the URL and that the back-end is running.",
                        "Vérifiez l'URL, et que le back-end tourne."))


def _os_reason(error: Exception) -> str | None:
    """'Connection refused' out of urllib3's long chain of wrapped errors."""
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(error))
    return match.group(1).strip() if match else None


def _shorten(text: str, length: int = _SHOWN_CHARACTERS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= length else text[: length - 1] + "…"


# -------------------------------------------------------------------------------------------- what the checks say


def _pass(detail: str) -> Outcome:
    return "pass", detail, ""


def _fail(detail: str, fix: str) -> Outcome:
    return "fail", detail, fix


def _skip(detail: str) -> Outcome:
    return "skip", detail, ""


def _not_json(answer: Answer, route: str) -> Outcome:
    if "html" in answer.content_type:
        return _fail(
            say(f"{route} answered {answer.status} with a web page, not JSON",
                f"{route} a répondu {answer.status} avec une page web, pas du JSON"),
            say("Point the check at the API itself (port 8000, not the front-end's 8501); in a codespace, make the "
                "port public (Ports tab) or check from inside it with http://localhost:8000.",
                "Visez l'API elle-même (le port 8000, pas le 8501 du front-end). Dans un codespace, rendez le port "
                "public (onglet Ports) ou vérifiez depuis le codespace avec http://localhost:8000."),
        )
    media_type = answer.content_type.split(";")[0].strip() or say("a body", "un corps")
    body = _shorten(answer.text, 60) or say("empty", "vide")
    return _fail(
        say(f"{route} answered {answer.status} with {media_type}, not JSON ({body})",
            f"{route} a répondu {answer.status} avec {media_type}, pas du JSON ({body})"),
        say("Answer JSON: return a dict or a pydantic model from the route, and FastAPI encodes it.",
            "Répondez en JSON : renvoyez un dict ou un modèle pydantic depuis la route, FastAPI l'encode."),
    )


def _unexpected(answer: Answer, route: str, missing_route_fix: str) -> Outcome:
    """A failure for an answer that is not the one expected, with the fix that fits its status."""
    shown = answer.shown()
    if answer.location:
        location = _shorten(answer.location, 100)
        return _fail(
            say(f"{route} answered {answer.status}, a redirect to {location}",
                f"{route} a répondu {answer.status}, une redirection vers {location}"),
            say("Give the address the server really answers at (https:// if it redirects there); a codespace port "
                "that redirects to a login page must be made public (Ports tab) to be reached from outside.",
                "Donnez l'adresse à laquelle le serveur répond vraiment (https:// s'il y redirige). Un port de "
                "codespace qui redirige vers une page de connexion doit être rendu public (onglet Ports) pour être "
                "joint de l'extérieur."),
        )
    if answer.status in (404, 405):
        return _fail(say(f"no {route} route ({shown})", f"pas de route {route} ({shown})"), missing_route_fix)
    if answer.status == 503:
        return _fail(
            say(f"{route} answered {shown}", f"{route} a répondu {shown}"),
            say("The server cannot serve the model now: read the detail above; wait for it to load, or make its "
                "weights available where the server runs.",
                "Le serveur ne peut pas servir le modèle pour l'instant. Lisez le détail ci-dessus, puis attendez "
                "qu'il se charge, ou rendez ses poids disponibles là où tourne le serveur."),
        )
    if answer.status == 500 and answer.text.strip() == "Internal Server Error":
        # Starlette's own answer when a route raises: the app crashed, no proxy is involved.
        return _fail(
            say(f"{route} crashed on the server ({shown})", f"{route} a planté sur le serveur ({shown})"),
            say("The route raised an exception on a valid request: the traceback is in the server's log (the "
                "terminal running it, or docker logs).",
                "La route a levé une exception sur une requête valide. La trace d'appels est dans le journal du "
                "serveur (le terminal où il tourne, ou docker logs)."),
        )
    if answer.status >= 500 and not answer.is_json:
        return _fail(
            say(f"{route} answered {shown} from something in front of the API",
                f"{route} : réponse {shown} venue de quelque chose placé devant l'API"),
            say("A proxy answers but the back-end behind it does not: start the back-end (or read its log), then "
                "check again.",
                "Un proxy répond, mais pas le back-end derrière lui. Démarrez le back-end (ou lisez son journal), "
                "puis relancez la vérification."),
        )
    if answer.status >= 500:
        return _fail(
            say(f"{route} failed on the server ({shown})", f"{route} a échoué sur le serveur ({shown})"),
            say("The server crashed on a valid request: the traceback is in its log (the terminal running it, or "
                "docker logs).",
                "Le serveur a planté sur une requête valide. La trace d'appels est dans son journal (le terminal où "
                "il tourne, ou docker logs)."),
        )
    if 400 <= answer.status < 500:
        return _fail(
            say(f"{route} refused a valid request ({shown})", f"{route} a refusé une requête valide ({shown})"),
            say("Accept the contract's request as it is: read the detail above and compare your route with the "
                "README's table.",
                "Acceptez la requête du contrat telle quelle. Lisez le détail ci-dessus et comparez votre route au "
                "tableau du README."),
        )
    if not answer.is_json:
        return _not_json(answer, route)
    body = _shorten(json.dumps(answer.body), 80)
    return _fail(say(f"{route} answered {answer.status} {body}", f"{route} a répondu {answer.status} {body}"),
                 missing_route_fix)


def prediction_problems(body: Any, picture: Picture, model_asked: str | None = None) -> list[str]:
    """What is wrong with a prediction's answer, by the contract's shape (never by its classes); empty when right."""
    if not isinstance(body, dict):
        return [say("the answer is not a JSON object", "la réponse n'est pas un objet JSON")]
    problems = [
        say(f"no '{name}' field", f"pas de champ '{name}'") if name not in body
        else say(f"'{name}' is not {kind_name.en}", f"'{name}' n'est pas {kind_name.fr}")
        for name, (kinds, kind_name) in _PREDICTION_FIELDS.items()
        if name not in body or not isinstance(body[name], kinds) or isinstance(body[name], bool)
    ]
    if model_asked and isinstance(body.get("model"), str) and body["model"] != model_asked:
        problems.append(say(f"asked for model '{model_asked}', the answer says '{body['model']}'",
                            f"modèle demandé '{model_asked}', la réponse dit '{body['model']}'"))
    for name, expected in (("image_width", picture.width), ("image_height", picture.height)):
        if name in body and body[name] != expected:
            problems.append(say(f"'{name}' is {body[name]}, the picture's is {expected}",
                                f"'{name}' vaut {body[name]}, celui de l'image {expected}"))
    for index, detection in enumerate(body.get("detections") if isinstance(body.get("detections"), list) else []):
        problem = _detection_problem(detection, picture)
        if problem:
            problems.append(say(f"detection {index}: {problem}", f"détection {index} : {problem}"))
            break  # one wrong detection says enough
    return problems


def _detection_problem(detection: Any, picture: Picture) -> str | None:
    if not isinstance(detection, dict):
        return say("not a JSON object", "pas un objet JSON")
    missing = [name for name in (*_BOX_FIELDS, "class_name", "confidence") if name not in detection]
    if missing:
        return say(f"no {', '.join(missing)}", f"il manque {', '.join(missing)}")
    numbers = [detection[name] for name in (*_BOX_FIELDS, "confidence")]
    if not all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in numbers):
        return say("coordinates and confidence must be numbers",
                   "les coordonnées et la confiance doivent être des nombres")
    if not isinstance(detection["class_name"], str):
        return say("class_name must be a string", "class_name doit être une chaîne")
    x_min, y_min, x_max, y_max, confidence = numbers
    if not 0.0 <= confidence <= 1.0:
        return say(f"confidence {confidence} is not between 0 and 1",
                   f"la confiance {confidence} n'est pas entre 0 et 1")
    if x_min > x_max or y_min > y_max:
        box = [x_min, y_min, x_max, y_max]
        return say(f"box {box} has its corners swapped", f"la boîte {box} a ses coins inversés")
    margin = _BOX_TOLERANCE_PIXELS
    if min(x_min, y_min) < -margin or x_max > picture.width + margin or y_max > picture.height + margin:
        box, size = [round(v, 1) for v in (x_min, y_min, x_max, y_max)], f"{picture.width}x{picture.height}"
        return say(f"box {box} is outside the {size} picture (boxes are in the pixels of the picture sent)",
                   f"la boîte {box} sort de l'image de {size} (les boîtes sont en pixels de l'image envoyée)")
    return None


_ANSWER_SHAPE = (
    "{\"detections\": [{\"x_min\", \"y_min\", \"x_max\", \"y_max\", \"class_name\", \"confidence\"}], "
    "\"time\", \"model\"}"
)
_PREDICTION_FIX = Text(
    f"Answer {_ANSWER_SHAPE}, with boxes in the pixels of the picture sent, as the README's contract says.",
    f"Répondez {_ANSWER_SHAPE}, avec des boîtes en pixels de l'image envoyée, comme le dit le contrat du README.",
)


def _prediction_result(probe: Probe, answer: Answer, route: str, missing_route_fix: str) -> Outcome:
    """The verdict on one prediction of the test picture; remembers the route and the model when it worked."""
    if answer.status != 200:
        return _unexpected(answer, route, missing_route_fix)
    if not answer.is_json:
        return _not_json(answer, route)
    problems = prediction_problems(answer.body, probe.picture, probe.model)
    if problems:
        found = say("; ", " ; ").join(problems)
        return _fail(say(f"the answer does not follow the contract: {found}",
                         f"la réponse ne suit pas le contrat : {found}"), str(_PREDICTION_FIX))
    probe.prediction_route = probe.prediction_route or route.split()[-1]
    probe.answered_model = probe.answered_model or answer.body["model"]
    count, model, milliseconds = len(answer.body["detections"]), answer.body["model"], f"{answer.seconds * 1000:.0f}"
    plural = "s" * (count > 1)
    return _pass(say(f"{count} detection{'s' * (count != 1)} by '{model}' in {milliseconds} ms",
                     f"{count} détection{plural} par '{model}' en {milliseconds} ms"))


# --------------------------------------------------------------------------------------------------- the checks


def check_health(probe: Probe) -> Outcome:
    answer = probe.call("GET", "/health", send_key=False)
    probe.reachable = True
    if answer.status == 200 and answer.is_json:
        return _pass(f"200 {_shorten(json.dumps(answer.body), 80)}")
    if answer.status == 200:
        return _not_json(answer, "GET /health")
    return _unexpected(
        answer, "GET /health",
        say("Add GET /health answering 200 {\"status\": \"ok\"}: it is how Docker, a VM and this check know the "
            "process is alive.",
            "Ajoutez GET /health, qui répond 200 {\"status\": \"ok\"} : c'est ainsi que Docker, une VM et cette "
            "vérification savent que le processus est en vie."),
    )


def check_ready(probe: Probe) -> Outcome:
    answer = probe.call("GET", "/ready", send_key=False)
    if answer.status == 200 and isinstance(answer.body, dict) and answer.body.get("ready") is True:
        probe.ready = True
        probe.default_model = answer.body.get("default_model") or None
        detail = _shorten(answer.detail or say("default model loaded", "modèle par défaut chargé"), 80)
        return _pass(say(f"ready ({detail})", f"prêt ({detail})"))
    if answer.status == 503:
        probe.ready = False
        return _fail(
            say(f"not ready yet ({answer.shown()})", f"pas encore prêt ({answer.shown()})"),
            say("The process is up but its model is not loaded: wait a minute and check again; if it stays 503, the "
                "reason is in the server's log.",
                "Le processus tourne mais son modèle n'est pas chargé. Attendez une minute et relancez la "
                "vérification ; s'il reste à 503, la raison est dans le journal du serveur."),
        )
    return _unexpected(
        answer, "GET /ready",
        say("Add GET /ready answering 503 until the model is loaded and 200 {\"ready\": true} after, so Docker's "
            "HEALTHCHECK and load balancers send requests only to a server that can answer them.",
            "Ajoutez GET /ready, qui répond 503 tant que le modèle n'est pas chargé, puis 200 {\"ready\": true}. "
            "Le HEALTHCHECK de Docker et les répartiteurs de charge n'envoient ainsi de requêtes qu'à un serveur "
            "capable d'y répondre."),
    )


def check_models(probe: Probe) -> Outcome:
    answer = probe.call("GET", "/models")
    if answer.status != 200:
        return _unexpected(answer, "GET /models", say("Add GET /models listing the models the server can serve.",
                                                      "Ajoutez GET /models, qui liste les modèles que le serveur sait "
                                                      "servir."))
    if not answer.is_json:
        return _not_json(answer, "GET /models")
    models = answer.body if isinstance(answer.body, list) else []
    described = [item for item in models if isinstance(item, dict) and isinstance(item.get("name"), str)]
    names = [item for item in models if isinstance(item, str)] or [item["name"] for item in described]
    if not names:
        body = _shorten(json.dumps(answer.body), 80)
        return _fail(say(f"GET /models answered {body}: no model listed",
                         f"GET /models a répondu {body} : aucun modèle listé"),
                     say("Answer a JSON list with one entry per model the server can serve.",
                         "Répondez une liste JSON, avec une entrée par modèle que le serveur sait servir."))
    if len(described) != len(models):
        # Bare names (the original lab's answer): predict with the first, so the checks after this one still run.
        probe.model = probe.default_model if probe.default_model in names else names[0]
        bare, example = _shorten(json.dumps(names), 60), ('{"name": "shapes", "classes": [...], "available": true, '
                                                          '"default": true}')
        return _fail(
            say(f"GET /models lists bare names {bare}: no classes, no availability, no default",
                f"GET /models ne donne que des noms {bare} : ni classes, ni disponibilité, ni modèle par défaut"),
            say(f"Describe each model, e.g. {example}, so a client can pick one without guessing.",
                f"Décrivez chaque modèle, par exemple {example}, pour qu'un client puisse choisir sans deviner."),
        )
    defaults = [item for item in described if item.get("default") is True]
    chosen = defaults[0] if defaults else next(
        (item for item in described if item["name"] == probe.default_model), described[0]
    )
    probe.model = chosen["name"]
    count = len(described)
    listed = say(f"{count} model{'s' * (count != 1)}", f"{count} modèle{'s' * (count > 1)}")
    if not defaults:
        return _fail(say(f"{listed}, none marked \"default\": true", f"{listed}, aucun marqué \"default\": true"),
                     say("Mark the model used when a request names none with \"default\": true in GET /models.",
                         "Marquez d'un \"default\": true, dans GET /models, le modèle utilisé quand une requête "
                         "n'en nomme aucun."))
    if chosen.get("available") is False:
        reason = _shorten(chosen.get("reason") or say("no reason given", "sans raison donnée"), 80)
        return _fail(
            say(f"{listed}; the default, '{chosen['name']}', is not available ({reason})",
                f"{listed} ; celui par défaut, '{chosen['name']}', n'est pas disponible ({reason})"),
            say("Make the default model's weights available where the server runs (baked into the image, or "
                "downloadable), or choose another default (WORKSHOP_DEFAULT_MODEL).",
                "Rendez les poids du modèle par défaut disponibles là où tourne le serveur (dans l'image, ou "
                "téléchargeables), ou choisissez un autre modèle par défaut (WORKSHOP_DEFAULT_MODEL)."),
        )
    return _pass(say(f"{listed}; default: '{chosen['name']}'", f"{listed} ; par défaut : '{chosen['name']}'"))


def check_predict_base64(probe: Probe) -> Outcome:
    answer = probe.predict("/predict")
    return _prediction_result(
        probe, answer, "POST /predict",
        say("Add POST /predict taking {\"model\": name, \"image\": base64 of the file} and answering the detections.",
            "Ajoutez POST /predict, qui prend {\"model\": nom, \"image\": le fichier en base64} et répond les "
            "détections."),
    )


def check_predict_upload(probe: Probe) -> Outcome:
    answer = probe.predict("/predict/upload")
    return _prediction_result(
        probe, answer, "POST /predict/upload",
        say("Add POST /predict/upload taking the picture as a multipart file (FastAPI's UploadFile), so a browser or "
            "`curl -F file=@cat.jpg` can send a file without base64.",
            "Ajoutez POST /predict/upload, qui prend l'image comme fichier multipart (l'UploadFile de FastAPI) : un "
            "navigateur ou `curl -F file=@cat.jpg` peut alors envoyer un fichier sans base64."),
    )


def check_bad_image(probe: Probe) -> Outcome:
    answer = probe.predict("/predict", _NOT_A_PICTURE)
    if answer.status < 300:
        return _fail(
            say(f"POST /predict answered {answer.status} to bytes that are not a picture",
                f"POST /predict a répondu {answer.status} à des octets qui ne sont pas une image"),
            say("Decode the picture before running the model and answer 422 with a detail saying the file is not "
                "an image.",
                "Décodez l'image avant de lancer le modèle, et répondez 422 avec un détail qui dit que le fichier "
                "n'est pas une image."),
        )
    if answer.status >= 500 and answer.status != 503:
        return _fail(
            say(f"bytes that are not a picture crashed the server ({answer.shown()})",
                f"des octets qui ne sont pas une image ont fait planter le serveur ({answer.shown()})"),
            say("Catch the decoding error (Pillow's UnidentifiedImageError) and answer 422 with a detail that says "
                "the file is not an image, instead of a 500.",
                "Interceptez l'erreur de décodage (UnidentifiedImageError de Pillow) et répondez 422, avec un détail "
                "qui dit que le fichier n'est pas une image, au lieu d'un 500."),
        )
    if not 400 <= answer.status < 500 or answer.status in (404, 405):
        return _unexpected(answer, "POST /predict", say("Add POST /predict (see the base64 check above).",
                                                        "Ajoutez POST /predict (voir le contrôle base64 plus haut)."))
    if not answer.is_json or not answer.detail.strip():
        return _fail(
            say(f"POST /predict answered {answer.status} without saying why",
                f"POST /predict a répondu {answer.status} sans dire pourquoi"),
            say("Say why in the answer: raise HTTPException(status_code=422, detail=\"The file is not an image.\").",
                "Dites pourquoi dans la réponse : raise HTTPException(status_code=422, detail=\"The file is not an "
                "image.\")."),
        )
    return _pass(answer.shown())


def check_api_key(probe: Probe) -> Outcome:
    if not probe.api_key:
        return _skip(say("no key given (pass --api-key KEY to check that the server refuses predictions without it)",
                         "aucune clé donnée (ajoutez --api-key CLÉ pour vérifier que le serveur refuse les "
                         "prédictions sans elle)"))
    answers = {
        say("with no key", "sans clé"): probe.predict("/predict", send_key=False),
        say("with a wrong key", "avec une mauvaise clé"): probe.predict("/predict", key=f"not-{probe.api_key}"),
    }
    wrong = {label: answer for label, answer in answers.items() if answer.status != 401}
    if not wrong:
        return _pass(say("POST /predict answers 401 without the key and with a wrong one",
                         "POST /predict répond 401 sans la clé comme avec une mauvaise"))
    seen = say("; ", " ; ").join(say(f"{label}, POST /predict answered {answer.status}",
                         f"{label}, POST /predict a répondu {answer.status}") for label, answer in wrong.items())
    if any(answer.status < 300 for answer in wrong.values()):
        return _fail(
            say(f"{seen}: anyone can use this server", f"{seen} : n'importe qui peut utiliser ce serveur"),
            say("Start the server with WORKSHOP_API_KEY set (the VM's start-up script does it), or make your own "
                "server answer 401 when the X-API-Key header is missing or wrong.",
                "Démarrez le serveur avec WORKSHOP_API_KEY définie (le script de démarrage de la VM le fait), ou "
                "faites répondre 401 à votre propre serveur quand l'en-tête X-API-Key manque ou est faux."),
        )
    return _fail(seen, say("Answer 401 (not another error) when the X-API-Key header is missing or wrong, so a "
                           "client knows that the key is what it lacks.",
                           "Répondez 401 (et pas une autre erreur) quand l'en-tête X-API-Key manque ou est faux : "
                           "le client sait alors que c'est la clé qui lui manque."))


def check_latency(probe: Probe) -> Outcome:
    if probe.prediction_route is None:
        return _skip(say("not run: no prediction succeeded", "non lancé : aucune prédiction n'a réussi"))
    answer = probe.predict(probe.prediction_route)
    if answer.status != 200:
        return _unexpected(answer, f"POST {probe.prediction_route}", say("See the prediction checks above.",
                                                                         "Voir les contrôles de prédiction plus "
                                                                         "haut."))
    probe.latency = answer.seconds
    server_time = answer.body.get("time") if isinstance(answer.body, dict) else None
    on_server = (say(f" (server: {server_time * 1000:.0f} ms)", f" (serveur : {server_time * 1000:.0f} ms)")
                 if isinstance(server_time, (int, float)) else "")
    round_trip = f"{answer.seconds * 1000:.0f} ms"
    detail = say(f"{round_trip} round trip{on_server}", f"{round_trip} aller-retour{on_server}")
    if answer.seconds > probe.latency_budget:
        budget = f"{probe.latency_budget:g} s"
        return _fail(
            say(f"{detail}, over the {budget} budget", f"{detail}, au-delà du budget de {budget}"),
            say("Load the model once when the server starts, not in every request, and give the server enough CPU "
                "for its model (a larger machine type, or a smaller model).",
                "Chargez le modèle une fois au démarrage du serveur, pas à chaque requête, et donnez au serveur "
                "assez de CPU pour son modèle (une machine plus grosse, ou un modèle plus petit)."),
        )
    return _pass(detail)


@dataclass(frozen=True)
class Check:
    """One line of the report: a stable ``name``, a ``title`` for people (English and French), and the function
    that runs it.

    ``needs_key``: the check goes through the API key, so it is not run once the server has refused it.
    """

    name: str
    title: Text
    run: Callable[[Probe], Outcome] = field(repr=False)
    needs_key: bool = True


#: The workshop's contract, in the order a client meets it.
CHECKS: tuple[Check, ...] = (
    Check("health", Text("health (GET /health)", "santé (GET /health)"), check_health, needs_key=False),
    Check("ready", Text("readiness (GET /ready)", "disponibilité (GET /ready)"), check_ready, needs_key=False),
    Check("models", Text("models (GET /models)", "modèles (GET /models)"), check_models),
    Check("predict_base64", Text("predict, base64 (POST /predict)", "prédiction en base64 (POST /predict)"),
          check_predict_base64),
    Check("predict_upload", Text("predict, upload (POST /predict/upload)",
                                 "prédiction par fichier (POST /predict/upload)"), check_predict_upload),
    Check("bad_image", Text("a bad image gets a 4xx", "une image invalide reçoit un 4xx"), check_bad_image),
    Check("api_key", Text("no key, no prediction (401)", "sans clé, pas de prédiction (401)"), check_api_key,
          needs_key=False),
    Check("latency", Text("latency of one prediction", "latence d'une prédiction"), check_latency),
)


def _key_refused_result(probe: Probe, refusal: KeyRefused) -> Outcome:
    probe.key_refused = True
    shown = refusal.answer.shown()
    if probe.api_key:
        return _fail(
            say(f"the server refused the key ({shown})", f"le serveur a refusé la clé ({shown})"),
            say("Give the key the server was started with (its WORKSHOP_API_KEY; `workshop gcp deploy` printed it "
                "once).",
                "Donnez la clé avec laquelle le serveur a démarré (sa WORKSHOP_API_KEY, que `workshop gcp deploy` a "
                "affichée une fois)."),
        )
    return _fail(
        say(f"the server needs an API key ({shown})", f"le serveur demande une clé d'API ({shown})"),
        say("Give the server's key: workshop check URL --api-key KEY (or the roster's key column).",
            "Donnez la clé du serveur : workshop check URL --api-key CLÉ (ou la colonne key de la liste de la "
            "classe)."),
    )


def _run_check(check: Check, probe: Probe) -> Outcome:
    if probe.stopped:
        return _skip(say(f"not run: {probe.stopped}", f"non lancé : {probe.stopped}"))
    if probe.key_refused and check.needs_key:
        return _skip(say("not run: the server refused the key", "non lancé : le serveur a refusé la clé")
                     if probe.api_key else
                     say("not run: the server needs an API key", "non lancé : le serveur demande une clé d'API"))
    try:
        return check.run(probe)
    except NoAnswer as error:
        probe.stopped = (say("the server did not answer", "le serveur n'a pas répondu") if probe.reachable
                         else say("nothing answered", "rien n'a répondu"))
        return _fail(error.detail, error.fix)
    except KeyRefused as refusal:
        return _key_refused_result(probe, refusal)
    except Exception as error:  # noqa: BLE001 - a grader reports what it could not judge, it does not crash
        what = f"{type(error).__name__}: {_shorten(str(error), 100)}"
        return _fail(say(f"the check could not judge the answer ({what})",
                         f"le contrôle n'a pas pu juger la réponse ({what})"),
                     say("Compare the server's answers with the README's contract; if they match, report this as a "
                         "bug.",
                         "Comparez les réponses du serveur au contrat du README ; s'il les suit, signalez ce "
                         "bogue."))


def check_deployment(
    url: str,
    api_key: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    latency_budget: float = DEFAULT_LATENCY_BUDGET_SECONDS,
    picture: Picture | None = None,
    identity_token: str | None = None,
) -> DeploymentReport:
    """Run every check of :data:`CHECKS` against the back-end at ``url``; never raises for what the server does.

    Each request waits at most ``timeout`` seconds (``CONNECT_TIMEOUT_SECONDS`` to connect); once one gets
    no answer, the remaining checks are not run, so a dead URL costs seconds, not minutes.
    ``identity_token``: the grader's Google identity token, sent to a Cloud Run URL only (see :mod:`.identity`).
    """
    started = time.perf_counter()
    probe = Probe(url, api_key, timeout, latency_budget, picture or sample_picture(), identity_token)
    try:
        results = [CheckResult(check.name, str(check.title), *_run_check(check, probe)) for check in CHECKS]
    finally:
        probe.session.close()
    return DeploymentReport(
        url=probe.url,
        checks=results,
        reachable=probe.reachable,
        ready=probe.ready,
        model=probe.answered_model or probe.model,
        latency=probe.latency,
        seconds=time.perf_counter() - started,
    )
