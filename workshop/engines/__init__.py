"""Runtimes that execute a detection model: PyTorch, ONNX Runtime and OpenVINO.

:func:`load_engine` is the one entry point the registry uses. PyTorch runs the
weights as trained; the two others run an export of the same weights, made by
Ultralytics on first use (or at image build time) and cached in the weights folder.
The default setting, ``auto``, picks one per model (:mod:`workshop.engines.auto`).
"""

from __future__ import annotations

from pathlib import Path

from workshop.engines.base import ENGINE_NAMES, Engine, EngineChoice, EngineName, InferenceParameters, resolve_threads
from workshop.engines.export import exporting_available, export_model, find_export

__all__ = [
    "ENGINE_NAMES",
    "Engine",
    "EngineChoice",
    "EngineName",
    "InferenceParameters",
    "load_engine",
    "resolve_threads",
]


def load_engine(engine: EngineName, model: str, weights: Path, exports_dir: Path, threads: int) -> Engine:
    """Load ``model`` on ``engine``, exporting its weights first when no cached export matches them."""
    if engine == "pytorch":
        from workshop.engines.pytorch import PytorchEngine

        return PytorchEngine.load(weights, threads)

    from workshop.engines.exported import EXPORTED_ENGINES

    directory = find_export(exports_dir, model, engine, weights) or export_model(weights, model, engine, exports_dir)
    return EXPORTED_ENGINES[engine](directory, threads)


def engine_unavailable_reason(engine: EngineName, model: str, weights: Path, exports_dir: Path) -> str | None:
    """Why ``model`` cannot run on ``engine`` in this installation, or None when it can (or may, after a download)."""
    if engine == "pytorch":
        if exporting_available():
            return None
        return (
            "This installation has no PyTorch (the lean image): serve models on the onnx or openvino engine "
            "(WORKSHOP_ENGINE)."
        )
    if find_export(exports_dir, model, engine, weights) is not None or exporting_available():
        return None
    return (
        f"There is no {engine} export of '{model}' in {exports_dir} and no PyTorch here to make one; run "
        f"`workshop export {model} --engines {engine}` where PyTorch is installed."
    )
