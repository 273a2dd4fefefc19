"""scripts/disk-space.sh: a disk too full for the set-up stops it at once, with one sentence saying what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "disk-space.sh"


@pytest.fixture
def full_disk_path(tmp_path: Path) -> str:
    """A PATH whose ``df`` says 1 GB is free: a full disk, stood in for. Exact, where the real free space moves
    while the other worker builds images."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    df = fake_bin / "df"
    df.write_text("#!/bin/sh\necho 'Filesystem 1024-blocks Used Available Capacity Mounted on'\n"
                  "echo '/dev/vda 263174212 262126612 1048576 100% /'\n")
    df.chmod(0o755)
    return f"{fake_bin}:/usr/bin:/bin"


def check(need_gb: int, folder: Path, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = os.environ | ({"PATH": path} if path else {})
    return subprocess.run([str(SCRIPT), str(need_gb), str(folder), "installing PyTorch into .venv"],
                          capture_output=True, text=True, timeout=30, env=env)


def test_enough_room_goes_on_quietly(tmp_path: Path) -> None:
    result = check(0, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""


def test_too_little_room_stops_with_what_is_free_what_is_needed_and_what_to_do_on_a_df_that_says_1_gb(
    tmp_path: Path, full_disk_path: str
) -> None:
    result = check(2, tmp_path, full_disk_path)
    assert result.returncode == 1
    message = result.stderr.strip()
    assert message.count("\n") == 0, "one sentence, on one line"
    assert f"Only 1 GB of disk is free for {tmp_path}" in message
    assert "installing PyTorch into .venv needs about 2 GB" in message
    assert "docker system prune" in message and message.endswith("run this again")


def test_the_set_up_stops_before_pip_on_a_full_disk_stood_in_for_by_a_df_that_says_1_gb(
    tmp_path: Path, full_disk_path: str
) -> None:
    venv = tmp_path / "venv"
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "setup.sh")], capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={"PATH": full_disk_path, "HOME": str(tmp_path), "VENV": str(venv), "PYTHON": sys.executable,
             # Were the check gone, pip would fail at once here instead of installing 8 GB.
             "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Only 1 GB of disk is free for {venv}" in result.stderr and "needs about 9 GB" in result.stderr
    assert "Installing" not in result.stdout, "pip must not start"
