"""Import Ultralytics the way this project needs it.

Ultralytics reads several environment variables once, when it is first
imported: whether it is offline, whether it may ``pip install`` things on its
own, how chatty it is. So they must be set *before* the import, and every
module of this package imports YOLO through :func:`import_yolo` rather than
``from ultralytics import YOLO``.
"""

from __future__ import annotations

import functools
import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ultralytics import YOLO

# The hosts Ultralytics itself resolves to decide whether it is online.
_PROBE_HOSTS = ("one.one.one.one", "dns.google")


@functools.cache
def network_available() -> bool:
    """True when public hosts resolve: a fast DNS check, no connection is opened.

    ``WORKSHOP_OFFLINE=1`` (or Ultralytics' own ``YOLO_OFFLINE=1``) forces False.
    Behind a firewall with no DNS (a CI machine, a locked-down classroom) the
    lookup fails at once, so this never hangs.
    """
    for variable in ("WORKSHOP_OFFLINE", "YOLO_OFFLINE"):
        if os.environ.get(variable, "").strip().lower() in {"1", "true", "yes", "on"}:
            return False
    for host in _PROBE_HOSTS:
        try:
            socket.getaddrinfo(host, 0, socket.AF_UNSPEC, 0, 0, socket.AI_ADDRCONFIG)
            return True
        except OSError:
            continue
    return False


@functools.cache
def import_yolo() -> type[YOLO]:
    """Configure Ultralytics for this project, import it, and return its ``YOLO`` class."""
    if not network_available():
        os.environ.setdefault("YOLO_OFFLINE", "1")
    # A server must never install packages behind its operator's back.
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")

    from ultralytics import YOLO, settings

    # No usage analytics from a classroom's machines.
    if settings.get("sync", False):
        settings.update({"sync": False})
    return YOLO
