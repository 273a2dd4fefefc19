"""``workshop check``: the contract grader, against real servers on loopback.

The servers: this project's back-end (``workshop serve``, with an API key), the original
lab's design (``uvicorn workshop.minimal_backend:app``, the real command), and small
``http.server`` stand-ins for what a class also deploys: text to everything, ``/health`` then
hang-ups, redirects to a login page, a student's own server with classic mistakes; sockets that
never answer, and a free port with nothing behind it. Every request goes to 127.0.0.1.
"""

from __future__ import annotations

import base64
import csv
import http.server
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from workshop.check import (
    CHECKS,
    PLAIN_MARKS,
    UNICODE_MARKS,
    Picture,
    RosterEntry,
    RosterError,
    check_deployment,
    check_roster,
    marks_for,
    read_roster,
    sample_picture,
)
from workshop.cli import main
from workshop.services import BackgroundService, free_port, start_backend, start_process

from support import refused_port  # tests/ is on sys.path under pytest

API_KEY = "grading-key-4f1c"
CHECK_NAMES = [check.name for check in CHECKS]


@pytest.fixture(scope="module")
def picture() -> Picture:
    return sample_picture()


@pytest.fixture(scope="module")
def keyed_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundService]:
    """This project's back-end as the VM runs it: ``workshop serve`` with ``WORKSHOP_API_KEY`` set."""
    service = start_backend(env={"WORKSHOP_API_KEY": API_KEY}, log_dir=tmp_path_factory.mktemp("keyed-logs"))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def minimal_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundService]:
    """The original lab's design, served by notebook 02's command: ``uvicorn workshop.minimal_backend:app``."""
    port = free_port()
    uvicorn = Path(sys.executable).with_name("uvicorn")
    service = start_process(
        "minimal-backend", [str(uvicorn), "workshop.minimal_backend:app", "--port", str(port)],
        f"http://127.0.0.1:{port}", log_dir=tmp_path_factory.mktemp("minimal-logs"),
    )
    yield service
    service.stop()


