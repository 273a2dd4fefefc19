"""scripts/disk-space.sh: a disk too full for the set-up stops it at once, with one sentence saying what to do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from support import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "disk-space.sh"


def check(need_gb: int, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), str(need_gb), str(folder), "installing PyTorch into .venv"],
                          capture_output=True, text=True, timeout=30)


def test_enough_room_goes_on_quietly(tmp_path: Path) -> None:
    result = check(0, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""


def test_too_little_room_stops_with_what_is_free_what_is_needed_and_what_to_do(tmp_path: Path) -> None:
    free_gb = shutil.disk_usage(tmp_path).free // 2**30
    result = check(free_gb + 1, tmp_path)
    assert result.returncode == 1
    message = result.stderr.strip()
    assert message.count("\n") == 0, "one sentence, on one line"
    assert f"Only {free_gb} GB of disk is free for {tmp_path}" in message
    assert f"installing PyTorch into .venv needs about {free_gb + 1} GB" in message
    assert "docker system prune" in message and message.endswith("run this again")


def test_the_set_up_stops_before_pip_on_a_full_disk_stood_in_for_by_a_df_that_says_1_gb(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    df = fake_bin / "df"
    df.write_text("#!/bin/sh\necho 'Filesystem 1024-blocks Used Available Capacity Mounted on'\n"
                  "echo '/dev/vda 263174212 262126612 1048576 100% /'\n")
    df.chmod(0o755)
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "setup.sh")], capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={"PATH": f"{fake_bin}:/usr/bin:/bin", "HOME": str(tmp_path), "VENV": str(tmp_path / "venv"),
             "PYTHON": sys.executable,
             # Were the check gone, pip would fail at once here instead of installing 8 GB.
             "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Only 1 GB of disk is free" in result.stderr and "needs about 9 GB" in result.stderr
    assert "Installing" not in result.stdout, "pip must not start"
