"""Notebook 02, "Your first API": start the student's server, and check its routes over real HTTP.

The student writes ``my_api/main.py`` (a ``%%writefile`` cell), serves it with
``uvicorn my_api.main:app --port PORT``, then calls it with ``curl`` and ``requests``.
The checkpoints here send the same requests any client would: they never import the
student's file, so what they grade is what a browser, ``curl`` or ``workshop check`` would see.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import requests
from PIL import Image

from workshop.check.contract import Picture, prediction_problems
from workshop.checkpoints import CheckpointFailed, expect, fail, guarded, passed
from workshop.checkpoints.servers import start_in_background
from workshop.services import BackgroundService

#: Where the student's file lives, relative to the project's root (a scratch folder, ignored by git).
STUDENT_FILE = Path("my_api/main.py")
#: Seconds a checkpoint waits for one answer (the first prediction loads the model).
TIMEOUT_SECONDS = 60.0
_RESTART_EN = "rerun the %%writefile cell, then the cell that starts uvicorn"
_RESTART_FR = "relancez la cellule %%writefile, puis celle qui démarre uvicorn"


def start_server(
    command: Sequence[str],
    url: str,
    *,
    name: str = "my_api",
    ready_path: str = "/docs",
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    timeout: float = 120.0,
) -> BackgroundService:
    """Run ``command`` in the background, as in a second terminal; print it, wait for ``ready_path``, print its log.

    ``/docs`` is the default wait, not ``/health``: FastAPI serves it for any app, so a server whose ``/health``
    is still an exercise starts all the same (the checkpoint then says what is wrong with the route). The log
    printed leaves out the requests of that wait. The log is ``.workshop-logs/NAME.log`` (or in ``log_dir``).
    """
    service = start_in_background(
        command, url, name=name, ready_path=ready_path, env=env, log_dir=log_dir, timeout=timeout,
        failure=(
            f"The server did not start: read its log above (a typo in {STUDENT_FILE}?), fix it, then {_RESTART_EN}.",
            f"Le serveur n'a pas démarré : lisez son journal ci-dessus (une faute dans {STUDENT_FILE} ?), corrigez, "
            f"puis {_RESTART_FR}.",
        ),
    )
    print(startup_log(service, ready_path))
    return service


def startup_log(service: BackgroundService, ready_path: str) -> str:
    """The server's log so far, without the requests of the wait for ``ready_path`` (dozens of them, all alike)."""
    probes = (f'"GET {ready_path} HTTP', f'"path": "{ready_path}"')
    return "\n".join(line for line in service.log().splitlines() if not any(probe in line for probe in probes))


def _request(method: str, url: str, **kwargs: object) -> requests.Response:
    """One HTTP request; nothing listening becomes one sentence saying to start the server."""
    try:
        return requests.request(method, url, timeout=TIMEOUT_SECONDS, **kwargs)
    except requests.ConnectionError:
        raise CheckpointFailed(
            f"Nothing answers at {url}: run the cell that starts uvicorn (and read its log).",
            f"Rien ne répond à {url} : exécutez la cellule qui démarre uvicorn (et lisez son journal).",
        ) from None


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:120]
    return str(body.get("detail", body))[:120] if isinstance(body, dict) else json.dumps(body)[:120]


