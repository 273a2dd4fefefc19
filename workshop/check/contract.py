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

from workshop.check.identity import CLOUD_RUN_REFUSED_FIX, authorization, is_cloud_run

from workshop.schemas import API_KEY_HEADER

#: Seconds one request may take before the server counts as not answering.
DEFAULT_TIMEOUT_SECONDS = 30.0
#: Seconds to open a connection: a firewall that drops packets is found out quickly.
CONNECT_TIMEOUT_SECONDS = 5.0
#: Longest round trip of one (warm) prediction that passes the latency check.
DEFAULT_LATENCY_BUDGET_SECONDS = 2.0

Status = Literal["pass", "fail", "skip"]
Outcome = tuple[Status, str, str]  # status, detail, fix

# The original lab's answer to a prediction; the workshop's back-end adds fields, never removes these.
_PREDICTION_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "detections": ((list,), "a list"), "time": ((int, float), "a number"), "model": ((str,), "a string"),
}
_BOX_FIELDS = ("x_min", "y_min", "x_max", "y_max")
# Boxes may round a pixel beyond the edge of the picture.
_BOX_TOLERANCE_PIXELS = 1.0
_NOT_A_PICTURE = b"These bytes are text, not a picture."
_SHOWN_CHARACTERS = 160


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: ``status`` is ``pass``, ``fail`` or ``skip`` (not run, or not applicable)."""

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
            raise NoAnswer("no URL given", _URL_FIX)
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
            raise NoAnswer(f"{method} {path}: Cloud Run answered 403 (this caller may not invoke the service)",
                           CLOUD_RUN_REFUSED_FIX)
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


_URL_FIX = "Give the back-end's address as http://HOST:PORT, e.g. http://localhost:8000 or http://EXTERNAL_IP:8000."

# Failures without an HTTP answer: the errors, the report's line, its fix. The first match wins, so a
# subclass comes before its base (ConnectTimeout and SSLError are ConnectionErrors).
_NO_ANSWER_REASONS: tuple[tuple[tuple[type[requests.RequestException], ...], str, str], ...] = (
    ((requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL),
     "{url} is not a valid URL ({error})", _URL_FIX),
    ((requests.exceptions.ConnectTimeout,), "no connection to {url} within {connect_timeout:g} s",
     "Nothing answers at that address: check that the machine is running, that a firewall rule opens the port to "
     "you, and that the address is right (a VM's external IP, not its internal one)."),
    ((requests.exceptions.ReadTimeout,), "connected, but {method} {path} got no answer within {timeout:g} s",
     "The server accepts connections but does not answer: read its log (the terminal running it, or docker logs) "
     "and restart it."),
    ((requests.exceptions.SSLError,), "the TLS handshake with {url} failed",
     "Use http:// for a server that speaks plain HTTP (uvicorn, a VM on port 8000); https:// only behind a proxy "
     "that terminates TLS."),
)


def _no_answer(
    error: requests.RequestException, url: str, method: str, path: str, timeout: float, reachable: bool
) -> NoAnswer:
    """The report's line and fix for a request that got no HTTP answer at all."""
    for kinds, detail, fix in _NO_ANSWER_REASONS:
        if isinstance(error, kinds):
            return NoAnswer(detail.format(url=url, error=error, method=method, path=path, timeout=timeout,
                                          connect_timeout=min(CONNECT_TIMEOUT_SECONDS, timeout)), fix)
    reason = _os_reason(error)
    if isinstance(error, requests.exceptions.ConnectionError) and reason and not reachable:
        return NoAnswer(f"cannot connect to {url}: {reason}",
                        "Nothing listens there: start the back-end (workshop serve, docker run -p 8000:8000 ..., "
                        "docker compose up) or correct the URL's host and port.")
    if isinstance(error, requests.exceptions.ConnectionError):
        # It answered before (or the connection opened): the process died or dropped this request.
        return NoAnswer(f"{method} {path}: the connection closed without an answer ({_shorten(str(error), 100)})",
                        "The server stopped or crashed on this request: read its log (the terminal running it, "
                        "or docker logs), then restart it.")
    return NoAnswer(f"{method} {path} failed: {_shorten(str(error), 100)}",
                    "Check the URL and that the back-end is running.")


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
            f"{route} answered {answer.status} with a web page, not JSON",
            "Point the check at the API itself (port 8000, not the front-end's 8501); in a codespace, make the port "
            "public (Ports tab) or check from inside it with http://localhost:8000.",
        )
    media_type = answer.content_type.split(";")[0].strip() or "a body"
    return _fail(
        f"{route} answered {answer.status} with {media_type}, not JSON ({_shorten(answer.text, 60) or 'empty'})",
        "Answer JSON: return a dict or a pydantic model from the route, and FastAPI encodes it.",
    )


