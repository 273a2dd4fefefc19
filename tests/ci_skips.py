"""In CI a skipped test fails the run: a green CI means every test ran, not that some found their tool missing.

Two pytest hooks, imported by ``tests/conftest.py`` (a plain module, so that ``tests/test_ci_skips.py`` can load
them into a pytest run of its own). With ``CI`` set, a run that skipped any test ends with exit code 1 and a
summary that names each skip and its reason; without ``CI`` (a laptop without Chromium, say) skips stay skips.
"""

from __future__ import annotations

import os

import pytest

_SKIPS_KEY = pytest.StashKey[list]()


def _skips(config: pytest.Config) -> list:
    """The skipped tests' reports, as the terminal reporter counted them (collection skips included)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return list(reporter.stats.get("skipped", [])) if reporter is not None else []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI, turn a run with skipped tests into a failed one."""
    if not os.environ.get("CI"):
        return
    skips = _skips(session.config)
    session.config.stash[_SKIPS_KEY] = skips
    if skips and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # noqa: ANN001
    """Say how many tests were skipped in CI (0 is the only passing count), and why each one was."""
    if not os.environ.get("CI"):
        return
    skips = config.stash.get(_SKIPS_KEY, [])
    if not skips:
        terminalreporter.write_line("CI: 0 tests skipped.")
        return
    terminalreporter.write_sep("=", f"CI: {len(skips)} skipped (0 allowed): the run fails", red=True)
    for report in skips:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        terminalreporter.write_line(f"{report.nodeid}: {reason}")
