"""Inputs a server open on the internet will get: each one answered with a clear 4xx, never a 500 or a hang."""

from __future__ import annotations

import base64
import io
import socket
import time

import pytest
import requests
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from workshop.bench.agreement import box_iou as iou
from workshop.imaging import encode_image
from workshop.samples import shapes_sample
from workshop.services import BackgroundService


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


# Each hostile body, the status it must get and words its detail must hold (the field at fault, or why).
RAW_BODIES = {
    "NaN confidence": (b'{"image": "aGVsbG8=", "confidence": NaN}', 422, "confidence: Input should be"),
    "Infinity iou": (b'{"image": "aGVsbG8=", "iou": Infinity}', 422, "iou: Input should be"),
    "nested garbage": (
        b'{"image": {"image": [[[{"a": null}]]]}, "model": [1, 2]}', 422, "image: Input should be a valid string"
    ),
    "a list, not an object": (b'[1, 2, 3]', 422, "body: Input should be a valid dictionary"),
    "a bare string": (b'"image"', 422, "body: Input should be a valid dictionary"),
    "unicode in base64": ('{"image": "héllo wörld ✓"}'.encode(), 422, "not valid base64"),
    "unicode model name": ('{"image": "aGVsbG8=", "model": "模型"}'.encode(), 422, "Unknown model '模型'. Valid models"),
    "negative max_detections": (
        b'{"image": "aGVsbG8=", "max_detections": -5}', 422, "max_detections: Input should be greater than or equal"
    ),
    "float image_size": (b'{"image": "aGVsbG8=", "image_size": 320.5}', 422, "image_size: Input should be a valid integer"),
    "huge integer": (
        b'{"image": "aGVsbG8=", "image_size": 99999999999999999999999999}', 422, "image_size: Input should be less than"
    ),
    "not json at all": (b"\x00\x01\x02\xff", 422, "JSON decode error"),
}


@pytest.mark.parametrize("name", list(RAW_BODIES))
def test_garbage_json_is_a_4xx_with_a_message(api: TestClient, name: str) -> None:
    body, status, phrase = RAW_BODIES[name]
    response = api.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert phrase in response.json()["detail"], response.text


def test_wrong_content_type_is_a_4xx(api: TestClient) -> None:
    response = api.post("/predict", content=b"image=abc", headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 422, response.text
    assert "body: Input should be a valid dictionary" in response.json()["detail"]


def test_one_pixel_image_is_served(api: TestClient) -> None:
    response = api.post("/predict", json={"image": b64(png(1, 1))})
    assert response.status_code == 200 and response.json()["image_width"] == 1


def test_3_pixel_high_strip_is_served(api: TestClient) -> None:
    response = api.post("/predict", json={"image": b64(png(20_000, 3))})
    assert response.status_code == 200, response.text
    assert (response.json()["image_width"], response.json()["image_height"]) == (20_000, 3)


def test_20000_pixel_wide_strip_is_served_with_boxes_inside_it(api: TestClient) -> None:
    """A 33:1 picture with a circle near its left end and a square near its right end: each found where drawn."""
    strip = Image.new("RGB", (20_000, 600), (40, 40, 40))
    draw = ImageDraw.Draw(strip)
    drawn = {"circle": (500, 50, 1000, 550), "square": (19_000, 50, 19_500, 550)}
    draw.ellipse((500, 50, 999, 549), fill=(230, 200, 30))
    draw.rectangle((19_000, 50, 19_499, 549), fill=(30, 200, 230))
    # The largest inference size, so the shapes stay about 50 model pixels wide once the strip is shrunk.
    response = api.post("/predict", json={"image": b64(encode_image(strip)), "image_size": 1920})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["image_width"], body["image_height"]) == (20_000, 600)
    found = {d["class_name"]: d for d in body["detections"] if d["confidence"] > 0.5}
    assert set(found) == set(drawn), body["detections"]
    for name, box in drawn.items():
        truth = dict(zip(("x_min", "y_min", "x_max", "y_max"), box))
        assert iou(found[name], truth) > 0.8, f"{name} drawn at {box}, found at {found[name]}"


def test_zero_byte_upload_is_a_422(api: TestClient) -> None:
    response = api.post("/predict/upload", files={"file": ("empty.png", b"", "image/png")})
    assert response.status_code == 422 and "empty" in response.json()["detail"]


def _predict_requests_by_status(url: str) -> dict[str, float]:
    """How many ``/predict`` requests the server has answered, by status, from its ``/metrics``."""
    counts = {}
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith('workshop_requests_total{method="POST",route="/predict",'):
            counts[line.split('status="')[1].split('"')[0]] = float(line.split()[-1])
    return counts


def test_a_client_that_disconnects_mid_upload_does_not_hurt_the_server(live_server: BackgroundService) -> None:
    """Five uploads abandoned with 999 980 bytes still owed: each ends as a 4xx, none holds a place in the queue.

    The server's own metrics say how it ended each request (a crash in the app is counted as 500), and a
    real prediction right after shows the model and the queue are free.
    """
    host, port = live_server.url.removeprefix("http://").split(":")
    before = _predict_requests_by_status(live_server.url)
    log_before = len(live_server.log())  # the server is shared: only what it logs from now on counts
    for _ in range(5):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000000\r\n\r\n{\"image\": \"AAAA")
        # closed with 999 980 bytes still owed
    deadline = time.monotonic() + 10
    while True:
        after = _predict_requests_by_status(live_server.url)
        new = {status: after[status] - before.get(status, 0) for status in after if after[status] > before.get(status, 0)}
        if sum(new.values()) >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sum(new.values()) == 5, f"the server ended {sum(new.values())} of the 5 abandoned uploads: {new}"
    assert all(400 <= int(status) < 500 for status in new), f"abandoned uploads ended as {new}"
    assert "Traceback" not in live_server.log()[log_before:]
    answer = requests.post(f"{live_server.url}/predict", json={"image": b64(encode_image(shapes_sample(seed=3).image))},
                           timeout=30)
    assert answer.status_code == 200 and answer.json()["detections"], answer.text
    assert live_server.running
