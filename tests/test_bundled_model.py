"""The bundled ``shapes`` model finds the right shapes in the right places on pictures it never saw."""

from __future__ import annotations

import json

import pytest

from workshop.imaging import to_bgr_array
from workshop.registry import ModelRegistry, bundled_weights_path
from workshop.samples import shapes_sample
from workshop.schemas import Detection

# Seeds far from the training (0), validation and held-out streams.
FRESH_SEEDS = range(50_000, 50_040)


def iou(detection: Detection, box: tuple[int, int, int, int]) -> float:
    x1, y1 = max(detection.x_min, box[0]), max(detection.y_min, box[1])
    x2, y2 = min(detection.x_max, box[2]), min(detection.y_max, box[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area_d = (detection.x_max - detection.x_min) * (detection.y_max - detection.y_min)
    area_b = (box[2] - box[0]) * (box[3] - box[1])
    return inter / (area_d + area_b - inter)


@pytest.fixture(scope="module")
def predictions(shared_registry: ModelRegistry) -> list[tuple]:
    model = shared_registry.get("shapes")
    params = shared_registry.default_parameters()
    results = []
    for seed in FRESH_SEEDS:
        sample = shapes_sample(seed=seed)
        results.append((sample, model.predict(to_bgr_array(sample.image), params)))
    return results


def test_every_shape_is_found_with_its_class_at_iou_above_half(predictions: list[tuple]) -> None:
    shapes = found = 0
    for sample, detections in predictions:
        for shape in sample.shapes:
            shapes += 1
            box = (shape.x_min, shape.y_min, shape.x_max, shape.y_max)
            if any(d.class_name == shape.class_name and iou(d, box) > 0.5 for d in detections):
                found += 1
    recall = found / shapes
    print(f"recall at IoU 0.5: {found}/{shapes} = {recall:.3f}")
    assert recall >= 0.95


def test_few_false_detections(predictions: list[tuple]) -> None:
    detections = correct = 0
    for sample, found in predictions:
        boxes = [(s.class_name, (s.x_min, s.y_min, s.x_max, s.y_max)) for s in sample.shapes]
        for d in found:
            detections += 1
            if any(d.class_name == name and iou(d, box) > 0.5 for name, box in boxes):
                correct += 1
    precision = correct / detections
    print(f"precision at IoU 0.5: {correct}/{detections} = {precision:.3f}")
    assert precision >= 0.9


def test_training_report_meets_the_target() -> None:
    report = json.loads(bundled_weights_path().with_suffix(".json").read_text())
    assert report["map50"] >= 0.9
    assert 0 < report["map50_95"] <= report["map50"]
    assert set(report["per_class_map50_95"]) == {"circle", "square", "triangle"}