def _unexpected(answer: Answer, route: str, missing_route_fix: str) -> Outcome:
    """A failure for an answer that is not the one expected, with the fix that fits its status."""
    if answer.location:
        return _fail(
            f"{route} answered {answer.status}, a redirect to {_shorten(answer.location, 100)}",
            "Give the address the server really answers at (https:// if it redirects there); a codespace port that "
            "redirects to a login page must be made public (Ports tab) to be reached from outside.",
        )
    if answer.status in (404, 405):
        return _fail(f"no {route} route ({answer.shown()})", missing_route_fix)
    if answer.status == 503:
        return _fail(
            f"{route} answered {answer.shown()}",
            "The server cannot serve the model now: read the detail above; wait for it to load, or make its weights "
            "available where the server runs.",
        )
    if answer.status == 500 and answer.text.strip() == "Internal Server Error":
        # Starlette's own answer when a route raises: the app crashed, no proxy is involved.
        return _fail(
            f"{route} crashed on the server ({answer.shown()})",
            "The route raised an exception on a valid request: the traceback is in the server's log (the terminal "
            "running it, or docker logs).",
        )
    if answer.status >= 500 and not answer.is_json:
        return _fail(
            f"{route} answered {answer.shown()} from something in front of the API",
            "A proxy answers but the back-end behind it does not: start the back-end (or read its log), then check "
            "again.",
        )
    if answer.status >= 500:
        return _fail(
            f"{route} failed on the server ({answer.shown()})",
            "The server crashed on a valid request: the traceback is in its log (the terminal running it, or "
            "docker logs).",
        )
    if 400 <= answer.status < 500:
        return _fail(
            f"{route} refused a valid request ({answer.shown()})",
            "Accept the contract's request as it is: read the detail above and compare your route with the "
            "README's table.",
        )
    if not answer.is_json:
        return _not_json(answer, route)
    return _fail(f"{route} answered {answer.status} {_shorten(json.dumps(answer.body), 80)}", missing_route_fix)


def prediction_problems(body: Any, picture: Picture, model_asked: str | None = None) -> list[str]:
    """What is wrong with a prediction's answer, by the contract's shape (never by its classes); empty when right."""
    if not isinstance(body, dict):
        return ["the answer is not a JSON object"]
    problems = [
        f"no '{name}' field" if name not in body else f"'{name}' is not {kind_name}"
        for name, (kinds, kind_name) in _PREDICTION_FIELDS.items()
        if name not in body or not isinstance(body[name], kinds) or isinstance(body[name], bool)
    ]
    if model_asked and isinstance(body.get("model"), str) and body["model"] != model_asked:
        problems.append(f"asked for model '{model_asked}', the answer says '{body['model']}'")
    for name, expected in (("image_width", picture.width), ("image_height", picture.height)):
        if name in body and body[name] != expected:
            problems.append(f"'{name}' is {body[name]}, the picture's is {expected}")
    for index, detection in enumerate(body.get("detections") if isinstance(body.get("detections"), list) else []):
        problem = _detection_problem(detection, picture)
        if problem:
            problems.append(f"detection {index}: {problem}")
            break  # one wrong detection says enough
    return problems


