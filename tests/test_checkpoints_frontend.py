"""Notebook 03's checkpoints pass on a right answer and fail, with their one sentence, on a wrong or missing one.

The exercise checks run on made-up detections and pictures; the last one (the back-end stopped) reads the page of
a real front-end process (``streamlit run``) over Streamlit's own WebSocket, as a browser does, against a port
where every connection is refused. A front-end that shows a traceback is stood in for by a small page of its own.
"""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from support import refused_port  # tests/ is on sys.path under pytest
from workshop.checkpoints import CheckpointFailed
from workshop.checkpoints import frontend as check
from workshop.frontend import APP_PATH
from workshop.services import BackgroundService, free_port

# ------------------------------------------------------------------ start_in_background


def test_start_in_background_prints_the_command_and_serves(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    service = check.start_in_background(
        "files", ["python", "-m", "http.server", str(port), "--bind", "127.0.0.1"], f"http://127.0.0.1:{port}", ready_path="/"
    )
    try:
        assert service.running
        out = capsys.readouterr().out
        assert f"$ python -m http.server {port} --bind 127.0.0.1\n" in out and f"files is up: http://127.0.0.1:{port}" in out
    finally:
        service.stop()
    assert not service.running


def test_a_server_that_stops_as_it_starts_is_named_a_crash_under_its_log(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CheckpointFailed) as failure:
        check.start_in_background(
            "backend", ["workshop", "serve", "--port", "not-a-port"], f"http://127.0.0.1:{free_port()}", timeout=60
        )
    assert str(failure.value) == (
        "backend stopped as it started (exit code 2): read its log above, fix what it says, then run this cell again."
    )
    assert "invalid int value: 'not-a-port'" in capsys.readouterr().out  # the log, above the sentence


def test_a_program_that_is_not_installed_is_named_not_a_crash(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CheckpointFailed) as failure:
        check.start_in_background("frontend", ["streamlit-not-installed", "run", "app.py"], "http://127.0.0.1:9")
    assert str(failure.value) == (
        f"'streamlit-not-installed' is not installed where this notebook runs (next to {sys.executable}, or on the "
        "PATH): choose the project's .venv as the notebook's kernel, or install the project into this one "
        "(scripts/setup.sh dev)."
    )
    assert capsys.readouterr().out == "$ streamlit-not-installed run app.py\n"  # the command, then only the sentence


def test_a_server_that_never_answers_is_named_and_stopped(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # the process listens nowhere: it only runs
    with pytest.raises(CheckpointFailed) as failure:
        check.start_in_background("backend", ["python", "-c", "import time; time.sleep(600)"], url, timeout=3)
    assert str(failure.value) == (
        f"backend did not answer at {url}/health within 3 s, and was stopped: read its log above; if it was still "
        "starting, run this cell again."
    )


# ------------------------------------------------------------------ exercise 1


def right_count(detections):
    counts = {}
    for d in detections:
        counts[d.class_name] = counts.get(d.class_name, 0) + 1
    return counts


def test_class_counts_passes_on_the_right_answer(capsys: pytest.CaptureFixture[str]) -> None:
    check.class_counts(right_count)
    assert capsys.readouterr().out.startswith("✅ count_by_class counts the detections of each class")


def test_class_counts_takes_a_counter_too() -> None:
    from collections import Counter

    check.class_counts(lambda detections: Counter(d.class_name for d in detections))


@pytest.mark.parametrize(
    ("answer", "sentence"),
    [
        (None, "count_by_class is not defined: run the exercise's cell."),
        (lambda detections: None, "count_by_class returned NoneType: return a dict"),
        (lambda detections: [d.class_name for d in detections], "count_by_class returned list"),
        (lambda detections: {d.class_name: 1 for d in detections}, "count each detection under its d.class_name"),
        (lambda detections: right_count(detections) or {"nothing": 0}, "an empty dict when there is none"),
        (lambda detections: {d["class_name"]: 1 for d in detections}, "Each detection is an object, not a dict"),
        (lambda detections: detections.missing, "count_by_class failed on a list of detections (AttributeError"),
    ],
    ids=["missing", "returns-nothing", "a-list", "counts-once", "empty-not-empty", "as-dicts", "crashes"],
)
def test_class_counts_fails_with_its_sentence(answer, sentence: str) -> None:
    with pytest.raises(CheckpointFailed, match=sentence.replace("(", r"\(")):
        check.class_counts(answer)


def test_a_failed_checkpoint_speaks_french_in_a_french_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_LANG", "fr")
    with pytest.raises(CheckpointFailed) as failure:
        check.class_counts(lambda detections: {d["class_name"]: 1 for d in detections})
    assert str(failure.value) == (
        "Chaque détection est un objet, pas un dict : lisez sa classe avec d.class_name, pas d['class_name']."
    )


# ------------------------------------------------------------------ exercise 3 (going further)


def right_drawing(image, detections):
    picture = image.convert("RGB")
    draw = ImageDraw.Draw(picture)
    for d in detections:
        draw.rectangle((d.x_min, d.y_min, d.x_max, d.y_max), outline=(255, 0, 0), width=3)
        draw.text((d.x_min + 4, d.y_min + 4), d.class_name, fill=(255, 0, 0))
    return picture


def drawing_on_the_original(image, detections):
    draw = ImageDraw.Draw(image)
    for d in detections:
        draw.rectangle((d.x_min, d.y_min, d.x_max, d.y_max), outline=(255, 0, 0), width=3)
    return image


def filled_boxes(image, detections):
    picture = image.copy()
    draw = ImageDraw.Draw(picture)
    for d in detections:
        draw.rectangle((d.x_min, d.y_min, d.x_max, d.y_max), outline=(255, 0, 0), fill=(255, 0, 0), width=3)
    return picture


def test_boxes_drawn_passes_on_the_right_answer(capsys: pytest.CaptureFixture[str]) -> None:
    check.boxes_drawn(right_drawing)
    assert capsys.readouterr().out.startswith("✅ draw_boxes draws one outline per detection")


@pytest.mark.parametrize(
    ("answer", "sentence"),
    [
        (None, "draw_boxes is not defined"),
        (lambda image, detections: None, "draw_boxes returns nothing"),
        (drawing_on_the_original, "draw_boxes drew on the caller's picture: draw on a copy"),
        (lambda image, detections: right_drawing(image, detections).resize((160, 100)), "The drawing is 160x100"),
        (lambda image, detections: right_drawing(image, detections[:1]), "The box of 'circle' is missing a side"),
        (lambda image, detections: image.copy(), "The box of 'square' is missing a side"),
        (filled_boxes, "is painted over: draw an outline"),
        (lambda image, detections: Image.new("RGB", image.size, "red"), "The middle of the box of 'square' is painted over"),
        (lambda image, detections: 1 / 0, r"draw_boxes failed on a test picture \(ZeroDivisionError"),
    ],
    ids=["missing", "returns-nothing", "on-original", "resized", "one-box", "no-box", "filled", "all-red", "crashes"],
)
def test_boxes_drawn_fails_with_its_sentence(answer, sentence: str) -> None:
    with pytest.raises(CheckpointFailed, match=sentence):
        check.boxes_drawn(answer)


# ------------------------------------------------------------------ exercise 3: real app, stopped back-end


@pytest.fixture(scope="module")
def dead_backend_url() -> Iterator[str]:
    """The stopped back-end: a port held, for the whole module, where every connection is refused."""
    with refused_port() as port:
        yield f"http://127.0.0.1:{port}"


def streamlit_page(script: Path | str, backend_url: str) -> BackgroundService:
    """``streamlit run SCRIPT``, with the notebook's options, against ``backend_url``."""
    port = free_port()
    return check.start_in_background(
        "frontend",
        ["streamlit", "run", str(script), "--server.address", "127.0.0.1", "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        f"http://127.0.0.1:{port}",
        ready_path="/_stcore/health",
        env={"WORKSHOP_BACKEND_URL": backend_url},
    )


@pytest.fixture(scope="module")
def frontend(dead_backend_url: str) -> Iterator[BackgroundService]:
    """The real front-end, started with the notebook's command, whose back-end is not there."""
    service = streamlit_page(APP_PATH, dead_backend_url)
    yield service
    service.stop()


#: Stands in for a front-end that lets the failed request through: the app's "Is alive?" button, no error caught.
UNCAUGHT_PAGE = """\
import streamlit as st

from workshop.client import WorkshopClient
from workshop.settings import Settings

with st.sidebar:
    if st.button("Is alive?", key="is_alive"):
        st.write(WorkshopClient(Settings().backend_url).health())
"""


@pytest.fixture(scope="module")
def traceback_frontend(dead_backend_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundService]:
    script = tmp_path_factory.mktemp("uncaught") / "app.py"
    script.write_text(UNCAUGHT_PAGE)
    service = streamlit_page(script, dead_backend_url)
    yield service
    service.stop()


@pytest.mark.slow
def test_the_right_prediction_passes_and_shows_the_pages_message(
    frontend: BackgroundService, dead_backend_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    check.ui_when_backend_down(" b ", dead_backend_url, frontend.url)
    out = capsys.readouterr().out
    assert f"🟥 Back-end unreachable at {dead_backend_url}." in out
    assert "Streamlit /_stcore/health: 200" in out and "✅ You predicted B, and B it is" in out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("prediction", "verdict"),
    [
        ("A", "✅ You predicted A; the page shows B, the red message above, and keeps working: the UI catches"),
        ("c", "✅ You predicted C; the page shows B, the red message above, and keeps working: the front-end has no"),
    ],
)
def test_a_wrong_prediction_passes_and_is_compared_with_the_page(
    frontend: BackgroundService, dead_backend_url: str, prediction: str, verdict: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Any recorded guess passes (students must not guess until green): the page shown says what happened."""
    check.ui_when_backend_down(prediction, dead_backend_url, frontend.url)
    assert verdict in capsys.readouterr().out


@pytest.mark.parametrize("prediction", [None, Ellipsis, "D"])
def test_no_recorded_prediction_fails_with_its_sentence(dead_backend_url: str, prediction: object) -> None:
    with pytest.raises(CheckpointFailed, match="Write your prediction first: set my_prediction to 'A', 'B' or 'C'"):
        check.ui_when_backend_down(prediction, dead_backend_url, f"http://127.0.0.1:{free_port()}")


@pytest.mark.slow
def test_a_backend_still_running_is_named(live_server: BackgroundService, frontend: BackgroundService) -> None:
    with pytest.raises(CheckpointFailed, match=f"The back-end still answers at {live_server.url}: run the cell that stops it"):
        check.ui_when_backend_down("B", live_server.url, frontend.url)


@pytest.mark.slow
def test_a_page_that_shows_a_traceback_fails_whatever_the_running_app_file_says(
    traceback_frontend: BackgroundService, dead_backend_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The checkpoint reads the page the running server serves: this one lets the error through to the page (the
    repository's app.py, which catches it, is not what runs there)."""
    with pytest.raises(CheckpointFailed) as failure:
        check.ui_when_backend_down("B", dead_backend_url, traceback_frontend.url)
    assert str(failure.value).startswith(
        "The page shows a Python traceback (BackendUnavailableError: Cannot reach the back-end at "
        f"{dead_backend_url}: is it running"
    )
    assert "💥 BackendUnavailableError: Cannot reach the back-end" in capsys.readouterr().out


@pytest.mark.slow
def test_a_stopped_frontend_is_named(dead_backend_url: str) -> None:
    with refused_port() as port, pytest.raises(CheckpointFailed) as failure:
        check.ui_when_backend_down("B", dead_backend_url, f"http://127.0.0.1:{port}")
    assert str(failure.value) == (
        f"The front-end does not answer at http://127.0.0.1:{port}: is the front-end cell still running? Rerun the "
        "cell that starts it."
    )


class _NotStreamlit(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_server_that_is_not_streamlit_is_named(dead_backend_url: str) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotStreamlit)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(CheckpointFailed) as failure:
            check.ui_when_backend_down("B", dead_backend_url, url)
    finally:
        server.shutdown()
        server.server_close()
    assert str(failure.value).startswith(f"The page at {url} could not be read (")  # websockets' own words
    assert str(failure.value).endswith("): is it the front-end?")
