"""The exported engines (ONNX Runtime, OpenVINO): same answers as PyTorch, cached exports, no PyTorch at run time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from workshop.backend.app import create_app
from workshop.engines import ENGINE_NAMES, InferenceParameters
from workshop.engines import export as export_module
from workshop.engines.export import ExportRecord, export_directory, export_model, find_export
from workshop.engines.letterbox import Letterbox, letterbox
from workshop.engines.postprocess import decode_output, non_max_suppression
from workshop.imaging import encode_image
from workshop.registry import ModelRegistry, ModelUnavailableError, bundled_weights_path
from workshop.samples import shapes_sample
from workshop.schemas import Detection
from workshop.settings import Settings

EXPORTED = [engine for engine in ENGINE_NAMES if engine != "pytorch"]


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder shared by this module, so each engine exports the bundled model once."""
    return tmp_path_factory.mktemp("engine-weights")


@pytest.fixture(scope="module")
def registries(weights_dir: Path) -> dict[str, ModelRegistry]:
    return {engine: ModelRegistry(Settings(_env_file=None, weights_dir=weights_dir, engine=engine)) for engine in ENGINE_NAMES}


def _iou(a: Detection, b: Detection) -> float:
    width = max(0.0, min(a.x_max, b.x_max) - max(a.x_min, b.x_min))
    height = max(0.0, min(a.y_max, b.y_max) - max(a.y_min, b.y_min))
    inter = width * height
    union = (a.x_max - a.x_min) * (a.y_max - a.y_min) + (b.x_max - b.x_min) * (b.y_max - b.y_min) - inter
    return inter / union if union else 0.0


@pytest.mark.parametrize("engine", EXPORTED)
def test_exported_engine_agrees_with_pytorch_on_the_bundled_model(
    engine: str, registries: dict[str, ModelRegistry]
) -> None:
    """Same model, same pictures, as each engine serves them: the same boxes, classes and confidences."""
    reference = registries["pytorch"].get("shapes").engine
    exported = registries[engine].get("shapes").engine
    params = registries["pytorch"].default_parameters()
    matched = 0
    for seed in range(100, 112):
        image = shapes_sample(seed=seed).image
        expected, got = reference.detect(image, params), exported.detect(image, params)
        assert len(got) == len(expected), f"seed {seed}: {len(got)} boxes on {engine}, {len(expected)} on pytorch"
        for want in expected:
            best = max(got, key=lambda candidate: _iou(candidate, want))
            assert best.class_name == want.class_name, f"seed {seed}: class differs"
            assert _iou(best, want) > 0.95, f"seed {seed}: box moved, IoU {_iou(best, want):.3f}"
            assert abs(best.confidence - want.confidence) < 0.01, f"seed {seed}: confidence differs"
            matched += 1
    assert matched >= 12  # every picture has shapes: a model that found nothing would not pass


@pytest.mark.parametrize("engine", EXPORTED)
def test_exported_network_matches_pytorch_on_a_public_size_model(
    engine: str, cached_public_weights: Path, tmp_path: Path
) -> None:
    """An untrained YOLO11n (80 classes, 640 px) finds nothing useful, so compare the raw network outputs."""
    import torch

    from workshop.engines.exported import EXPORTED_ENGINES
    from workshop.engines.pytorch import PytorchEngine

    weights = cached_public_weights / "yolo11n.pt"
    directory = export_model(weights, "yolo11n", engine, tmp_path)
    runner = EXPORTED_ENGINES[engine](directory, threads=2)
    batch, _ = letterbox(shapes_sample(seed=4, width=640, height=640).image, runner.image_size)
    network = PytorchEngine.load(weights, threads=2).yolo.model.eval()
    with torch.no_grad():
        expected = network(torch.from_numpy(batch))[0].numpy()
    got = runner.run(batch)
    assert got.shape == expected.shape == (1, 84, 8400)
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()


def test_exports_are_cached_next_to_the_weights_and_redone_when_the_weights_change(tmp_path: Path) -> None:
    weights = tmp_path / "mine.pt"
    weights.write_bytes(bundled_weights_path().read_bytes())
    settings = Settings(_env_file=None, weights_dir=tmp_path, engine="onnx", custom_models={"mine": weights})
    ModelRegistry(settings).get("mine")
    directory = export_directory(settings.exports_dir, "mine", "onnx")
    record = ExportRecord.read(directory)
    assert directory.parent == tmp_path / "exports"
    assert record.image_size == 320 and record.class_names == ["circle", "square", "triangle"]
    stamp = (directory / "model.onnx").stat().st_mtime_ns

    ModelRegistry(settings).get("mine")  # a new server: the export is reused as it is
    assert (directory / "model.onnx").stat().st_mtime_ns == stamp

    weights.write_bytes(weights.read_bytes() + b"\0")  # same network, different file: a retrained model
    assert find_export(settings.exports_dir, "mine", "onnx", weights) is None
    ModelRegistry(settings).get("mine")
    assert ExportRecord.read(directory).source_sha256 != record.source_sha256


