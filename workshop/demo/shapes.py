"""Procedural "shapes" images: the data set behind the bundled offline model.

Each image holds 1 to 4 filled shapes (circle, axis-aligned square, upright
triangle) in random colours, never overlapping, each 10-40 % of the image's
short side, drawn on one of four backgrounds (noise, gradient, solid colour,
stripes). Images come in varied sizes and aspect ratios so the model does not
learn that the world is square.

Everything is driven by a :class:`numpy.random.Generator`, so the same seed
always gives the same pictures and the same labels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

#: Class names in class-id order; the bundled model uses exactly these.
SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle")

BACKGROUNDS: tuple[str, ...] = ("noise", "gradient", "solid", "stripes")

# Long sides and aspect ratios of generated images: wide, tall and square.
_LONG_SIDES = (256, 320, 384, 448, 512, 640)
_ASPECT_RATIOS = (1.0, 4 / 3, 3 / 2, 16 / 9, 2.0)

# A shape colour must differ this much (Euclidean RGB distance) from the mean
# background colour, otherwise a shape could vanish into its background.
_MIN_CONTRAST = 110.0


@dataclass(frozen=True)
class Shape:
    """One drawn shape: its class and its box in pixel coordinates."""

    class_name: str
    x_min: int
    y_min: int
    x_max: int
    y_max: int

    @property
    def class_id(self) -> int:
        return SHAPE_CLASSES.index(self.class_name)

    def overlaps(self, other: Shape, margin: int = 0) -> bool:
        """True when the two boxes, each grown by ``margin`` pixels, intersect."""
        return not (
            self.x_max + margin <= other.x_min
            or other.x_max + margin <= self.x_min
            or self.y_max + margin <= other.y_min
            or other.y_max + margin <= self.y_min
        )

    def yolo_label(self, width: int, height: int) -> str:
        """The shape as a YOLO label line: ``class cx cy w h``, normalised to 0-1."""
        cx = (self.x_min + self.x_max) / 2 / width
        cy = (self.y_min + self.y_max) / 2 / height
        w = (self.x_max - self.x_min) / width
        h = (self.y_max - self.y_min) / height
        return f"{self.class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


@dataclass(frozen=True)
class ShapesSample:
    """A generated picture and the ground truth for it."""

    image: Image.Image
    shapes: tuple[Shape, ...]
    background: str


def _random_size(rng: np.random.Generator) -> tuple[int, int]:
    long_side = int(rng.choice(_LONG_SIDES))
    short_side = int(round(long_side / float(rng.choice(_ASPECT_RATIOS))))
    return (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=3).astype(np.float32)


def _background(rng: np.random.Generator, kind: str, width: int, height: int) -> np.ndarray:
    """An ``(height, width, 3)`` float array for one background kind."""
    if kind == "solid":
        return np.broadcast_to(_random_colour(rng), (height, width, 3)).copy()
    if kind == "noise":
        base = _random_colour(rng)
        spread = rng.uniform(20, 70)
        noise = rng.normal(0, spread, size=(height, width, 3))
        return np.clip(base + noise, 0, 255)
    if kind == "gradient":
        start, end = _random_colour(rng), _random_colour(rng)
        angle = rng.uniform(0, 2 * math.pi)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        t = xs * math.cos(angle) + ys * math.sin(angle)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
        return start + (end - start) * t[..., None]
    if kind == "stripes":
        first, second = _random_colour(rng), _random_colour(rng)
        period = int(rng.integers(8, 40))
        ys, xs = np.mgrid[0:height, 0:width]
        axis = xs if rng.random() < 0.5 else ys
        if rng.random() < 0.3:  # diagonal stripes now and then
            axis = xs + ys
        mask = (axis // period) % 2 == 0
        return np.where(mask[..., None], first, second)
    raise ValueError(f"unknown background {kind!r}; expected one of {BACKGROUNDS}")


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray) -> tuple[int, int, int]:
    mean = background.reshape(-1, 3).mean(axis=0)
    for _ in range(100):
        colour = _random_colour(rng)
        if np.linalg.norm(colour - mean) >= _MIN_CONTRAST:
            break
    else:  # fall back to the colour opposite the mean, always far enough
        colour = 255 - mean
    return int(colour[0]), int(colour[1]), int(colour[2])


def _draw_shape(draw: ImageDraw.ImageDraw, shape: Shape, colour: tuple[int, int, int]) -> None:
    box = (shape.x_min, shape.y_min, shape.x_max - 1, shape.y_max - 1)
    if shape.class_name == "circle":
        draw.ellipse(box, fill=colour)
    elif shape.class_name == "square":
        draw.rectangle(box, fill=colour)
    else:  # upright triangle: apex at the top centre, flat base at the bottom
        apex = ((shape.x_min + shape.x_max - 1) / 2, shape.y_min)
        draw.polygon([apex, (shape.x_max - 1, shape.y_max - 1), (shape.x_min, shape.y_max - 1)], fill=colour)


def _place_shapes(rng: np.random.Generator, width: int, height: int, count: int) -> list[Shape]:
    """Up to ``count`` non-overlapping shapes; fewer if the image is too crowded."""
    short_side = min(width, height)
    placed: list[Shape] = []
    attempts = 0
    while len(placed) < count and attempts < 200:
        attempts += 1
        class_name = SHAPE_CLASSES[int(rng.integers(len(SHAPE_CLASSES)))]
        size = int(round(rng.uniform(0.10, 0.40) * short_side))
        # Triangles are equilateral-ish: a little less tall than wide.
        box_h = int(round(size * math.sqrt(3) / 2)) if class_name == "triangle" else size
        x = int(rng.integers(0, width - size + 1))
        y = int(rng.integers(0, height - box_h + 1))
        candidate = Shape(class_name, x, y, x + size, y + box_h)
        if not any(candidate.overlaps(other, margin=2) for other in placed):
            placed.append(candidate)
    return placed


def generate_sample(rng: np.random.Generator, width: int | None = None, height: int | None = None) -> ShapesSample:
    """Draw one picture of 1-4 shapes. Size is random unless ``width``/``height`` are given."""
    if width is None or height is None:
        width, height = _random_size(rng)
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    pixels = _background(rng, kind, width, height)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(image)
    shapes = _place_shapes(rng, width, height, count=int(rng.integers(1, 5)))
    for shape in shapes:
        _draw_shape(draw, shape, _contrasting_colour(rng, pixels))
    return ShapesSample(image=image, shapes=tuple(shapes), background=kind)


def iter_samples(count: int, seed: int) -> Iterator[ShapesSample]:
    """``count`` samples from one seeded generator: the same seed, the same samples."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield generate_sample(rng)


def write_split(directory: Path, split: str, count: int, seed: int) -> None:
    """Write ``count`` images and YOLO labels to ``directory/{images,labels}/split``."""
    images_dir = directory / "images" / split
    labels_dir = directory / "labels" / split
    images_dir.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(parents=True, exist_ok=True)
    for index, sample in enumerate(iter_samples(count, seed)):
        stem = f"{split}_{index:05d}"
        sample.image.save(images_dir / f"{stem}.png")
        width, height = sample.image.size
        lines = [shape.yolo_label(width, height) for shape in sample.shapes]
        (labels_dir / f"{stem}.txt").write_text("\n".join(lines) + "\n")


def write_dataset(directory: Path, train: int = 800, val: int = 200, seed: int = 0) -> Path:
    """Write a YOLO data set (train and val splits, different seeds) and return its ``data.yaml``."""
    directory = Path(directory).resolve()
    write_split(directory, "train", train, seed)
    # A different stream for validation, so no validation image repeats a training one.
    write_split(directory, "val", val, seed + 1_000_003)
    names = "\n".join(f"  {index}: {name}" for index, name in enumerate(SHAPE_CLASSES))
    data_yaml = directory / "data.yaml"
    data_yaml.write_text(f"path: {directory}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return data_yaml
