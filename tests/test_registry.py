"""The model registry: names, offline behaviour, lazy thread-safe loading, registration."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from workshop.registry import ModelRegistry, ModelUnavailableError, UnknownModelError, bundled_weights_path
from workshop.settings import Settings


def test_bundled_weights_ship_with_the_package() -> None:
    path = bundled_weights_path()
    assert path.is_file()
    assert 1_000_000 < path.stat().st_size < 20_000_000  # a few MB


def test_lists_bundled_and_public_defaults(settings: Settings) -> None:
    registry = ModelRegistry(settings)
    assert registry.names() == ["shapes", "yolo26n", "yolo26s", "yolo26m"]


def test_offline_default_is_the_bundled_model(settings: Settings) -> None:
    assert ModelRegistry(settings).default_name == "shapes"


def test_public_default_is_used_when_its_weights_are_cached(cached_public_weights: Path) -> None:
    registry = ModelRegistry(Settings(weights_dir=cached_public_weights, public_default_model="yolo11n"))
    assert registry.default_name == "yolo11n"


def test_explicit_default_model(settings: Settings) -> None:
    settings.default_model = "yolo26s"
    assert ModelRegistry(settings).default_name == "yolo26s"


def test_explicit_default_model_typo_fails_fast(settings: Settings) -> None:
    settings.default_model = "yolo26nn"
    with pytest.raises(UnknownModelError, match="Valid models: shapes, yolo26n"):
        _ = ModelRegistry(settings).default_name


def test_unknown_model_lists_valid_ones(settings: Settings) -> None:
    with pytest.raises(UnknownModelError) as caught:
        ModelRegistry(settings).spec("resnet50")
    assert "Valid models: shapes, yolo26n, yolo26s, yolo26m" in str(caught.value)
    assert caught.value.status_code == 422


def test_other_public_detection_models_are_accepted(settings: Settings) -> None:
    registry = ModelRegistry(settings)
    assert registry.spec("yolo11n").source == "ultralytics"
    assert registry.spec("yolov8s").weights == settings.weights_dir / "yolov8s.pt"
    with pytest.raises(UnknownModelError):
        registry.spec("yolo11n-seg")  # not a detection model


def test_allowed_models_restrict_the_list(settings: Settings) -> None:
    settings.allowed_models = ["shapes"]
    registry = ModelRegistry(settings)
    assert registry.names() == ["shapes"]
    with pytest.raises(UnknownModelError, match="not allowed"):
        registry.spec("yolo26n")


def test_public_model_offline_without_weights_is_unavailable_with_advice(settings: Settings) -> None:
    registry = ModelRegistry(settings)
    with pytest.raises(ModelUnavailableError) as caught:
        registry.get("yolo26n")
    message = str(caught.value)
    assert "no network" in message and "yolo26n.pt" in message and "'shapes'" in message
    assert caught.value.status_code == 503
    info = {model.name: model for model in registry.info()}
    assert info["yolo26n"].available is False and info["yolo26n"].reason == message
    assert info["shapes"].available is True


def test_cached_public_model_loads_offline(cached_public_weights: Path) -> None:
    registry = ModelRegistry(Settings(weights_dir=cached_public_weights))
    model = registry.get("yolo11n")
    assert model.spec.source == "ultralytics"
    assert len(model.class_names) == 80  # COCO classes, from the YAML


def test_models_load_once_even_under_concurrent_first_use(shared_registry: ModelRegistry) -> None:
    registry = ModelRegistry(shared_registry.settings)
    results = []
    barrier = threading.Barrier(6)

    def load() -> None:
        barrier.wait()
        results.append(registry.get("shapes"))

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6 and all(result is results[0] for result in results)


def test_concurrent_predictions_give_the_same_answers(shared_registry: ModelRegistry) -> None:
    from workshop.imaging import to_bgr_array
    from workshop.samples import shapes_sample

    model = shared_registry.get("shapes")
    image = to_bgr_array(shapes_sample(seed=11).image)
    params = shared_registry.default_parameters()
    expected = model.predict(image, params)
    answers: list = []

    def run() -> None:
        for _ in range(3):
            answers.append(model.predict(image, params))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 12 and all(answer == expected for answer in answers)


def test_register_a_trained_weights_file(shared_registry: ModelRegistry, settings: Settings, tmp_path: Path) -> None:
    registry = ModelRegistry(settings)
    copy = tmp_path / "my-model.pt"
    copy.write_bytes(bundled_weights_path().read_bytes())
    spec = registry.register("my-model", copy)
    assert spec.source == "file" and "my-model" in registry.names()
    assert registry.get("my-model").class_names == ["circle", "square", "triangle"]
    with pytest.raises(FileNotFoundError):
        registry.register("ghost", tmp_path / "missing.pt")


def test_corrupt_weights_file_is_a_clear_503(settings: Settings, tmp_path: Path) -> None:
    registry = ModelRegistry(settings)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"this is not a checkpoint")
    registry.register("broken", broken)
    with pytest.raises(ModelUnavailableError, match="'broken' could not be loaded"):
        registry.get("broken")
    assert registry.get("shapes").spec.name == "shapes"  # other models keep serving


def test_warm_up_loads_the_default(settings: Settings) -> None:
    registry = ModelRegistry(settings)
    assert not registry.is_loaded("shapes")
    registry.warm_up()
    assert registry.is_loaded("shapes")
    assert next(m for m in registry.info() if m.name == "shapes").loaded


def test_custom_models_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    weights = tmp_path / "mine.pt"
    weights.write_bytes(bundled_weights_path().read_bytes())
    monkeypatch.setenv("WORKSHOP_CUSTOM_MODELS", f"mine={weights}, ghost=/nowhere/ghost.pt")
    registry = ModelRegistry(Settings(_env_file=None, weights_dir=tmp_path))
    assert registry.names()[-2:] == ["mine", "ghost"]
    assert registry.get("mine").class_names == ["circle", "square", "triangle"]
    info = {m.name: m for m in registry.info()}
    assert info["ghost"].available is False and "missing" in info["ghost"].reason
    monkeypatch.setenv("WORKSHOP_CUSTOM_MODELS", "no-path-here")
    with pytest.raises(ValueError, match="name=value"):
        Settings(_env_file=None)
