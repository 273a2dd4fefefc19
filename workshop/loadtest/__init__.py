"""Load tests people can look at: Locust drives the back-end, the figures come out as CSV, JSON and a plot.

>>> from workshop.loadtest import run_loadtest
>>> report = run_loadtest("http://localhost:8000", steps=[1, 2, 4, 8], seconds=15, output=Path("loadtest-results"))
>>> report.plot  # latency percentiles and throughput against users

The scenario (what one simulated user does) is :mod:`workshop.loadtest.locustfile`;
:mod:`workshop.loadtest.runner` runs Locust headless once per user count and reads its figures.
"""

from workshop.loadtest.runner import LoadTestError, LoadTestReport, StepResult, check_url, run_loadtest

__all__ = ["LoadTestError", "LoadTestReport", "StepResult", "check_url", "run_loadtest"]
