"""Sample images for demos and tests: generated shapes, and three real photos.

The shapes pictures are what the bundled offline model knows; the photos
(a cat, an astronaut, a cup of coffee) are for the public COCO models, which
know cats, people and cups. Both work offline: the photos ship with the package
(``workshop/assets/photos``, copied from scikit-image's sample data, which the
front-end's image therefore does without).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from workshop.demo.shapes import ShapesSample, generate_sample

#: The photos' names; each is ``workshop/assets/photos/<name>.png``.
PHOTOS: tuple[str, ...] = ("cat", "astronaut", "coffee")


def shapes_sample(seed: int = 0, width: int | None = None, height: int | None = None) -> ShapesSample:
    """A generated shapes picture with its ground truth; the same seed gives the same picture."""
    return generate_sample(np.random.default_rng(seed), width, height)


def photo_path(name: str) -> Path:
    """Where the photo called ``name`` is inside the installed package."""
    if name not in PHOTOS:
        raise KeyError(f"Unknown photo {name!r}; choose one of {sorted(PHOTOS)}")
    return Path(str(resources.files("workshop") / "assets" / "photos" / f"{name}.png"))


def photo(name: str) -> Image.Image:
    """A real photo shipped with the package: ``cat`` (451×300), ``astronaut`` (512×512) or ``coffee`` (600×400)."""
    with Image.open(photo_path(name)) as image:
        return image.convert("RGB")


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
