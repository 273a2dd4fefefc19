"""A small typed client for the back-end, used by the CLI, the front-end and the notebooks.

>>> client = WorkshopClient("http://localhost:8000")
>>> result = client.predict("cat.jpg", model="shapes")
>>> [d.class_name for d in result.detections]

Errors are exceptions with a readable message: :class:`BackendUnavailableError`
when nothing answers, :class:`BackendError` (with ``status_code`` and the
server's ``detail``) when the server refuses the request.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from workshop.imaging import encode_image, to_base64
from workshop.schemas import (
    API_KEY_HEADER,
    BatchPredictResponse,
    HealthResponse,
    ModelInfo,
    PredictResponse,
    ReadinessResponse,
    VersionResponse,
)

#: What the client accepts as an image: file bytes, a path, or a Pillow image.
ImageInput = bytes | str | Path | Image.Image


class BackendError(Exception):
    """The back-end answered with an error status."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = message


class BackendUnavailableError(BackendError):
    """Nothing answered at the back-end's URL (down, wrong URL, or too slow)."""


def image_bytes(image: ImageInput) -> bytes:
    """File bytes of ``image``: read from a path, encoded as PNG from a Pillow image, or as given."""
    if isinstance(image, bytes):
        return image
    if isinstance(image, Image.Image):
        return encode_image(image)
    return Path(image).read_bytes()


def _filename(image: ImageInput, index: int = 0) -> str:
    return Path(image).name if isinstance(image, (str, Path)) else f"image-{index}.png"


class WorkshopClient:
    """Talks to one back-end at ``base_url``."""

    def __init__(
        self, base_url: str = "http://localhost:8000", api_key: str | None = None, timeout: float = 60.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        if api_key:
            self.session.headers[API_KEY_HEADER] = api_key

    def __repr__(self) -> str:
        return f"WorkshopClient({self.base_url!r})"

    def _request(
        self, method: str, path: str, *, timeout: float | None = None, accept: tuple[int, ...] = (), **kwargs: Any
    ) -> Any:
        """Send a request and return its JSON; raise for error statuses other than those in ``accept``."""
        url = f"{self.base_url}{path}"
        try:
            response = self.session.request(method, url, timeout=timeout or self.timeout, **kwargs)
        except requests.Timeout:
            raise BackendUnavailableError(
                f"The back-end at {self.base_url} did not answer within {timeout or self.timeout:g} s."
            ) from None
        except requests.ConnectionError:
            raise BackendUnavailableError(
                f"Cannot reach the back-end at {self.base_url}: is it running, and is the URL right?"
            ) from None
        if response.status_code >= 400 and response.status_code not in accept:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text or response.reason
            raise BackendError(f"{response.status_code}: {detail}", status_code=response.status_code)
        try:
            return response.json()
        except ValueError:
            raise BackendError(
                f"{url} answered, but not with JSON: is {self.base_url} the workshop back-end?",
                status_code=response.status_code,
            ) from None

    # ---------------------------------------------------------------- info
    def title(self) -> str:
        return self._request("GET", "/")

    def describe(self) -> str:
        return self._request("GET", "/describe")

    def version(self) -> VersionResponse:
        return VersionResponse.model_validate(self._request("GET", "/version"))

    def health(self, timeout: float | None = None) -> HealthResponse:
        return HealthResponse.model_validate(self._request("GET", "/health", timeout=timeout))

    def readiness(self) -> ReadinessResponse:
        """The ``/ready`` answer, whether the server is ready (200) or not yet (503)."""
        return ReadinessResponse.model_validate(self._request("GET", "/ready", accept=(503,)))

    def models(self) -> list[ModelInfo]:
        return [ModelInfo.model_validate(item) for item in self._request("GET", "/models")]

    def wait_until_ready(self, timeout: float = 120.0, interval: float = 0.5) -> ReadinessResponse:
        """Poll ``/ready`` until the server says it is ready; raise after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            try:
                state = self.readiness()
                if state.ready:
                    return state
                last_error = state.detail
            except BackendError as error:
                last_error = str(error)
            time.sleep(interval)
        raise BackendUnavailableError(f"The back-end at {self.base_url} was not ready after {timeout:g} s ({last_error}).")

    # ------------------------------------------------------------- predict
    def predict(self, image: ImageInput, model: str | None = None, **params: Any) -> PredictResponse:
        """``POST /predict`` with the image as base64 JSON. ``params``: confidence, iou, image_size, max_detections."""
        payload = {"image": to_base64(image_bytes(image)), "model": model, **params}
        return PredictResponse.model_validate(self._request("POST", "/predict", json=_without_none(payload)))

    def predict_upload(self, image: ImageInput, model: str | None = None, **params: Any) -> PredictResponse:
        """``POST /predict/upload`` with the image as a multipart file."""
        files = {"file": (_filename(image), image_bytes(image))}
        data = _without_none({"model": model, **params})
        return PredictResponse.model_validate(self._request("POST", "/predict/upload", files=files, data=data))

    def predict_batch(self, images: Sequence[ImageInput], model: str | None = None, **params: Any) -> BatchPredictResponse:
        """``POST /predict/batch``: several images in one request, one result each, in order."""
        payload = {"images": [to_base64(image_bytes(image)) for image in images], "model": model, **params}
        return BatchPredictResponse.model_validate(self._request("POST", "/predict/batch", json=_without_none(payload)))

    def predict_batch_upload(
        self, images: Sequence[ImageInput], model: str | None = None, **params: Any
    ) -> BatchPredictResponse:
        """``POST /predict/batch/upload``: several images as multipart files (a quarter smaller than base64 JSON)."""
        files = [("files", (_filename(image, index), image_bytes(image))) for index, image in enumerate(images)]
        data = _without_none({"model": model, **params})
        return BatchPredictResponse.model_validate(self._request("POST", "/predict/batch/upload", files=files, data=data))


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