class _StandInServer(http.server.ThreadingHTTPServer):
    """A server that is not the API: it records the requests it gets (method and path)."""

    daemon_threads = True

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.requests: list[str] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _TextEverywhere(http.server.BaseHTTPRequestHandler):
    """200 and a line of text (not JSON, not ASCII) to every GET and POST."""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append(f"{self.command} {self.path}")
        self._reply("text/plain; charset=utf-8", "Bonjour — this is not the API.".encode())

    def _reply(self, content_type: str, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


class _HealthThenHangUp(_TextEverywhere):
    """Answers ``GET /health`` like the API, then closes every other connection without a word (a crash)."""

    def _answer(self) -> None:
        self.server.requests.append(f"{self.command} {self.path}")
        if self.path != "/health":
            self.close_connection = True
            return
        self._reply("application/json", b'{"status": "ok"}')

    do_GET = do_POST = _answer


class _RedirectToLogin(_TextEverywhere):
    """Sends every request to a login page, as a private codespace port does to a client without its cookie."""

    def _answer(self) -> None:
        self.server.requests.append(f"{self.command} {self.path}")
        self.send_response(302)
        self.send_header("Location", "https://github.com/login?return_to=%2F")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer


class _StudentsOwnServer(_TextEverywhere):
    """A student's own server, not FastAPI, with three classic mistakes: it is still loading its model (``/ready``
    says 503), its boxes are in the model's input frame (twice the picture's size) instead of the picture's pixels,
    and bytes that are not a picture crash it (a 500, as uvicorn answers an exception nobody caught)."""

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append(f"{self.command} {self.path}")
        if (self.command, self.path) == ("GET", "/health"):
            self._json(200, {"status": "ok"})
        elif (self.command, self.path) == ("GET", "/ready"):
            self._json(503, {"ready": False, "detail": "The default model is loading."})
        elif (self.command, self.path) == ("GET", "/models"):
            self._json(200, [{"name": "circles", "default": True, "available": True}])
        elif (self.command, self.path) == ("POST", "/predict"):
            try:
                picture = Image.open(io.BytesIO(base64.b64decode(json.loads(body)["image"])))
            except Exception:
                self._reply("text/plain; charset=utf-8", b"Internal Server Error", status=500)
                return
            box = {"x_min": 10, "y_min": 10, "x_max": picture.width * 2, "y_max": picture.height * 2}
            self._json(200, {"detections": [{**box, "class_name": "circle", "confidence": 0.9}], "time": 0.01,
                             "model": "circles"})
        else:
            self._json(404, {"detail": "Not Found"})

    def _json(self, status: int, content: object) -> None:
        self._reply("application/json", json.dumps(content).encode(), status)

    do_GET = do_POST = _answer


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[_StandInServer]:
    server = _StandInServer(handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def text_server() -> Iterator[_StandInServer]:
    yield from _serve(_TextEverywhere)


@pytest.fixture
def hang_up_server() -> Iterator[_StandInServer]:
    yield from _serve(_HealthThenHangUp)


@pytest.fixture
def redirecting_server() -> Iterator[_StandInServer]:
    yield from _serve(_RedirectToLogin)


@pytest.fixture
def students_own_server() -> Iterator[_StandInServer]:
    yield from _serve(_StudentsOwnServer)


@pytest.fixture
def silent_socket() -> Iterator[str]:
    """A port whose connections open (the kernel accepts them) but where nothing ever reads or answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture
def stopped_url() -> Iterator[str]:
    """A stopped back-end: a port held, for the test, where every connection is refused."""
    with refused_port() as port:
        yield f"http://127.0.0.1:{port}"


class _RoundsOfThree:
    """A port that holds each connection until three are held at once, then hangs up on the three together.

    It records the most connections it ever held at once, and every connection that waited in vain for two more
    (20 s): a grader checking three deployments at a time fills each round; one checking them one by one never
    fills one; one checking six at a time holds more than three at once. Each connection is counted out before it
    is closed, so a grader's next connection can never find the previous one still counted. A full round is held
    a moment more before its release: time for a grader's surplus connections to arrive and be counted (a right
    grader has none: all its workers are waiting on the round), so no pass depends on that moment, only a catch.
    """

    ROUND = 3

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.round = threading.Barrier(self.ROUND, action=lambda: time.sleep(0.2), timeout=20)
        self.lock = threading.Lock()
        self.held = self.most_held = self.connections = 0
        self.rounds_never_filled = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed: the test is over
                return
            threading.Thread(target=self._hold, args=(connection,), daemon=True).start()

    def _hold(self, connection: socket.socket) -> None:
        with self.lock:
            self.connections += 1
            self.held += 1
            self.most_held = max(self.most_held, self.held)
        try:
            self.round.wait()
        except threading.BrokenBarrierError:
            with self.lock:
                self.rounds_never_filled += 1
        with self.lock:
            self.held -= 1
        connection.close()  # no answer: the health check fails at once


@pytest.fixture
def rounds_of_three() -> Iterator[_RoundsOfThree]:
    server = _RoundsOfThree()
    yield server
    server.round.abort()
    server.listener.close()


def _statuses(report) -> dict[str, str]:
    return {check.name: check.status for check in report.checks}


def _readme_transcript(command: str) -> str:
    """What the README's "Grading a deployment" section shows after ``$ command``, up to the next prompt."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("\n## Grading a deployment\n"):]
    section = section[: section.index("\n## ", 1)]
    after = section[section.index(f"$ {command}\n") + len(command) + 3:]
    return after[: after.index("\n$ ") + 1]


def _without_timings(text: str, url: str) -> str:
    """``text`` with what changes from run to run masked: durations, the version, the server's address."""
    text = text.replace(url, "http://localhost:PORT")
    text = re.sub(r"\d+ ms", "N ms", text)
    text = re.sub(r"\(\d+\.\d s\)", "(N s)", text)
    return re.sub(r'"version": "[^"]+"', '"version": "V"', text)


# ---------------------------------------------------------------------------------------- this project's back-end


@pytest.mark.slow  # a real server process
def test_project_backend_passes_every_check_with_its_key(
    keyed_backend: BackgroundService, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", keyed_backend.url, "--api-key", API_KEY]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"Checking {keyed_backend.url}"
    check_lines = lines[1:-1]
    assert len(check_lines) == len(CHECKS) == 8  # one line each, no fix line under any
    for line, check in zip(check_lines, CHECKS, strict=True):
        assert line.startswith(f"  {UNICODE_MARKS.passed}  {check.title}"), line
    assert "POST /predict answers 401 without the key and with a wrong one" in out
    assert lines[-1].startswith("All 8 checks passed (")
    # The README shows a real run: the same lines, but for the timings and the address.
    readme = _readme_transcript("workshop check http://localhost:8000 --api-key demo-key")
    assert _without_timings(out, keyed_backend.url) == _without_timings(readme, "http://localhost:8000")


@pytest.mark.slow  # a real server process
def test_project_backend_report_as_data(keyed_backend: BackgroundService, picture: Picture) -> None:
    report = check_deployment(keyed_backend.url, API_KEY, picture=picture)
    assert report.passed and report.reachable and report.ready is True
    assert _statuses(report) == dict.fromkeys(CHECK_NAMES, "pass")
    assert report.score == "8/8" and report.fixes == []
    assert report.model == "shapes"  # the offline default, as /models marks it
    assert report.latency > 0  # measured; how fast is the benchmark's business
    assert report.result("bad_image").detail.startswith("422: The file is not an image")
    assert report.to_dict()["passed"] is True and report.to_dict()["checks"][0]["name"] == "health"


@pytest.mark.slow  # a real server process
def test_without_the_key_the_grade_fails_and_says_to_give_it(
    keyed_backend: BackgroundService, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", keyed_backend.url]) == 1
    out = capsys.readouterr().out
    assert "the server needs an API key (401: This server needs an API key: send it in the X-API-Key header.)" in out
    assert f"{UNICODE_MARKS.fix} Give the server's key: workshop check URL --api-key KEY" in out
    report = check_deployment(keyed_backend.url)
    assert _statuses(report) == {
        "health": "pass", "ready": "pass", "models": "fail", "predict_base64": "skip", "predict_upload": "skip",
        "bad_image": "skip", "api_key": "skip", "latency": "skip",
    }
    assert report.result("predict_base64").detail == "not run: the server needs an API key"
    assert not report.passed and report.reachable and report.score == "2/3"


# ---------------------------------------------------------------------------------------- the original lab's design


@pytest.mark.slow  # a real server process
def test_original_lab_backend_fails_and_names_what_it_lacks(
    minimal_backend: BackgroundService, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", minimal_backend.url]) == 1
    out = capsys.readouterr().out
    assert "no GET /ready route (404: Not Found)" in out
    assert 'GET /models lists bare names ["shapes", "yolo26n"]: no classes, no availability, no default' in out
    assert "no POST /predict/upload route (404: Not Found)" in out
    assert f"{UNICODE_MARKS.fix} Add GET /ready answering 503 until the model is loaded" in out
    assert f"{UNICODE_MARKS.fix} Add POST /predict/upload taking the picture as a multipart file" in out
    assert out.splitlines()[-1].startswith("4/7 checks passed; to fix: ready, models, predict_upload (")
    readme = _readme_transcript("workshop check http://localhost:8001")
    assert _without_timings(out, minimal_backend.url) == _without_timings(readme, "http://localhost:8001")


@pytest.mark.slow  # a real server process
def test_original_lab_backend_with_a_key_is_open_to_anyone(
    minimal_backend: BackgroundService, picture: Picture
) -> None:
    report = check_deployment(minimal_backend.url, api_key="any-key", picture=picture)
    assert [check.name for check in report.failures] == ["ready", "models", "predict_upload", "api_key"]
    # What it does have passes: base64 predictions, a 400 with a reason for bytes that are not a picture.
    assert report.result("predict_base64").passed and report.model == "shapes"
    assert report.result("bad_image").detail == "400: The image is not a valid base64-encoded picture"
    assert report.result("api_key").detail == (
        "with no key, POST /predict answered 200; with a wrong key, POST /predict answered 200: "
        "anyone can use this server"
    )
    assert report.ready is None  # no readiness route: unknown, not "not ready"


# ---------------------------------------------------------------------------------------- servers that are not the API


def test_stopped_server_is_unreachable_and_nothing_more_is_asked(
    picture: Picture, capsys: pytest.CaptureFixture[str], stopped_url: str
) -> None:
    url = stopped_url
    report = check_deployment(url, picture=picture)
    assert not report.reachable and not report.passed and report.score == "0/1"
    health = report.result("health")
    assert health.detail == f"cannot connect to {url}: Connection refused"
    assert health.fix.startswith("Nothing listens there: start the back-end")
    assert all(check.detail == "not run: nothing answered" for check in report.checks[1:])
    assert main(["check", url, "--timeout", "2"]) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("Unreachable: no check could run (")


@pytest.mark.slow  # waits for timeouts, by design
@pytest.mark.timeout(120)  # a hang fails here; how long a timeout takes is not asserted
def test_packets_dropped_is_a_connect_timeout_not_a_hang(picture: Picture) -> None:
    """Stands in for a firewall that drops packets: a listener whose accept queue is full drops new SYNs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2):  # fills the queue
            report = check_deployment(f"http://127.0.0.1:{port}", timeout=1, picture=picture)
    assert report.checks_run == 1  # given up after the health check: no retries, nothing else tried
    assert report.result("health").detail == f"no connection to http://127.0.0.1:{port} within 1 s"
    assert "firewall rule opens the port" in report.result("health").fix
    assert not report.reachable


@pytest.mark.slow  # waits for timeouts, by design
@pytest.mark.timeout(120)  # a hang fails here; how long a timeout takes is not asserted
def test_server_that_never_answers_times_out(silent_socket: str, picture: Picture) -> None:
    report = check_deployment(silent_socket, timeout=1, picture=picture)
    assert report.result("health").detail == "connected, but GET /health got no answer within 1 s"
    assert report.result("health").fix.startswith("The server accepts connections but does not answer")
    assert report.checks_run == 1 and not report.passed


def test_server_that_hangs_up_after_health(hang_up_server: _StandInServer, picture: Picture) -> None:
    report = check_deployment(hang_up_server.url, picture=picture)
    assert _statuses(report)["health"] == "pass" and report.reachable
    ready = report.result("ready")
    assert ready.failed and ready.detail.startswith("GET /ready: the connection closed without an answer (")
    assert ready.fix.startswith("The server stopped or crashed on this request")
    assert [check.detail for check in report.checks[2:]] == ["not run: the server did not answer"] * 6
    assert hang_up_server.requests == ["GET /health", "GET /ready"]  # it stops asking: no retries, no hammering


def test_text_server_fails_the_contract_with_readable_details(text_server: _StandInServer, picture: Picture) -> None:
    text_server.requests.clear()
    report = check_deployment(text_server.url, api_key=None, picture=picture)
    assert report.reachable and not report.passed
    assert _statuses(report) == {
        "health": "fail", "ready": "fail", "models": "fail", "predict_base64": "fail", "predict_upload": "fail",
        "bad_image": "fail", "api_key": "skip", "latency": "skip",
    }
    body = "(Bonjour — this is not the API.)"
    for name, route in [("health", "GET /health"), ("ready", "GET /ready"), ("models", "GET /models"),
                        ("predict_base64", "POST /predict"), ("predict_upload", "POST /predict/upload")]:
        result = report.result(name)
        assert result.detail == f"{route} answered 200 with text/plain, not JSON {body}"
        assert result.fix == "Answer JSON: return a dict or a pydantic model from the route, and FastAPI encodes it."
    assert report.result("bad_image").detail == "POST /predict answered 200 to bytes that are not a picture"
    assert report.result("latency").detail == "not run: no prediction succeeded"
    assert len(report.fixes) == 2  # the same sentence is said once
    # One request per check, in the contract's order: no retries, nothing more.
    assert text_server.requests == [
        "GET /health", "GET /ready", "GET /models", "POST /predict", "POST /predict/upload", "POST /predict"
    ]


def test_redirect_is_reported_not_followed(redirecting_server: _StandInServer, picture: Picture) -> None:
    report = check_deployment(redirecting_server.url, picture=picture)
    health = report.result("health")
    assert health.detail == "GET /health answered 302, a redirect to https://github.com/login?return_to=%2F"
    assert "must be made public (Ports tab)" in health.fix
    assert report.result("predict_upload").detail.startswith("POST /predict/upload answered 302, a redirect to ")
    assert report.result("bad_image").detail.startswith("POST /predict answered 302, a redirect to ")
    assert len(report.fixes) == 1 and not report.passed
    # One request per check that ran, none to the login page (it would have failed to connect, offline).
    assert len(redirecting_server.requests) == 6


def test_students_own_server_mistakes_are_named(students_own_server: _StandInServer, picture: Picture) -> None:
    report = check_deployment(students_own_server.url, picture=picture)
    assert _statuses(report) == {
        "health": "pass", "ready": "fail", "models": "pass", "predict_base64": "fail", "predict_upload": "fail",
        "bad_image": "fail", "api_key": "skip", "latency": "skip",
    }
    assert report.result("ready").detail == "not ready yet (503: The default model is loading.)"
    assert report.ready is False and report.model == "circles"
    assert report.result("models").detail == "1 model; default: 'circles'"
    assert report.result("predict_base64").detail == (
        "the answer does not follow the contract: detection 0: box [10, 10, 1280, 720] is outside the 640x360 "
        "picture (boxes are in the pixels of the picture sent)"
    )
    assert report.result("bad_image").detail == (
        "bytes that are not a picture crashed the server (500: Internal Server Error)"
    )
    assert "UnidentifiedImageError" in report.result("bad_image").fix
    assert report.result("latency").detail == "not run: no prediction succeeded"


@pytest.mark.slow  # a second Python process
def test_plain_text_marks_where_the_terminal_is_not_utf8(text_server: _StandInServer) -> None:
    assert marks_for(io.TextIOWrapper(io.BytesIO(), encoding="utf-8")) is UNICODE_MARKS
    assert marks_for(io.TextIOWrapper(io.BytesIO(), encoding="ascii")) is PLAIN_MARKS
    # The real command, on an ASCII terminal, with a server whose answers are not ASCII.
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C"}
    run = subprocess.run(
        [sys.executable, "-m", "workshop", "check", text_server.url], capture_output=True, text=True,
        encoding="ascii", errors="strict", env=env, timeout=60,
    )
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    assert lines[1].startswith("  FAIL  health (GET /health)  ")
    assert "(Bonjour ? this is not the API.)" in lines[1]  # what cannot be printed is replaced, not a crash
    assert lines[2].startswith("        fix: Answer JSON")
    assert any(line.startswith("  skip  latency of one prediction") for line in lines)


# -------------------------------------------------------------------------------------------------------- a class


def _write_roster(path: Path, rows: list[list[str]], header: str = "name,url,key") -> Path:
    path.write_text(header + "\n" + "\n".join(",".join(row) for row in rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow  # a real server process
def test_roster_grades_each_student(
    keyed_backend: BackgroundService, tmp_path: Path, capsys: pytest.CaptureFixture[str], stopped_url: str
) -> None:
    stopped = stopped_url
    roster = _write_roster(tmp_path / "class.csv", [
        ["Alice", keyed_backend.url, API_KEY], ["Bob", stopped, ""], ["Chloé", keyed_backend.url, "wrong-key"],
    ])
    output = tmp_path / "out" / "results.csv"
    assert main(["check", "--roster", str(roster), "--output", str(output), "--workers", "3"]) == 1
    captured = capsys.readouterr()
    with output.open(encoding="utf-8") as file:
        rows = {row["name"]: row for row in csv.DictReader(file)}
    assert list(rows) == ["Alice", "Bob", "Chloé"]
    alice, bob, chloe = rows["Alice"], rows["Bob"], rows["Chloé"]
    assert (alice["reachable"], alice["ready"], alice["contract"], alice["model"], alice["failed"], alice["fix"]) == (
        "yes", "yes", "8/8", "shapes", "", ""
    )
    assert int(alice["latency_ms"]) > 0  # measured, whatever the machine's speed
    assert (bob["reachable"], bob["ready"], bob["contract"], bob["latency_ms"], bob["failed"]) == (
        "no", "-", "0/1", "", "health"
    )
    assert bob["fix"].startswith("Nothing listens there")
    # The wrong key is refused on /models; the key check itself passes: the server does refuse strangers.
    assert (chloe["reachable"], chloe["ready"], chloe["contract"], chloe["failed"], chloe["latency_ms"]) == (
        "yes", "yes", "3/4", "models", ""
    )
    assert chloe["fix"].startswith("Give the key the server was started with")
    # The printed table: a header, a rule, one line per student with its mark, a count, each failing student's
    # most urgent fix in full, where the CSV went.
    lines = captured.out.splitlines()
    assert lines[0].split() == ["name", "url", "reachable", "ready", "contract", "model", "latency_ms", "failed"]
    assert lines[2].split()[:2] == [UNICODE_MARKS.passed, "Alice"] and lines[2].split()[-1] == alice["latency_ms"]
    assert lines[3].split() == [UNICODE_MARKS.failed, "Bob", stopped, "no", "-", "0/1", "health"]
    assert lines[4].split() == [UNICODE_MARKS.failed, "Chloé", keyed_backend.url, "yes", "yes", "3/4", "models"]
    assert lines[5:] == [
        "1/3 deployments pass every check.", "What to fix first:", f"  Bob: {bob['fix']}", f"  Chloé: {chloe['fix']}",
        f"Results written to {output}",
    ]
    assert "Checking 3 deployments, 3 at a time..." in captured.err
    assert API_KEY not in captured.out + captured.err + output.read_text()  # keys never end up in the results


def test_roster_result_beside_the_roster_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stopped_url: str
) -> None:
    roster = _write_roster(tmp_path / "groupe-b.csv", [["Dora", stopped_url.removeprefix("http://"), ""]])
    assert main(["check", "--roster", str(roster)]) == 1
    assert (tmp_path / "groupe-b-results.csv").read_text().splitlines()[1].startswith("Dora,http://127.0.0.1:")
    assert capsys.readouterr().out.splitlines()[-1] == f"Results written to {tmp_path / 'groupe-b-results.csv'}"


def test_json_for_one_url_and_for_a_class(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stopped_url: str
) -> None:
    url = stopped_url
    assert main(["check", url, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["url"], report["passed"], report["reachable"], report["score"]) == (url, False, False, "0/1")
    assert [check["name"] for check in report["checks"]] == CHECK_NAMES
    assert report["checks"][0]["fix"].startswith("Nothing listens there")
    roster = _write_roster(tmp_path / "class.csv", [["Eve", url, "secret-of-eve"]])
    assert main(["check", "--roster", str(roster), "--json"]) == 1
    out = capsys.readouterr().out
    assert [(row["name"], row["url"], row["passed"]) for row in json.loads(out)] == [("Eve", url, False)]
    assert "secret-of-eve" not in out


def test_roster_checks_in_parallel_and_bounded(rounds_of_three: _RoundsOfThree, picture: Picture) -> None:
    """Six deployments, three at a time: two full rounds of three, never more at once; neither one nor six."""
    entries = [RosterEntry(f"student {index}", rounds_of_three.url) for index in range(6)]
    results = check_roster(entries, workers=3, timeout=60, picture=picture)
    assert rounds_of_three.rounds_never_filled == 0, "fewer than three deployments were checked at once"
    assert rounds_of_three.most_held == 3, f"{rounds_of_three.most_held} deployments were checked at once"
    assert rounds_of_three.connections == 6  # one per student: no retries
    assert [result.entry.name for result in results] == [entry.name for entry in entries]  # the roster's order
    assert all(result.row()["failed"] == "health" for result in results)


def test_roster_read_from_a_french_excel_export(tmp_path: Path) -> None:
    """Excel in French writes semicolons and Windows-1252; headers may differ in case and order."""
    path = tmp_path / "classe.csv"
    path.write_bytes("URL;Name;Key\r\nhttp://10.0.0.2:8000;Chloé;k1\r\n\r\n34.1.2.3:8000;Élodie;\r\n".encode("cp1252"))
    assert read_roster(path) == [
        RosterEntry("Chloé", "http://10.0.0.2:8000", "k1"), RosterEntry("Élodie", "34.1.2.3:8000", None),
    ]


@pytest.mark.parametrize(
    ("content", "sentence"),
    [
        ("student,address\nAlice,http://127.0.0.1:9\n",
         "has no 'name' and no 'url' column (its header reads 'student,address'): its first line must name the "
         "columns name,url,key (the key may be empty)."),
        ("name,key\nAlice,abc\n", "has no 'url' column"),
        ("", "is empty: its first line must name the columns name,url,key (the key may be empty), then one line per "
             "student."),
        ("name,url,key\n\n", "names the columns but no student: add one line per student under them."),
        (None, "does not exist: give the path of a CSV file whose first line names the columns name,url,key."),
    ],
    ids=["wrong-columns", "no-url", "empty", "no-student", "missing-file"],
)
def test_malformed_roster_exits_2_with_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, sentence: str
) -> None:
    path = tmp_path / "roster.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RosterError, match="^The roster "):
        read_roster(path)
    assert main(["check", "--roster", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: The roster {path} ") and sentence in err
    assert err.count("\n") == 1  # one line, no traceback
    assert not (tmp_path / "roster-results.csv").exists()


def test_check_needs_one_url_or_a_roster(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 2
    assert main(["check", "http://127.0.0.1:9", "--roster", "class.csv"]) == 2
    assert main(["check", "--roster", "class.csv", "--api-key", "k"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: give one back-end URL, or --roster FILE.csv for a class",
        "error: give one back-end URL, or --roster FILE.csv for a class",
        "error: --api-key goes with one URL; a roster gives each student's key in its key column",
    ]


@pytest.fixture
def crashing_api() -> Iterator[str]:
    """A real FastAPI app on uvicorn whose /predict raises: what a student's half-written route does."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    def predict() -> dict[str, str]:
        raise ZeroDivisionError("a bug in the route")

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_a_route_that_crashes_is_named_a_crash_not_a_proxy(crashing_api: str, picture: Picture) -> None:
    report = check_deployment(crashing_api, picture=picture)
    predict = report.result("predict_base64")
    assert predict.status == "fail"
    assert predict.detail == "POST /predict crashed on the server (500: Internal Server Error)"
    assert "traceback is in the server's log" in predict.fix and "proxy" not in predict.fix