def _detection_problem(detection: Any, picture: Picture) -> str | None:
    if not isinstance(detection, dict):
        return "not a JSON object"
    missing = [name for name in (*_BOX_FIELDS, "class_name", "confidence") if name not in detection]
    if missing:
        return f"no {', '.join(missing)}"
    numbers = [detection[name] for name in (*_BOX_FIELDS, "confidence")]
    if not all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in numbers):
        return "coordinates and confidence must be numbers"
    if not isinstance(detection["class_name"], str):
        return "class_name must be a string"
    x_min, y_min, x_max, y_max, confidence = numbers
    if not 0.0 <= confidence <= 1.0:
        return f"confidence {confidence} is not between 0 and 1"
    if x_min > x_max or y_min > y_max:
        return f"box {[x_min, y_min, x_max, y_max]} has its corners swapped"
    margin = _BOX_TOLERANCE_PIXELS
    if min(x_min, y_min) < -margin or x_max > picture.width + margin or y_max > picture.height + margin:
        return (f"box {[round(v, 1) for v in (x_min, y_min, x_max, y_max)]} is outside the "
                f"{picture.width}x{picture.height} picture (boxes are in the pixels of the picture sent)")
    return None


_PREDICTION_FIX = (
    "Answer {\"detections\": [{\"x_min\", \"y_min\", \"x_max\", \"y_max\", \"class_name\", \"confidence\"}], "
    "\"time\", \"model\"}, with boxes in the pixels of the picture sent, as the README's contract says."
)


def _prediction_result(probe: Probe, answer: Answer, route: str, missing_route_fix: str) -> Outcome:
    """The verdict on one prediction of the test picture; remembers the route and the model when it worked."""
    if answer.status != 200:
        return _unexpected(answer, route, missing_route_fix)
    if not answer.is_json:
        return _not_json(answer, route)
    problems = prediction_problems(answer.body, probe.picture, probe.model)
    if problems:
        return _fail(f"the answer does not follow the contract: {'; '.join(problems)}", _PREDICTION_FIX)
    probe.prediction_route = probe.prediction_route or route.split()[-1]
    probe.answered_model = probe.answered_model or answer.body["model"]
    count = len(answer.body["detections"])
    return _pass(f"{count} detection{'s' * (count != 1)} by '{answer.body['model']}' in {answer.seconds * 1000:.0f} ms")


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
        "Add GET /health answering 200 {\"status\": \"ok\"}: it is how Docker, a VM and this check know the process "
        "is alive.",
    )


def check_ready(probe: Probe) -> Outcome:
    answer = probe.call("GET", "/ready", send_key=False)
    if answer.status == 200 and isinstance(answer.body, dict) and answer.body.get("ready") is True:
        probe.ready = True
        probe.default_model = answer.body.get("default_model") or None
        return _pass(f"ready ({_shorten(answer.detail or 'default model loaded', 80)})")
    if answer.status == 503:
        probe.ready = False
        return _fail(
            f"not ready yet ({answer.shown()})",
            "The process is up but its model is not loaded: wait a minute and check again; if it stays 503, the "
            "reason is in the server's log.",
        )
    return _unexpected(
        answer, "GET /ready",
        "Add GET /ready answering 503 until the model is loaded and 200 {\"ready\": true} after, so Docker's "
        "HEALTHCHECK and load balancers send requests only to a server that can answer them.",
    )


