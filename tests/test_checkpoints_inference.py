"""Notebook 01's checkpoints: each passes on a right answer and fails with its one sentence on a wrong one.

The model is the real bundled one, run by Ultralytics on a generated picture, as in the notebook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from workshop.checkpoints import CheckpointFailed
from workshop.checkpoints import inference as check
from workshop.lab import time_calls
from workshop.registry import bundled_weights_path
from workshop.samples import shapes_sample
from workshop.yolo_env import import_yolo


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_LANG", "en")


@pytest.fixture(scope="module")
def model() -> Any:
    return import_yolo()(str(bundled_weights_path()))


@pytest.fixture(scope="module")
def image() -> Any:
    return shapes_sample(seed=0).image


@pytest.fixture(scope="module")
def result(model: Any, image: Any) -> Any:
    return model.predict(image, verbose=False)[0]


def right_to_dicts(result: Any) -> list[dict]:
    boxes = result.boxes
    return [
        {"class_name": result.names[int(cls)], "confidence": conf, "box": xyxy}
        for xyxy, conf, cls in zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist())
    ]


def failure(function: Callable[..., None], *args: Any) -> str:
    with pytest.raises(CheckpointFailed) as caught:
        function(*args)
    return str(caught.value)


def test_the_right_dicts_pass(result: Any, capsys: pytest.CaptureFixture[str]) -> None:
    check.detections_as_dicts(right_to_dicts, result)
    assert capsys.readouterr().out == "✅ to_dicts turns the 4 boxes into 4 dicts: square ×1, triangle ×3.\n"


def test_rounded_boxes_pass(result: Any) -> None:
    def rounded(result: Any) -> list[dict]:
        return [{**d, "box": [round(v) for v in d["box"]]} for d in right_to_dicts(result)]

    check.detections_as_dicts(rounded, result)


@pytest.mark.parametrize(
    ("to_dicts", "sentence"),
    [
        (None, "Define the function to_dicts(result)"),
        (lambda result: [], "to_dicts returned an empty list, but the model found 4 boxes"),
        (lambda result: None, "to_dicts returned NoneType, not a list"),
        (lambda result: right_to_dicts(result)[:2], "to_dicts returned 2 dicts for 4 boxes"),
        (lambda result: 1 / 0, "to_dicts(result) crashed: read the error, fix the loop (ZeroDivisionError"),
        (
            lambda result: [{"class_name": d["class_name"], "box": d["box"]} for d in right_to_dicts(result)],
            "Detection 1 is {",
        ),
        (
            lambda result: [{**d, "class_name": int(c)} for d, c in zip(right_to_dicts(result), result.boxes.cls.tolist())],
            "class_name of detection 1 is 2, a class index",
        ),
        (
            lambda result: [{**d, "confidence": c} for d, c in zip(right_to_dicts(result), result.boxes.conf)],
            "Detection 1 holds tensors",
        ),
        (
            lambda result: [{**d, "box": b} for d, b in zip(right_to_dicts(result), result.boxes.xywh.tolist())],
            "box of detection 1 is [408, 54, 124, 107], the model's corners are [346, 0, 470, 108]",
        ),
        (lambda result: list(reversed(right_to_dicts(result))), "Detection 1 is a 'square' but the model's box 1"),
        (
            lambda result: [{**d, "confidence": 1.0} for d in right_to_dicts(result)],
            "confidence of detection 1 is 1.00, the model says 0.95",
        ),
        (lambda result: [{**d, "confidence": 95} for d in right_to_dicts(result)], "confidence of detection 1 is 95"),
    ],
)
def test_wrong_dicts_fail_with_their_sentence(result: Any, to_dicts: Any, sentence: str) -> None:
    assert failure(check.detections_as_dicts, to_dicts, result).startswith(sentence)


def test_the_sentence_comes_in_french(result: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_LANG", "fr")
    assert failure(check.detections_as_dicts, lambda result: [], result).startswith(
        "to_dicts a renvoyé une liste vide, alors que le modèle a trouvé 4 boîtes"
    )


def right_filter(detections: list[dict], threshold: float) -> list[dict]:
    return [d for d in detections if d["confidence"] >= threshold]


def test_the_right_filter_passes(model: Any, image: Any, capsys: pytest.CaptureFixture[str]) -> None:
    check.confidence_filter(right_filter, model, image)
    out = capsys.readouterr().out
    # The sample picture gives weak boxes under 0.25 at conf=0.01: the filter has something to drop.
    assert out == "✅ keep_confident drops the weak boxes: 8 at conf=0.01, 4 kept at 0.25 (Ultralytics' own conf=0.25 gives 4).\n"


def _drops_in_place(detections: list[dict], threshold: float) -> list[dict]:
    for d in list(detections):
        if d["confidence"] < threshold:
            detections.remove(d)
    return detections


@pytest.mark.parametrize(
    ("keep_confident", "sentence"),
    [
        (None, "Define the function keep_confident(detections, threshold)"),
        (lambda detections, threshold: None, "keep_confident returned NoneType, not a list"),
        (lambda detections, threshold: detections, "At threshold 0.25, keep_confident kept a detection of confidence 0.06"),
        (lambda detections, threshold: [], "At threshold 0.25, keep_confident kept 0 of the 4 detections at or above it"),
        (
            lambda detections, threshold: [d for d in detections if d["confidence"] >= threshold * 2],
            "At threshold 0.5, keep_confident kept 0 of the 4 detections",
        ),
        (
            lambda detections, threshold: sorted(right_filter(detections, threshold), key=lambda d: d["confidence"]),
            "At threshold 0.25, keep_confident kept 4 of the 4 detections at or above it: keep every one of them, whole and in their order.",
        ),
        (
            lambda detections, threshold: [d["confidence"] for d in right_filter(detections, threshold)],
            "At threshold 0.25, keep_confident kept 4 of the 4",
        ),
        (lambda detections, threshold: detections["confidence"], "keep_confident crashed (TypeError"),
    ],
)
def test_a_wrong_filter_fails_with_its_sentence(model: Any, image: Any, keep_confident: Any, sentence: str) -> None:
    assert failure(check.confidence_filter, keep_confident, model, image).startswith(sentence)


def test_a_filter_that_edits_its_input_is_still_judged_on_what_it_returns(model: Any, image: Any) -> None:
    check.confidence_filter(_drops_in_place, model, image)


def test_a_fresh_model_sets_itself_up_on_its_first_call_only(image: Any) -> None:
    """The premise of exercise 3, as what Ultralytics does rather than how long it takes (a busy machine can make
    any call slow): the first call builds the predictor (loads the network onto the device, warms it up), the next
    ones reuse it. The notebook measures the cost; the benchmark's cold-start section says how large it is."""
    fresh = import_yolo()(str(bundled_weights_path()))
    assert fresh.predictor is None  # nothing set up yet
    seconds = time_calls(lambda: fresh.predict(image, verbose=False), runs=2)
    predictor = fresh.predictor
    assert predictor is not None and predictor.model is not None  # built by the first call
    fresh.predict(image, verbose=False)
    assert fresh.predictor is predictor  # and reused by every call after it
    assert len(seconds) == 2 and all(second > 0 for second in seconds)  # what the notebook's timing cell gets


