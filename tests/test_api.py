"""The HTTP API, in-process through FastAPI's TestClient: contract, options, and every bad input."""

from __future__ import annotations

import base64
import io
from dataclasses import asdict

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from workshop.backend import create_app
from workshop.bench.agreement import box_iou as iou
from workshop.imaging import encode_image
from workshop.samples import shapes_sample
from workshop.settings import Settings


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ----------------------------------------------------------------------- info
def test_title_describe_health_version(api: TestClient) -> None:
    assert api.get("/").json() == "deploy-ml-workshop YOLO API"
    assert "POST /predict" in api.get("/describe").json()
    assert api.get("/health").json() == {"status": "ok", "version": "0.1.0"}
    version = api.get("/version").json()
    assert version["version"] == "0.1.0" and version["torch"] and version["ultralytics"].startswith("8.4")


def test_ready_once_warmed_up(api: TestClient) -> None:
    response = api.get("/ready")
    assert response.status_code == 200
    assert response.json()["ready"] is True and response.json()["default_model"] == "shapes"


def test_the_warm_up_leaves_logs_and_metrics_to_real_requests(settings: Settings, shapes_png: bytes) -> None:
    """It runs the model and the prediction routes' parsing once, but no request is counted before the first real one."""
    from prometheus_client import REGISTRY

    def requests_counted(status: str) -> float:  # the metrics are the process's: other tests' requests count too
        labels = {"method": "POST", "route": "/predict", "status": status}
        return REGISTRY.get_sample_value("workshop_requests_total", labels) or 0.0

    before = {status: requests_counted(status) for status in ("200", "422")}
    app = create_app(settings)
    with TestClient(app) as client:
        assert app.state.warmup.done.wait(timeout=120) and app.state.warmup.ready, app.state.warmup.error
        assert app.state.gate.pending == 0
        assert {status: requests_counted(status) for status in ("200", "422")} == before
        assert client.post("/predict", json={"image": b64(shapes_png)}).status_code == 200
        assert requests_counted("200") == before["200"] + 1


def test_ready_is_503_while_the_default_model_cannot_load(settings: Settings) -> None:
    settings.default_model = "yolo26n"  # offline, not cached: its warm-up must fail
    app = create_app(settings)
    with TestClient(app) as client:
        assert app.state.warmup.done.wait(timeout=30)
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.json()["ready"] is False and "no network" in response.json()["detail"]
        assert client.get("/health").status_code == 200  # liveness is not readiness


def test_models_lists_metadata(api: TestClient) -> None:
    models = {model["name"]: model for model in api.get("/models").json()}
    assert list(models) == ["shapes", "yolo26n", "yolo26s", "yolo26m"]
    shapes = models["shapes"]
    assert shapes["classes"] == ["circle", "square", "triangle"]
    assert shapes["source"] == "bundled" and shapes["loaded"] and shapes["available"] and shapes["default"]
    # The default engine, auto: the faster exported runtime here, the one that answers predictions.
    assert shapes["engine"] in ("onnx", "openvino") and shapes["image_size"] == 320
    assert models["yolo26n"]["available"] is False and "no network" in models["yolo26n"]["reason"]


def test_openapi_docs_are_served(api: TestClient) -> None:
    assert api.get("/docs").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/predict", "/predict/upload", "/predict/batch", "/predict/batch/upload", "/models", "/ready"} <= set(paths)


# -------------------------------------------------------------------- predict
def test_predict_keeps_the_original_lab_contract(api: TestClient, shapes_png: bytes) -> None:
    response = api.post("/predict", json={"model": "shapes", "image": b64(shapes_png)})
    assert response.status_code == 200
    body = response.json()
    assert {"detections", "time", "model"} <= set(body)
    assert body["model"] == "shapes" and body["time"] > 0
    assert body["detections"], "the bundled model should find the shapes"
    for detection in body["detections"]:
        assert {"x_min", "y_min", "x_max", "y_max", "class_name", "confidence"} <= set(detection)
    assert (body["image_width"], body["image_height"]) == Image.open(io.BytesIO(shapes_png)).size
    timing = body["timing"]
    assert timing["total"] >= timing["decode"] + timing["inference"] - 1e-3 and timing["total"] == body["time"]


def test_predict_without_model_uses_the_default_and_says_so(api: TestClient, shapes_png: bytes) -> None:
    answer = api.post("/predict", json={"image": b64(shapes_png)}).json()
    assert answer["model"] == "shapes"
    # On the engine /models names for it: the default, auto, chose an exported one.
    listed = next(model for model in api.get("/models").json() if model["name"] == "shapes")
    assert answer["engine"] == listed["engine"] and answer["engine"] in ("onnx", "openvino")


