"""The browser's camera as an image source, in Debian's Chromium with its fake camera, against real servers.

Chromium's fake capture device stands in for the student's webcam:
``--use-fake-device-for-media-stream`` replaces the real devices,
``--use-fake-ui-for-media-stream`` answers the permission prompt, and
``--use-file-for-fake-video-capture`` plays a Y4M file written here, a
generated shapes picture, so the model sees something it knows. The page is
opened on ``http://127.0.0.1``, a secure context for ``getUserMedia`` as
``https://`` (a codespace's forwarded URL) is. What cannot be had here: a
real camera, its driver and its real permission prompt.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from support import CHROMIUM, CHROMIUM_ARGS, missing_tool, save_screenshot  # tests/ is on sys.path under pytest
from workshop.bench.agreement import box_iou
from workshop.samples import shapes_sample
from workshop.schemas import Detection
from workshop.services import BackgroundService, start_frontend

SCREENSHOT_ASSET = Path(__file__).resolve().parents[1] / "docs" / "assets" / "ui-camera.png"

pytestmark = pytest.mark.slow

#: What the fake camera films: four shapes of the three classes on a plain background, at 640×480 (VGA).
CAMERA_SAMPLE = shapes_sample(seed=4, width=640, height=480)


def write_y4m(image: Image.Image, path: Path, frames: int = 10, fps: int = 10) -> None:
    """Write ``image`` as a still Y4M video (planar YCbCr 4:2:0), the format Chromium's fake camera plays."""
    width, height = image.size
    luma, blue, red = image.convert("YCbCr").split()
    chroma = [plane.resize((width // 2, height // 2), Image.Resampling.BILINEAR).tobytes() for plane in (blue, red)]
    frame = b"FRAME\n" + luma.tobytes() + b"".join(chroma)
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode() + frame * frames)


def test_write_y4m_writes_planes_of_the_right_sizes(tmp_path: Path) -> None:
    path = tmp_path / "still.y4m"
    write_y4m(Image.new("RGB", (4, 2), (255, 0, 0)), path, frames=2)
    header, _, rest = path.read_bytes().partition(b"\n")
    assert header == b"YUV4MPEG2 W4 H2 F10:1 Ip A1:1 C420jpeg"
    frame = b"FRAME\n" + bytes([76] * 8) + bytes([84] * 2) + bytes([255] * 2)  # red in full-range BT.601 YCbCr
    assert rest == frame * 2


@pytest.fixture(scope="module")
def frontend(live_server: BackgroundService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundService]:
    service = start_frontend(live_server.url, log_dir=tmp_path_factory.mktemp("frontend-logs"))
    yield service
    service.stop()


@pytest.fixture
def camera_page(tmp_path: Path) -> Iterator:
    """A page in Chromium whose camera films :data:`CAMERA_SAMPLE`."""
    if not CHROMIUM.exists():
        missing_tool("Debian's chromium is not installed (scripts/install-test-tools.sh installs it)")
    from playwright.sync_api import sync_playwright

    film = tmp_path / "camera.y4m"
    write_y4m(CAMERA_SAMPLE.image, film)
    camera_args = [
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={film}",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS + camera_args
        )
        # Tall enough for the whole answer: Streamlit scrolls inside the page, so a full-page shot is the viewport.
        context = browser.new_context(viewport={"width": 1400, "height": 2300}, permissions=["camera"])
        yield context.new_page()
        browser.close()


def test_take_a_picture_with_the_camera_and_see_the_shapes(
    frontend: BackgroundService, camera_page, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = camera_page
    page.goto(frontend.url)
    expect(page.get_by_role("heading", name="YOLO object detection")).to_be_visible(timeout=60_000)
    page.get_by_text("Camera", exact=True).click()
    # The button shows before the camera's stream plays; a click before then takes no picture.
    page.wait_for_function(
        "() => { const v = document.querySelector('video'); return v && v.readyState >= 2 && v.videoWidth > 0; }",
        timeout=60_000,
    )
    page.get_by_role("button", name=re.compile("take photo", re.IGNORECASE)).click()
    # Predict is enabled once the picture has reached the server; Playwright's click waits for that.
    page.get_by_role("button", name="Predict").click(timeout=60_000)
    expect(page.get_by_text("camera.jpg: 4 detections")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("Found 4 objects: 1 circle, 1 square, 2 triangle.")).to_be_visible()
    annotated = page.locator("img[src*='/media/']").last  # the answer's picture, after the camera's own
    expect(annotated).to_be_visible()
    # The picture the back-end saw is the camera's frame, at the 480p asked for.
    assert annotated.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [640, 480]

    expect(page.locator("table td").first).to_be_visible()
    rows = [[cell.strip() for cell in line.split("\t")[-6:]] for line in page.locator("table tbody tr").all_inner_texts()]
    found = [  # the table's columns: class, confidence, x_min, y_min, x_max, y_max
        Detection(class_name=name, confidence=float(confidence), class_id=0, x_min=float(x_min), y_min=float(y_min),
                  x_max=float(x_max), y_max=float(y_max))
        for name, confidence, x_min, y_min, x_max, y_max in rows
    ]
    for shape in CAMERA_SAMPLE.shapes:  # every filmed shape is found, in its place
        box = (shape.x_min, shape.y_min, shape.x_max, shape.y_max)
        assert any(d.class_name == shape.class_name and box_iou(d, box) > 0.5 for d in found), f"{shape} not in {rows}"

    save_screenshot(page, tmp_path / "ui-camera.png", SCREENSHOT_ASSET)

