"""The optional API key: required everywhere but /health and /ready when configured."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from workshop.backend import create_app
from workshop.client import BackendError, WorkshopClient
from workshop.settings import Settings

KEY = "s3cret-key-for-tests"


@pytest.fixture
def locked(settings: Settings):
    settings.api_key = SecretStr(KEY)
    settings.warmup = False
    with TestClient(create_app(settings)) as client:
        yield client


def test_health_and_ready_stay_open(locked: TestClient) -> None:
    assert locked.get("/health").status_code == 200
    assert locked.get("/ready").status_code == 200


@pytest.mark.parametrize(("method", "path"), [("GET", "/"), ("GET", "/models"), ("GET", "/version"),
                                              ("GET", "/describe"), ("POST", "/predict"), ("POST", "/predict/upload"),
                                              ("POST", "/predict/batch")])
def test_other_routes_need_the_key(locked: TestClient, method: str, path: str) -> None:
    response = locked.request(method, path)
    assert response.status_code == 401
    assert "X-API-Key" in response.json()["detail"]
    wrong = locked.request(method, path, headers={"X-API-Key": "wrong"})
    assert wrong.status_code == 401


def test_the_right_key_opens_the_routes(locked: TestClient, shapes_png: bytes) -> None:
    headers = {"X-API-Key": KEY}
    assert locked.get("/models", headers=headers).status_code == 200
    response = locked.post("/predict", json={"image": base64.b64encode(shapes_png).decode()}, headers=headers)
    assert response.status_code == 200


def test_no_key_configured_means_open(api: TestClient) -> None:
    assert api.get("/models").status_code == 200


def test_empty_key_setting_means_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_API_KEY", "  ")
    assert Settings(_env_file=None).api_key is None


def test_key_is_never_shown_in_settings_repr() -> None:
    assert KEY not in repr(Settings(_env_file=None, api_key=KEY))


def test_openapi_documents_the_key_header(locked: TestClient) -> None:
    schemes = locked.get("/openapi.json").json()["components"]["securitySchemes"]
    assert any(scheme.get("name") == "X-API-Key" for scheme in schemes.values())


@pytest.mark.slow
def test_client_sends_the_key_to_a_real_server(tmp_path) -> None:
    from workshop.samples import shapes_sample
    from workshop.services import start_backend

    with start_backend(env={"WORKSHOP_API_KEY": KEY}, log_dir=tmp_path) as server:
        with pytest.raises(BackendError) as caught:
            WorkshopClient(server.url).models()
        assert caught.value.status_code == 401
        client = WorkshopClient(server.url, api_key=KEY)
        assert client.predict(shapes_sample(seed=1).image).model == "shapes"
