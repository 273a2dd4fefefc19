"""Start the back-end (or any server) as a background process, wait for it, stop it.

Used by the notebooks ("start the API from a cell"), by the tests (a real
uvicorn on a real port) and by the benchmark. Every process started here is
stopped when the Python process exits, so a notebook kernel that restarts does
not leave servers behind holding ports.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

_RUNNING: list[BackgroundService] = []


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def preferred_port(port: int, host: str = "127.0.0.1") -> int:
    """``port`` when it is free (8000 and 8501 are forwarded in the codespace), else any free port.

    Free as a server sees it: uvicorn and Docker bind with ``SO_REUSEADDR``, so the closed connections of a
    server stopped a moment ago (``TIME_WAIT``) do not take its port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return port
        except OSError:
            return free_port(host)


def wait_for_http(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None) -> float:
    """Poll ``url`` until it answers 200; return the seconds it took. Raise on timeout or process exit."""
    started = time.monotonic()
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"The process serving {url} exited with code {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        except requests.RequestException:
            pass
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{url} did not answer 200 within {timeout:g} s")
        time.sleep(0.2)


class ServiceDidNotStart(RuntimeError):
    """A service started in the background never answered; the message holds the end of its log.

    ``exit_code`` is the code it exited with as it started (a crash), or None when it was still running but did
    not answer in time (it has been stopped since).
    """

    def __init__(self, message: str, exit_code: int | None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class BackgroundService:
    """A server running in a child process, with its log file."""

    name: str
    url: str
    process: subprocess.Popen
    log_path: Path
    _log_file: object = field(repr=False, default=None)

    def log(self) -> str:
        """Everything the process has printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def count_in_log(self, text: str, settle_seconds: float = 10.0) -> int:
        """How many times ``text`` is in the log, once the log has caught up.

        A server writes its access line just after it has answered: read at once, the log may
        not hold the last request yet. So it is read until two reads a quarter second apart agree.
        """
        count, deadline = self.log().count(text), time.monotonic() + settle_seconds
        while time.monotonic() < deadline:
            time.sleep(0.25)
            again = self.log().count(text)
            if again == count:
                break
            count = again
        return count

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the process to stop (SIGTERM, a graceful shutdown), then kill it if it lingers.

        The signal goes to the whole process group (the service runs in its own session),
        so children it started stop too.
        """
        if self.running:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
        if self in _RUNNING:
            _RUNNING.remove(self)

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass  # already gone

    def __enter__(self) -> BackgroundService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_process(
    name: str,
    command: Sequence[str],
    url: str,
    health_path: str = "/health",
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    timeout: float = 120.0,
) -> BackgroundService:
    """Run ``command`` in the background and wait until ``url + health_path`` answers 200."""
    log_dir = Path(log_dir or Path.cwd() / ".workshop-logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log_file = open(log_path, "w")  # noqa: SIM115 - closed by stop()
    process = subprocess.Popen(
        list(command),
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # Ctrl-C in a notebook must not reach the server
    )
    service = BackgroundService(name=name, url=url, process=process, log_path=log_path, _log_file=log_file)
    _RUNNING.append(service)
    try:
        wait_for_http(url + health_path, timeout=timeout, process=process)
    except Exception:
        exit_code = process.poll()  # None: still running, so it timed out
        service.stop()
        raise ServiceDidNotStart(f"{name} did not start; its log:\n{service.log()[-3000:]}", exit_code) from None
    return service


def start_backend(
    port: int | None = None,
    host: str = "127.0.0.1",
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    timeout: float = 120.0,
) -> BackgroundService:
    """Start ``workshop serve`` on a free port (or ``port``) and wait until it is ready.

    Ready, not just alive: ``/ready`` answers once the default model is warmed up, so
    the first request is as fast as the next ones.
    """
    port = port or free_port(host)
    command = [sys.executable, "-m", "workshop", "serve", "--host", host, "--port", str(port)]
    return start_process(
        "backend", command, f"http://{host}:{port}", health_path="/ready", env=env, log_dir=log_dir, timeout=timeout
    )


def start_frontend(
    backend_url: str,
    port: int | None = None,
    host: str = "127.0.0.1",
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    timeout: float = 120.0,
) -> BackgroundService:
    """Start ``workshop ui`` (Streamlit) against ``backend_url`` and wait for Streamlit's health route."""
    port = port or free_port(host)
    command = [sys.executable, "-m", "workshop", "ui", "--host", host, "--port", str(port), "--backend-url", backend_url]
    return start_process(
        "frontend", command, f"http://{host}:{port}", health_path="/_stcore/health", env=env, log_dir=log_dir,
        timeout=timeout,
    )


@atexit.register
def stop_all() -> None:
    """Stop every service this process started (also run at interpreter exit)."""
    for service in list(_RUNNING):
        service.stop()
