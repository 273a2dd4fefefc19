"""Configuration from environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from workshop.settings import Settings


def test_defaults() -> None:
    settings = Settings(_env_file=None)
    assert (settings.host, settings.port) == ("0.0.0.0", 8000)
    assert settings.default_model == "auto"
    assert settings.public_models == ["yolo26n", "yolo26s", "yolo26m"]
    assert settings.cors_origins == []
    assert settings.engine == "auto" and settings.engine_for("shapes") == "auto"  # the fastest engine here


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORKSHOP_PORT", "9001")
    monkeypatch.setenv("WORKSHOP_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("WORKSHOP_DEFAULT_MODEL", "shapes")
    monkeypatch.setenv("WORKSHOP_CORS_ORIGINS", "http://a.example, http://b.example")
    monkeypatch.setenv("WORKSHOP_PUBLIC_MODELS", "yolo11n,yolo11s")
    monkeypatch.setenv("WORKSHOP_MAX_UPLOAD_BYTES", "1234")
    monkeypatch.setenv("WORKSHOP_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("WORKSHOP_ENGINE", "pytorch")
    monkeypatch.setenv("WORKSHOP_MODEL_ENGINES", "shapes=auto,yolo26n=onnx")
    settings = Settings(_env_file=None)
    assert settings.port == 9001
    assert settings.weights_dir == tmp_path
    assert settings.default_model == "shapes"
    assert settings.cors_origins == ["http://a.example", "http://b.example"]
    assert settings.public_models == ["yolo11n", "yolo11s"]
    assert settings.max_upload_bytes == 1234
    assert settings.log_level == "debug"
    assert [settings.engine_for(name) for name in ("shapes", "yolo26n", "mine")] == ["auto", "onnx", "pytorch"]


@pytest.mark.parametrize(("variable", "value"), [("WORKSHOP_PORT", "0"), ("WORKSHOP_CONFIDENCE", "1.5"), ("WORKSHOP_LOG_LEVEL", "loud"), ("WORKSHOP_ENGINE", "tensorrt")])
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        Settings(_env_file=None)


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"WORKSHOP_{name.upper()}" not in readme]
    assert missing == [], f"settings missing from the README's configuration table: {missing}"


@pytest.fixture
def outside_codespace(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("CODESPACES", "CODESPACE_NAME", "WORKSHOP_UI_XSRF_PROTECTION"):
        monkeypatch.delenv(variable, raising=False)


def test_ui_xsrf_protection_is_on_outside_a_codespace(outside_codespace: None) -> None:
    assert Settings(_env_file=None).ui_xsrf_protection is True


@pytest.mark.parametrize(("variable", "value"), [("CODESPACE_NAME", "fluffy-space-train-x7"), ("CODESPACES", "true")])
def test_ui_xsrf_protection_is_off_in_a_codespace(
    outside_codespace: None, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert Settings(_env_file=None).ui_xsrf_protection is False


@pytest.mark.parametrize(
    ("in_a_codespace", "value", "expected"), [(True, "true", True), (False, "false", False), (False, "0", False)]
)
def test_ui_xsrf_protection_is_overridden_by_its_variable(
    outside_codespace: None, monkeypatch: pytest.MonkeyPatch, in_a_codespace: bool, value: str, expected: bool
) -> None:
    if in_a_codespace:
        monkeypatch.setenv("CODESPACE_NAME", "fluffy-space-train-x7")
    monkeypatch.setenv("WORKSHOP_UI_XSRF_PROTECTION", value)
    assert Settings(_env_file=None).ui_xsrf_protection is expected


def test_ui_xsrf_protection_refuses_a_value_that_is_not_a_boolean(
    outside_codespace: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKSHOP_UI_XSRF_PROTECTION", "sometimes")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)