def test_data_url_prefix_is_accepted(api: TestClient, shapes_png: bytes) -> None:
    response = api.post("/predict", json={"image": "data:image/png;base64," + b64(shapes_png)})
    assert response.status_code == 200


def _predict(api: TestClient, image: Image.Image, **options: object) -> list[dict]:
    response = api.post("/predict", json={"image": b64(encode_image(image)), **options})
    assert response.status_code == 200, response.text
    return response.json()["detections"]


@pytest.mark.parametrize("scale", [1, 2])
@pytest.mark.parametrize("image_size", [256, 480])
def test_boxes_are_in_original_pixels_whatever_the_inference_size(api: TestClient, scale: int, image_size: int) -> None:
    """Each drawn shape is found where it was drawn, in the sent picture's pixels, at any picture or model size.

    Boxes left in the model's letterboxed pixels (or scaled for the wrong size) miss the truth: the picture
    (180 x 320, then twice that) is never the model's input size, so no mistake can land on the right place.
    """
    sample = shapes_sample(seed=21)  # four shapes, each found at about 0.93-0.97 confidence
    image = sample.image.resize((sample.image.width * scale, sample.image.height * scale), Image.Resampling.NEAREST)
    detections = _predict(api, image, image_size=image_size)
    assert len(sample.shapes) == 4 and detections, "the bundled model should find the shapes"
    for shape in sample.shapes:
        truth = {k: v * scale for k, v in asdict(shape).items() if k != "class_name"}
        best = max((iou(d, truth) for d in detections if d["class_name"] == shape.class_name), default=0.0)
        assert best > 0.8, f"{shape.class_name} drawn at {truth} (scale {scale}, image_size {image_size}): " \
                           f"best IoU {best:.2f} among {detections}"


def test_confidence_and_max_detections_are_applied(api: TestClient) -> None:
    """Thresholds chosen between the scores the model really gives, so a server that ignores one fails.

    The four shapes all score about 0.93-0.97 and the rest are near 0: a threshold of 0.9 would change nothing.
    """
    image = shapes_sample(seed=21).image
    loose = _predict(api, image, confidence=0.001)
    scores = sorted({d["confidence"] for d in loose})
    assert scores[0] < 0.25, f"confidence=0.001 kept nothing below the default 0.25: {scores}"
    shapes_scores = [score for score in scores if score > 0.5]
    assert len(shapes_scores) == 4, f"expected the four shapes above 0.5: {scores}"
    # Just above the lowest score (a near-0 guess), then just above the weakest of the four shapes.
    for threshold in ((scores[0] + scores[1]) / 2, (shapes_scores[0] + shapes_scores[1]) / 2):
        strict = _predict(api, image, confidence=threshold)
        expected = [d for d in loose if d["confidence"] >= threshold]
        assert sorted(d["confidence"] for d in strict) == pytest.approx(sorted(d["confidence"] for d in expected)), \
            f"confidence={threshold:.4f} should keep exactly {len(expected)} of {len(loose)} detections"
    capped = _predict(api, image, confidence=0.001, max_detections=1)
    assert [d["confidence"] for d in capped] == pytest.approx([max(scores)]), "max_detections=1 keeps the best one"


def test_multipart_upload_matches_base64(api: TestClient, shapes_png: bytes) -> None:
    by_json = api.post("/predict", json={"image": b64(shapes_png), "confidence": 0.3}).json()
    by_upload = api.post(
        "/predict/upload", files={"file": ("shapes.png", shapes_png, "image/png")}, data={"confidence": "0.3"}
    ).json()
    assert by_upload["detections"] == by_json["detections"]


def test_batch_routes_answer_in_order(api: TestClient) -> None:
    images = [encode_image(shapes_sample(seed=seed).image) for seed in (1, 2, 3)]
    singles = [api.post("/predict", json={"image": b64(image)}).json()["detections"] for image in images]
    batch = api.post("/predict/batch", json={"images": [b64(image) for image in images]}).json()
    assert [result["detections"] for result in batch["results"]] == singles and batch["model"] == "shapes"
    files = [("files", (f"{i}.png", image, "image/png")) for i, image in enumerate(images)]
    upload = api.post("/predict/batch/upload", files=files).json()
    assert [result["detections"] for result in upload["results"]] == singles


