"""``WORKSHOP_ENGINE=auto`` (the default): each model on the fastest engine this installation has.

The rule, decided once per model and cached next to its exports:

1. The candidates are the exported runtimes (ONNX Runtime, OpenVINO) that are installed and
   have an export of the model, or can make one (PyTorch and Ultralytics are here).
2. No candidate: PyTorch (no exported runtime installed, or a model that cannot be exported).
3. One candidate: that one, with no timing (the back-end image keeps only ONNX Runtime).
4. Two: both run the model on the same picture, in turns, and the lower median time wins.
   The timings, the CPU and the weights' hash go to ``exports/<model>-auto.json``; the
   choice is reused while they still hold, and timed again on another CPU.

Exported engines give the same answers as PyTorch (``workshop bench`` checks it) in half the
time or less, which is why they come first. Code that needs Ultralytics' own ``Results``
API asks for PyTorch explicitly: ``Settings(engine="pytorch")``.

:func:`plan` applies the rule without making anything (what ``/models`` shows); :func:`settle`
makes the missing exports and times the runtimes, once, when the model loads. Both are
called by :mod:`workshop.engines` only.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from workshop.checkpoints import Text, say
from workshop.engines import installed
from workshop.engines.base import EngineName, EnginePlan
from workshop.engines.export import ExportRecord, ensure_export, find_export

logger = logging.getLogger(__name__)

#: The exported engines, in the order a tie or a prediction prefers them: ONNX Runtime runs
#: concurrent requests side by side (OpenVINO one at a time) and is the back-end image's runtime.
EXPORTED_PREFERENCE: tuple[EngineName, ...] = ("onnx", "openvino")
CHOICE_VERSION = 1
#: Timed calls per engine after two untimed ones, taken in turns so that a drift of the CPU's speed hits both.
TIMED_CALLS = 9


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
    """The timed choice of one model, as cached in ``exports/<model>-auto.json``."""

    model: str
    engine: EngineName
    reason: str
    #: Median milliseconds per call of each timed engine.
    timings_ms: dict[str, float] = field(default_factory=dict)
    cpu: str = ""
    candidates: list[str] = field(default_factory=list)
    #: SHA-256 of the weights the timed exports came from.
    source_sha256: str = ""
    version: int = CHOICE_VERSION


def choice_path(exports_dir: Path, model: str) -> Path:
    """Where the timed choice of ``model`` is cached."""
    return Path(exports_dir) / f"{model}-auto.json"


def no_export_nor_pytorch(model: str, exports_dir: Path) -> str:
    """Why ``auto`` cannot serve ``model`` in an installation without PyTorch, and what to do."""
    return (
        f"There is no export of '{model}' in {exports_dir} and no PyTorch here to run its weights (the back-end "
        f"image has none). Where PyTorch is installed (the codespace's venv), run `WORKSHOP_WEIGHTS_DIR=weights "
        f"workshop export {model} --engines onnx`, then build the image again: it copies weights/exports."
    )


def plan(model: str, weights: Path, exports_dir: Path) -> EnginePlan:
    """Steps 1 to 3 of the rule, and the cached outcome of step 4: nothing is exported or timed here."""
    found = {
        engine: find_export(exports_dir, model, engine, weights)
        for engine in EXPORTED_PREFERENCE
        if installed.runtime_installed(engine)
    }
    listed = tuple(engine for engine, directory in found.items() if directory is not None or installed.can_export(engine))
    if not listed:
        unavailable = None if installed.runtime_installed("pytorch") else no_export_nor_pytorch(model, exports_dir)
        reason = (say("no exported runtime (ONNX Runtime, OpenVINO) is installed",
                      "aucun runtime d'export (ONNX Runtime, OpenVINO) n'est installé") if not found
                  else say("no export can be made", "aucun export ne peut être fait"))
        return EnginePlan(model, weights, "auto", "pytorch", None, reason, unavailable)
    cached = _cached_choice(model, listed, found, exports_dir)
    if cached is not None:
        return EnginePlan(model, weights, "auto", cached.engine, found[cached.engine],
                          str(_timed_reason(cached.timings_ms)), candidates=listed)
    engine = listed[0]
    if len(listed) == 1:
        reason = say("the only exported runtime here", "le seul runtime d'export installé ici")
    else:
        reason = say("the first of ONNX Runtime and OpenVINO; both are timed when the model loads",
                     "le premier d'ONNX Runtime et d'OpenVINO ; les deux sont chronométrés au chargement du modèle")
    settled = len(listed) == 1 and found[engine] is not None
    return EnginePlan(model, weights, "auto", engine, found[engine], reason, settled=settled, candidates=listed)


def _cached_choice(
    model: str, listed: tuple[EngineName, ...], found: dict[EngineName, Path | None], exports_dir: Path
) -> AutoChoice | None:
    """The cached timed choice, when it still holds: same CPU, same candidates, exports of the same weights."""
    try:
        choice = AutoChoice(**json.loads(choice_path(exports_dir, model).read_text()))
    except (OSError, TypeError, ValueError):
        return None
    if choice.version != CHOICE_VERSION or choice.cpu != cpu_name() or choice.candidates != list(listed):
        return None
    directory = found.get(choice.engine)
    if directory is None or ExportRecord.read(directory).source_sha256 != choice.source_sha256:
        return None
    return choice


def settle(unsettled: EnginePlan, exports_dir: Path, threads: int) -> EnginePlan:
    """Step 4, when the model loads: export what is missing, time when there is a choice, cache the outcome.

    An export that fails (a network Ultralytics cannot export) drops that engine; with none
    left, PyTorch runs the model as trained.
    """
    exports: dict[EngineName, Path] = {}
    for engine in unsettled.candidates:
        try:
            exports[engine], _ = ensure_export(unsettled.weights, unsettled.model, engine, exports_dir)
        except Exception as error:  # noqa: BLE001 - unsupported layers, broken weights...: this engine is out
            logger.warning(say("auto: no %s export of %s (%s); trying the other engines",
                               "auto : pas d'export %s de %s (%s) ; essai des autres moteurs"),
                           engine, unsettled.model, error)
    if not exports:
        return replace(unsettled, engine="pytorch", export=None, reason=say("the export failed", "l'export a échoué"),
                       settled=True)
    if len(exports) == 1:
        ((engine, directory),) = exports.items()
        return replace(unsettled, engine=engine, export=directory, settled=True,
                       reason=say("the only export that could be made", "le seul export qui a pu être fait"))
    timings = time_engines(exports, threads)
    fastest = min(timings, key=timings.__getitem__)
    choice = AutoChoice(
        model=unsettled.model,
        engine=fastest,
        reason=_timed_reason(timings).en,  # the file's words; the log says them in the notebook's language
        timings_ms=timings,
        cpu=cpu_name(),
        candidates=list(unsettled.candidates),
        source_sha256=ExportRecord.read(exports[fastest]).source_sha256,
    )
    _save(choice, exports_dir)
    return replace(unsettled, engine=fastest, export=exports[fastest], reason=str(_timed_reason(timings)),
                   settled=True)


def _timed_reason(timings_ms: dict[str, float]) -> Text:
    """Why the timed engine won: "the faster of the two on this CPU (onnx 24.5 ms, openvino 33.8 ms)"."""
    en = ", ".join(f"{engine} {ms:.1f} ms" for engine, ms in timings_ms.items())
    fr = ", ".join(f"{engine} {ms:.1f} ms".replace(".", ",") for engine, ms in timings_ms.items())
    return Text(f"the faster of the two on this CPU ({en})", f"le plus rapide des deux sur ce CPU ({fr})")


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
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.{os.getpid()}")
        staged.write_text(json.dumps(asdict(choice), indent=2) + "\n")
        staged.replace(path)  # one rename: another process never reads half a file
    except OSError as error:  # a read-only weights folder: the choice is made again at the next start
        logger.warning(say("Could not cache the engine choice of %s in %s: %s",
                           "Impossible de garder en cache le choix de moteur de %s dans %s : %s"),
                       choice.model, path, error)


__all__ = ["AutoChoice", "EXPORTED_PREFERENCE", "choice_path", "cpu_name", "plan", "settle"]
