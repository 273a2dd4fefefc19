"""Property-based fuzzing of every route in the OpenAPI schema (schemathesis + Hypothesis): no server errors.

503 is an answer the API gives on purpose (a public model offline, a full queue), with a JSON
detail; a 500 never is. The summary line counts the server errors really seen: an exception
escaping the app (the test client passes it on rather than answering 500), a 500, or any other
5xx without a detail. ``test_the_tally_sees_a_route_that_raises`` proves the count can be non-zero.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from hypothesis import HealthCheck, settings

from workshop.backend import create_app
from workshop.settings import Settings


def _app() -> FastAPI:
    folder = Path(tempfile.mkdtemp(prefix="workshop-fuzz-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return create_app(Settings(weights_dir=folder / "weights", warmup=False))


_APP = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


def _is_deliberate_503(response) -> bool:
    """A 503 the API gives on purpose: JSON with a detail saying why."""
    try:
        return response.status_code == 503 and bool(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return False


@dataclass
class Tally:
    """Requests sent and server errors seen, counted as they happen."""

    requests: int = 0
    server_errors: list[str] = field(default_factory=list)

    def call(self, case):
        """Send ``case``; record and fail on a server error, else return the response."""
        self.requests += 1
        try:
            response = case.call()
        except Exception as error:
            self.server_errors.append(f"{case.method} {case.path}: the app raised {type(error).__name__}: {error}")
            raise
        if response.status_code >= 500 and not _is_deliberate_503(response):
            self.server_errors.append(f"{case.method} {case.path}: {response.status_code} {response.text[:500]}")
            raise AssertionError(self.server_errors[-1])
        return response


TALLY = Tally()


@pytest.fixture(scope="module", autouse=True)
def report_the_tally():
    yield
    print(f"\nschemathesis: {TALLY.requests} generated requests, {len(TALLY.server_errors)} server errors")
    for error in TALLY.server_errors[:10]:
        print(f"  {error}")


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case) -> None:
    TALLY.call(case)


def test_the_tally_sees_a_route_that_raises() -> None:
    """The same counting, on the real app with three routes added: a crash and a bare 500 count, a 503 does not."""
    app = _app()

    @app.get("/crash")
    def crash() -> str:
        raise RuntimeError("a bug in a handler")

    @app.get("/bare-500")
    def bare_500() -> JSONResponse:
        return JSONResponse({"detail": ""}, status_code=500)

    @app.get("/busy")
    def busy() -> JSONResponse:
        return JSONResponse({"detail": "The server is busy."}, status_code=503)

    broken = schemathesis.openapi.from_asgi("/openapi.json", app)
    tally = Tally()
    with pytest.raises(RuntimeError, match="a bug in a handler"):
        tally.call(broken["/crash"]["GET"].Case())
    with pytest.raises(AssertionError, match="GET /bare-500: 500"):
        tally.call(broken["/bare-500"]["GET"].Case())
    assert tally.call(broken["/busy"]["GET"].Case()).status_code == 503
    assert tally.requests == 3 and len(tally.server_errors) == 2, tally.server_errors
