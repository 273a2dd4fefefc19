"""What the `workshop` commands print reads French in a French notebook (``WORKSHOP_LANG=fr``, which
``go_to_project_root`` sets and the commands the notebook starts inherit), and stays English elsewhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from workshop.checkpoints import CheckpointFailed, deployment_passes
from workshop.lab import describe_timings
from workshop.loadtest.runner import StepResult, failure_hint, format_table
from workshop.services import BackgroundService, start_backend

from support import refused_port  # tests/ is on sys.path under pytest

STEP = StepResult(users=2, seconds=3, requests=40, failures=3, p50_ms=25.0, p95_ms=40.0, p99_ms=55.0,
                  requests_per_s=13.3,
                  errors={"ConnectionError: refused": 3})


@pytest.fixture(params=["en", "fr"])
def language(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("WORKSHOP_LANG", request.param)
    return request.param


def test_the_load_tests_table_and_hint_are_in_the_notebooks_language(language: str) -> None:
    table, hint = format_table([STEP]), failure_hint([STEP], "http://127.0.0.1:9")
    if language == "fr":
        assert table.splitlines()[0].split() == ["util.", "requêtes", "échecs", "p50", "ms", "p95", "ms", "p99", "ms",
                                                 "req./s"]
        assert "échec 3 fois : ConnectionError: refused" in table
        assert hint == ("3 requêtes sur 40 ont échoué ; rien n'a répondu à http://127.0.0.1:9 : le back-end "
                        "tourne-t-il, et l'adresse est-elle juste ?")
    else:
        assert table.splitlines()[0].split()[:3] == ["users", "requests", "failures"]
        assert "failed 3x: ConnectionError: refused" in table
        assert hint.startswith("3 of 40 requests failed; nothing answered at http://127.0.0.1:9")


def test_the_timings_of_notebook_01_are_in_the_notebooks_language(language: str) -> None:
    line = describe_timings([0.4, 0.1, 0.12, 0.11])
    expected = {
        "en": "first call 400 ms, then median 110 ms (min 100, max 120) over 3 calls",
        "fr": "premier appel 400 ms, puis médiane 110 ms (min 100, max 120) sur 3 appels",
    }
    assert line == expected[language]


# ------------------------------------------------------------------------------------------------ workshop check
KEY = "french-notebook-key-5d1e"

#: `workshop check` against a back-end started with a key, given the key, then not: in English (every command's
#: default, unchanged) and as a French notebook's %%bash cell runs it. Timings are masked (N), not their decimal mark.
EXPECTED_REPORTS = {
    ("en", True): """\
Checking URL
  ✓  health (GET /health)                    200 {"status": "ok", "version": "0.1.0"}
  ✓  readiness (GET /ready)                  ready (Default model loaded.)
  ✓  models (GET /models)                    4 models; default: 'shapes'
  ✓  predict, base64 (POST /predict)         4 detections by 'shapes' in N ms
  ✓  predict, upload (POST /predict/upload)  4 detections by 'shapes' in N ms
  ✓  a bad image gets a 4xx                  422: The file is not an image this server can read (png, jpeg, webp, tiff, bmp, gif).
  ✓  no key, no prediction (401)             POST /predict answers 401 without the key and with a wrong one
  ✓  latency of one prediction               N ms round trip (server: N ms)
All 8 checks passed (N.N s).
""",
    ("en", False): """\
Checking URL
  ✓  health (GET /health)                    200 {"status": "ok", "version": "0.1.0"}
  ✓  readiness (GET /ready)                  ready (Default model loaded.)
  ✗  models (GET /models)                    the server needs an API key (401: This server needs an API key: send it in the X-API-Key header.)
     → Give the server's key: workshop check URL --api-key KEY (or the roster's key column).
  –  predict, base64 (POST /predict)         not run: the server needs an API key
  –  predict, upload (POST /predict/upload)  not run: the server needs an API key
  –  a bad image gets a 4xx                  not run: the server needs an API key
  –  no key, no prediction (401)             no key given (pass --api-key KEY to check that the server refuses predictions without it)
  –  latency of one prediction               not run: the server needs an API key
2/3 checks passed; to fix: models (N.N s).
""",
    ("fr", True): """\