def test_the_right_prediction_passes(capsys: pytest.CaptureFixture[str]) -> None:
    check.first_call_prediction(True, 5, [0.4, 0.1, 0.1, 0.12])
    assert capsys.readouterr().out == (
        "✅ You predicted slower, 5×; measured: first call 400 ms, then 100 ms (median), 4.0× slower: well guessed.\n"
    )


@pytest.mark.parametrize(
    ("slower", "times", "seconds", "verdict"),
    [
        (False, 5, [0.4, 0.1, 0.1], "4.0× slower: it is slower: it builds the predictor"),
        (True, 5, [0.1, 0.1, 0.1], "1.0× slower: no slower here"),
        (True, 1000, [0.4, 0.1, 0.1], "4.0× slower: your guess is 250 times too high."),
        (True, 0.5, [0.4, 0.1, 0.1], "4.0× slower: your guess is 8 times too low."),
    ],
)
def test_a_wrong_guess_passes_and_is_compared_with_the_measure(
    slower: Any, times: Any, seconds: Any, verdict: str, capsys: pytest.CaptureFixture[str],
) -> None:
    """Any recorded guess passes (students must not guess until green); the sentence says how far off it was."""
    check.first_call_prediction(slower, times, seconds)
    assert verdict in capsys.readouterr().out


def test_the_comparison_comes_in_french(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_LANG", "fr")
    check.first_call_prediction(True, 2, [0.4, 0.1, 0.1])
    assert capsys.readouterr().out == (
        "✅ Vous aviez prévu plus lent, 2× ; mesuré : premier appel 400 ms, puis 100 ms (médiane), 4,0× plus lent. "
        "Votre estimation est 2 fois trop basse.\n"
    )


@pytest.mark.parametrize(
    ("slower", "times", "seconds", "sentence"),
    [
        (None, 5, [0.4, 0.1, 0.1], "Write your prediction first: set first_call_slower to True or False"),
        ("yes", 5, [0.4, 0.1, 0.1], "Write your prediction first: set first_call_slower to True or False"),
        (True, None, [0.4, 0.1, 0.1], "Write your prediction first: set times_slower to a positive number"),
        (True, -2, [0.4, 0.1, 0.1], "Write your prediction first: set times_slower to a positive number"),
        (True, 5, None, "Run the timing cell above first"),
    ],
)
def test_no_recorded_guess_fails_with_its_sentence(slower: Any, times: Any, seconds: Any, sentence: str) -> None:
    assert failure(check.first_call_prediction, slower, times, seconds).startswith(sentence)
