"""The loopback HTTP proxy the real gcloud talks to, and the request log it keeps.

gcloud is configured (see :mod:`gcloud_emulator.harness`) with ``http://SERVICE.googleapis.com/`` endpoint
overrides and this server as its HTTP proxy, as Google's Config Connector tests (mockgcp) do it: every request
then arrives here as ``GET http://compute.googleapis.com/compute/v1/...``, with the host it was meant for. The
hosts the emulator serves are answered by :class:`gcloud_emulator.cloud.Cloud`; any other host, and every
``CONNECT`` (an HTTPS tunnel), is refused with 403 and recorded, so nothing ever leaves the machine.

Requests that carry no host (``POST /_emulator/...``) are the emulator's own door, for what cannot go through
gcloud here: the stand-in ``docker push`` registers an image by this door.

Requests for a Cloud Run service's host (``SERVICE-NUMBER.REGION.run.app``, over plain HTTP here) are Google's
front door: the emulator checks the caller's identity token against the service's ``roles/run.invoker`` members,
then passes the request, as it came, to the local back-end that plays the service's container.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Request:
    """One request gcloud sent: the API's host, the path, the query and the JSON body (None when empty)."""

    method: str
    host: str
    path: str
    query: dict[str, str]
    body: object
    status: int = 0

    @property
    def service(self) -> str:
        """``compute``, ``run`` (the regional ``europe-west1-run`` host too), ``artifactregistry``..."""
        name = self.host.split(".", 1)[0]
        return "run" if name.endswith("-run") else name


@dataclass
class Answer:
    """What the emulator answers: a status and a JSON body."""

    status: int
    body: object = field(default_factory=dict)


Handler = Callable[[Request], Answer]


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass  # the request log is the record; stderr stays quiet

    def _answer(self, answer: Answer) -> None:
        data = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        host = parts.hostname or ""
        if host.endswith(".run.app"):
            self._cloud_run(host, parts.path + (f"?{parts.query}" if parts.query else ""), raw)
            return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        request = Request(self.command, host, parts.path, dict(parse_qsl(parts.query)), body)
        self._answer(self.server.dispatch(request))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def _cloud_run(self, host: str, path: str, raw: bytes) -> None:
        target = self.server.run_app(host, self.headers.get("Authorization", ""))
        if target is None:
            self.server.refused.append(f"{self.command} {host}{path}")
        if not isinstance(target, str):
            self._answer(target or Answer(404, {"error": f"no Cloud Run service at {host}"}))
            return
        upstream = urlsplit(target)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        skipped = {"host", "authorization", "proxy-connection", "connection"}
        headers = {key: value for key, value in self.headers.items() if key.lower() not in skipped}
        connection.request(self.command, path, body=raw or None, headers=headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_CONNECT(self) -> None:  # noqa: N802 - the HTTP method's name
        # An HTTPS tunnel: to a host the overrides do not cover. Refused: nothing leaves the machine.
        self.server.refused.append(f"CONNECT {self.path}")
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    dispatch: Callable[[Request], Answer]
    run_app: Callable[[str, str], str | Answer | None]
    refused: list[str]


class Proxy:
    """The proxy on 127.0.0.1: ``hosts`` maps an API host to its handler; every request is logged in order."""

    def __init__(self, route: Handler, admin: Handler, serves: Callable[[str], bool],
                 run_app: Callable[[str, str], str | Answer | None]) -> None:
        self.log: list[Request] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()
        self._route, self._admin, self._serves = route, admin, serves
        self._server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
        self._server.dispatch = self._dispatch
        self._server.run_app = run_app
        self._server.refused = self.refused
        self._thread = threading.Thread(target=self._server.serve_forever, name="gcloud-emulator", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> Proxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _dispatch(self, request: Request) -> Answer:
        if not request.host:
            return self._admin(request)
        if not self._serves(request.host):
            self.refused.append(f"{request.method} {request.host}{request.path}")
            return Answer(403, {"error": {"code": 403, "message": f"The emulator does not serve {request.host}.",
                                          "status": "PERMISSION_DENIED"}})
        with self._lock:  # one request at a time: the state is a plain Python object
            answer = self._route(request)
            self.log.append(Request(request.method, request.host, request.path, request.query, request.body,
                                    answer.status))
        return answer