def check_models(probe: Probe) -> Outcome:
    answer = probe.call("GET", "/models")
    if answer.status != 200:
        return _unexpected(answer, "GET /models", "Add GET /models listing the models the server can serve.")
    if not answer.is_json:
        return _not_json(answer, "GET /models")
    models = answer.body if isinstance(answer.body, list) else []
    described = [item for item in models if isinstance(item, dict) and isinstance(item.get("name"), str)]
    names = [item for item in models if isinstance(item, str)] or [item["name"] for item in described]
    if not names:
        return _fail(f"GET /models answered {_shorten(json.dumps(answer.body), 80)}: no model listed",
                     "Answer a JSON list with one entry per model the server can serve.")
    if len(described) != len(models):
        # Bare names (the original lab's answer): predict with the first, so the checks after this one still run.
        probe.model = probe.default_model if probe.default_model in names else names[0]
        return _fail(
            f"GET /models lists bare names {_shorten(json.dumps(names), 60)}: no classes, no availability, no default",
            "Describe each model, e.g. {\"name\": \"shapes\", \"classes\": [...], \"available\": true, \"default\": "
            "true}, so a client can pick one without guessing.",
        )
    defaults = [item for item in described if item.get("default") is True]
    chosen = defaults[0] if defaults else next(
        (item for item in described if item["name"] == probe.default_model), described[0]
    )
    probe.model = chosen["name"]
    listed = f"{len(described)} model{'s' * (len(described) != 1)}"
    if not defaults:
        return _fail(f"{listed}, none marked \"default\": true",
                     "Mark the model used when a request names none with \"default\": true in GET /models.")
    if chosen.get("available") is False:
        return _fail(
            f"{listed}; the default, '{chosen['name']}', is not available "
            f"({_shorten(chosen.get('reason') or 'no reason given', 80)})",
            "Make the default model's weights available where the server runs (baked into the image, or "
            "downloadable), or choose another default (WORKSHOP_DEFAULT_MODEL).",
        )
    return _pass(f"{listed}; default: '{chosen['name']}'")


def check_predict_base64(probe: Probe) -> Outcome:
    answer = probe.predict("/predict")
    return _prediction_result(
        probe, answer, "POST /predict",
        "Add POST /predict taking {\"model\": name, \"image\": base64 of the file} and answering the detections.",
    )


def check_predict_upload(probe: Probe) -> Outcome:
    answer = probe.predict("/predict/upload")
    return _prediction_result(
        probe, answer, "POST /predict/upload",
        "Add POST /predict/upload taking the picture as a multipart file (FastAPI's UploadFile), so a browser or "
        "`curl -F file=@cat.jpg` can send a file without base64.",
    )


def check_bad_image(probe: Probe) -> Outcome:
    answer = probe.predict("/predict", _NOT_A_PICTURE)
    if answer.status < 300:
        return _fail(
            f"POST /predict answered {answer.status} to bytes that are not a picture",
            "Decode the picture before running the model and answer 422 with a detail saying the file is not "
            "an image.",
        )
    if answer.status >= 500 and answer.status != 503:
        return _fail(
            f"bytes that are not a picture crashed the server ({answer.shown()})",
            "Catch the decoding error (Pillow's UnidentifiedImageError) and answer 422 with a detail that says "
            "the file is not an image, instead of a 500.",
        )
    if not 400 <= answer.status < 500 or answer.status in (404, 405):
        return _unexpected(answer, "POST /predict", "Add POST /predict (see the base64 check above).")
    if not answer.is_json or not answer.detail.strip():
        return _fail(
            f"POST /predict answered {answer.status} without saying why",
            "Say why in the answer: raise HTTPException(status_code=422, detail=\"The file is not an image.\").",
        )
    return _pass(answer.shown())


def check_api_key(probe: Probe) -> Outcome:
    if not probe.api_key:
        return _skip("no key given (pass --api-key KEY to check that the server refuses predictions without it)")
    answers = {
        "no key": probe.predict("/predict", send_key=False),
        "a wrong key": probe.predict("/predict", key=f"not-{probe.api_key}"),
    }
    wrong = {label: answer for label, answer in answers.items() if answer.status != 401}
    if not wrong:
        return _pass("POST /predict answers 401 without the key and with a wrong one")
    seen = "; ".join(f"with {label}, POST /predict answered {answer.status}" for label, answer in wrong.items())
    if any(answer.status < 300 for answer in wrong.values()):
        return _fail(
            f"{seen}: anyone can use this server",
            "Start the server with WORKSHOP_API_KEY set (the VM's start-up script does it), or make your own server "
            "answer 401 when the X-API-Key header is missing or wrong.",
        )
    return _fail(seen, "Answer 401 (not another error) when the X-API-Key header is missing or wrong, so a client "
                       "knows that the key is what it lacks.")