def test_grayscale_rgba_cmyk_are_served(api: TestClient) -> None:
    image = shapes_sample(seed=4).image
    for mode, format in (("L", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG")):
        buffer = io.BytesIO()
        image.convert(mode).save(buffer, format=format)
        assert api.post("/predict", json={"image": b64(buffer.getvalue())}).status_code == 200, mode


# ------------------------------------------------------------------ bad input
BAD_REQUESTS = {
    "invalid base64": ({"image": "%%%not base64%%%"}, 422, "not valid base64"),
    "not an image": ({"image": b64(b"just some text")}, 422, "not an image"),
    "empty image": ({"image": ""}, 422, "empty"),
    "missing image": ({"model": "shapes"}, 422, "image: Field required"),
    "unknown model": ({"image": b64(b"x"), "model": "resnet"}, 422, "Valid models: shapes"),
    "confidence above 1": ({"image": b64(b"x"), "confidence": 2}, 422, "confidence"),
    "negative iou": ({"image": b64(b"x"), "iou": -0.1}, 422, "iou"),
    "image size too small": ({"image": b64(b"x"), "image_size": 8}, 422, "image_size"),
    "wrong type": ({"image": 12345}, 422, "image"),
    "unknown field": ({"image": b64(b"x"), "confidance": 0.5}, 422, "confidance"),
    "public model offline": ({"image": b64(b"x"), "model": "yolo26n"}, 503, "no network"),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_requests_get_a_clear_4xx_or_503(api: TestClient, name: str) -> None:
    payload, status, phrase = BAD_REQUESTS[name]
    response = api.post("/predict", json=payload)
    assert response.status_code == status, response.text
    assert phrase in response.json()["detail"]


def test_truncated_and_animated_images_are_422(api: TestClient, shapes_png: bytes) -> None:
    truncated = api.post("/predict", json={"image": b64(shapes_png[: len(shapes_png) // 2])})
    assert truncated.status_code == 422 and "truncated" in truncated.json()["detail"]
    buffer = io.BytesIO()
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue", "green")]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    animated = api.post("/predict", json={"image": b64(buffer.getvalue())})
    assert animated.status_code == 422 and "3 frames" in animated.json()["detail"]


def test_validation_errors_do_not_echo_the_image(api: TestClient) -> None:
    big = b64(b"\x00" * 100_000)
    response = api.post("/predict", json={"image": big, "confidence": "high"})
    assert response.status_code == 422
    assert big[:100] not in response.text


def test_malformed_json_is_422(api: TestClient) -> None:
    response = api.post("/predict", content=b'{"image": ', headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_upload_without_file_is_422(api: TestClient) -> None:
    assert api.post("/predict/upload", data={"model": "shapes"}).status_code == 422


def test_batch_over_the_limit_is_refused(settings: Settings, shapes_png: bytes) -> None:
    settings.max_batch_images = 2
    settings.warmup = False
    with TestClient(create_app(settings)) as client:
        response = client.post("/predict/batch", json={"images": [b64(shapes_png)] * 3})
    assert response.status_code == 422 and "at most 2 images" in response.json()["detail"]


def test_size_limits_give_413(settings: Settings, shapes_png: bytes) -> None:
    settings.warmup = False
    settings.max_upload_bytes = 1000
    settings.max_request_bytes = 50_000
    settings.max_pixels = 100
    with TestClient(create_app(settings)) as client:
        too_big_file = client.post("/predict/upload", files={"file": ("a.png", b"\x89PNG" + b"0" * 2000)})
        assert too_big_file.status_code == 413 and "1000 bytes" in too_big_file.json()["detail"]
        too_big_body = client.post("/predict", json={"image": "A" * 60_000})
        assert too_big_body.status_code == 413 and "request body" in too_big_body.json()["detail"]
        small_png = encode_image(Image.new("RGB", (20, 20)))
        too_many_pixels = client.post("/predict", json={"image": b64(small_png)})
        assert too_many_pixels.status_code == 413 and "400 pixels" in too_many_pixels.json()["detail"]


def test_streamed_body_over_the_limit_is_413(settings: Settings) -> None:
    settings.warmup = False
    settings.max_request_bytes = 10_000

    def chunks():
        for _ in range(20):
            yield b"A" * 1000

    with TestClient(create_app(settings)) as client:
        response = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_cors_only_for_configured_origins(settings: Settings) -> None:
    settings.warmup = False
    settings.cors_origins = ["http://allowed.example"]
    with TestClient(create_app(settings)) as client:
        allowed = client.get("/health", headers={"Origin": "http://allowed.example"})
        other = client.get("/health", headers={"Origin": "http://evil.example"})
    assert allowed.headers.get("access-control-allow-origin") == "http://allowed.example"
    assert "access-control-allow-origin" not in other.headers
