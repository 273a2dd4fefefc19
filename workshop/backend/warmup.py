"""Load and warm up the default model in the background, and remember how it went.

The server starts answering ``/health`` at once; ``/ready`` answers 503 until
the warm-up has finished, so an orchestrator (docker-compose, a load balancer)
sends traffic only to a server whose first request will not be slow.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import logging
import threading
import time
from typing import Any

from PIL import Image

from workshop.checkpoints import number, say
from workshop.imaging import decode_base64, encode_image
from workshop.inference import predict_image_bytes
from workshop.registry import ModelRegistry
from workshop.schemas import API_KEY_HEADER, PredictRequest

logger = logging.getLogger(__name__)


class WarmUp:
    """A one-shot background warm-up of the registry's default model."""

    def __init__(self, registry: ModelRegistry, routes: Any = None) -> None:
        """``routes``: the app's router (an ASGI app), whose prediction routes' request parsing is warmed up too."""
        self.registry = registry
        self.routes = routes
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
            if self.routes is not None:
                asyncio.run(self._parse_once())
            # Everything loaded so far (modules, the model) lives as long as the server: leave it out of
            # later collections, or the first request to trigger a full one walks it all.
            gc.freeze()
            self.seconds = time.perf_counter() - started
            logger.info(say("Default model %s warmed up in %s s", "Modèle par défaut %s préchauffé en %s s"),
                        self.registry.default_name, number(self.seconds, 2))
        except Exception as error:  # noqa: BLE001 - reported by /ready, the server keeps running
            self.error = str(error)
            logger.exception(say("Warm-up of the default model failed",
                                 "Le préchauffage du modèle par défaut a échoué"))
        finally:
            self.done.set()

    def _warm_the_route(self) -> None:
        """Run what a request runs around the model once, as a JPEG and a PNG in a base64 JSON body.

        Each does work only the first time (Pillow loads its file-format plug-ins, pydantic and
        the base64 and JSON code paths warm up): measured at several times a steady request's
        cost on the first one after /ready. No request goes through the HTTP stack: logs and
        metrics count only real requests.
        """
        picture = Image.new("RGB", (64, 48), (114, 114, 114))  # small: the model itself is warm already
        for file_format in ("JPEG", "PNG"):
            body = PredictRequest(image=base64.b64encode(encode_image(picture, file_format)).decode("ascii"))
            answer = predict_image_bytes(
                self.registry, decode_base64(body.image, max_bytes=1 << 30), None, self.registry.default_parameters()
            )
            answer.model_dump_json()

    async def _parse_once(self) -> None:
        """Send each prediction route a request it refuses at validation, straight to the router.

        FastAPI and pydantic prepare a route's body parsing on its first request: measured at
        several times a steady request's cost on the first POST. A body that fails validation
        goes no further (no model call), and skipping the middleware leaves logs and metrics alone.
        """
        key = self.registry.settings.api_key
        headers = [(API_KEY_HEADER.lower().encode(), key.get_secret_value().encode())] if key else []
        json_body = json.dumps({"image": 0}).encode()
        form_body = b"--warm\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nshapes\r\n--warm--\r\n"
        for path, content_type, body in (
            ("/predict", b"application/json", json_body),
            ("/predict/upload", b"multipart/form-data; boundary=warm", form_body),
        ):
            scope = {
                "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers],
                "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0),
            }
            messages = [{"type": "http.request", "body": body, "more_body": False}]

            async def receive() -> dict:
                return messages.pop(0) if messages else {"type": "http.disconnect"}

            async def send(_: dict) -> None:
                pass

            try:
                await self.routes(scope, receive, send)
            except Exception:  # noqa: BLE001 - the validation error a real request would turn into a 422
                pass

    @property
    def ready(self) -> bool:
        return self.done.is_set() and self.error is None
