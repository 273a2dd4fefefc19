"""The sample pictures: generated shapes, and three photos that ship with the package (no scikit-image needed)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from workshop.samples import PHOTOS, photo, write_samples

#: SHA-256 of the RGB pixels scikit-image 0.26 returns for each photo (``data.chelsea()``, ``astronaut()``,
#: ``coffee()``): the photos were copied from there, and the models' recorded answers were measured on them.
SCIKIT_IMAGE_PIXELS = {
    "cat": ((300, 451, 3), "416b729128bfb2c3d1eb69bf9b1734a796293abc17939267b2dc94f8a5784031"),
    "astronaut": ((512, 512, 3), "a8c429c18afa7b0fd5673e598d73a21225d94c864a71bbb3885126fdecb41071"),
    "coffee": ((400, 600, 3), "0ce2b51640b9c95f19617f03eabf40c3f0368589cc1ee1190b70966165ac184f"),
}


def test_each_photo_has_scikit_images_pixels() -> None:
    assert set(PHOTOS) == set(SCIKIT_IMAGE_PIXELS)
    for name, (shape, digest) in SCIKIT_IMAGE_PIXELS.items():
        pixels = np.asarray(photo(name))
        assert pixels.shape == shape and pixels.dtype == np.uint8, name
        assert hashlib.sha256(pixels.tobytes()).hexdigest() == digest, f"{name}.png is not scikit-image's photo"


def test_the_photos_load_without_scikit_image_or_scipy() -> None:
    """As in the front-end's image, which installs neither: importing them is made to fail."""
    script = """
import sys
sys.modules["skimage"] = sys.modules["scipy"] = None  # `import skimage` now raises ImportError
from workshop.samples import PHOTOS, photo
print(sorted((name, photo(name).size) for name in PHOTOS))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[('astronaut', (512, 512)), ('cat', (451, 300)), ('coffee', (600, 400))]"


def test_write_samples_writes_shapes_and_every_photo(tmp_path: Path) -> None:
    paths = write_samples(tmp_path, shapes=2)
    assert [path.name for path in paths] == ["shapes_0.png", "shapes_1.png", "cat.png", "astronaut.png", "coffee.png"]
    with Image.open(tmp_path / "cat.png") as written:
        assert np.array_equal(np.asarray(written.convert("RGB")), np.asarray(photo("cat")))