Vérification de URL
  ✓  santé (GET /health)                            200 {"status": "ok", "version": "0.1.0"}
  ✓  disponibilité (GET /ready)                     prêt (Default model loaded.)
  ✓  modèles (GET /models)                          4 modèles ; par défaut : 'shapes'
  ✓  prédiction en base64 (POST /predict)           4 détections par 'shapes' en N ms
  ✓  prédiction par fichier (POST /predict/upload)  4 détections par 'shapes' en N ms
  ✓  une image invalide reçoit un 4xx               422: The file is not an image this server can read (png, jpeg, webp, tiff, bmp, gif).
  ✓  sans clé, pas de prédiction (401)              POST /predict répond 401 sans la clé comme avec une mauvaise
  ✓  latence d'une prédiction                       N ms aller-retour (serveur : N ms)
Les 8 contrôles passent (N,N s).
""",
    ("fr", False): """\
Vérification de URL
  ✓  santé (GET /health)                            200 {"status": "ok", "version": "0.1.0"}
  ✓  disponibilité (GET /ready)                     prêt (Default model loaded.)
  ✗  modèles (GET /models)                          le serveur demande une clé d'API (401: This server needs an API key: send it in the X-API-Key header.)
     → Donnez la clé du serveur : workshop check URL --api-key CLÉ (ou la colonne key de la liste de la classe).
  –  prédiction en base64 (POST /predict)           non lancé : le serveur demande une clé d'API
  –  prédiction par fichier (POST /predict/upload)  non lancé : le serveur demande une clé d'API
  –  une image invalide reçoit un 4xx               non lancé : le serveur demande une clé d'API
  –  sans clé, pas de prédiction (401)              aucune clé donnée (ajoutez --api-key CLÉ pour vérifier que le serveur refuse les prédictions sans elle)
  –  latence d'une prédiction                       non lancé : le serveur demande une clé d'API
2/3 contrôles passent ; à corriger : models (N,N s).
""",
}


@pytest.fixture(scope="module")
def french_backend(tmp_path_factory: pytest.TempPathFactory, bundled_exports: Path) -> Iterator[BackgroundService]:
    """``workshop serve`` as a French notebook starts it: ``WORKSHOP_LANG=fr`` inherited, a key as on the VM.

    ``bundled_exports`` first: the engine choice is cached (in English, as a file), as on a machine that served before.
    """
    service = start_backend(env={"WORKSHOP_API_KEY": KEY, "WORKSHOP_LANG": "fr"},
                            log_dir=tmp_path_factory.mktemp("french-backend-logs"))
    yield service
    service.stop()


def workshop(*args: str, language: str) -> subprocess.CompletedProcess:
    """A ``workshop`` command as a notebook's ``%%bash`` cell runs it, in that notebook's language."""
    return subprocess.run([sys.executable, "-m", "workshop", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "WORKSHOP_LANG": language})


def masked(report: str, url: str) -> str:
    """The report with its URL and its timings masked; the decimal mark stays (0.4 in English, 0,4 in French)."""
    report = re.sub(r"\d+ ms", "N ms", report.replace(url, "URL"))
    return re.sub(r"\(\d+([.,])\d s\)", r"(N\1N s)", report)


@pytest.mark.parametrize("with_key", [True, False], ids=["key", "no-key"])
def test_workshop_check_prints_its_report_in_the_notebooks_language(
    french_backend: BackgroundService, language: str, with_key: bool
) -> None:
    result = workshop("check", french_backend.url, *(["--api-key", KEY] if with_key else []), language=language)
    assert result.returncode == (0 if with_key else 1), result.stderr
    assert masked(result.stdout, french_backend.url) == EXPECTED_REPORTS[language, with_key]


def test_workshop_check_says_in_french_that_nothing_answers(language: str) -> None:
    with refused_port() as port:
        result = workshop("check", f"http://127.0.0.1:{port}", language=language)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    if language == "fr":
        assert lines[1].split()[1:3] == ["santé", "(GET"]
        assert f"impossible de se connecter à http://127.0.0.1:{port} : " in lines[1]
        assert lines[2].strip().startswith("→ Rien n'écoute à cette adresse. Démarrez le back-end")
        assert all(line.endswith("non lancé : rien n'a répondu") for line in lines[3:-1])
        assert re.fullmatch(r"Injoignable : aucun contrôle n'a pu être lancé \(\d+,\d s\)\.", lines[-1])
    else:
        assert f"cannot connect to http://127.0.0.1:{port}: " in lines[1]
        assert all(line.endswith("not run: nothing answered") for line in lines[3:-1])
        assert re.fullmatch(r"Unreachable: no check could run \(\d+\.\d s\)\.", lines[-1])


def test_a_french_notebooks_checkpoint_grades_in_french(
    french_backend: BackgroundService, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``deployment_passes``: what notebooks 02, 04, 05 and 06 print, from the kernel itself."""
    monkeypatch.setenv("WORKSHOP_LANG", "fr")
    deployment_passes(french_backend.url, KEY, what="workshop serve")
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"Vérification de {french_backend.url}"
    assert printed[-1] == "✅ workshop serve passe 8/8 contrôles."
    with pytest.raises(CheckpointFailed) as failed:
        deployment_passes(french_backend.url, None, what="Votre VM")
    assert str(failed.value) == ("Votre VM échoue à « modèles (GET /models) » : Donnez la clé du serveur : "
                                 "workshop check URL --api-key CLÉ (ou la colonne key de la liste de la classe).")


