"""Notebook 08's checkpoints: each passes on a right answer and fails with its one sentence on a wrong one.

The back-end is a real ``workshop serve`` on a free port, serving the bundled weights under a second name
(``my-shapes``) as it would serve weights the student trained; the held-out measure is a real Ultralytics
validation run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from workshop.checkpoints import CheckpointFailed
from workshop.checkpoints import training as check
from workshop.demo.train import DEMO_ARCHITECTURE, TrainConfig, TrainReport
from workshop.registry import bundled_weights_path
from workshop.samples import shapes_sample
from workshop.services import BackgroundService, start_backend

FAST = TrainConfig(start_from=str(bundled_weights_path()), epochs=1, train_images=40, val_images=20, heldout_images=40)
FULL = TrainConfig(start_from=DEMO_ARCHITECTURE, epochs=15, train_images=400, val_images=100, heldout_images=100)


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_LANG", "en")


def failure(function: Callable[..., None], *args: Any) -> str:
    with pytest.raises(CheckpointFailed) as caught:
        function(*args)
    return str(caught.value)


def test_the_notebooks_configurations_pass(capsys: pytest.CaptureFixture[str]) -> None:
    check.training_config(FAST, True)
    check.training_config(FULL, False)
    assert capsys.readouterr().out == (
        "✅ Fine-tune shapes.pt for 1 epoch(s) on 40 pictures.\n"
        "✅ Train from scratch yolo11n.yaml for 15 epoch(s) on 400 pictures.\n"
    )


@pytest.mark.parametrize(
    ("config", "fast", "sentence"),
    [
        (None, True, "Build config with TrainConfig(...)"),
        (TrainConfig(start_from=None, epochs=1), True, "start_from is None: give a weights file"),  # type: ignore[arg-type]
        (TrainConfig(start_from="shapes", epochs=1), True, "start_from is 'shapes': give a weights file"),
        (TrainConfig(start_from="/nowhere/best.pt", epochs=1), True, "start_from points to /nowhere/best.pt, which does not exist"),
        (TrainConfig(start_from=str(bundled_weights_path()), epochs=0, train_images=40), True, "epochs is 0"),
        (TrainConfig(start_from=str(bundled_weights_path()), epochs=1.5, train_images=40), True, "epochs is 1.5"),  # type: ignore[arg-type]
        (TrainConfig(start_from=DEMO_ARCHITECTURE, epochs=1, train_images=40), True, "In fast mode there is time for about one epoch"),
        (TrainConfig(start_from=str(bundled_weights_path()), epochs=15, train_images=40), True, "40 pictures × 15 epochs is too long"),
        (TrainConfig(start_from=DEMO_ARCHITECTURE, epochs=35, train_images=800), False, "800 pictures × 35 epochs would take about 82 minutes"),
    ],
)
def test_a_wrong_configuration_fails_with_its_sentence(config: Any, fast: bool, sentence: str) -> None:
    assert failure(check.training_config, config, fast).startswith(sentence)


def report(map50: float) -> TrainReport:
    return TrainReport(weights="my-shapes.pt", config={}, map50=map50, map50_95=0.0, per_class_map50_95={}, train_seconds=1.0)


def test_the_right_prediction_passes(capsys: pytest.CaptureFixture[str]) -> None:
    check.beats_bundled(False, report(0.92), FAST, bundled=0.995)
    check.beats_bundled(True, report(0.99), FAST, bundled=0.5)
    assert capsys.readouterr().out.splitlines() == [
        "✅ Well predicted: yours 0.920, the bundled model 0.995 (mAP50 on 40 fresh pictures); yours is not clearly "
        "higher.",
        "✅ Well predicted: yours 0.990, the bundled model 0.500 (mAP50 on 40 fresh pictures); yours is clearly higher.",
    ]


@pytest.mark.parametrize(
    ("prediction", "mine", "bundled", "verdict"),
    [
        (True, 0.92, 0.995, "; measured: yours 0.920, the bundled model 0.995 (mAP50 on 40 fresh pictures): yours is "
                            "not clearly higher, more training only helps while the model still learns"),
        (True, 1.0, 0.995, "yours is not clearly higher"),
        (False, 0.9, 0.5, "yours is clearly higher, more training helped while the model still learnt"),
    ],
)
def test_a_wrong_prediction_passes_and_is_compared_with_the_measure(
    prediction: bool, mine: float, bundled: float, verdict: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Any recorded guess passes (students must not guess until green); the sentence compares it with the measure."""
    check.beats_bundled(prediction, report(mine), FAST, bundled)
    out = capsys.readouterr().out
    assert out.startswith(f"✅ You predicted {'higher' if prediction else 'not higher'}") and verdict in out


@pytest.mark.parametrize("prediction", [None, "no", 1])
def test_no_recorded_prediction_fails_with_its_sentence(prediction: Any) -> None:
    assert failure(check.beats_bundled, prediction, report(0.92), FAST, 0.995).startswith(
        "Write your prediction first: set my_prediction to True or False"
    )


def test_a_prediction_checked_before_training_fails_with_its_sentence() -> None:
    assert failure(check.beats_bundled, False, None, FAST, 0.995).startswith("Run the training cell first")


@pytest.mark.slow
def test_the_bundled_model_is_measured_on_the_held_out_pictures() -> None:
    small = TrainConfig(start_from=str(bundled_weights_path()), heldout_images=12)
    assert check.bundled_map50(small) > 0.9


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundService]:
    folder = tmp_path_factory.mktemp("trained")
    weights = folder / "my-shapes.pt"
    shutil.copyfile(bundled_weights_path(), weights)
    custom = f"my-shapes={weights},lost={folder / 'missing.pt'}"
    service = start_backend(env={"WORKSHOP_CUSTOM_MODELS": custom, "WORKSHOP_ENGINE": "pytorch"}, log_dir=folder)
    yield service
    service.stop()


@pytest.mark.slow
def test_served_weights_pass(backend: BackgroundService, capsys: pytest.CaptureFixture[str]) -> None:
    check.serves_model(backend.url, "my-shapes", shapes_sample(seed=3).image)
    assert capsys.readouterr().out == "✅ The back-end serves 'my-shapes': it found circle ×1, square ×1, triangle ×1.\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "sentence"),
    [
        ("absent", "'absent' is not in /models (shapes, "),
        ("lost", "'lost' is listed but could not predict ("),
    ],
)
def test_weights_not_served_fail_with_their_sentence(backend: BackgroundService, name: str, sentence: str) -> None:
    assert failure(check.serves_model, backend.url, name, shapes_sample(seed=3).image).startswith(sentence)


@pytest.mark.slow
def test_a_blank_picture_finds_nothing_and_fails_with_its_sentence(backend: BackgroundService) -> None:
    from PIL import Image

    assert failure(check.serves_model, backend.url, "my-shapes", Image.new("RGB", (320, 320), "white")).startswith(
        "'my-shapes' answered but found nothing"
    )


def test_no_back_end_fails_with_its_sentence(tmp_path: Path) -> None:
    from workshop.services import free_port

    assert failure(check.serves_model, None, "my-shapes", None).startswith("Start the back-end in the cell above first")
    assert failure(check.serves_model, f"http://127.0.0.1:{free_port()}", "my-shapes", None).startswith(
        "The back-end did not answer /models: is it running?"
    )
