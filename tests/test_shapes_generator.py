"""The procedural data set behind the bundled model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workshop.demo.shapes import BACKGROUNDS, SHAPE_CLASSES, Shape, iter_samples, write_dataset


def test_same_seed_same_pictures_and_labels() -> None:
    first = list(iter_samples(5, seed=42))
    second = list(iter_samples(5, seed=42))
    for a, b in zip(first, second):
        assert a.shapes == b.shapes
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    other = list(iter_samples(5, seed=43))
    assert [s.shapes for s in other] != [s.shapes for s in first]


def test_samples_follow_the_specification() -> None:
    samples = list(iter_samples(300, seed=0))
    sizes = {s.image.size for s in samples}
    assert any(w > h for w, h in sizes) and any(h > w for w, h in sizes) and any(w == h for w, h in sizes)
    assert {s.background for s in samples} == set(BACKGROUNDS)
    classes_seen = set()
    for sample in samples:
        width, height = sample.image.size
        assert 1 <= len(sample.shapes) <= 4
        short_side = min(width, height)
        for shape in sample.shapes:
            classes_seen.add(shape.class_name)
            box_w = shape.x_max - shape.x_min
            assert 0.10 * short_side - 1 <= box_w <= 0.40 * short_side + 1
            assert 0 <= shape.x_min < shape.x_max <= width and 0 <= shape.y_min < shape.y_max <= height
        for i, a in enumerate(sample.shapes):
            for b in sample.shapes[i + 1 :]:
                assert not a.overlaps(b), f"{a} overlaps {b}"
    assert classes_seen == set(SHAPE_CLASSES)


def test_shapes_are_actually_drawn_in_their_boxes() -> None:
    # The centre pixel of every shape has the shape's colour, which contrasts with the background mean.
    for sample in iter_samples(30, seed=5):
        pixels = np.asarray(sample.image).astype(float)
        for shape in sample.shapes:
            cx = (shape.x_min + shape.x_max) // 2
            cy = (shape.y_min + shape.y_max) // 2 + (shape.y_max - shape.y_min) // 6  # inside a triangle too
            centre = pixels[cy, cx]
            corner_region = pixels[shape.y_min : shape.y_min + 2, shape.x_min : shape.x_min + 2].reshape(-1, 3)
            if shape.class_name == "square":
                assert np.allclose(corner_region, centre)  # squares fill their box to the corner
            else:
                assert not np.allclose(corner_region, centre)  # circles and triangles leave corners empty


def test_yolo_label_is_normalised_centre_and_size() -> None:
    shape = Shape("triangle", 10, 20, 30, 60)
    assert shape.yolo_label(100, 200) == "2 0.200000 0.200000 0.200000 0.200000"


def test_write_dataset_layout(tmp_path: Path) -> None:
    data_yaml = write_dataset(tmp_path, train=6, val=3, seed=1)
    text = data_yaml.read_text()
    assert "train: images/train" in text and "2: triangle" in text
    assert len(list((tmp_path / "images" / "train").glob("*.png"))) == 6
    labels = sorted((tmp_path / "labels" / "val").glob("*.txt"))
    assert len(labels) == 3
    for label in labels:
        for line in label.read_text().split("\n"):
            if line:
                class_id, *box = line.split()
                assert int(class_id) in (0, 1, 2)
                assert all(0.0 <= float(v) <= 1.0 for v in box)


@pytest.mark.parametrize("kind", BACKGROUNDS)
def test_every_background_kind_renders(kind: str) -> None:
    from workshop.demo.shapes import _background

    pixels = _background(np.random.default_rng(0), kind, 40, 30)
    assert pixels.shape == (30, 40, 3)
    assert pixels.min() >= 0 and pixels.max() <= 255
