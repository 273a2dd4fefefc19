"""How the test suite runs the notebooks (nbval): offline, fast mode, private caches.

Kernels inherit this process's environment, so these variables reach the notebooks.
Offline on purpose: the checked outputs were recorded with the bundled model.
"""

import os
import tempfile

_scratch = tempfile.mkdtemp(prefix="workshop-notebooks-")
os.environ["WORKSHOP_OFFLINE"] = "1"
os.environ.setdefault("WORKSHOP_NOTEBOOK_FAST", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(_scratch, "ultralytics"))
os.environ["WORKSHOP_WEIGHTS_DIR"] = os.path.join(_scratch, "weights")