def health_route(url: str) -> None:
    """``GET /health`` answers 200 and ``{"status": "ok"}``."""

    def check() -> None:
        response = _request("GET", f"{url}/health")
        expect(
            response.status_code != 404,
            f"GET /health answers 404: your file has no /health route; write it with @app.get(\"/health\"), "
            f"then {_RESTART_EN}.",
            f"GET /health répond 404 : votre fichier n'a pas de route /health ; écrivez-la avec "
            f"@app.get(\"/health\"), puis {_RESTART_FR}.",
        )
        expect(
            response.status_code == 200,
            f"GET /health answers {response.status_code}: make health() return {{\"status\": \"ok\"}} (the "
            f"server's log says why), then {_RESTART_EN}.",
            f"GET /health répond {response.status_code} : health() doit renvoyer {{\"status\": \"ok\"}} (le journal "
            f"du serveur dit pourquoi), puis {_RESTART_FR}.",
        )
        body = response.json() if "json" in response.headers.get("content-type", "") else response.text
        expect(
            body == {"status": "ok"},
            f"GET /health answers {json.dumps(body)[:80]}: return exactly {{\"status\": \"ok\"}}, then {_RESTART_EN}.",
            f"GET /health répond {json.dumps(body)[:80]} : renvoyez exactement {{\"status\": \"ok\"}}, puis "
            f"{_RESTART_FR}.",
        )

    guarded(check, "Checking GET /health failed", "La vérification de GET /health a échoué")
    passed("GET /health answers 200 {\"status\": \"ok\"}.", "GET /health répond 200 {\"status\": \"ok\"}.")


def _picture(path: Path) -> Picture:
    data = Path(path).read_bytes()
    with Image.open(path) as image:
        return Picture(data, image.width, image.height)


def predict_route(url: str, model: str, picture_path: str | Path) -> None:
    """``POST /predict`` detects on a real picture with the contract's answer, and refuses bytes that are not one."""

    def check() -> None:
        picture = _picture(Path(picture_path))
        payload = {"model": model, "image": base64.b64encode(picture.data).decode("ascii")}
        response = _request("POST", f"{url}/predict", json=payload)
        expect(
            response.status_code != 500,
            f"POST /predict crashed (500): complete the decoding and the model call in predict() (the traceback is "
            f"in the server's log, .workshop-logs/my_api.log), then {_RESTART_EN}.",
            f"POST /predict a planté (500) : complétez le décodage et l'appel du modèle dans predict() (la trace "
            f"est dans le journal du serveur, .workshop-logs/my_api.log), puis {_RESTART_FR}.",
        )
        expect(
            response.status_code == 200,
            f"POST /predict refused a real picture ({response.status_code}: {_detail(response)}): decode it with "
            f"base64.b64decode, then Image.open(io.BytesIO(...)), then {_RESTART_EN}.",
            f"POST /predict refuse une vraie image ({response.status_code} : {_detail(response)}) : décodez-la avec "
            f"base64.b64decode, puis Image.open(io.BytesIO(...)), puis {_RESTART_FR}.",
        )
        problems = prediction_problems(response.json(), picture, model)
        expect(
            not problems,
            f"POST /predict's answer is not the contract's: {'; '.join(problems)}; build it from the model's result.",
            f"La réponse de POST /predict ne suit pas le contrat : {'; '.join(problems)} ; construisez-la à partir "
            f"du résultat du modèle.",
        )
        bad = _request("POST", f"{url}/predict", json={"model": model, "image": base64.b64encode(b"hello").decode()})
        expect(
            400 <= bad.status_code < 500,
            f"Bytes that are not a picture get {bad.status_code}, not a 4xx: wrap the decoding in try/except and "
            f"raise HTTPException(status_code=400, detail=...), then {_RESTART_EN}.",
            f"Des octets qui ne sont pas une image reçoivent {bad.status_code}, pas un 4xx : entourez le décodage "
            f"d'un try/except qui lève HTTPException(status_code=400, detail=...), puis {_RESTART_FR}.",
        )

    guarded(check, "Checking POST /predict failed", "La vérification de POST /predict a échoué")
    passed(
        "POST /predict finds objects in a picture and answers 4xx to bytes that are not one.",
        "POST /predict trouve des objets dans une image et répond 4xx à des octets qui n'en sont pas une.",
    )


