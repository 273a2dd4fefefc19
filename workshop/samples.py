"""Sample images for demos and tests: generated shapes, and real photos from scikit-image.

The shapes pictures are what the bundled offline model knows; the photos
(a cat, an astronaut, a cup of coffee) are for the public COCO models, which
know cats, people and cups. Both work offline: scikit-image ships its photos.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from workshop.demo.shapes import ShapesSample, generate_sample

#: Photo name -> name of the scikit-image function that returns it.
PHOTOS: dict[str, str] = {"cat": "chelsea", "astronaut": "astronaut", "coffee": "coffee"}


def shapes_sample(seed: int = 0, width: int | None = None, height: int | None = None) -> ShapesSample:
    """A generated shapes picture with its ground truth; the same seed gives the same picture."""
    return generate_sample(np.random.default_rng(seed), width, height)


def photo(name: str) -> Image.Image:
    """A real photo shipped with scikit-image: ``cat``, ``astronaut`` or ``coffee``."""
    if name not in PHOTOS:
        raise KeyError(f"Unknown photo {name!r}; choose one of {sorted(PHOTOS)}")
    from skimage import data  # imported here: scikit-image is slow to import

    loader: Callable[[], np.ndarray] = getattr(data, PHOTOS[name])
    return Image.fromarray(loader()).convert("RGB")


def write_samples(directory: Path, shapes: int = 3) -> list[Path]:
    """Write a few shapes pictures and every photo as PNG files; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(shapes):
        path = directory / f"shapes_{seed}.png"
        shapes_sample(seed).image.save(path)
        paths.append(path)
    for name in PHOTOS:
        path = directory / f"{name}.png"
        photo(name).save(path)
        paths.append(path)
    return paths
