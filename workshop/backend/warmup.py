"""Load and warm up the default model in the background, and remember how it went.

The server starts answering ``/health`` at once; ``/ready`` answers 503 until
the warm-up has finished, so an orchestrator (docker-compose, a load balancer)
sends traffic only to a server whose first request will not be slow.
"""

from __future__ import annotations

import base64
import logging
import threading
import time

from PIL import Image

from workshop.imaging import decode_base64, encode_image
from workshop.inference import predict_image_bytes
from workshop.registry import ModelRegistry
from workshop.schemas import PredictRequest

logger = logging.getLogger(__name__)


class WarmUp:
    """A one-shot background warm-up of the registry's default model."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.done = threading.Event()
        self.error: str | None = None
        self.seconds: float | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="model-warm-up", daemon=True)
        self._thread.start()

    def mark_skipped(self) -> None:
        """No warm-up wanted: the server is ready at once, the model loads on first use."""
        self.done.set()

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            self.registry.warm_up()
            self._warm_the_route()
            self.seconds = time.perf_counter() - started
            logger.info("Default model %s warmed up in %.2f s", self.registry.default_name, self.seconds)
        except Exception as error:  # noqa: BLE001 - reported by /ready, the server keeps running
            self.error = str(error)
            logger.exception("Warm-up of the default model failed")
        finally:
            self.done.set()

    def _warm_the_route(self) -> None:
        """Run what a request runs around the model once, as a JPEG and a PNG in a base64 JSON body.

        Each does work only the first time (Pillow loads its file-format plug-ins, pydantic and
        the base64 and JSON code paths warm up): measured at several times a steady request's
        cost on the first one after /ready. No request goes through the HTTP stack: logs and
        metrics count only real requests.
        """
        picture = Image.new("RGB", (640, 480), (114, 114, 114))
        for file_format in ("JPEG", "PNG"):
            body = PredictRequest(image=base64.b64encode(encode_image(picture, file_format)).decode("ascii"))
            answer = predict_image_bytes(
                self.registry, decode_base64(body.image, max_bytes=1 << 30), None, self.registry.default_parameters()
            )
            answer.model_dump_json()

    @property
    def ready(self) -> bool:
        return self.done.is_set() and self.error is None
