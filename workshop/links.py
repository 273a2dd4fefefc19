"""Links a person can click: localhost on a laptop, the forwarded URL in a GitHub Codespace.

In a codespace, ``http://localhost:8000`` in the student's browser points at
their own laptop, not at the codespace. GitHub forwards each port to
``https://<codespace-name>-<port>.<forwarding-domain>``, and sets the two
environment variables this module reads.
"""

from __future__ import annotations

import os


def public_url(port: int, path: str = "") -> str:
    """The URL at which a person's browser reaches ``port`` of this machine."""
    name = os.environ.get("CODESPACE_NAME")
    domain = os.environ.get("GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN")
    base = f"https://{name}-{port}.{domain}" if name and domain else f"http://localhost:{port}"
    return base + path


def in_codespace() -> bool:
    """True inside a GitHub Codespace."""
    return bool(os.environ.get("CODESPACE_NAME")) or os.environ.get("CODESPACES") == "true"
