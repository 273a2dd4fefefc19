"""Run Locust headless once per user count, read its figures, and write them as CSV, JSON and a PNG plot.

Locust runs as its own process (``python -m locust``, the real command line):
its gevent patches the whole interpreter, which must not happen to a notebook
or a test that calls this. Each step is bounded: Locust stops itself after the
step's duration, and the process is killed if it is not done a minute later.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from workshop.checkpoints import say

#: The scenario Locust runs: one simulated user's requests.
LOCUSTFILE = Path(__file__).with_name("locustfile.py")

#: Seconds a Locust process may take beyond its run time (start-up, stopping its users, writing its CSV).
STEP_GRACE_SECONDS = 60.0

#: The columns of the summary CSV, one row per step.
CSV_COLUMNS = ("users", "seconds", "requests", "failures", "p50_ms", "p95_ms", "p99_ms", "requests_per_s")


class LoadTestError(Exception):
    """A load test could not run or left no figures (the message says why, with Locust's log when useful)."""


@dataclass(frozen=True)
class RouteFigures:
    """Locust's figures for some requests: one route (``/predict/upload``, ``/predict``, ``/health``), or all.

    Latencies are in milliseconds (Locust rounds those above 100 ms to 2 significant digits);
    ``requests_per_s`` counts every answer, failures included (``failures`` says how many).
    """

    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    requests_per_s: float


@dataclass(frozen=True)
class StepResult(RouteFigures):
    """One step of the load test: ``users`` simulated users for ``seconds``, all routes together and each.

    ``started_at`` and ``finished_at`` bound the load itself, in UTC (ISO 8601, e.g. ``2026-12-02T10:32:14.081+00:00``):
    Locust's first figure and its last answer, the window ``requests_per_s`` is counted over. A step with no
    request has neither (None). They say when the load ran: whether a replica killed at some moment met it.
    """

    users: int
    seconds: int
    routes: dict[str, RouteFigures] = field(default_factory=dict)
    #: Locust's failure messages with how often each occurred, e.g. ``"POST /predict: HTTPError('401 ...')": 12``.
    errors: dict[str, int] = field(default_factory=dict)
    started_at: str | None = None
    finished_at: str | None = None

    def row(self) -> dict[str, object]:
        """The step as one row of the summary CSV."""
        return {column: getattr(self, column) for column in CSV_COLUMNS}


@dataclass(frozen=True)
class LoadTestReport:
    """What ``workshop loadtest`` measured, and where it wrote the figures."""

    url: str
    steps: list[StepResult]
    csv: Path
    json: Path
    plot: Path


def check_url(url: str) -> str:
    """``url`` without a trailing slash; :class:`ValueError` with a readable message unless it is http(s)://host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{url!r} is not a back-end address: give one that starts with http:// or https://, "
            "e.g. http://localhost:8000"
        )
    return url.rstrip("/")


def locust_command(url: str, users: int, spawn_rate: float, seconds: int, csv_prefix: Path) -> list[str]:
    """The ``locust`` command line for one step: headless, ``users`` users for ``seconds``, figures to CSV."""
    return [
        sys.executable, "-m", "locust",
        "--locustfile", str(LOCUSTFILE),
        "--host", url,
        "--headless",
        "--users", str(users),
        "--spawn-rate", f"{spawn_rate:g}",
        "--run-time", f"{seconds}s",
        "--csv", str(csv_prefix),
        # The final figures: the CSV files are rewritten once a second, so they miss the last moments of a run.
        "--json-file", str(csv_prefix),
        "--only-summary",
    ]


def run_step(
    url: str, users: int, seconds: int, directory: Path, spawn_rate: float | None = None, api_key: str | None = None,
) -> StepResult:
    """Run Locust with ``users`` users for ``seconds`` against ``url``; its CSV and log go to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    prefix = directory / f"users-{users}"
    log_path = directory / f"users-{users}.log"
    Path(f"{prefix}.json").unlink(missing_ok=True)  # a previous run's figures must not pass for this one's
    env = dict(os.environ)
    if api_key:
        env["WORKSHOP_API_KEY"] = api_key  # read by the locustfile, never put on a command line
    # All users within the first second by default, so the step measures its user count, not the ramp.
    command = locust_command(url, users, spawn_rate or users, seconds, prefix)
    with open(log_path, "w") as log:
        try:
            # Exit code 1 only says some requests failed: the figures count them, so it is not an error here.
            subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=seconds + STEP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            limit = seconds + STEP_GRACE_SECONDS
            raise LoadTestError(f"Locust did not stop within {limit:g} s; its log: {log_path}") from None
    return read_step(prefix, users, seconds, log_path)


def read_step(prefix: Path, users: int, seconds: int, log_path: Path | None = None) -> StepResult:
    """One step's figures: Locust's final stats (``PREFIX.json``), its failure messages (``PREFIX_failures.csv``)."""
    stats_path = Path(f"{prefix}.json")
    try:
        entries = json.loads(stats_path.read_text())
    except (FileNotFoundError, ValueError):
        log = log_path.read_text(errors="replace")[-3000:] if log_path and log_path.exists() else ""
        raise LoadTestError(f"Locust wrote no figures ({stats_path}); its log:\n{log}") from None
    # One time window for every route: the first request of the step to its last answer.
    first = min((entry["start_time"] for entry in entries), default=None)
    last = max((entry["last_request_timestamp"] or 0.0 for entry in entries), default=None)
    window = last - first if first is not None and last is not None else 0.0
    routes = {entry["name"]: _figures([entry], window) for entry in sorted(entries, key=lambda entry: entry["name"])}
    errors: dict[str, int] = {}
    failures_path = Path(f"{prefix}_failures.csv")
    if failures_path.exists():
        with open(failures_path, newline="") as handle:
            for row in csv.DictReader(handle):
                errors[f"{row['Method']} {row['Name']}: {row['Error']}"] = int(row["Occurrences"])
    return StepResult(
        users=users, seconds=seconds, routes=routes, errors=errors, **asdict(_figures(entries, window)),
        started_at=_utc(first) if first else None, finished_at=_utc(last) if last else None,
    )


def _utc(timestamp: float) -> str:
    """A Unix time as ISO 8601 in UTC, to the microsecond: what ``loadtest.json`` says of when the load ran."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="microseconds")


def _figures(entries: Sequence[dict], window: float) -> RouteFigures:
    """Requests, failures, percentiles, and requests/s over ``window`` seconds, of Locust stats entries together."""
    histogram: dict[int, int] = {}  # Locust's response times: rounded milliseconds -> how many
    for entry in entries:
        for milliseconds, count in entry["response_times"].items():
            histogram[int(milliseconds)] = histogram.get(int(milliseconds), 0) + count
    requests = sum(entry["num_requests"] for entry in entries)
    return RouteFigures(
        requests=requests,
        failures=sum(entry["num_failures"] for entry in entries),
        p50_ms=_percentile(histogram, 0.50),
        p95_ms=_percentile(histogram, 0.95),
        p99_ms=_percentile(histogram, 0.99),
        requests_per_s=round(requests / window, 2) if window > 0 else 0.0,
    )


def _percentile(histogram: dict[int, int], fraction: float) -> float | None:
    """The smallest response time that at least ``fraction`` of the requests did not exceed (None without any)."""
    total = sum(histogram.values())
    if not total:
        return None
    seen = 0
    for milliseconds in sorted(histogram):
        seen += histogram[milliseconds]
        if seen >= fraction * total:
            return float(milliseconds)
    return float(max(histogram))


def run_loadtest(
    url: str,
    steps: Sequence[int],
    seconds: int,
    output: Path,
    spawn_rate: float | None = None,
    api_key: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoadTestReport:
    """One Locust run per user count in ``steps``, ``seconds`` each, against ``url`` only.

    Writes ``loadtest.csv`` (one row per step), ``loadtest.json`` (the same with each route, each failure
    message and when the load ran), ``loadtest.png`` (the plot) and Locust's own files (``locust/``) under
    ``output``.
    """
    url = check_url(url)
    if not steps or any(users < 1 for users in steps):
        raise ValueError("Give one or more user counts, each at least 1, e.g. --steps 1,2,4,8")
    if seconds < 1:
        raise ValueError("The duration of a step is at least 1 second")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    results = []
    for users in steps:
        if progress:
            plural = "s" if users > 1 else ""
            progress(say(f"{users} user{plural} for {seconds} s...", f"{users} utilisateur{plural} pendant {seconds} s..."))
        results.append(run_step(url, users, seconds, output / "locust", spawn_rate, api_key))
    report = LoadTestReport(
        url=url, steps=results, csv=output / "loadtest.csv", json=output / "loadtest.json", plot=output / "loadtest.png"
    )
    write_csv(results, report.csv)
    summary = {
        "url": url,
        # The whole run's load: the first step's start to the last step's last answer (None when nothing ran).
        "started_at": min((step.started_at for step in results if step.started_at), default=None),
        "finished_at": max((step.finished_at for step in results if step.finished_at), default=None),
        "steps": [{"users": step.users, **asdict(step)} for step in results],
    }
    report.json.write_text(json.dumps(summary, indent=2) + "\n")
    plot_steps(results, report.plot, title=f"workshop loadtest {url}: Locust, {seconds} s per step")
    return report


def write_csv(steps: Sequence[StepResult], path: Path) -> Path:
    """The summary CSV: one row per step (users, requests, failures, percentiles, requests/s)."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(step.row() for step in steps)
    return path


def format_table(steps: Sequence[StepResult]) -> str:
    """The figures as a text table, one line per step, then the failure messages if any (in the notebook's language)."""
    users, requests, failures = say("users", "util."), say("requests", "requêtes"), say("failures", "échecs")
    lines = [f"{users:>5} {requests:>9} {failures:>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {say('req/s', 'req./s'):>8}"]
    for step in steps:
        cells = [_cell(value) for value in (step.p50_ms, step.p95_ms, step.p99_ms)]
        lines.append(
            f"{step.users:>5} {step.requests:>9} {step.failures:>9} {cells[0]:>8} {cells[1]:>8} {cells[2]:>8} "
            f"{step.requests_per_s:>8.1f}"
        )
    errors: dict[str, int] = {}
    for step in steps:
        for message, count in step.errors.items():
            errors[message] = errors.get(message, 0) + count
    for message, count in sorted(errors.items(), key=lambda item: -item[1]):
        lines.append(say(f"failed {count}x: {message}", f"échec {count} fois : {message}"))
    return "\n".join(lines)


def failure_hint(steps: Sequence[StepResult], url: str) -> str | None:
    """One sentence on what to do about the failed requests, or None when none failed."""
    failed = sum(step.failures for step in steps)
    if not failed:
        return None
    messages = " ".join(message for step in steps for message in step.errors)
    total = sum(step.requests for step in steps)
    if "401" in messages:
        advice = say("the server wants an API key: pass --api-key KEY (or set WORKSHOP_API_KEY).",
                     "le serveur demande une clé d'API : passez --api-key CLÉ (ou définissez WORKSHOP_API_KEY).")
    elif "Connection" in messages:
        advice = say(f"nothing answered at {url}: is the back-end running, and is the address right?",
                     f"rien n'a répondu à {url} : le back-end tourne-t-il, et l'adresse est-elle juste ?")
    else:
        advice = say("their messages are above, and in loadtest.json route by route.",
                     "leurs messages sont au-dessus, et dans loadtest.json route par route.")
    return say(f"{failed} of {total} requests failed; {advice}", f"{failed} requêtes sur {total} ont échoué ; {advice}")


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def plot_steps(steps: Sequence[StepResult], path: Path, title: str) -> Path:
    """A PNG: latency percentiles (left) and throughput (right) against the number of users."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a codespace, a container, a test
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    users = [step.users for step in steps]
    figure, (latency, throughput) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
    for name, style in (("p50_ms", "o-"), ("p95_ms", "s--"), ("p99_ms", "^:")):
        values = [math.nan if getattr(step, name) is None else getattr(step, name) for step in steps]
        latency.plot(users, values, style, label=name.removesuffix("_ms"))
    latency.set_title("Latency percentiles, all routes (ms)")
    latency.set_ylabel("latency (ms)")
    latency.set_ylim(bottom=0)
    latency.legend()
    throughput.plot(users, [step.requests_per_s for step in steps], "o-", color="tab:green", label="requests/s")
    failures = [step.failures / step.seconds for step in steps]
    if any(failures):
        throughput.plot(users, failures, "x--", color="tab:red", label="failures/s")
        throughput.legend()
    throughput.set_title("Throughput (requests per second)")
    throughput.set_ylabel("requests per second")
    throughput.set_ylim(bottom=0)
    for axes in (latency, throughput):
        axes.set_xlabel("simulated users")
        if len(users) > 1 and min(users) > 0 and max(users) / min(users) >= 4:
            axes.set_xscale("log", base=2)  # doubling steps (1, 2, 4, 8) evenly spaced
        axes.xaxis.set_major_locator(FixedLocator(users))
        axes.xaxis.set_major_formatter(ScalarFormatter())
        axes.xaxis.set_minor_locator(NullLocator())
        axes.grid(True, alpha=0.3)
    figure.suptitle(title)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
