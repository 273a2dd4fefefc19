"""Export a model's weights to ONNX or OpenVINO with Ultralytics, once, and find the export again.

Exports are cached in the weights folder, next to downloaded weights::

    <weights_dir>/exports/<model>-<engine>/
        model.onnx            (onnx)  or  model.xml + model.bin  (openvino)
        export.json           what was exported, from which weights, at which size

``export.json`` is written last, so a folder without it is an unfinished
export and is ignored. It records the SHA-256 of the weights it came from: when
the weights change, the cached export no longer matches and is made again.
Exporting needs PyTorch and Ultralytics; *using* an export needs neither, which
is what lets the back-end image leave PyTorch out.

The bundled ``shapes`` model's ONNX export ships inside the package
(``workshop/assets/exports/shapes-onnx``), so that it runs on ONNX Runtime with
no PyTorch anywhere; :func:`find_export` looks there after the cache.
``workshop export shapes --engines onnx --bundled`` makes it again after a
retraining (a test fails while it is out of step with ``shapes.pt``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from workshop.checkpoints import number, say
from workshop.engines import installed
from workshop.engines.base import EngineName
from workshop.model_errors import ModelUnavailableError

logger = logging.getLogger(__name__)

#: Ultralytics' name for each exported engine's format.
EXPORT_FORMATS: dict[EngineName, str] = {"onnx": "onnx", "openvino": "openvino"}

#: The file inside an export folder that an engine opens.
MODEL_FILES: dict[EngineName, str] = {"onnx": "model.onnx", "openvino": "model.xml"}

RECORD_FILE = "export.json"
#: Exports shipped inside the package (the bundled model's), searched after the cache.
PACKAGED_EXPORTS = Path(str(resources.files("workshop") / "assets" / "exports"))
#: Bumped when the export settings change: older exports are then made again.
RECORD_VERSION = 3


@dataclass(frozen=True)
class ExportRecord:
    """What ``export.json`` says about one export."""

    model: str
    engine: EngineName
    image_size: int  # the default input size (the training size); any multiple of `stride` works
    stride: int
    class_names: list[str]
    #: From Ultralytics' metadata: True when the output is final boxes ``(1, rows, 6)``, False for candidates.
    end2end: bool
    #: The strides of the network's anchor grids, e.g. [8, 16, 32]: an input of h x w has sum((h/s) * (w/s)) anchors.
    strides: list[int]
    source_sha256: str
    ultralytics_version: str
    export_seconds: float
    version: int = RECORD_VERSION

    @classmethod
    def read(cls, directory: Path) -> ExportRecord:
        return cls(**json.loads((directory / RECORD_FILE).read_text()))

    @classmethod
    def read_current(cls, directory: Path) -> ExportRecord | None:
        """The record, or None when it was written by an older version of this package."""
        try:
            record = cls.read(directory)
        except (TypeError, ValueError):
            return None
        return record if record.version == RECORD_VERSION else None


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(weights: Path) -> str:
    """SHA-256 of a weights file (remembered while the file is unchanged)."""
    stat = weights.stat()
    return _sha256_cached(str(weights), stat.st_size, stat.st_mtime_ns)


def export_directory(exports_dir: Path, model: str, engine: EngineName) -> Path:
    """Where the ``engine`` export of ``model`` is cached."""
    return Path(exports_dir) / f"{model}-{engine}"


def find_export(exports_dir: Path, model: str, engine: EngineName, weights: Path | None) -> Path | None:
    """The export folder of ``model`` for ``engine``, in the cache or in the package; None when none is usable.

    With ``weights`` present the export must come from exactly those weights; without
    them (an image that ships only exports) any finished export is used.
    """
    for folder in (Path(exports_dir), PACKAGED_EXPORTS):
        directory = export_directory(folder, model, engine)
        if (directory / RECORD_FILE).is_file() and _usable(directory, model, engine, weights):
            return directory
    return None


def _usable(directory: Path, model: str, engine: EngineName, weights: Path | None) -> bool:
    record = ExportRecord.read_current(directory)
    if record is None:
        logger.info(say("The %s export of %s in %s is from an older version of this package",
                        "L'export %s de %s dans %s vient d'une version plus ancienne de ce paquet"),
                    engine, model, directory)
        return False
    if weights is not None and weights.is_file() and record.source_sha256 != weights_sha256(weights):
        logger.info(say("The %s export of %s in %s is stale (the weights changed)",
                        "L'export %s de %s dans %s est périmé (les poids ont changé)"), engine, model, directory)
        return False
    return True


def ensure_export(
    weights: Path, model: str, engine: EngineName, exports_dir: Path, image_size: int | None = None, *, force: bool = False
) -> tuple[Path, bool]:
    """The export folder of ``model`` for ``engine``, made now when none is usable (or ``force``); and whether it was made."""
    found = None if force else find_export(exports_dir, model, engine, weights)
    if found is not None:
        return found, False
    return export_model(weights, model, engine, exports_dir, image_size), True


def export_model(
    weights: Path,
    model: str,
    engine: EngineName,
    exports_dir: Path,
    image_size: int | None = None,
    *,
    nms_free: bool = False,
) -> Path:
    """Export ``weights`` for ``engine`` into the cache and return the export folder.

    ``image_size``: the exported input size; None keeps the size the model was trained at.
    ``nms_free``: export the one-to-one head of a model that has one (YOLO26), whose output is
    final boxes (Ultralytics' ``nms=False``). False keeps the head Ultralytics predicts with
    by default, which is what the PyTorch engine runs, so both engines give the same answers:
    in Ultralytics 8.4.190 that is the one-to-many head plus NMS, for YOLO26 too.
    Raises :class:`ModelUnavailableError` when this Python cannot export.
    """
    if not installed.can_export(engine):
        raise ModelUnavailableError(no_export_here(model, engine, exports_dir))
    from workshop.yolo_env import import_yolo, network_available

    if not weights.is_file() and not network_available():
        raise ModelUnavailableError(
            f"The weights of '{model}' are not at {weights} and there is no network to download them: "
            "there is nothing to export."
        )

    YOLO = import_yolo()
    import ultralytics

    exports_dir = Path(exports_dir)
    exports_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # Ultralytics writes an export next to its source file, named after it: work on a
    # copy in a private folder, then move the finished export into place in one rename.
    with tempfile.TemporaryDirectory(prefix=f".{model}-{engine}-", dir=exports_dir) as scratch:
        source = Path(scratch) / "model.pt"
        if weights.is_file():
            shutil.copyfile(weights, source)
            yolo = YOLO(str(source))
        else:  # a public model not downloaded yet: Ultralytics fetches it to that path
            yolo = YOLO(str(weights))
            shutil.copyfile(weights, source)
            yolo = YOLO(str(source))
        size = image_size or int(trained_image_size(yolo))
        try:
            # dynamic: any input size, so pictures are padded only to a multiple of the
            # stride, as on PyTorch (a 4:3 picture costs 20 % less than its square).
            options = {"nms": False} if nms_free else {}
            produced = Path(
                yolo.export(format=EXPORT_FORMATS[engine], imgsz=size, dynamic=True, verbose=False, **options)
            )
        except Exception as error:  # noqa: BLE001 - missing exporter packages, unsupported layers...
            logger.exception(say("Export of %s to %s failed", "L'export de %s vers %s a échoué"), model, engine)
            raise ModelUnavailableError(f"Exporting '{model}' to {engine} failed: {error}") from error
        staged = Path(scratch) / "export"
        staged.mkdir()
        if produced.is_dir():  # OpenVINO: a folder with model.xml, model.bin and metadata.yaml
            for item in produced.iterdir():
                shutil.move(str(item), staged / item.name)
        else:
            shutil.move(str(produced), staged / MODEL_FILES[engine])
        record = ExportRecord(
            model=model,
            engine=engine,
            image_size=size,
            stride=int(max(yolo.model.stride)),
            class_names=[yolo.names[index] for index in sorted(yolo.names)],
            end2end=_is_end2end(staged, engine),
            strides=[int(stride) for stride in yolo.model.stride],
            source_sha256=weights_sha256(source),
            ultralytics_version=ultralytics.__version__,
            export_seconds=round(time.perf_counter() - started, 2),
        )
        (staged / RECORD_FILE).write_text(json.dumps(asdict(record), indent=2) + "\n")
        destination = export_directory(exports_dir, model, engine)
        if destination.exists():
            shutil.rmtree(destination)  # a stale export of older weights
        staged.rename(destination)
    logger.info(say("Exported %s to %s in %s s: %s", "%s exporté vers %s en %s s : %s"),
                model, engine, number(record.export_seconds, 1), destination)
    return destination


def no_export_here(model: str, engine: EngineName, exports_dir: Path) -> str:
    """What to do when ``model`` has no ``engine`` export here and this installation cannot make one."""
    return (
        f"There is no {engine} export of '{model}' in {exports_dir} and no PyTorch here to make one; run "
        f"`workshop export {model} --engines {engine}` where PyTorch is installed."
    )


def _is_end2end(staged: Path, engine: EngineName) -> bool:
    """Whether the export outputs final boxes (YOLO26) rather than candidates, as Ultralytics recorded it."""
    if engine == "onnx":
        import onnx

        properties = onnx.load(str(staged / MODEL_FILES["onnx"]), load_external_data=False).metadata_props
        metadata = {prop.key: prop.value for prop in properties}
    else:
        from ultralytics.utils import YAML

        metadata = YAML.load(staged / "metadata.yaml")
    return str(metadata.get("end2end", False)).lower() == "true"


def trained_image_size(yolo: object) -> int:
    """The input size a model was trained at (Ultralytics keeps it in the checkpoint), 640 when unknown."""
    size = getattr(yolo, "overrides", {}).get("imgsz", 640)
    return int(max(size)) if isinstance(size, (list, tuple)) else int(size)
