"""The cloud step: the back-end image on a Google Compute Engine VM (``workshop gcp ...``)."""
