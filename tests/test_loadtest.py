"""``workshop loadtest``: the real Locust, headless, against a real ``workshop serve`` on loopback.

A few seconds of load per run; the figures it writes (CSV, JSON, PNG) are read back and checked.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from workshop.cli import main
from workshop.services import BackgroundService, start_backend

from support import refused_port  # tests/ is on sys.path under pytest

KEY = "loadtest-key-7f3a"


def read_summary(output: Path) -> tuple[list[dict[str, str]], dict]:
    with open(output / "loadtest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows, json.loads((output / "loadtest.json").read_text())


def moment(text: str) -> datetime:
    """A time of ``loadtest.json``: ISO 8601, in UTC."""
    value = datetime.fromisoformat(text)
    assert value.utcoffset() is not None and not value.utcoffset(), text  # UTC, said so
    return value


def test_loadtest_writes_figures_per_step_against_a_local_server(
    live_server: BackgroundService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "figures"
    before = datetime.now(timezone.utc)
    status = main(["loadtest", live_server.url, "--steps", "1,2", "--duration", "3", "--output", str(output)])
    after = datetime.now(timezone.utc)

    printed = capsys.readouterr().out
    assert status == 0, printed
    rows, summary = read_summary(output)
    assert [row["users"] for row in rows] == ["1", "2"]  # one row per step, in order
    routes = {"/predict/upload", "/predict", "/health"}
    for row, step in zip(rows, summary["steps"], strict=True):
        assert int(row["requests"]) == step["requests"] > 0
        assert int(row["failures"]) == step["failures"] == 0, step["errors"]
        assert 0 < step["p50_ms"] <= step["p95_ms"] <= step["p99_ms"]
        assert step["requests_per_s"] > 0
        # Requests are named by route rather than by full URL. Each user asks /health when it starts; the
        # other routes are drawn at random (weights 7:2:1), so a short step may miss /predict, not the run.
        assert "/health" in step["routes"] and set(step["routes"]) <= routes
        assert sum(route["requests"] for route in step["routes"].values()) == step["requests"]
        # When the load ran, and requests/s over that window only: Locust's first figure to its last answer,
        # not its start-up and shut-down.
        started, finished = moment(step["started_at"]), moment(step["finished_at"])
        assert before < started < finished < after
        window = (finished - started).total_seconds()
        assert step["requests_per_s"] == pytest.approx(step["requests"] / window, abs=0.006)
    first, second = summary["steps"]
    assert moment(first["finished_at"]) < moment(second["started_at"])  # one step after the other
    assert (summary["started_at"], summary["finished_at"]) == (first["started_at"], second["finished_at"])
    assert set().union(*(step["routes"] for step in summary["steps"])) == routes, "a route was never exercised"
    plot = (output / "loadtest.png").read_bytes()
    assert plot.startswith(b"\x89PNG\r\n\x1a\n")
    assert 20_000 < len(plot) < 1_000_000
    from PIL import Image

    with Image.open(output / "loadtest.png") as image:
        assert image.width > 800 and image.height > 400
    assert "p95 ms" in printed and str(output / "loadtest.png") in printed
    # Locust's own files stay beside the figures, for whoever wants more.
    assert (output / "locust" / "users-2_stats.csv").exists()


def test_loadtest_without_the_api_key_counts_the_401s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("WORKSHOP_API_KEY", raising=False)
    with start_backend(env={"WORKSHOP_API_KEY": KEY}, log_dir=tmp_path / "logs") as server:
        status = main(["loadtest", server.url, "--users", "1", "--duration", "1", "--output", str(tmp_path / "no-key")])
        printed, error = capsys.readouterr()
        # Exit code 1, as Locust's own, with the figures written all the same and one sentence on what to do.
        assert status == 1, printed
        assert "pass --api-key" in error
        rows, summary = read_summary(tmp_path / "no-key")
        (step,) = summary["steps"]
        routes = step["routes"]
        # The predictions all failed, counted as failures; /health needs no key and still answers.
        assert routes["/predict/upload"]["failures"] == routes["/predict/upload"]["requests"] > 0
        assert routes["/predict"]["failures"] == routes["/predict"]["requests"]
        assert routes.get("/health", {"failures": 0})["failures"] == 0
        assert int(rows[0]["failures"]) == step["failures"] > 0
        assert any("401" in message for message in step["errors"]), step["errors"]
        assert "401" in printed

        status = main(["loadtest", server.url, "--users", "1", "--duration", "1", "--api-key", KEY,
                       "--output", str(tmp_path / "with-key")])
        assert status == 0
        _, summary = read_summary(tmp_path / "with-key")
        assert summary["steps"][0]["failures"] == 0 and summary["steps"][0]["requests"] > 0
    assert KEY not in (tmp_path / "with-key" / "loadtest.json").read_text()


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://127.0.0.1:8000", "http://", "file:///etc/passwd"])
def test_loadtest_refuses_an_address_that_is_not_http(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["loadtest", url, "--duration", "1", "--output", str(tmp_path / "figures")])

    assert status == 2
    error = capsys.readouterr().err
    assert "starts with http:// or https://" in error and "http://localhost:8000" in error
    assert not (tmp_path / "figures").exists()  # refused before anything ran


def test_loadtest_against_nothing_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with refused_port() as port:  # nothing listens there, for the whole run
        url = f"http://127.0.0.1:{port}"
        status = main(["loadtest", url, "--users", "1", "--duration", "1", "--output", str(tmp_path / "figures")])

    printed, error = capsys.readouterr()
    assert status == 1
    _, summary = read_summary(tmp_path / "figures")
    assert summary["steps"][0]["failures"] == summary["steps"][0]["requests"] > 0
    assert "Connection refused" in printed
    assert f"nothing answered at {url}: is the back-end running" in error
