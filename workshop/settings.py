"""All configuration, read once from environment variables (prefix ``WORKSHOP_``).

Every tunable of the back-end lives here, so a student (or a Dockerfile, or
docker-compose.yml) changes behaviour by setting a variable, never by editing
code. Lists accept a comma-separated string: ``WORKSHOP_CORS_ORIGINS=http://a,http://b``.
"""

from __future__ import annotations

import functools
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from workshop.engines.base import EngineChoice
from workshop.links import in_codespace

#: The bundled model's name; it ships inside the package and needs no network.
BUNDLED_MODEL = "shapes"

CommaSeparated = Annotated[list[str], NoDecode]


def _default_weights_dir() -> Path:
    return Path.home() / ".cache" / "workshop" / "weights"


class Settings(BaseSettings):
    """The back-end's settings. Each field ``foo`` is read from ``WORKSHOP_FOO``."""

    model_config = SettingsConfigDict(env_prefix="WORKSHOP_", env_file=".env", extra="ignore")

    # Where the server listens.
    host: str = "0.0.0.0"
    port: int = Field(8000, ge=1, le=65535)

    # Models.
    weights_dir: Path = Field(default_factory=_default_weights_dir)
    default_model: str = Field(
        "auto",
        description="Model used when a request names none. 'auto': the public default when its weights "
        "are cached or the network is up, else the bundled offline model.",
    )
    public_default_model: str = "yolo26n"
    public_models: CommaSeparated = ["yolo26n", "yolo26s", "yolo26m"]
    allowed_models: CommaSeparated = Field(
        default_factory=list, description="When not empty, only these models may be served."
    )
    custom_models: Annotated[dict[str, Path], NoDecode] = Field(
        default_factory=dict,
        description="Your own weights files to serve, as name=path pairs: 'mine=/data/best.pt,other=/data/o.pt'.",
    )
    warmup: bool = Field(True, description="Load and warm up the default model when the server starts.")

    # Engines: the runtime that executes each model (see docs/benchmarks.md for how they compare).
    engine: EngineChoice = Field(
        "auto",
        description="Runtime of every model: auto (the faster of ONNX Runtime and OpenVINO on this CPU, timed once; "
        "PyTorch when the model cannot be exported), pytorch, onnx (ONNX Runtime) or openvino; exports are made "
        "once and cached in WEIGHTS_DIR/exports.",
    )
    model_engines: Annotated[dict[str, EngineChoice], NoDecode] = Field(
        default_factory=dict, description="Engine per model, overriding ENGINE, as name=engine pairs: 'shapes=onnx'."
    )
    inference_threads: int = Field(
        0, ge=0, description="CPU threads one inference may use; 0: every CPU this process may run on."
    )

    # Inference defaults (each can be overridden per request).
    confidence: float = Field(0.25, ge=0.0, le=1.0)
    iou: float = Field(0.7, ge=0.0, le=1.0)
    max_detections: int = Field(300, ge=1, le=1000)

    # Limits that protect the server from large or hostile requests.
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Largest encoded image, in bytes.")
    max_request_bytes: int = Field(32 * 1024 * 1024, gt=0, description="Largest request body, in bytes.")
    max_pixels: int = Field(40_000_000, gt=0, description="Largest image, in pixels, checked before decoding.")
    max_batch_images: int = Field(16, ge=1)
    inference_wait_seconds: float = Field(
        30.0, gt=0, description="Time budget: longest a prediction waits for the model before a 503."
    )
    max_pending_predictions: int = Field(
        32, ge=1, description="Predictions allowed to wait for the model at once; the next ones get 503."
    )

    # Access: when set, every route but /health and /ready needs this key in the X-API-Key header.
    api_key: SecretStr | None = Field(None, description="API key required by the back-end (and sent by the front-end).")

    # Web.
    cors_origins: CommaSeparated = Field(default_factory=list)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    instance_name: str = Field(
        default_factory=socket.gethostname,
        description="Name sent back in the X-Served-By header of every answer, so that behind a load balancer "
        "you can see which replica answered; default: the host name (a container's id, in Docker).",
    )

    # Front-end (the Streamlit app and the client).
    backend_url: str = Field("http://localhost:8000", description="Where the front-end finds the back-end.")
    ui_host: str = "0.0.0.0"
    ui_port: int = Field(8501, ge=1, le=65535)
    request_timeout: float = Field(60.0, gt=0, description="Seconds the front-end waits for an answer.")
    # Limits on the videos the front-end's Video page samples frames from (each frame is one prediction).
    video_max_bytes: int = Field(50 * 1024 * 1024, gt=0, description="Largest video file, in bytes.")
    video_max_seconds: float = Field(60.0, gt=0, description="Longest video, in seconds.")
    video_max_frames: int = Field(120, ge=1, description="Most frames sampled from one video.")
    ui_xsrf_protection: bool = Field(
        default_factory=lambda: not in_codespace(),
        description="Streamlit's XSRF check on uploads: the page copies its `_streamlit_xsrf` cookie (SameSite=Lax) "
        "into an `X-Xsrftoken` header and the server compares the two. Off by default in a GitHub Codespace, whose "
        "forwarded page is often shown inside VS Code's port preview, a frame of another site: there the browser "
        "refuses to store that cookie, the page has no token to send, and every upload is refused with a 403. "
        "A proxy alone (another host name and port, as the forwarding is) does not break the check.",
    )

    @field_validator("public_models", "allowed_models", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("custom_models", "model_engines", mode="before")
    @classmethod
    def _parse_name_value_pairs(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, separator, setting = item.partition("=")
            if not separator or not name.strip() or not setting.strip():
                raise ValueError(f"expected name=value, got {item!r}")
            pairs[name.strip()] = setting.strip()
        return pairs

    @property
    def exports_dir(self) -> Path:
        """Where exported engines (ONNX, OpenVINO) are cached: next to the downloaded weights."""
        return Path(self.weights_dir) / "exports"

    def engine_for(self, model: str) -> EngineChoice:
        """The engine asked for ``model``: its own entry in MODEL_ENGINES, else ENGINE (maybe ``auto``)."""
        return self.model_engines.get(model, self.engine)

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_no_key(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_log_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
