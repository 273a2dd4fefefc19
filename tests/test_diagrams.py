"""The teaching pictures in docs/assets/ are drawn by scripts/draw_diagrams.py and can be redrawn."""

import runpy
import sys

import pytest
from PIL import Image

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
def test_script_redraws_the_committed_picture_at_its_size(redrawn, name):
    """Same pixel size as the committed PNG (1400 px wide: readable at 100 % in a notebook), and not blank."""
    committed = Image.open(REPO_ROOT / "docs" / "assets" / name)
    fresh = Image.open(redrawn / name)
    fresh.verify()  # A valid PNG, not a truncated file.
    fresh = Image.open(redrawn / name)
    assert fresh.format == "PNG"
    assert fresh.size == committed.size
    assert fresh.size[0] == 1400
    # Boxes and text drawn: far more than the white background's single colour.
    assert len(fresh.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50
