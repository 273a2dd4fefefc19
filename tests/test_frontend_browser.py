"""End to end in a real browser: Debian's Chromium, driven by Playwright, against real servers.

A student's path through the UI: open the page, upload a picture, press
Predict, read the table and see the annotated image.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from workshop.samples import shapes_sample
from workshop.services import BackgroundService, start_frontend

from support import save_screenshot  # tests/ is on sys.path under pytest

SCREENSHOT_ASSET = Path(__file__).resolve().parents[1] / "docs" / "assets" / "ui.png"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def frontend(live_server: BackgroundService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundService]:
    service = start_frontend(live_server.url, log_dir=tmp_path_factory.mktemp("frontend-logs"))
    yield service
    service.stop()


def test_upload_predict_and_see_the_shapes(frontend: BackgroundService, page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    sample = shapes_sample(seed=3)
    image_path = tmp_path / "shapes.png"
    sample.image.save(image_path)

    page.goto(frontend.url)
    expect(page.get_by_role("heading", name="YOLO object detection")).to_be_visible(timeout=60_000)
    page.locator('input[type="file"]').set_input_files(str(image_path))
    expect(page.get_by_text("shapes.png").first).to_be_visible(timeout=30_000)
    predict = page.get_by_role("button", name="Predict")
    expect(predict).to_be_enabled(timeout=30_000)
    predict.click()

    summary = page.get_by_text(re.compile(r"^Found \d+ objects?:"))
    expect(summary).to_be_visible(timeout=120_000)
    expect(page.get_by_text(re.compile(r"Model shapes · server time \d+ ms · round trip \d+ ms"))).to_be_visible()

    expect(page.locator("table td").first).to_be_visible()  # the table renders just after the summary
    cells = [cell.strip() for cell in page.locator("table td").all_inner_texts()]
    for shape in sample.shapes:
        assert shape.class_name in cells, f"{shape.class_name} missing from the table: {cells}"

    expect(page.get_by_text(re.compile(r"^shapes\.png: \d+ detections$"))).to_be_visible()  # the caption
    annotated = page.locator("img[src*='/media/']").first  # Streamlit serves st.image from /media/
    expect(annotated).to_be_visible()
    assert annotated.evaluate("img => img.complete && img.naturalWidth") == sample.image.width

    save_screenshot(page, tmp_path / "ui.png", SCREENSHOT_ASSET)


def _pids_matching(pattern: str) -> set[int]:
    """The ids of the processes whose full command line matches ``pattern`` (``pgrep -f``)."""
    import subprocess

    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, timeout=10)
    return {int(pid) for pid in found.stdout.split()}


def test_stopping_the_frontend_leaves_no_streamlit_behind(live_server: BackgroundService, tmp_path: Path) -> None:
    """The pattern is proven on the running Streamlit first, so "nothing matches" after stop means something."""
    import socket

    service = start_frontend(live_server.url, log_dir=tmp_path)
    port = int(service.url.rsplit(":", 1)[1])
    pattern = rf"streamlit run .* --server\.port {port}( |$)"
    try:
        running = _pids_matching(pattern)
        # `workshop ui` replaces itself with Streamlit (execve): the service's own process is the one to find.
        assert service.process.pid in running, (
            f"{pattern!r} matches {running}, not the running Streamlit (pid {service.process.pid}): "
            "checking it after stop would prove nothing"
        )
    finally:
        service.stop()
    assert not _pids_matching(pattern), "a Streamlit process outlived its service"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_backend_killed_and_restarted_while_the_page_is_open(page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from workshop.services import free_port, start_backend

    port = free_port()
    backend = start_backend(port=port, log_dir=tmp_path / "first")
    frontend = start_frontend(backend.url, log_dir=tmp_path)
    try:
        page.goto(frontend.url)
        alive = page.get_by_role("button", name="Is alive?")
        alive.click()
        expect(page.get_by_text("deploy-ml-workshop YOLO API, version 0.1.0")).to_be_visible(timeout=60_000)

        backend.process.kill()  # a crash, not a graceful stop
        backend.process.wait()
        alive.click()
        expect(page.get_by_text(re.compile("Back-end unreachable")).first).to_be_visible(timeout=60_000)

        backend = start_backend(port=port, log_dir=tmp_path / "second")  # the same URL comes back
        alive.click()
        expect(page.get_by_text("deploy-ml-workshop YOLO API, version 0.1.0")).to_be_visible(timeout=60_000)
        expect(page.get_by_text(re.compile("Back-end unreachable"))).to_have_count(0)
    finally:
        frontend.stop()
        backend.stop()
