"""deploy-ml-workshop: from a trained YOLO model to an API on a cloud VM."""

__version__ = "0.1.0"
