"""The back-end as users run it: ``workshop serve`` in its own process, over real HTTP."""

from __future__ import annotations

import base64
import sys
import time

import pytest
import requests

from workshop.client import BackendError, BackendUnavailableError, WorkshopClient
from workshop.samples import shapes_sample
from workshop.services import BackgroundService, free_port, start_backend

pytestmark = pytest.mark.slow


def test_health_models_and_predict_over_http(live_server: BackgroundService, shapes_png: bytes) -> None:
    url = live_server.url
    assert requests.get(f"{url}/health", timeout=5).json()["status"] == "ok"
    client = WorkshopClient(url)
    client.wait_until_ready(timeout=60)
    assert [m.name for m in client.models()][0] == "shapes"
    response = requests.post(f"{url}/predict", json={"image": base64.b64encode(shapes_png).decode()}, timeout=30)
    assert response.status_code == 200
    assert response.json()["model"] == "shapes" and response.json()["detections"]


def test_client_all_routes(live_server: BackgroundService) -> None:
    client = WorkshopClient(live_server.url)
    client.wait_until_ready(timeout=60)
    assert client.title() == "deploy-ml-workshop YOLO API"
    assert "predict" in client.describe()
    assert client.version().version == "0.1.0"
    assert client.health().status == "ok"
    sample = shapes_sample(seed=8)
    by_json = client.predict(sample.image, confidence=0.3)
    by_upload = client.predict_upload(sample.image, confidence=0.3)
    assert by_json.detections == by_upload.detections
    batch = client.predict_batch([sample.image, shapes_sample(seed=9).image])
    assert len(batch.results) == 2 and batch.results[0].model == "shapes"


def test_client_errors_are_readable(live_server: BackgroundService) -> None:
    client = WorkshopClient(live_server.url)
    with pytest.raises(BackendError) as caught:
        client.predict(b"not an image")
    assert caught.value.status_code == 422 and "not an image" in str(caught.value)
    with pytest.raises(BackendError) as caught:
        client.predict(shapes_sample(seed=1).image, model="yolo26n")
    assert caught.value.status_code == 503 and "no network" in str(caught.value)
    with pytest.raises(BackendUnavailableError, match="Cannot reach the back-end"):
        WorkshopClient(f"http://127.0.0.1:{free_port()}").health()


def _inference_queue_depth(url: str) -> float:
    """The server's own count of predictions waiting for or running inference, from ``/metrics``."""
    # A long timeout: a blocked event loop must show up as a wrong order below, not as a timeout here.
    for line in requests.get(f"{url}/metrics", timeout=60).text.splitlines():
        if line.startswith("workshop_inference_queue_depth "):
            return float(line.split()[1])
    raise AssertionError("/metrics has no workshop_inference_queue_depth gauge")


def test_health_answers_while_a_prediction_runs(live_server: BackgroundService) -> None:
    """Inference runs in a worker thread: the event loop answers ``/health`` while a prediction is in flight.

    "In flight" is proven, not assumed: the server's queue gauge shows the request inside the model before
    ``/health`` is asked, and the timestamps must read prediction sent -> seen in the model -> health answered
    -> prediction answered. A route that blocked the event loop would let nothing through until the model
    finished, not even ``/metrics``.
    """
    import threading

    url = live_server.url
    client = WorkshopClient(url)
    assert _inference_queue_depth(url) == 0, "another prediction is still running"
    # One request that keeps the model busy for seconds on any machine: eight full-HD pictures at 1280.
    big = shapes_sample(seed=2, width=1920, height=1080).image
    times: dict[str, float] = {}
    errors: list[Exception] = []

    def predict() -> None:
        times["prediction sent"] = time.monotonic()
        try:
            client.predict_batch([big] * 8, image_size=1280)
        except Exception as error:  # reported by the main thread, which owns the assertions
            errors.append(error)
        times["prediction answered"] = time.monotonic()

    worker = threading.Thread(target=predict)
    worker.start()
    try:
        while worker.is_alive() and _inference_queue_depth(url) < 1:
            time.sleep(0.05)
        times["seen in the model"] = time.monotonic()
        assert not errors, f"the prediction failed: {errors}"
        assert worker.is_alive(), (
            "/metrics never showed the prediction in flight: the server answered nothing while the model ran"
        )
        assert requests.get(f"{url}/health", timeout=30).status_code == 200
        times["health answered"] = time.monotonic()
    finally:
        worker.join(timeout=120)
    assert not errors, f"the prediction failed: {errors}"
    elapsed = {name: round(times[name] - times["prediction sent"], 3) for name in sorted(times, key=times.get)}
    expected = ["prediction sent", "seen in the model", "health answered", "prediction answered"]
    assert list(elapsed) == expected, f"/health waited for the model: seconds after sending {elapsed}"
    # Not a photo finish: the model still had a good share of its work ahead when /health answered.
    still_running = times["prediction answered"] - times["health answered"]
    assert still_running > 0.25 * elapsed["prediction answered"], f"/health answered too late: {elapsed}"
    print(f"seconds after sending the prediction: {elapsed}")


def test_cold_start_to_first_prediction(tmp_path) -> None:
    """A fresh process serves its first /predict; SIGTERM shuts it down gracefully."""
    started = time.perf_counter()
    service = start_backend(log_dir=tmp_path)
    try:
        client = WorkshopClient(service.url)
        result = client.predict(shapes_sample(seed=5).image)
        elapsed = time.perf_counter() - started
        assert result.model == "shapes"
        print(f"cold start to first 200 on /predict: {elapsed:.2f} s")
    finally:
        service.stop()
    # Uvicorn shuts down cleanly, then re-raises SIGTERM so the exit status tells why it stopped.
    assert service.process.returncode in (0, -15), service.log()[-2000:]
    assert "Application shutdown complete" in service.log()


def test_serve_rejects_a_bad_setting_with_a_clear_message(tmp_path) -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "workshop", "serve", "--port", str(free_port())],
        env={"WORKSHOP_CONFIDENCE": "7", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "confidence" in result.stderr


def test_client_pointed_at_another_kind_of_server_says_so(tmp_path) -> None:
    import subprocess

    port = free_port()
    (tmp_path / "index.html").write_text("<html>not an API</html>")
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from workshop.services import wait_for_http

        wait_for_http(f"http://127.0.0.1:{port}/", timeout=30)
        with pytest.raises(BackendError, match="not with JSON: is http://127.0.0.1:.* the workshop back-end"):
            WorkshopClient(f"http://127.0.0.1:{port}").title()
    finally:
        server.terminate()
        server.wait()