def test_an_exported_engine_takes_any_image_size_as_pytorch_does(registries: dict[str, ModelRegistry]) -> None:
    """Exports have dynamic input shapes: image_size works as on PyTorch (rounded up to a multiple of 32)."""
    image = shapes_sample(seed=1, width=640, height=480).image
    for size in (640, 300):  # 300 is rounded up to 320 by both
        params = InferenceParameters(confidence=0.25, iou=0.7, max_detections=10, image_size=size)
        expected = registries["pytorch"].get("shapes").predict(image, params)
        got = registries["onnx"].get("shapes").predict(image, params)
        assert [d.class_name for d in got] == [d.class_name for d in expected] and got
        assert max(abs(a.confidence - b.confidence) for a, b in zip(got, expected)) < 0.01


def test_the_api_says_which_engine_serves_each_model(weights_dir: Path) -> None:
    settings = Settings(_env_file=None, weights_dir=weights_dir, model_engines={"shapes": "openvino"})
    app = create_app(settings, ModelRegistry(settings))
    with TestClient(app) as client:
        app.state.warmup.done.wait(timeout=120)
        models = {model["name"]: model for model in client.get("/models").json()}
        assert models["shapes"]["engine"] == "openvino" and models["shapes"]["image_size"] == 320
        assert models["yolo26n"]["engine"] == "pytorch"  # the setting's default for the others
        png = encode_image(shapes_sample(seed=2).image)
        answer = client.post("/predict/upload", files={"file": ("s.png", png, "image/png")})
        assert answer.status_code == 200 and answer.json()["engine"] == "openvino"
        assert answer.json()["detections"]
        metrics = client.get("/metrics").text
        assert 'workshop_inference_duration_seconds_count{engine="openvino",model="shapes"}' in metrics


def test_serving_from_an_export_never_imports_pytorch(registries: dict[str, ModelRegistry], weights_dir: Path) -> None:
    registries["onnx"].get("shapes")  # the export exists now, as in the lean image
    script = f"""
import sys
from workshop.registry import ModelRegistry
from workshop.samples import shapes_sample
from workshop.settings import Settings
registry = ModelRegistry(Settings(_env_file=None, weights_dir={str(weights_dir)!r}, engine="onnx"))
found = registry.get("shapes").predict(shapes_sample(seed=3).image, registry.default_parameters())
print(len(found), sorted(name for name in ("torch", "torchvision", "ultralytics") if name in sys.modules))
"""
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    count, imported = output.stdout.strip().split(" ", 1)
    assert int(count) > 0
    assert imported == "[]"


def test_without_pytorch_the_reasons_say_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(export_module, "exporting_available", lambda: False)
    monkeypatch.setattr("workshop.engines.exporting_available", lambda: False)
    on_pytorch = ModelRegistry(Settings(_env_file=None, weights_dir=tmp_path))
    assert "no PyTorch" in on_pytorch.info(["shapes"])[0].reason
    on_onnx = ModelRegistry(Settings(_env_file=None, weights_dir=tmp_path, engine="onnx"))
    reason = on_onnx.info(["shapes"])[0].reason
    assert "workshop export --model shapes --engine onnx" in reason
    with pytest.raises(ModelUnavailableError, match="workshop export"):
        on_onnx.get("shapes")


def test_letterbox_maps_boxes_back_to_the_picture() -> None:
    geometry = Letterbox.fit(width=640, height=300, size=320)  # scaled to 320x150, padded to 320x160
    assert (geometry.scaled_width, geometry.scaled_height, geometry.input_width, geometry.input_height) == (320, 150, 320, 160)
    assert (geometry.pad_left, geometry.pad_top) == (0, 5)
    boxes = geometry.to_picture(np.array([[10.0, 15.0, 50.0, 55.0], [-5.0, 0.0, 400.0, 300.0]]))
    np.testing.assert_allclose(boxes[0], [20.0, 20.0, 100.0, 100.0])
    np.testing.assert_allclose(boxes[1], [0.0, 0.0, 640.0, 300.0])  # clipped to the picture
    tensor, _ = letterbox(shapes_sample(seed=1, width=500, height=240).image, 320)  # 320x154 in 320x160
    assert tensor.shape == (1, 3, 160, 320) and tensor.dtype == np.float32
    assert tensor[0, :, 0, 0] == pytest.approx(114 / 255)  # grey padding above the picture


