"""The teaching pictures in docs/assets/ are drawn by scripts/draw_diagrams.py and can be redrawn."""

import runpy
import sys

import pytest
from PIL import Image, ImageChops

from support import REPO_ROOT  # tests/ is on sys.path under pytest

PICTURES = ["microservices.png", "where-is-localhost.png"]


@pytest.fixture(scope="module")
def redrawn(tmp_path_factory):
    """Run the script as a student or the lead would, into a scratch folder."""
    out = tmp_path_factory.mktemp("diagrams")
    argv = sys.argv
    sys.argv = ["draw_diagrams.py", str(out)]
    try:
        runpy.run_path(str(REPO_ROOT / "scripts" / "draw_diagrams.py"), run_name="__main__")
    finally:
        sys.argv = argv
    return out


@pytest.mark.parametrize("name", PICTURES)
def test_the_committed_picture_is_the_scripts_drawing(redrawn, name):
    """Pixel for pixel: a picture edited by hand, or a script changed without redrawing, fails here.

    Pixels rather than bytes, so that another zlib compressing the same picture differently still passes.
    """
    committed = Image.open(REPO_ROOT / "docs" / "assets" / name)
    fresh = Image.open(redrawn / name)
    fresh.verify()  # A valid PNG, not a truncated file.
    fresh = Image.open(redrawn / name)
    assert fresh.format == committed.format == "PNG"
    assert fresh.size == committed.size, f"{name}: {fresh.size} redrawn, {committed.size} committed"
    fresh, committed = fresh.convert("RGBA"), committed.convert("RGBA")
    # Every channel, alpha too (getbbox() of an RGBA picture would look at its alpha only).
    changed = ImageChops.difference(fresh, committed).getbbox(alpha_only=False)
    assert changed is None and fresh.tobytes() == committed.tobytes(), (
        f"docs/assets/{name} differs from the script's drawing in the box {changed}: "
        "redraw it with `python scripts/draw_diagrams.py` and commit the PNG"
    )
