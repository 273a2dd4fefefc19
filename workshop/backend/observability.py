"""What the server is doing: a request id per request, one JSON log line per request, Prometheus metrics.

Every request gets an id (the client's ``X-Request-ID`` when it sends a sane
one, else a new one), returned in the ``X-Request-ID`` response header and
written in every log line about that request, so a student's "it failed" can be
matched with the server log. Every answer also says which server gave it
(``X-Served-By``): behind a load balancer, that is how you see the spread over
the replicas. Logs never contain request bodies (images).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
SERVED_BY_HEADER = "X-Served-By"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

#: The id of the request being handled (empty outside a request).
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

access_log = logging.getLogger("workshop.access")

# Metrics live in the process-wide default registry (with the process collector's memory gauges).
REQUESTS = Counter("workshop_requests_total", "HTTP requests answered.", ["method", "route", "status"])
REQUEST_SECONDS = Histogram("workshop_request_duration_seconds", "Time to answer HTTP requests.", ["method", "route"])
INFERENCE_SECONDS = Histogram(
    "workshop_inference_duration_seconds", "Time spent in the model per image.", ["model", "engine"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
QUEUE_DEPTH = Gauge("workshop_inference_queue_depth", "Prediction requests waiting for or running inference.")
MODEL_LOAD_SECONDS = Gauge("workshop_model_load_seconds", "Time it took to load each model.", ["model"])


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


def configure_logging(level: str) -> None:
    """Server logs at ``level``, each line with its request id; access lines as bare JSON, one per request."""
    root = logging.getLogger()
    if not any(isinstance(f, _RequestIdFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"))
        handler.addFilter(_RequestIdFilter())
        root.addHandler(handler)
    root.setLevel(level.upper())
    if not access_log.handlers:
        json_handler = logging.StreamHandler()
        json_handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(json_handler)
        access_log.propagate = False  # a JSON line stays a JSON line, with no prefix
    access_log.setLevel(level.upper())


def _route_template(scope: Scope) -> str:
    """``/predict/upload`` rather than the raw path: bounded label values, whatever clients send.

    Read after the request was handled: routing has put the matched route in the scope.
    """
    route = scope.get("route")
    return getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched"


class RequestContextMiddleware:
    """Request id, server name, access log line and request metrics for every HTTP request."""

    def __init__(self, app: ASGIApp, served_by: str) -> None:
        self.app = app
        # Latin-1 is what HTTP headers carry; a name outside it is sent with "?" rather than failing every answer.
        self.served_by_header = (SERVED_BY_HEADER.lower().encode(), served_by.encode("latin-1", "replace"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(REQUEST_ID_HEADER.lower().encode(), b"").decode("latin-1")
        current = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id.set(current)
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"], (REQUEST_ID_HEADER.lower().encode(), current.encode()), self.served_by_header,
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = _route_template(scope)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            REQUEST_SECONDS.labels(scope["method"], route).observe(seconds)
            client = scope.get("client")
            access_log.info(
                json.dumps(
                    {
                        "event": "request",
                        "request_id": current,
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 1),
                        "client": client[0] if client else None,
                    }
                )
            )
            request_id.reset(token)
