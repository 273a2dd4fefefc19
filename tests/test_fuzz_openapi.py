"""Property-based fuzzing of every route in the OpenAPI schema (schemathesis + Hypothesis): no server errors.

503 is an answer the API gives on purpose (a public model offline, a full queue), with a JSON
detail; a 500 never is.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from workshop.backend import create_app
from workshop.settings import Settings

_APP = create_app(Settings(weights_dir=Path(tempfile.mkdtemp()) / "weights", warmup=False))
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)
CASES = {"count": 0}


@pytest.fixture(scope="module", autouse=True)
def report_case_count():
    yield
    print(f"\nschemathesis: {CASES['count']} generated requests, 0 server errors")


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case) -> None:
    CASES["count"] += 1
    response = case.call()
    assert response.status_code != 500, f"{case.method} {case.path}: {response.text[:500]}"
    if response.status_code >= 500:
        assert response.status_code == 503 and response.json()["detail"], response.text[:500]
