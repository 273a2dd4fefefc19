"""Notebook 02's checkpoints, against real uvicorn servers serving the notebook's own file.

The student's file is taken from the solution notebook's ``%%writefile`` cell: as solved (the
checkpoints pass), as the student first gets it (solutions blanked: each checkpoint fails with its
sentence), and with the classic mistakes (a wrong /health body, no ``try``/``except`` around the
decoding, a decoding that breaks every picture). Every request goes to 127.0.0.1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import REPO_ROOT
from workshop.checkpoints import CheckpointFailed
from workshop.checkpoints import first_api as check
from workshop.checkpoints.servers import shown_command
from workshop.notebook_track import source, strip_solutions
from workshop.samples import shapes_sample
from workshop.services import BackgroundService, free_port

NOTEBOOK = REPO_ROOT / "notebooks/solutions/en/02_first_api.ipynb"
WRITEFILE = "%%writefile my_api/main.py\n"
UVICORN = str(Path(sys.executable).with_name("uvicorn"))


def notebook_file() -> str:
    """The text of the ``%%writefile my_api/main.py`` cell, solutions included, without its magic line."""
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    (cell,) = [source(cell) for cell in cells if source(cell).startswith(WRITEFILE)]
    return cell


def _replaced(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the notebook's file no longer holds {old!r}"
    return text.replace(old, new)


def serve_file(folder: Path, text: str) -> BackgroundService:
    """``text`` as ``folder/my_api/main.py``, served by ``uvicorn my_api.main:app`` as the notebook does."""
    (folder / "my_api").mkdir(parents=True, exist_ok=True)
    (folder / "my_api/main.py").write_text(text.removeprefix(WRITEFILE), encoding="utf-8")
    port = free_port()
    return check.start_server(
        [UVICORN, "my_api.main:app", "--port", str(port), "--app-dir", str(folder)], f"http://127.0.0.1:{port}",
        log_dir=folder / "logs",
    )


@pytest.fixture(scope="module")
def picture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("picture") / "picture.png"
    shapes_sample(seed=0).image.save(path)
    return path


@pytest.fixture
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_LANG", "en")


def fails_with(check_call: Callable[[], None], sentence: str) -> CheckpointFailed:
    with pytest.raises(CheckpointFailed) as failure:
        check_call()
    assert sentence in str(failure.value), str(failure.value)
    return failure.value


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundService]:
    service = serve_file(tmp_path_factory.mktemp("solved"), notebook_file())
    yield service
    service.stop()


@pytest.mark.slow  # real uvicorn processes
def test_the_notebooks_file_passes_both_route_checkpoints(
    solved: BackgroundService, picture: Path, english: None, capsys: pytest.CaptureFixture[str]
) -> None:
    check.health_route(solved.url)
    check.predict_route(solved.url, "shapes", picture)
    assert capsys.readouterr().out.splitlines() == [
        '✅ GET /health answers 200 {"status": "ok"}.',
        "✅ POST /predict finds objects in a picture and answers 4xx to bytes that are not one.",
    ]


@pytest.mark.slow
def test_the_blank_file_starts_and_each_checkpoint_says_what_to_write(
    tmp_path: Path, picture: Path, english: None, capsys: pytest.CaptureFixture[str]
) -> None:
    blank = strip_solutions(notebook_file(), "en")
    assert "### BEGIN SOLUTION" not in blank and "# YOUR CODE HERE" in blank
    with serve_file(tmp_path, blank) as server:
        out = capsys.readouterr().out
        assert out.startswith(f"$ {UVICORN} my_api.main:app --port ")
        assert "Application startup complete." in out
        assert "GET /docs" not in out  # the wait's own requests are left out of the log shown
        fails_with(lambda: check.health_route(server.url), "GET /health answers 404: your file has no /health route")
        fails_with(lambda: check.predict_route(server.url, "shapes", picture), "POST /predict crashed (500)")
    assert not server.running


@pytest.mark.slow
def test_a_wrong_health_body_and_a_decoding_without_try_are_named(
    tmp_path: Path, picture: Path, english: None
) -> None:
    text = _replaced(notebook_file(), 'return {"status": "ok"}', 'return {"status": "up"}')
    text = _replaced(
        text,
        '    except Exception:\n        raise HTTPException(status_code=400, detail="The image is not a valid '
        'base64-encoded picture")\n',
        "    finally:\n        pass\n",
    )
    with serve_file(tmp_path, text) as server:
        fails_with(lambda: check.health_route(server.url), 'GET /health answers {"status": "up"}: return exactly')
        fails_with(
            lambda: check.predict_route(server.url, "shapes", picture),
            "Bytes that are not a picture get 500, not a 4xx: wrap the decoding in try/except",
        )


@pytest.mark.slow
def test_a_crashing_health_and_a_decoding_that_breaks_every_picture_are_named(
    tmp_path: Path, picture: Path, english: None
) -> None:
    text = _replaced(notebook_file(), 'return {"status": "ok"}', "return None")
    text = _replaced(text, "base64.b64decode(request.image)", "base64.b64decode(request.image[1:])")
    with serve_file(tmp_path, text) as server:
        fails_with(lambda: check.health_route(server.url), "GET /health answers 500: make health() return")
        fails_with(lambda: check.predict_route(server.url, "shapes", picture), "POST /predict refused a real picture (400")


def test_nothing_listening_is_one_sentence(picture: Path, english: None) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    fails_with(lambda: check.health_route(url), f"Nothing answers at {url}/health: run the cell that starts uvicorn")
    fails_with(lambda: check.predict_route(url, "shapes", picture), "Nothing answers at")


@pytest.mark.slow
def test_a_file_that_does_not_import_fails_to_start_with_one_sentence_under_its_log(
    tmp_path: Path, english: None, capsys: pytest.CaptureFixture[str]
) -> None:
    failure = fails_with(lambda: serve_file(tmp_path, "def health(:\n"), "The server did not start: read its log above")
    assert failure._render_traceback_() == [f"❌ {failure}"]
    assert "SyntaxError" in capsys.readouterr().out


def test_the_command_is_shown_with_its_variables_as_typed() -> None:
    assert shown_command(["workshop", "serve", "--port", "8001"], {"WORKSHOP_API_KEY": "$API_KEY"}) == (
        "WORKSHOP_API_KEY=$API_KEY workshop serve --port 8001"
    )
    assert shown_command(["uvicorn", "my api.main:app"]) == "uvicorn 'my api.main:app'"


# -------------------------------------------------------------------------------------------- the curl exercise


def _prediction(model: str = "shapes") -> dict:
    box = {"x_min": 1.0, "y_min": 2.0, "x_max": 30.0, "y_max": 40.0, "class_name": "circle", "confidence": 0.9}
    return {"detections": [box, box], "time": 0.05, "model": model}


def test_curl_answer_passes_on_a_prediction(tmp_path: Path, english: None, capsys: pytest.CaptureFixture[str]) -> None:
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps(_prediction()))
    check.curl_answer(answer, "shapes")
    assert capsys.readouterr().out == "✅ curl got 2 detections by 'shapes'.\n"


@pytest.mark.parametrize(
    ("content", "sentence"),
    [
        (None, "write the curl command that POSTs payload.json to /predict, with -o"),
        ("<!doctype html><title>Swagger UI</title>", "is not JSON: send the request to /predict (not /docs)"),
        (json.dumps({"detail": "Method Not Allowed"}), 'The server refused the request ("Method Not Allowed")'),
        (json.dumps(_prediction("yolo26n")), "is not a prediction by 'shapes'"),
    ],
)
def test_curl_answer_fails_with_what_to_do(tmp_path: Path, english: None, content: str | None, sentence: str) -> None:
    answer = tmp_path / "answer.json"
    if content is not None:
        answer.write_text(content)
    fails_with(lambda: check.curl_answer(answer, "shapes"), sentence)


# -------------------------------------------------------------------------------------- the prediction exercise

OBSERVED = {"missing_image": 422, "not_a_picture": 400, "unknown_model": 404}


def test_predicted_status_codes_pass_when_all_match(english: None, capsys: pytest.CaptureFixture[str]) -> None:
    check.predicted_status_codes({"missing_image": 422, "not_a_picture": "400", "unknown_model": 404}, OBSERVED)
    assert capsys.readouterr().out == "✅ All 3 predictions right.\n"


@pytest.mark.parametrize(
    ("prediction", "observed", "sentence"),
    [
        (None, OBSERVED, "Write your prediction first: set my_prediction to a dict with one status code for each of "
                         "missing_image, not_a_picture"),
        ({"missing_image": 422}, OBSERVED, "Write your prediction first: set my_prediction to a dict"),
        ({"missing_image": ..., "not_a_picture": 400, "unknown_model": 404}, OBSERVED, "Write your prediction first"),
        (dict(OBSERVED), None, "run the cell that sends the bad requests first"),
    ],
)
def test_predicted_status_codes_fail_without_a_recorded_prediction(
    english: None, prediction: object, observed: object, sentence: str
) -> None:
    fails_with(lambda: check.predicted_status_codes(prediction, observed), sentence)


def test_a_wrong_prediction_passes_and_says_why_the_server_answered_otherwise(
    english: None, capsys: pytest.CaptureFixture[str]
) -> None:
    check.predicted_status_codes({"missing_image": 400, "not_a_picture": 400, "unknown_model": 404}, OBSERVED)
    assert capsys.readouterr().out == (
        "✅ 2 of 3 predictions right; missing_image got 422, not 400: FastAPI checks the body against PredictRequest "
        "before your function runs, and answers 422 itself.\n"
    )


def test_the_sentences_come_in_french_in_a_french_notebook(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORKSHOP_LANG", "fr")
    check.predicted_status_codes({**OBSERVED, "unknown_model": 400}, OBSERVED)
    assert capsys.readouterr().out.startswith(
        "✅ 2 pronostics justes sur 3 ; unknown_model a reçu 404, pas 400 : predict() compare d'abord"
    )

