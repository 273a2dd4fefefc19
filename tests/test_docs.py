"""The lab guide builds (MkDocs, strict) and the English and French versions say the same things."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAIRS = [("index.md", "index.md"), ("architecture.md", "architecture.md"),
         ("teacher-notes.md", "notes-enseignant.md"), ("troubleshooting.md", "depannage.md")]


def code_lines(path: Path) -> list[str]:
    """Shell commands in the page's code blocks (comments and user placeholders left out)."""
    blocks = re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [re.sub(r"[A-Z_]{6,}|pas du base64|not base64", "X", line) for line in lines if line]


def test_mkdocs_builds_strictly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for page in ("en/index.html", "fr/index.html", "en/troubleshooting/index.html", "fr/depannage/index.html"):
        assert (tmp_path / "site" / page).exists(), page


@pytest.mark.parametrize(("english", "french"), PAIRS)
def test_french_and_english_give_the_same_commands(english: str, french: str) -> None:
    assert code_lines(ROOT / "docs" / "en" / english) == code_lines(ROOT / "docs" / "fr" / french)


def test_both_guides_have_the_eight_steps() -> None:
    for path, word in ((ROOT / "docs/en/index.md", "Step"), (ROOT / "docs/fr/index.md", "Étape")):
        steps = re.findall(rf"^## {word} (\d) ", path.read_text(), flags=re.M)
        assert steps == [str(n) for n in range(1, 9)], path


def test_the_guide_uses_only_commands_that_exist() -> None:
    from workshop.cli import build_parser

    sub_commands = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001
    for line in code_lines(ROOT / "docs" / "en" / "index.md"):
        if line.startswith("workshop ") and not line.startswith("workshop --"):
            assert line.split()[1] in sub_commands, line
