"""Request ids, JSON access logs, Prometheus metrics, the bounded inference queue, model failures."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading

import pytest
from fastapi.testclient import TestClient

from workshop.backend import create_app
from workshop.registry import LoadedModel, ModelRegistry
from workshop.settings import Settings


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_every_answer_has_a_request_id_and_a_sane_one_is_kept(api: TestClient) -> None:
    generated = api.get("/health").headers["X-Request-ID"]
    assert len(generated) == 32
    assert api.get("/health", headers={"X-Request-ID": "lab-42"}).headers["X-Request-ID"] == "lab-42"
    weird = api.get("/health", headers={"X-Request-ID": "x" * 200}).headers["X-Request-ID"]
    assert weird != "x" * 200 and len(weird) == 32  # an absurd id is replaced, not echoed


def test_errors_carry_the_request_id(api: TestClient) -> None:
    response = api.post("/predict", json={"image": "%%%"}, headers={"X-Request-ID": "oops-1"})
    assert response.status_code == 422 and response.json()["request_id"] == "oops-1"


def test_one_json_access_line_per_request_without_image_bytes(api: TestClient, shapes_png: bytes, caplog: pytest.LogCaptureFixture) -> None:
    image = b64(shapes_png)
    with caplog.at_level(logging.INFO, logger="workshop.access"):
        caplog.handler.setFormatter(logging.Formatter("%(message)s"))
        logging.getLogger("workshop.access").addHandler(caplog.handler)
        try:
            api.post("/predict", json={"image": image}, headers={"X-Request-ID": "log-me"})
        finally:
            logging.getLogger("workshop.access").removeHandler(caplog.handler)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "workshop.access"]
    mine = [line for line in lines if line["request_id"] == "log-me"]
    assert len(mine) == 1
    assert mine[0]["route"] == "/predict" and mine[0]["status"] == 200 and mine[0]["duration_ms"] > 0
    assert image[:64] not in caplog.text


def test_metrics_in_prometheus_format(api: TestClient, shapes_png: bytes) -> None:
    api.post("/predict", json={"image": b64(shapes_png)})
    api.post("/predict", json={"image": "%%%"})
    text = api.get("/metrics").text
    assert 'workshop_requests_total{method="POST",route="/predict",status="200"}' in text
    assert 'workshop_requests_total{method="POST",route="/predict",status="422"}' in text
    engine = next(model["engine"] for model in api.get("/models").json() if model["name"] == "shapes")
    assert engine in ("onnx", "openvino")  # the default, auto: an exported engine when one is installed
    assert f'workshop_inference_duration_seconds_count{{engine="{engine}",model="shapes"}}' in text
    assert "workshop_inference_queue_depth" in text
    assert 'workshop_model_load_seconds{model="shapes"}' in text
    assert "process_resident_memory_bytes" in text


def test_unknown_paths_do_not_create_a_label_per_path(api: TestClient) -> None:
    for index in range(3):
        api.get(f"/no/such/page/{index}")
    text = api.get("/metrics").text
    assert 'route="unmatched"' in text and "/no/such/page" not in text


def hold_every_lane(model: LoadedModel) -> None:
    """Take every turn of the model, as that many running predictions would (1 on PyTorch, 1 per core on ONNX Runtime)."""
    for _ in range(model.engine.lanes):
        model.turns.acquire()


def release_every_lane(model: LoadedModel) -> None:
    for _ in range(model.engine.lanes):
        model.turns.release()


def test_full_queue_answers_503_with_retry_after(shared_registry: ModelRegistry, shapes_png: bytes) -> None:
    settings = Settings(weights_dir=shared_registry.settings.weights_dir, max_pending_predictions=1, warmup=False)
    app = create_app(settings, shared_registry)
    model = shared_registry.get("shapes")
    with TestClient(app) as client:
        hold_every_lane(model)  # the model is busy: the first request waits in the queue
        first: dict = {}
        waiting = threading.Thread(target=lambda: first.update(r=client.post("/predict", json={"image": b64(shapes_png)})))
        waiting.start()
        try:
            for _ in range(200):  # until the first request holds the only place
                if app.state.gate.pending == 1:
                    break
                threading.Event().wait(0.01)
            busy = client.post("/predict", json={"image": b64(shapes_png)})
        finally:
            release_every_lane(model)
            waiting.join()
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
    assert "busy" in busy.json()["detail"]
    assert first["r"].status_code == 200  # the one in the queue was served
    assert app.state.gate.pending == 0


def test_an_exception_inside_the_model_is_a_503_with_the_request_id(settings: Settings, shapes_png: bytes, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    settings.warmup = False
    registry = ModelRegistry(settings)
    model = registry.get("shapes")

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory, or anything else")

    monkeypatch.setattr(model.engine, "detect", broken)  # whichever engine runs it (auto, by default)
    with TestClient(create_app(settings, registry)) as client, caplog.at_level(logging.ERROR):
        response = client.post("/predict", json={"image": b64(shapes_png)}, headers={"X-Request-ID": "boom-7"})
        assert response.status_code == 503
        body = response.json()
        assert body["request_id"] == "boom-7" and "failed on this image (RuntimeError)" in body["detail"]
        assert "Traceback" not in response.text and "CUDA" not in response.text
        assert any(record.exc_info for record in caplog.records)  # the traceback is in the server log
        assert client.get("/health").status_code == 200  # and the server carries on


def test_time_budget_a_request_does_not_wait_for_the_model_forever(shared_registry: ModelRegistry, shapes_png: bytes) -> None:
    settings = Settings(weights_dir=shared_registry.settings.weights_dir, inference_wait_seconds=0.3, warmup=False)
    registry = ModelRegistry(settings)
    model = registry.get("shapes")
    with TestClient(create_app(settings, registry)) as client:
        hold_every_lane(model)  # other requests keep the model busy
        try:
            busy = client.post("/predict", json={"image": b64(shapes_png)}, headers={"X-Request-ID": "late-1"})
        finally:
            release_every_lane(model)
        served = client.post("/predict", json={"image": b64(shapes_png)})
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "2"
    assert "stayed busy for more than 0.3 s" in busy.json()["detail"] and busy.json()["request_id"] == "late-1"
    assert served.status_code == 200


def test_every_answer_says_which_instance_served_it(shared_registry: ModelRegistry) -> None:
    settings = Settings(instance_name="replica-7", max_request_bytes=1024, warmup=False)
    named = TestClient(create_app(settings, shared_registry))
    assert named.get("/health").headers["X-Served-By"] == "replica-7"
    # Errors too, including a 413 from the size limit that stops the request before the app.
    assert named.post("/predict", json={"image": "%%%"}).headers["X-Served-By"] == "replica-7"
    too_big = named.post("/predict", json={"image": "A" * 4096})
    assert too_big.status_code == 413 and too_big.headers["X-Served-By"] == "replica-7"
    # Default: the host name, which in a container is its id: each replica answers with its own.
    assert Settings().instance_name == socket.gethostname()
