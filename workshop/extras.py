"""List the requirements of one of the package's extras, self-references expanded.

Dockerfiles install dependencies *before* copying the code, so that a code
change does not reinstall PyTorch; at that point the package is not installed,
so they run this file on its own (standard library only)::

    python extras.py pyproject.toml serve > requirements.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extra: str) -> list[str]:
    """The core dependencies plus those of ``extra``, with ``name[other]`` self-references expanded."""
    project = tomllib.loads(Path(pyproject).read_text())["project"]
    name, extras = project["name"], project.get("optional-dependencies", {})
    self_reference = re.compile(rf"^{re.escape(name)}\[(?P<extras>[^\]]+)\]$")
    listed: list[str] = list(project.get("dependencies", []))
    pending, seen = [extra], set()
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        if current not in extras:
            raise KeyError(f"{name} has no extra {current!r}; it has {sorted(extras)}")
        for requirement in extras[current]:
            match = self_reference.match(requirement.replace(" ", ""))
            if match:
                pending.extend(part.strip() for part in match["extras"].split(","))
            elif requirement not in listed:
                listed.append(requirement)
    return listed


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python extras.py PYPROJECT EXTRA")
    print("\n".join(requirements(Path(sys.argv[1]), sys.argv[2])))
