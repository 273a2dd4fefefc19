"""Inputs a server open on the internet will get: each one answered with a clear 4xx, never a 500 or a hang."""

from __future__ import annotations

import base64
import io
import socket

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from workshop.services import BackgroundService


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


RAW_BODIES = {
    "NaN confidence": b'{"image": "aGVsbG8=", "confidence": NaN}',
    "Infinity iou": b'{"image": "aGVsbG8=", "iou": Infinity}',
    "nested garbage": b'{"image": {"image": [[[{"a": null}]]]}, "model": [1, 2]}',
    "a list, not an object": b'[1, 2, 3]',
    "a bare string": b'"image"',
    "unicode in base64": '{"image": "héllo wörld ✓"}'.encode(),
    "unicode model name": '{"image": "aGVsbG8=", "model": "模型"}'.encode(),
    "negative max_detections": b'{"image": "aGVsbG8=", "max_detections": -5}',
    "float image_size": b'{"image": "aGVsbG8=", "image_size": 320.5}',
    "huge integer": b'{"image": "aGVsbG8=", "image_size": 99999999999999999999999999}',
    "not json at all": b"\x00\x01\x02\xff",
}


@pytest.mark.parametrize("name", list(RAW_BODIES))
def test_garbage_json_is_a_4xx_with_a_message(api: TestClient, name: str) -> None:
    response = api.post("/predict", content=RAW_BODIES[name], headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]


def test_wrong_content_type_is_a_4xx(api: TestClient) -> None:
    response = api.post("/predict", content=b"image=abc", headers={"content-type": "application/x-www-form-urlencoded"})
    assert 400 <= response.status_code < 500


def test_one_pixel_image_is_served(api: TestClient) -> None:
    response = api.post("/predict", json={"image": b64(png(1, 1))})
    assert response.status_code == 200 and response.json()["image_width"] == 1


def test_20000_pixel_wide_strip_is_served_with_boxes_inside_it(api: TestClient) -> None:
    response = api.post("/predict", json={"image": b64(png(20_000, 3))})
    assert response.status_code == 200
    body = response.json()
    assert (body["image_width"], body["image_height"]) == (20_000, 3)
    for d in body["detections"]:
        assert 0 <= d["x_min"] <= d["x_max"] <= 20_000 and 0 <= d["y_min"] <= d["y_max"] <= 3


def test_zero_byte_upload_is_a_422(api: TestClient) -> None:
    response = api.post("/predict/upload", files={"file": ("empty.png", b"", "image/png")})
    assert response.status_code == 422 and "empty" in response.json()["detail"]


def test_a_client_that_disconnects_mid_upload_does_not_hurt_the_server(live_server: BackgroundService) -> None:
    host, port = live_server.url.removeprefix("http://").split(":")
    for _ in range(5):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000000\r\n\r\n{\"image\": \"AAAA")
        # closed with 999 980 bytes still owed
    import requests

    assert requests.get(f"{live_server.url}/health", timeout=5).status_code == 200
    assert live_server.running
