"""The CI guard on skips (tests/ci_skips.py), in a pytest run of its own: in CI a skip fails the run and is named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from ci_skips import pytest_sessionfinish, pytest_terminal_summary
"""
A_PASS = "def test_passes():\n    assert True\n"
A_SKIP = "import pytest\n\ndef test_skips():\n    pytest.skip('Debian\\'s chromium is not installed')\n"


def run_pytest(folder: Path, ci: bool) -> subprocess.CompletedProcess:
    # Only pytest itself: the plugins this project installs (nbval, Playwright...) are not needed here.
    env = {key: value for key, value in os.environ.items() if key != "CI"} | {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(folder), str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_one.py").write_text(A_PASS)
    return tmp_path


def test_in_ci_a_skip_fails_the_run_and_is_named(suite: Path) -> None:
    (suite / "test_two.py").write_text(A_SKIP)
    run = run_pytest(suite, ci=True)
    assert run.returncode == 1, run.stdout
    assert "CI: 1 skipped (0 allowed): the run fails" in run.stdout
    assert "test_two.py::test_skips: Skipped: Debian's chromium is not installed" in run.stdout


def test_in_ci_a_run_without_skips_passes_and_says_so(suite: Path) -> None:
    run = run_pytest(suite, ci=True)
    assert run.returncode == 0, run.stdout
    assert "CI: 0 tests skipped." in run.stdout


def test_outside_ci_a_skip_stays_a_skip(suite: Path) -> None:
    (suite / "test_two.py").write_text(A_SKIP)
    run = run_pytest(suite, ci=False)
    assert run.returncode == 0, run.stdout
    assert "1 skipped" in run.stdout and "CI:" not in run.stdout
