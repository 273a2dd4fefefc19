"""Notebook 03's checkpoints pass on a right answer and fail, with their one sentence, on a wrong or missing one.

The exercise checks run on made-up detections and pictures; the last one (the back-end stopped) runs
the real Streamlit app (``AppTest``) and a real front-end process, against a port where nothing listens.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PIL import Image, ImageDraw

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


def test_start_in_background_fails_with_one_sentence_when_the_server_does_not_start() -> None:
    with pytest.raises(CheckpointFailed, match="did not start: read its log above"):
        check.start_in_background(
            "backend", ["workshop", "serve", "--port", "not-a-port"], f"http://127.0.0.1:{free_port()}", timeout=30
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
def dead_backend_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def frontend(dead_backend_url: str) -> Iterator[BackgroundService]:
    """The real front-end, started with the notebook's command, whose back-end is not there."""
    port = free_port()
    service = check.start_in_background(
        "frontend",
        ["streamlit", "run", str(APP_PATH), "--server.address", "127.0.0.1", "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        f"http://127.0.0.1:{port}",
        ready_path="/_stcore/health",
        env={"WORKSHOP_BACKEND_URL": dead_backend_url},
    )
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
def test_a_stopped_frontend_is_named(dead_backend_url: str) -> None:
    with pytest.raises(CheckpointFailed, match="is the front-end cell still running"):
        check.ui_when_backend_down("B", dead_backend_url, f"http://127.0.0.1:{free_port()}")
