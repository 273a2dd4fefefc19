"""``WORKSHOP_ENGINE=auto`` (the default): each model on the fastest engine this installation has.

The rule, decided once per model and cached next to its exports:

1. The candidates are the exported runtimes (ONNX Runtime, OpenVINO) that are installed and
   have an export of the model, or can make one (PyTorch and Ultralytics are here).
2. No candidate: PyTorch (no exported runtime installed, or a model that cannot be exported).
3. One candidate: that one, with no timing (the lean image keeps only ONNX Runtime).
4. Two: both run the model on the same picture, in turns, and the lower median time wins.
   The timings, the CPU and the weights' hash go to ``exports/<model>-auto.json``; the
   choice is reused while they still hold, and timed again on another CPU.

Exported engines give the same answers as PyTorch (``workshop bench`` checks it) in half the
time or less, which is why they come first. Code that needs Ultralytics' own ``Results``
API asks for PyTorch explicitly: ``Settings(engine="pytorch")``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from workshop.engines import export
from workshop.engines.base import EngineName
from workshop.engines.export import ExportRecord, find_export

logger = logging.getLogger(__name__)

#: The exported engines, in the order a tie or a prediction prefers them: ONNX Runtime runs
#: concurrent requests side by side (OpenVINO one at a time) and is the lean image's runtime.
EXPORTED_PREFERENCE: tuple[EngineName, ...] = ("onnx", "openvino")
#: The Python module each exported engine runs on.
RUNTIME_MODULES: dict[EngineName, str] = {"onnx": "onnxruntime", "openvino": "openvino"}
CHOICE_VERSION = 1
#: Timed calls per engine after two untimed ones, taken in turns so that a drift of the CPU's speed hits both.
TIMED_CALLS = 9


def runtime_installed(engine: EngineName) -> bool:
    """Whether this Python can run ``engine`` (PyTorch: can load ``.pt`` weights)."""
    if engine == "pytorch":
        return export.exporting_available()
    return importlib.util.find_spec(RUNTIME_MODULES[engine]) is not None


def can_export(engine: EngineName) -> bool:
    """Whether this Python can make an ``engine`` export (Ultralytics' ONNX export also needs the onnx package)."""
    return export.exporting_available() and (engine != "onnx" or importlib.util.find_spec("onnx") is not None)


def cpu_name() -> str:
    """The CPU's model name (what the timing depends on), from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class AutoChoice:
    """The engine ``auto`` picked for one model, and why."""

    model: str
    engine: EngineName
    reason: str
    #: Median milliseconds per call of each timed engine (empty when nothing was timed).
    timings_ms: dict[str, float] = field(default_factory=dict)
    cpu: str = ""
    candidates: list[str] = field(default_factory=list)
    #: SHA-256 of the weights the timed exports came from.
    source_sha256: str = ""
    version: int = CHOICE_VERSION


def choice_path(exports_dir: Path, model: str) -> Path:
    """Where the timed choice of ``model`` is cached."""
    return Path(exports_dir) / f"{model}-auto.json"


def candidates(model: str, weights: Path, exports_dir: Path) -> list[EngineName]:
    """Exported engines installed here that have, or can make, an export of ``model`` (step 1 of the rule)."""
    return [
        engine
        for engine in EXPORTED_PREFERENCE
        if runtime_installed(engine)
        and (can_export(engine) or find_export(exports_dir, model, engine, weights) is not None)
    ]


def cached_choice(model: str, weights: Path, exports_dir: Path) -> AutoChoice | None:
    """The cached timed choice, when it still holds: same CPU, same candidates, exports of the same weights."""
    try:
        choice = AutoChoice(**json.loads(choice_path(exports_dir, model).read_text()))
    except (OSError, TypeError, ValueError):
        return None
    if choice.version != CHOICE_VERSION or choice.cpu != cpu_name():
        return None
    if choice.candidates != list(candidates(model, weights, exports_dir)):
        return None
    directory = find_export(exports_dir, model, choice.engine, weights)
    if directory is None or ExportRecord.read(directory).source_sha256 != choice.source_sha256:
        return None
    return choice


def likely_engine(model: str, weights: Path, exports_dir: Path) -> EngineName:
    """The engine ``auto`` picks or will pick for ``model``, without exporting or timing anything (for ``/models``)."""
    choice = cached_choice(model, weights, exports_dir)
    if choice is not None:
        return choice.engine
    found = candidates(model, weights, exports_dir)
    return found[0] if found else "pytorch"


def choose_engine(model: str, weights: Path, exports_dir: Path, threads: int) -> AutoChoice:
    """Apply the rule to ``model``: export what is missing, time when there is a choice, cache the outcome.

    An export that fails (a network Ultralytics cannot export) drops that engine; with none
    left, PyTorch runs the model as trained.
    """
    cached = cached_choice(model, weights, exports_dir)
    if cached is not None:
        return cached
    listed = candidates(model, weights, exports_dir)
    exports: dict[EngineName, Path] = {}
    for engine in listed:
        try:
            exports[engine] = find_export(exports_dir, model, engine, weights) or export.export_model(
                weights, model, engine, exports_dir
            )
        except Exception as error:  # noqa: BLE001 - unsupported layers, broken weights...: this engine is out
            logger.warning("auto: no %s export of %s (%s); trying the other engines", engine, model, error)
    if not exports:
        reason = (
            "no exported runtime (ONNX Runtime, OpenVINO) is installed" if not listed else "the export failed"
        )
        return AutoChoice(model, "pytorch", reason, cpu=cpu_name(), candidates=list(listed))
    if len(exports) == 1:
        (engine,) = exports
        return AutoChoice(model, engine, "the only exported runtime here", cpu=cpu_name(), candidates=list(listed))
    timings = time_engines(exports, threads)
    fastest = min(timings, key=timings.__getitem__)
    choice = AutoChoice(
        model=model,
        engine=fastest,
        reason="the faster of the two on this CPU ("
        + ", ".join(f"{engine} {ms:.1f} ms" for engine, ms in timings.items())
        + ")",
        timings_ms=timings,
        cpu=cpu_name(),
        candidates=list(listed),
        source_sha256=ExportRecord.read(exports[fastest]).source_sha256,
    )
    _save(choice, exports_dir)
    return choice


def time_engines(exports: dict[EngineName, Path], threads: int) -> dict[str, float]:
    """Median milliseconds of each engine's network on the same 4:3 picture, the engines called in turns."""
    from workshop.engines.exported import EXPORTED_ENGINES
    from workshop.engines.letterbox import letterbox

    engines = {name: EXPORTED_ENGINES[name](directory, threads) for name, directory in exports.items()}
    size = max(engine.image_size for engine in engines.values())
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8))
    batch, _ = letterbox(picture, size)
    timings: dict[str, list[float]] = {name: [] for name in engines}
    for call in range(2 + TIMED_CALLS):
        for name, engine in engines.items():
            started = time.perf_counter()
            engine.run_wide(batch)
            if call >= 2:  # the first calls at a new input shape prepare kernels: not what a request costs
                timings[name].append((time.perf_counter() - started) * 1000)
    return {name: round(statistics.median(values), 2) for name, values in timings.items()}


def _save(choice: AutoChoice, exports_dir: Path) -> None:
    path = choice_path(exports_dir, choice.model)
    try:
        staged = path.with_name(f".{path.name}.{os.getpid()}")
        staged.write_text(json.dumps(asdict(choice), indent=2) + "\n")
        staged.replace(path)  # one rename: another process never reads half a file
    except OSError as error:  # a read-only weights folder: the choice is made again at the next start
        logger.warning("Could not cache the engine choice of %s in %s: %s", choice.model, path, error)


__all__ = [
    "AutoChoice",
    "EXPORTED_PREFERENCE",
    "candidates",
    "choose_engine",
    "cpu_name",
    "likely_engine",
    "runtime_installed",
]