def curl_answer(path: str | Path, model: str) -> None:
    """The file ``curl -o`` wrote holds a prediction by ``model``."""
    path = Path(path)
    expect(
        path.is_file() and path.stat().st_size > 0,
        f"No {path}: write the curl command that POSTs payload.json to /predict, with -o {path}.",
        f"Pas de {path} : écrivez la commande curl qui envoie payload.json à /predict en POST, avec -o {path}.",
    )
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise CheckpointFailed(
            f"{path} is not JSON: send the request to /predict (not /docs), with -X POST.",
            f"{path} n'est pas du JSON : envoyez la requête à /predict (pas /docs), avec -X POST.",
        ) from None
    if isinstance(body, dict) and "detail" in body:
        detail = json.dumps(body["detail"])[:120]
        fail(
            f"The server refused the request ({detail}): send the header Content-Type: application/json and the "
            f"body with -d @my_api/payload.json.",
            f"Le serveur a refusé la requête ({detail}) : envoyez l'en-tête Content-Type: application/json et le "
            f"corps avec -d @my_api/payload.json.",
        )
    expect(
        isinstance(body, dict) and isinstance(body.get("detections"), list) and body.get("model") == model,
        f"{path} is not a prediction by '{model}': send payload.json to /predict.",
        f"{path} n'est pas une prédiction de « {model} » : envoyez payload.json à /predict.",
    )
    count = len(body["detections"])
    passed(f"curl got {count} detections by '{model}'.", f"curl a reçu {count} détections de « {model} ».")


def _as_code(value: object) -> object:
    """``"422"`` counts as ``422``: the student means the same."""
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return value


#: Why each bad request of the notebook gets its status code, said when a prediction misses.
REASONS: dict[str, tuple[str, str]] = {
    "missing_image": (
        "FastAPI checks the body against PredictRequest before your function runs, and answers 422 itself",
        "FastAPI vérifie le corps avec PredictRequest avant d'appeler votre fonction, et répond 422 lui-même",
    ),
    "not_a_picture": (
        "the except around the decoding raises the HTTPException you wrote",
        "le except autour du décodage lève l'HTTPException que vous avez écrite",
    ),
    "unknown_model": (
        "predict() checks the name against WEIGHTS first and raises HTTPException(status_code=404)",
        "predict() compare d'abord le nom à WEIGHTS et lève HTTPException(status_code=404)",
    ),
}


def predicted_status_codes(prediction: object, observed: object) -> None:
    """The student's predicted status codes (``{case: code}``) compared with what the server answered.

    Any complete prediction passes: the guess was written before the requests were sent, and the sentence says,
    for each wrong code, why the server answered what it did.
    """
    expect(
        isinstance(observed, dict) and bool(observed),
        "No answers to compare with: run the cell that sends the bad requests first.",
        "Aucune réponse à comparer : exécutez d'abord la cellule qui envoie les mauvaises requêtes.",
    )
    assert isinstance(observed, dict)
    cases = ", ".join(observed)
    expect(
        isinstance(prediction, dict) and set(prediction) == set(observed)
        and all(isinstance(_as_code(code), int) for code in prediction.values()),
        f"Write your prediction first: set my_prediction to a dict with one status code for each of {cases}, "
        f"e.g. {{\"missing_image\": 400, ...}}.",
        f"Notez d'abord votre pronostic : donnez à my_prediction un dict avec un code de statut pour chacun de "
        f"{cases}, par exemple {{\"missing_image\": 400, ...}}.",
    )
    assert isinstance(prediction, dict)
    wrong_en, wrong_fr = [], []
    for case, code in observed.items():
        if _as_code(prediction[case]) != code:
            en, fr = REASONS.get(case, ("read the server's detail", "lisez le détail donné par le serveur"))
            wrong_en.append(f"{case} got {code}, not {prediction[case]}: {en}")
            wrong_fr.append(f"{case} a reçu {code}, pas {prediction[case]} : {fr}")
    right = len(observed) - len(wrong_en)
    if not wrong_en:
        passed(f"All {len(observed)} predictions right.", f"Vos {len(observed)} pronostics sont justes.")
        return
    passed(
        f"{right} of {len(observed)} predictions right; " + "; ".join(wrong_en) + ".",
        f"{right} pronostic{'s' if right > 1 else ''} juste{'s' if right > 1 else ''} sur {len(observed)} ; "
        + " ; ".join(wrong_fr) + ".",
    )
