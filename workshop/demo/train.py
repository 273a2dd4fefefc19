"""Train the bundled ``shapes`` detector from scratch, and measure it on fresh data.

This is what ``workshop train-demo`` runs. The same arguments give the same
data set (the generator is seeded) and the same training schedule (Ultralytics'
``seed`` and ``deterministic``); on a CPU the weights come out the same too.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from workshop.demo.shapes import write_dataset, write_split
from workshop.yolo_env import import_yolo

#: The architecture the demo model is built from: YOLO11 nano, built from its
#: YAML (random weights), so nothing is downloaded.
DEMO_ARCHITECTURE = "yolo11n.yaml"

# The held-out set uses a seed far from any training or validation seed.
_HELDOUT_SEED_OFFSET = 7_777_777


@dataclass(frozen=True)
class TrainConfig:
    """How to train the demo detector. Defaults give the bundled weights."""

    #: What training starts from: an architecture YAML (random weights: training from scratch) or a
    #: ``.pt`` file (fine-tuning a model that already detects something, as real projects do).
    start_from: str = DEMO_ARCHITECTURE
    train_images: int = 800
    val_images: int = 200
    heldout_images: int = 300
    epochs: int = 35
    image_size: int = 320
    batch: int = 16
    seed: int = 0
    workers: int = 2


@dataclass(frozen=True)
class TrainReport:
    """What a training run produced and how good it is on the held-out set."""

    weights: str
    config: dict
    map50: float
    map50_95: float
    per_class_map50_95: dict[str, float]
    train_seconds: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def evaluate(weights: Path, images: int, seed: int, image_size: int, workdir: Path) -> tuple[float, float, dict]:
    """mAP50, mAP50-95 and per-class mAP50-95 of ``weights`` on a freshly generated set."""
    YOLO = import_yolo()
    heldout_dir = workdir / "heldout"
    write_split(heldout_dir, "val", images, seed)
    data_yaml = heldout_dir / "data.yaml"
    data_yaml.write_text(
        f"path: {heldout_dir}\ntrain: images/val\nval: images/val\nnames:\n  0: circle\n  1: square\n  2: triangle\n"
    )
    metrics = YOLO(str(weights)).val(
        data=str(data_yaml), imgsz=image_size, batch=16, plots=False, verbose=False, project=str(workdir), name="val"
    )
    names = metrics.names
    per_class = {names[int(c)]: float(m) for c, m in zip(metrics.box.ap_class_index, metrics.box.maps[metrics.box.ap_class_index])}
    return float(metrics.box.map50), float(metrics.box.map), per_class


def train_demo(output: Path, config: TrainConfig | None = None, workdir: Path | None = None) -> TrainReport:
    """Generate the data set, train (from scratch by default), copy the best weights to ``output``.

    A JSON report (config and held-out mAP) is written beside the weights as
    ``<output>.json``.
    """
    config = config or TrainConfig()
    YOLO = import_yolo()
    own_workdir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="shapes-train-")) if own_workdir else Path(workdir)
    try:
        data_yaml = write_dataset(workdir / "data", config.train_images, config.val_images, config.seed)
        model = YOLO(config.start_from)
        started = time.perf_counter()
        model.train(
            data=str(data_yaml),
            epochs=config.epochs,
            imgsz=config.image_size,
            batch=config.batch,
            seed=config.seed,
            deterministic=True,
            workers=config.workers,
            device="cpu",
            project=str(workdir / "runs"),
            name="shapes",
            exist_ok=True,
            plots=False,
            # Upright triangles must stay upright: no vertical flips, no rotation.
            flipud=0.0,
            degrees=0.0,
            close_mosaic=max(1, config.epochs // 5),
            amp=False,
            cache="ram",
        )
        train_seconds = time.perf_counter() - started
        best = workdir / "runs" / "shapes" / "weights" / "best.pt"
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(best, output)
        map50, map50_95, per_class = evaluate(
            output, config.heldout_images, config.seed + _HELDOUT_SEED_OFFSET, config.image_size, workdir
        )
        report = TrainReport(
            weights=output.name,
            config=asdict(config),
            map50=round(map50, 4),
            map50_95=round(map50_95, 4),
            per_class_map50_95={k: round(v, 4) for k, v in per_class.items()},
            train_seconds=round(train_seconds, 1),
        )
        output.with_suffix(".json").write_text(report.to_json() + "\n")
        return report
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
