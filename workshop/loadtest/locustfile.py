"""The Locust scenario for the workshop back-end: what one simulated user does.

``workshop loadtest`` runs it (``locust -f`` this file, headless); it also runs
on its own, with Locust's web page, for a student who wants to watch:

    locust -f workshop/loadtest/locustfile.py --host http://localhost:8000

Each user first asks ``/health`` (is the server up?), as the front-end does, then
sends a generated shapes picture, mostly as a multipart upload (what the
front-end sends), some as base64 JSON, and now and then asks ``/health`` again.
Requests are named by route, so Locust's figures group by route, and any answer
other than 200 counts as a failure: a 401 (missing API key) or a 503 (queue
full) shows up in the figures instead of being hidden.

The API key, when the server requires one, comes from ``WORKSHOP_API_KEY``
(the same setting the front-end sends); ``workshop loadtest --api-key`` sets it.
"""

from __future__ import annotations

import base64
import json

import gevent
from locust import HttpUser, between, task

from workshop.imaging import encode_image
from workshop.samples import shapes_sample
from workshop.schemas import API_KEY_HEADER
from workshop.settings import get_settings

#: Seconds one request may wait for its answer before it counts as a failure.
REQUEST_TIMEOUT_SECONDS = 30.0

# Encoded once, when Locust imports this file: the users measure the server, not the encoder.
PICTURE = encode_image(shapes_sample(seed=3).image)
BASE64_BODY = json.dumps({"image": base64.b64encode(PICTURE).decode("ascii")})
_API_KEY = get_settings().api_key

# gevent's clock stood still while this file was imported (numpy, Pillow, the picture: seconds of work that
# run no event loop), and Locust's --run-time timer counts from that clock: without this, steps of 3 s
# stopped after 0.05 s to 1.3 s.
gevent.get_hub().loop.update_now()


class WorkshopUser(HttpUser):
    """A client that sends pictures back to back, pausing 10-50 ms between requests."""

    # Small on purpose: the load comes from the number of users, not from their pauses.
    wait_time = between(0.01, 0.05)

    def on_start(self) -> None:
        if _API_KEY is not None:
            self.client.headers[API_KEY_HEADER] = _API_KEY.get_secret_value()
        self.health()

    @task(7)
    def predict_upload(self) -> None:
        files = {"file": ("shapes.png", PICTURE, "image/png")}
        self.client.post("/predict/upload", files=files, name="/predict/upload", timeout=REQUEST_TIMEOUT_SECONDS)

    @task(2)
    def predict_base64(self) -> None:
        self.client.post(
            "/predict", data=BASE64_BODY, headers={"Content-Type": "application/json"}, name="/predict",
            timeout=REQUEST_TIMEOUT_SECONDS,
        )

    @task(1)
    def health(self) -> None:
        self.client.get("/health", name="/health", timeout=REQUEST_TIMEOUT_SECONDS)
