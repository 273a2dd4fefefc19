"""The ``workshop`` command and the box drawing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workshop.cli import main, ui_command
from workshop.drawing import PALETTE, class_colour, draw_detections
from workshop.schemas import Detection
from workshop.services import BackgroundService


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workshop", *args], capture_output=True, text=True, timeout=120)


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.strip() == "workshop 0.1.0"
    help_text = run_cli("--help").stdout
    for command in ("serve", "predict", "train-demo", "samples"):
        assert command in help_text


@pytest.mark.slow
def test_predict_prints_detections_and_saves_annotated_image(live_server: BackgroundService, tmp_path: Path) -> None:
    from workshop.samples import shapes_sample

    image_path = tmp_path / "shapes.png"
    sample = shapes_sample(seed=3)
    sample.image.save(image_path)
    out = tmp_path / "annotated.png"
    result = run_cli("predict", str(image_path), "--url", live_server.url, "--save", str(out))
    assert result.returncode == 0, result.stderr
    assert "detections by 'shapes'" in result.stdout
    for shape in sample.shapes:
        assert shape.class_name in result.stdout
    assert Image.open(out).size == sample.image.size

    as_json = run_cli("predict", str(image_path), "--url", live_server.url, "--json")
    assert json.loads(as_json.stdout)["model"] == "shapes"


@pytest.mark.slow
def test_predict_reports_errors_with_exit_code_1(live_server: BackgroundService, tmp_path: Path) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    result = run_cli("predict", str(text_file), "--url", live_server.url)
    assert result.returncode == 1 and "422" in result.stderr and "not an image" in result.stderr
    missing = run_cli("predict", str(tmp_path / "missing.png"), "--url", live_server.url)
    assert missing.returncode == 1 and "No such file" in missing.stderr


@pytest.mark.parametrize("protection", [True, False])
def test_ui_command_passes_the_xsrf_setting_to_streamlit(protection: bool) -> None:
    command = ui_command("127.0.0.1", 8765, xsrf_protection=protection)
    flag = command.index("--server.enableXsrfProtection")
    assert command[flag + 1] == str(protection).lower()
    assert command[command.index("--server.port") + 1] == "8765"


def test_ui_starts_streamlit_with_the_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``workshop ui`` hands Streamlit the value that WORKSHOP_UI_XSRF_PROTECTION (or the codespace) gives."""
    import os

    from workshop.settings import get_settings

    started: list[list[str]] = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: started.append(argv))
    try:
        for variable, expected in (("true", "true"), ("false", "false")):
            monkeypatch.setenv("WORKSHOP_UI_XSRF_PROTECTION", variable)
            get_settings.cache_clear()
            assert main(["ui"]) == 0
            assert started[-1][started[-1].index("--server.enableXsrfProtection") + 1] == expected
    finally:
        get_settings.cache_clear()  # the next test reads its own environment


def test_samples_command_writes_images(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["samples", str(tmp_path), "--shapes", "2"]) == 0
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["astronaut.png", "cat.png", "coffee.png", "shapes_0.png", "shapes_1.png"]
    assert Image.open(tmp_path / "cat.png").size == (451, 300)


def test_class_colours_are_stable_and_distinct_for_the_shapes() -> None:
    assert class_colour("circle") == class_colour("circle")
    assert len({class_colour(name) for name in ("circle", "square", "triangle")}) == 3
    assert all(colour in PALETTE for colour in map(class_colour, ("cat", "dog", "person")))


def test_draw_detections_draws_boxes_and_labels_without_touching_the_input() -> None:
    image = Image.new("RGB", (200, 120), (255, 255, 255))
    before = np.asarray(image).copy()
    detection = Detection(x_min=50, y_min=40, x_max=150, y_max=100, class_name="square", confidence=0.9)
    annotated = draw_detections(image, [detection])
    pixels = np.asarray(annotated)
    assert np.array_equal(np.asarray(image), before)  # the caller's image is untouched
    assert tuple(pixels[70, 50]) == class_colour("square")  # left edge of the box
    assert tuple(pixels[70, 100]) == (255, 255, 255)  # inside stays clear
    label_area = pixels[20:40, 50:100]
    assert (label_area == class_colour("square")).all(axis=-1).any()  # label background above the box
    assert (label_area == 255).all(axis=-1).any()  # white label text


def test_label_moves_inside_a_box_at_the_top_edge() -> None:
    image = Image.new("RGB", (100, 100), (0, 0, 0))
    detection = Detection(x_min=10, y_min=0, x_max=90, y_max=60, class_name="circle", confidence=0.5)
    pixels = np.asarray(draw_detections(image, [detection]))
    assert (pixels[5:15, 15:40] == class_colour("circle")).all(axis=-1).any()
