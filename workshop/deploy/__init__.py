"""The cloud step: the back-end image on a Google Compute Engine VM or on Cloud Run (``workshop gcp ...``)."""