def check_latency(probe: Probe) -> Outcome:
    if probe.prediction_route is None:
        return _skip("not run: no prediction succeeded")
    answer = probe.predict(probe.prediction_route)
    if answer.status != 200:
        return _unexpected(answer, f"POST {probe.prediction_route}", "See the prediction checks above.")
    probe.latency = answer.seconds
    server_time = answer.body.get("time") if isinstance(answer.body, dict) else None
    on_server = f" (server: {server_time * 1000:.0f} ms)" if isinstance(server_time, (int, float)) else ""
    detail = f"{answer.seconds * 1000:.0f} ms round trip{on_server}"
    if answer.seconds > probe.latency_budget:
        return _fail(
            f"{detail}, over the {probe.latency_budget:g} s budget",
            "Load the model once when the server starts, not in every request, and give the server enough CPU "
            "for its model (a larger machine type, or a smaller model).",
        )
    return _pass(detail)


@dataclass(frozen=True)
class Check:
    """One line of the report: a stable ``name``, a ``title`` for people, and the function that runs it.

    ``needs_key``: the check goes through the API key, so it is not run once the server has refused it.
    """

    name: str
    title: str
    run: Callable[[Probe], Outcome] = field(repr=False)
    needs_key: bool = True


#: The workshop's contract, in the order a client meets it.
CHECKS: tuple[Check, ...] = (
    Check("health", "health (GET /health)", check_health, needs_key=False),
    Check("ready", "readiness (GET /ready)", check_ready, needs_key=False),
    Check("models", "models (GET /models)", check_models),
    Check("predict_base64", "predict, base64 (POST /predict)", check_predict_base64),
    Check("predict_upload", "predict, upload (POST /predict/upload)", check_predict_upload),
    Check("bad_image", "a bad image gets a 4xx", check_bad_image),
    Check("api_key", "no key, no prediction (401)", check_api_key, needs_key=False),
    Check("latency", "latency of one prediction", check_latency),
)


def _key_refused_result(probe: Probe, refusal: KeyRefused) -> Outcome:
    probe.key_refused = True
    if probe.api_key:
        return _fail(
            f"the server refused the key ({refusal.answer.shown()})",
            "Give the key the server was started with (its WORKSHOP_API_KEY; `workshop gcp deploy` printed it once).",
        )
    return _fail(
        f"the server needs an API key ({refusal.answer.shown()})",
        "Give the server's key: workshop check URL --api-key KEY (or the roster's key column).",
    )


def _run_check(check: Check, probe: Probe) -> Outcome:
    if probe.stopped:
        return _skip(f"not run: {probe.stopped}")
    if probe.key_refused and check.needs_key:
        return _skip("not run: the server refused the key" if probe.api_key else "not run: the server needs an API key")
    try:
        return check.run(probe)
    except NoAnswer as error:
        probe.stopped = "the server did not answer" if probe.reachable else "nothing answered"
        return _fail(error.detail, error.fix)
    except KeyRefused as refusal:
        return _key_refused_result(probe, refusal)
    except Exception as error:  # noqa: BLE001 - a grader reports what it could not judge, it does not crash
        return _fail(f"the check could not judge the answer ({type(error).__name__}: {_shorten(str(error), 100)})",
                     "Compare the server's answers with the README's contract; if they match, report this as a bug.")


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
        results = [CheckResult(check.name, check.title, *_run_check(check, probe)) for check in CHECKS]
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
