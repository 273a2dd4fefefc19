"""What this installation can run and export: the back-end image has one runtime and no PyTorch.

Callers use the module (``installed.runtime_installed(...)``), not the names, so that a test
can stand in for another installation by patching one place.
"""

from __future__ import annotations

import importlib.util

from workshop.engines.base import EngineName

#: The Python module each engine runs on.
RUNTIME_MODULES: dict[EngineName, str] = {"pytorch": "torch", "onnx": "onnxruntime", "openvino": "openvino"}
#: How the messages name each runtime.
RUNTIME_NAMES: dict[EngineName, str] = {"pytorch": "PyTorch", "onnx": "ONNX Runtime", "openvino": "OpenVINO"}


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def exporting_available() -> bool:
    """True when this Python can load ``.pt`` weights and export them (PyTorch and Ultralytics installed)."""
    return _importable("ultralytics") and _importable("torch")


def runtime_installed(engine: EngineName) -> bool:
    """Whether this Python can run ``engine`` (PyTorch: load ``.pt`` weights, which needs Ultralytics too)."""
    if engine == "pytorch":
        return exporting_available()
    return _importable(RUNTIME_MODULES[engine])


def can_export(engine: EngineName) -> bool:
    """Whether this Python can make an ``engine`` export (Ultralytics' ONNX export also needs the onnx package)."""
    return exporting_available() and (engine != "onnx" or _importable("onnx"))
