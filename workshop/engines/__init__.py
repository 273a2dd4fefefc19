"""Runtimes that execute a detection model: PyTorch, ONNX Runtime and OpenVINO.

The one place where a model's engine is decided and its export found or made. The
registry asks two questions, through two functions:

* :func:`plan_engine`: which engine will run this model, from which export, and can it run
  here at all? Nothing is exported or timed (``/models`` asks it before a model loads).
* :func:`load_engine`: load the model as planned, first making what the plan still lacks:
  an export (Ultralytics, seconds, cached in the weights folder) and, for ``auto``, the
  timing of the two exported runtimes (once per CPU, cached too).

PyTorch runs the weights as trained; the two others run an export of the same weights.
The default setting, ``auto``, picks one per model (:mod:`workshop.engines.auto`).
"""

from __future__ import annotations

from pathlib import Path

from workshop.engines import auto, installed
from workshop.engines.base import (
    ENGINE_NAMES,
    Engine,
    EngineChoice,
    EngineName,
    EnginePlan,
    InferenceParameters,
    resolve_threads,
)
from workshop.engines.export import ensure_export, find_export, no_export_here
from workshop.model_errors import ModelUnavailableError

__all__ = [
    "ENGINE_NAMES",
    "Engine",
    "EngineChoice",
    "EngineName",
    "EnginePlan",
    "InferenceParameters",
    "load_engine",
    "plan_engine",
    "resolve_threads",
]


def plan_engine(model: str, weights: Path, requested: EngineChoice, exports_dir: Path) -> EnginePlan:
    """How ``model`` will run when ``requested`` (an engine, or ``auto``) is asked for: nothing is made here."""
    if requested == "auto":
        return auto.plan(model, weights, exports_dir)
    asked = f"asked for ({requested})"
    if not installed.runtime_installed(requested):
        if requested == "pytorch":
            reason = (
                "This installation has no PyTorch (the back-end image): serve models on the onnx engine "
                "(WORKSHOP_ENGINE), or build the PyTorch image, backend/Dockerfile.pytorch."
            )
        else:
            reason = (
                f"{installed.RUNTIME_NAMES[requested]} is not installed here: ask for another engine "
                "(WORKSHOP_ENGINE, WORKSHOP_MODEL_ENGINES), or install it."
            )
        return EnginePlan(model, weights, requested, requested, None, asked, reason)
    if requested == "pytorch":
        return EnginePlan(model, weights, requested, requested, None, asked)
    export = find_export(exports_dir, model, requested, weights)
    cannot = None if export is not None or installed.can_export(requested) else no_export_here(model, requested, exports_dir)
    return EnginePlan(model, weights, requested, requested, export, asked, cannot)


def load_engine(plan: EnginePlan, exports_dir: Path, threads: int) -> tuple[Engine, EnginePlan]:
    """Load the model as ``plan`` says, settling it first (exports, timing); return the engine and the settled plan."""
    if plan.unavailable is not None:
        raise ModelUnavailableError(plan.unavailable)
    if not plan.settled:
        plan = auto.settle(plan, exports_dir, threads)
    if plan.engine == "pytorch":
        from workshop.engines.pytorch import PytorchEngine

        return PytorchEngine.load(plan.weights, threads), plan

    from workshop.engines.exported import EXPORTED_ENGINES

    directory = plan.export or ensure_export(plan.weights, plan.model, plan.engine, exports_dir)[0]
    return EXPORTED_ENGINES[plan.engine](directory, threads), plan