# ------------------------------------------------------------------------------------------------ workshop serve
def test_workshop_serve_logs_in_the_language_of_the_notebook_that_started_it(
    french_backend: BackgroundService, live_server: BackgroundService
) -> None:
    """The server a French notebook starts logs its model choice in French; one started elsewhere, in English."""
    french = french_backend.log()
    assert "Modèle par défaut : shapes (hors ligne)" in french
    assert ("Modèle public par défaut yolo26n écarté : Les poids de 'yolo26n' ne sont pas dans "
            in french)
    # The choice was timed and cached before this server started: the cache's English words are not what it logs.
    assert re.search(r"Moteur de shapes : \w+, le plus rapide des deux sur ce CPU \(onnx \d+,\d ms, "
                     r"openvino \d+,\d ms\)", french), french
    assert re.search(r"Modèle shapes chargé sur \w+ depuis \S+ en \d+,\d\d s", french)
    assert re.search(r"Modèle par défaut shapes préchauffé en \d+,\d\d s", french)
    assert not re.search(r"Default model|Engine of|Loaded model|warmed up", french)

    english = live_server.log()
    assert "Default model: shapes (offline)" in english
    assert re.search(r"Loaded model shapes on \w+ from \S+ in \d+\.\d\d s", english)
    assert re.search(r"Default model shapes warmed up in \d+\.\d\d s", english)
    assert "Modèle" not in english


def test_the_api_answers_in_english_whatever_language_its_server_logs_in(french_backend: BackgroundService) -> None:
    """Only the log follows the notebook: a client reads the same API everywhere."""
    headers = {"X-API-Key": KEY}
    models = {model["name"]: model for model in
              requests.get(f"{french_backend.url}/models", headers=headers, timeout=10).json()}
    assert models["yolo26n"]["reason"].startswith("The weights of 'yolo26n' are not in ")
    answer = requests.post(f"{french_backend.url}/predict/upload", headers=headers, timeout=10,
                           files={"file": ("notes.txt", b"not a picture", "text/plain")})
    assert answer.status_code == 422 and answer.json()["detail"].startswith("The file is not an image")


# ------------------------------------------------------------------------------------------- the other commands
def test_the_other_commands_errors_are_in_the_notebooks_language(language: str) -> None:
    with refused_port() as port:
        health = workshop("healthcheck", f"http://127.0.0.1:{port}/ready", language=language)
    cap = workshop("gcp", "deploy", "--target", "cloud-run", "--project", "my-workshop-project", "--student", "ada",
                   "--max-instances", "0", language=language)
    assert health.returncode == 1 and cap.returncode == 1
    if language == "fr":
        assert health.stderr.startswith(f"contrôle de santé en échec : http://127.0.0.1:{port}/ready : ")
        assert cap.stderr.startswith("erreur : --max-instances 0 : donnez un nombre de 1 à 100")
    else:
        assert health.stderr.startswith(f"unhealthy: http://127.0.0.1:{port}/ready: ")
        assert cap.stderr.startswith("error: --max-instances 0: give a number from 1 to 100")
