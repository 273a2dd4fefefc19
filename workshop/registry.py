"""The model registry: which models exist, where their weights come from, and loading them once.

Three kinds of model:

* ``bundled``: the ``shapes`` detector trained by this project; its weights
  ship inside the package, so it works with no network at all.
* ``ultralytics``: public detection models (``yolo26n``, ``yolo11s``, ...),
  downloaded by Ultralytics on first use into one weights folder and read from
  there afterwards (a Dockerfile can preload them).
* ``file``: any weights file registered at run time, e.g. one you trained.

Models load lazily, once, on first use, on the engine the settings choose; the
registry asks :mod:`workshop.engines` which one (a plan) and then to load it. By
default (``auto``) that is the faster exported engine on this CPU, exported once and
cached, or PyTorch when the model cannot be exported. Each loaded model lets at most ``engine.lanes``
predictions run at once and the others wait their turn: one for PyTorch
(Ultralytics documents that a model object must not predict from several
threads at once, and PyTorch already spreads one inference over every core),
one per core for the exported engines (measured faster under load). Requests
for different models do not wait for each other.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from workshop.checkpoints import Text, number, say
from workshop.engines import Engine, EngineName, EnginePlan, InferenceParameters, load_engine, plan_engine
from workshop.engines import resolve_threads
from workshop.model_errors import (
    InferenceError,
    ModelBusyError,
    ModelError,
    ModelUnavailableError,
    UnknownModelError,
)
from workshop.schemas import Detection, ModelInfo
from workshop.settings import BUNDLED_MODEL, Settings
from workshop.yolo_env import network_available

__all__ = [  # the errors are re-exported: callers catch them from here
    "InferenceError",
    "InferenceParameters",
    "LoadedModel",
    "ModelBusyError",
    "ModelError",
    "ModelRegistry",
    "ModelSpec",
    "ModelUnavailableError",
    "UnknownModelError",
    "bundled_weights_path",
]

logger = logging.getLogger(__name__)

#: Public Ultralytics detection models this registry knows how to download.
PUBLIC_MODEL_PATTERN = re.compile(r"^(yolov8|yolo11|yolo12|yolo26)[nsmlx]$")

ModelSource = Literal["bundled", "ultralytics", "file"]

#: The blank pictures a warm-up runs: one per usual aspect ratio, so one per input shape requests will have
#: (OpenVINO only: the others run a new shape as fast as the previous one, after their very first call).
WARM_UP_SIZES = ((640, 480), (480, 640), (600, 400), (400, 600), (1280, 720), (720, 1280), (640, 640))


def bundled_weights_path() -> Path:
    """Path of the bundled ``shapes`` weights inside the installed package."""
    return Path(str(resources.files("workshop") / "assets" / "shapes.pt"))


@dataclass(frozen=True)
class ModelSpec:
    """How to obtain one model."""

    name: str
    source: ModelSource
    weights: Path
    description: str
    classes: tuple[str, ...] | None = None

    def weights_present(self) -> bool:
        return self.weights.is_file()


@dataclass
class LoadedModel:
    """A model in memory on its engine, with the turns that keep at most ``engine.lanes`` predictions running."""

    spec: ModelSpec
    engine: Engine
    load_seconds: float
    turns: threading.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.turns = threading.Semaphore(self.engine.lanes)

    @property
    def class_names(self) -> list[str]:
        return self.engine.class_names

    @property
    def yolo(self) -> Any:
        """The Ultralytics ``YOLO`` object (PyTorch engine only), for its ``Results`` API."""
        if self.engine.name != "pytorch":
            raise AttributeError(
                f"The model '{self.spec.name}' runs on {self.engine.name}; Ultralytics' Results API needs the "
                "PyTorch engine: ask for it with ModelRegistry(Settings(engine=\"pytorch\"))."
            )
        return self.engine.yolo  # type: ignore[attr-defined]

    def predict(
        self,
        image: Image.Image | np.ndarray,
        params: InferenceParameters,
        wait_seconds: float | None = None,
    ) -> list[Detection]:
        """Run the model on one picture (RGB Pillow image or BGR array); boxes come back in its pixels.

        ``wait_seconds``: how long to wait for the model while it serves other requests
        (None: as long as it takes); past it, :class:`ModelBusyError`.
        """
        if not self.turns.acquire(timeout=wait_seconds):
            raise ModelBusyError(
                f"The model '{self.spec.name}' stayed busy for more than {wait_seconds:g} s; try again shortly."
            )
        try:
            return self.engine.detect(image, params)
        except ModelError:
            raise
        except Exception as error:  # noqa: BLE001 - whatever breaks inside the model, the client gets a 503
            logger.exception(say("Inference failed in model %s on a %s picture",
                                 "L'inférence du modèle %s a échoué sur une image %s"), self.spec.name, _shape(image))
            raise InferenceError(
                f"The model '{self.spec.name}' failed on this image ({type(error).__name__}); the server log has "
                "the details."
            ) from error
        finally:
            self.turns.release()


def _shape(image: Image.Image | np.ndarray) -> str:
    return f"{image.width}x{image.height}" if isinstance(image, Image.Image) else str(image.shape)


class ModelRegistry:
    """Knows every servable model and loads each one at most once, thread-safely."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._specs: dict[str, ModelSpec] = {}
        self._loaded: dict[str, LoadedModel] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._registry_lock = threading.Lock()
        self._default_name: str | None = None

        self._add(
            ModelSpec(
                name=BUNDLED_MODEL,
                source="bundled",
                weights=bundled_weights_path(),
                description="Bundled offline demo: circles, squares and triangles (trained by this project).",
                classes=("circle", "square", "triangle"),
            )
        )
        for name in settings.public_models:
            self._add(self._public_spec(name))
        for name, weights in settings.custom_models.items():
            self._add(ModelSpec(name=name, source="file", weights=Path(weights), description=f"Weights from {weights}."))

    # ----------------------------------------------------------------- names
    def _public_spec(self, name: str) -> ModelSpec:
        return ModelSpec(
            name=name,
            source="ultralytics",
            weights=Path(self.settings.weights_dir) / f"{name}.pt",
            description=f"Ultralytics {name} pretrained on COCO (80 classes), downloaded on first use.",
        )

    def _add(self, spec: ModelSpec) -> None:
        with self._registry_lock:
            self._specs[spec.name] = spec
            self._load_locks.setdefault(spec.name, threading.Lock())

    def _is_allowed(self, name: str) -> bool:
        allowed = self.settings.allowed_models
        return not allowed or name in allowed

    def names(self) -> list[str]:
        """Names listed by ``/models``: registered models that the settings allow."""
        return [name for name in self._specs if self._is_allowed(name)]

    def register(self, name: str, weights: Path | str, description: str | None = None) -> ModelSpec:
        """Make a weights file servable under ``name`` (e.g. a model you just trained)."""
        weights = Path(weights)
        if not weights.is_file():
            raise FileNotFoundError(f"No weights file at {weights}")
        spec = ModelSpec(name=name, source="file", weights=weights, description=description or f"Weights from {weights}.")
        with self._registry_lock:
            self._loaded.pop(name, None)  # a re-registered name must not serve stale weights
        self._add(spec)
        return spec

    def spec(self, name: str) -> ModelSpec:
        """The spec for ``name``: a registered model, or any public Ultralytics detection model."""
        if not self._is_allowed(name):
            raise UnknownModelError(f"Model '{name}' is not allowed on this server. Valid models: {', '.join(self.names())}.")
        if name in self._specs:
            return self._specs[name]
        if PUBLIC_MODEL_PATTERN.match(name):
            spec = self._public_spec(name)
            self._add(spec)
            return spec
        raise UnknownModelError(f"Unknown model '{name}'. Valid models: {', '.join(self.names())}.")

    def plan(self, spec: ModelSpec) -> EnginePlan:
        """How ``spec`` will run: its engine and export, decided by :mod:`workshop.engines` (nothing is made)."""
        return plan_engine(spec.name, spec.weights, self.settings.engine_for(spec.name), self.settings.exports_dir)

    def engine_for(self, name: str) -> EngineName:
        """The engine that runs (or will run) the model called ``name``.

        With ``auto``, before the model loads: the engine its cached choice names, else the one it
        will most likely pick (nothing is exported or timed just to answer this).
        """
        loaded = self._loaded.get(name)
        return loaded.engine.name if loaded is not None else self.plan(self.spec(name)).engine

    def unavailable_reason(self, spec: ModelSpec, plan: EnginePlan | None = None) -> str | None:
        """Why ``spec`` cannot be served now, or None when it can (``plan``: its plan, when already made).

        In English, whatever the notebook's language: the API's words (``/models``, a 503's detail).
        """
        reason = self._unavailable(spec, plan)
        return reason.en if reason is not None else None

    def _unavailable(self, spec: ModelSpec, plan: EnginePlan | None = None) -> Text | None:
        """:meth:`unavailable_reason` in English and in French (the French for the server's log)."""
        if spec.name in self._loaded:
            return None
        plan = plan or self.plan(spec)
        if plan.unavailable is not None:
            return Text(plan.unavailable, plan.unavailable)  # the engines' sentence, in English only
        if not plan.needs_weights or spec.weights_present():
            return None
        if spec.source == "ultralytics":
            if network_available():
                return None
            return Text(
                f"The weights of '{spec.name}' are not in {spec.weights.parent} and there is no network to download "
                f"them. Connect to the internet, copy {spec.name}.pt into that folder (WORKSHOP_WEIGHTS_DIR), "
                f"or use the bundled offline model '{BUNDLED_MODEL}'.",
                f"Les poids de '{spec.name}' ne sont pas dans {spec.weights.parent}, et sans réseau on ne peut pas "
                f"les télécharger. Connectez-vous à internet, copiez {spec.name}.pt dans ce dossier "
                f"(WORKSHOP_WEIGHTS_DIR), ou servez le modèle embarqué hors ligne '{BUNDLED_MODEL}'.",
            )
        return Text(f"The weights file {spec.weights} of '{spec.name}' is missing.",
                    f"Le fichier de poids {spec.weights} de '{spec.name}' manque.")

    # --------------------------------------------------------------- default
    @property
    def default_name(self) -> str:
        """The model used when a request names none (``auto`` resolved once, then fixed)."""
        if self._default_name is None:
            configured = self.settings.default_model
            if configured != "auto":
                self.spec(configured)  # fail fast on a typo in the settings
                self._default_name = configured
            else:
                public = self.spec(self.settings.public_default_model)
                reason = self._unavailable(public)
                self._default_name = public.name if reason is None else BUNDLED_MODEL
                logger.info(say("Default model: %s (%s)", "Modèle par défaut : %s (%s)"), self._default_name,
                            say("online", "en ligne") if network_available() else say("offline", "hors ligne"))
                if reason is not None:
                    logger.info(say("Not the public default %s: %s", "Modèle public par défaut %s écarté : %s"),
                                public.name, reason)
        return self._default_name

    # --------------------------------------------------------------- loading
    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def get(self, name: str | None = None) -> LoadedModel:
        """The loaded model called ``name`` (default model when None), loading it on first use."""
        spec = self.spec(name or self.default_name)
        loaded = self._loaded.get(spec.name)
        if loaded is not None:
            return loaded
        # One lock per model: a slow download of one model never blocks another.
        with self._load_locks[spec.name]:
            loaded = self._loaded.get(spec.name)
            if loaded is None:
                loaded = self._load(spec)
                self._loaded[spec.name] = loaded
        return loaded

    def _load(self, spec: ModelSpec) -> LoadedModel:
        plan = self.plan(spec)
        reason = self.unavailable_reason(spec, plan)
        if reason is not None:
            raise ModelUnavailableError(reason)
        started = time.perf_counter()
        threads = resolve_threads(self.settings.inference_threads)
        if spec.source == "ultralytics":
            spec.weights.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Given a full path to a missing asset, Ultralytics downloads it to that path.
            engine, plan = load_engine(plan, self.settings.exports_dir, threads)
        except ModelError as error:
            raise ModelUnavailableError(f"Model '{spec.name}': {error}") from error
        except Exception as error:  # noqa: BLE001 - download, unpickling or runtime errors of any kind
            logger.exception(say("Could not load model %s", "Impossible de charger le modèle %s"), spec.name)
            raise ModelUnavailableError(f"Model '{spec.name}' could not be loaded: {error}") from error
        seconds = time.perf_counter() - started
        if plan.requested == "auto":
            logger.info(say("Engine of %s: %s, %s", "Moteur de %s : %s, %s"), spec.name, plan.engine, plan.reason)
        source = plan.export or spec.weights
        logger.info(say("Loaded model %s on %s from %s in %s s", "Modèle %s chargé sur %s depuis %s en %s s"),
                    spec.name, engine.name, source, number(seconds, 2))
        return LoadedModel(spec=spec, engine=engine, load_seconds=seconds)

    def warm_up(self, name: str | None = None) -> LoadedModel:
        """Load a model and run it on a blank picture, so the first real request is not slow.

        On OpenVINO, once per usual shape (photos and frames are 4:3, 3:2 or 16:9, either way up,
        or square): it prepares its kernels for each new input shape on its first inference there.
        """
        model = self.get(name)
        for size in WARM_UP_SIZES if model.engine.name == "openvino" else WARM_UP_SIZES[:1]:
            model.predict(Image.new("RGB", size), self.default_parameters())
        return model

    def default_parameters(self) -> InferenceParameters:
        return InferenceParameters(
            confidence=self.settings.confidence, iou=self.settings.iou, max_detections=self.settings.max_detections
        )

    # ------------------------------------------------------------------ info
    def info(self, names: Sequence[str] | None = None) -> list[ModelInfo]:
        """What ``/models`` shows for each model."""
        infos = []
        for name in names or self.names():
            spec = self.spec(name)
            loaded = self._loaded.get(name)
            plan = None if loaded is not None else self.plan(spec)
            reason = self.unavailable_reason(spec, plan)
            classes = loaded.class_names if loaded else (list(spec.classes) if spec.classes else None)
            infos.append(
                ModelInfo(
                    name=name,
                    source=spec.source,
                    description=spec.description,
                    classes=classes,
                    loaded=loaded is not None,
                    available=reason is None,
                    reason=reason,
                    default=name == self.default_name,
                    engine=loaded.engine.name if loaded else plan.engine,
                    image_size=loaded.engine.image_size if loaded else None,
                )
            )
        return infos