@pytest.mark.parametrize(("source", "target"), [((480, 640), (320, 240)), ((300, 451), (320, 213)), ((60, 90), (320, 213))])
def test_the_numpy_resize_is_opencvs_bilinear(source: tuple[int, int], target: tuple[int, int]) -> None:
    """The lean image may lack OpenCV: its fallback must give the pixels PyTorch's pre-processing gives."""
    import cv2

    from workshop.engines.letterbox import resize_bilinear_numpy

    rgb = np.random.default_rng(0).integers(0, 256, (*source, 3), dtype=np.uint8)
    expected = cv2.resize(rgb, target, interpolation=cv2.INTER_LINEAR).astype(int)
    assert np.abs(resize_bilinear_numpy(rgb, *target).astype(int) - expected).max() <= 1


def test_nms_keeps_the_best_box_per_class_and_decodes_both_layouts() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=np.float32)
    assert non_max_suppression(boxes, np.array([0.9, 0.8, 0.7]), iou_threshold=0.5).tolist() == [0, 2]

    # (1, 4 + 2 classes, 3 anchors): two overlapping boxes of different classes both stay.
    candidates = np.zeros((1, 6, 3), dtype=np.float32)
    candidates[0, :4] = np.array([[5, 6, 55], [5, 6, 55], [10, 10, 10], [10, 10, 10]])
    candidates[0, 4] = [0.9, 0.1, 0.6]
    candidates[0, 5] = [0.0, 0.8, 0.1]
    found = decode_output(candidates, end2end=False, confidence=0.25, iou=0.5, max_detections=10)
    assert found.class_ids.tolist() == [0, 1, 0]
    np.testing.assert_allclose(found.boxes_xyxy[0], [0, 0, 10, 10])

    final = np.array([[[0, 0, 5, 5, 0.3, 2], [1, 1, 6, 6, 0.9, 1], [2, 2, 7, 7, 0.1, 0]]], dtype=np.float32)
    found = decode_output(final, end2end=True, confidence=0.25, iou=0.5, max_detections=10)
    assert found.class_ids.tolist() == [1, 2] and found.confidences.tolist() == pytest.approx([0.9, 0.3])


def test_the_export_command_exports_once_then_reuses(tmp_path: Path) -> None:
    env = {"WORKSHOP_WEIGHTS_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "workshop", "export", "shapes", "--engines", "onnx"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**_env(), **env})
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("exported shapes for onnx")
    second = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**_env(), **env})
    assert second.stdout.startswith("cached shapes for onnx")
    record = json.loads((tmp_path / "exports" / "shapes-onnx" / "export.json").read_text())
    assert record["engine"] == "onnx" and record["model"] == "shapes"
    unknown = subprocess.run(
        [*command[:4], "no-such-model"], capture_output=True, text=True, timeout=300, env={**_env(), **env}
    )
    assert unknown.returncode == 1 and "Unknown model" in unknown.stderr


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_openvino_runs_one_call_at_a_time(registries: dict[str, ModelRegistry]) -> None:
    """Concurrent first inferences at new shapes can deadlock OpenVINO's CPU plugin: one lane only."""
    assert registries["openvino"].get("shapes").engine.lanes == 1


def test_onnx_calls_run_side_by_side_with_the_same_answers(registries: dict[str, ModelRegistry]) -> None:
    """Alone, a call uses every core; together, calls run one core each, side by side, and agree with it."""
    import threading

    from workshop.engines.exported import OnnxRuntimeEngine

    directory = registries["onnx"].get("shapes").engine.directory
    runner = OnnxRuntimeEngine(directory, threads=2)
    assert runner.lanes == 2
    batch, _ = letterbox(shapes_sample(seed=8, width=640, height=480).image, runner.image_size)
    wide = runner.run_wide(batch)
    outputs: list[np.ndarray] = []
    barrier = threading.Barrier(2)

    def call() -> None:
        barrier.wait()
        for _ in range(5):
            outputs.append(runner.run(batch))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outputs) == 10
    for output in [runner.run_narrow(batch), *outputs]:
        np.testing.assert_allclose(output, wide, rtol=1e-3, atol=1e-2)
