"""A loopback emulator of the Google Cloud APIs the lab uses, for the real gcloud in the tests.

Google Cloud itself cannot be reached here; its CLI can. The real ``gcloud`` (``/usr/bin/gcloud``) is pointed at
this emulator as Google's own Config Connector tests point it at theirs (mockgcp): endpoint overrides with
``http://`` API hosts, an access-token file, and an HTTP proxy on 127.0.0.1 that serves the APIs the lab uses
and refuses everything else (Cloud Run's regional host is derived from the override's host name, so only a proxy
can serve it). The emulator is stateful and answers with the resource shapes, long-running operations and
errors of Google's REST reference; every request is logged, and the tests compare the logs with golden files.

- :mod:`.proxy`: the loopback proxy and its request log;
- :mod:`.cloud`: the projects' state and the REST answers;
- :mod:`.errors`: errors in Google's shapes (the lab's fault cases);
- :mod:`.harness`: the real gcloud's temporary home, its login, and the stand-in docker;
- :mod:`.golden`: the request logs, reduced to what matters, and the golden files in ``golden/``.
"""

from .cloud import Cloud, Project
from .harness import Emulator, GcloudWorld, require_gcloud

__all__ = ["Cloud", "Emulator", "GcloudWorld", "Project", "require_gcloud"]
