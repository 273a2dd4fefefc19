"""A first API for a detection model, in about fifty lines: the original lab's design.

Notebook 02 has you write this file yourself, then compares it with the project's
back-end (``workshop.backend``) to see what production adds. It is also the
"naive" peer that ``workshop bench`` measures the back-end against, and a server
that ``workshop check`` finds lacking. Run it with the real command:

    uvicorn workshop.minimal_backend:app --port 8000
"""

import base64
import io
import time
from pathlib import Path

from fastapi import FastAPI, HTTPException
from PIL import Image
from pydantic import BaseModel
from ultralytics import YOLO

from workshop.registry import bundled_weights_path
from workshop.settings import get_settings

# Model name -> weights file. The public model is downloaded there on first use, when online.
WEIGHTS = {"shapes": bundled_weights_path(), "yolo26n": Path(get_settings().weights_dir) / "yolo26n.pt"}
MODELS: dict[str, YOLO] = {}  # loaded on first use, then kept


class PredictRequest(BaseModel):
    model: str
    image: str  # the image file's bytes, base64-encoded


class Detection(BaseModel):
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    class_name: str
    confidence: float


class PredictResponse(BaseModel):
    detections: list[Detection]
    time: float  # seconds spent in the model
    model: str


app = FastAPI(title="My first detection API", version="0.1")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/models")
def models() -> list[str]:
    return list(WEIGHTS)


@app.post("/predict")
def predict(request: PredictRequest) -> PredictResponse:
    if request.model not in WEIGHTS:
        raise HTTPException(status_code=404, detail=f"Unknown model; choose one of {list(WEIGHTS)}")
    try:
        image = Image.open(io.BytesIO(base64.b64decode(request.image))).convert("RGB")
    except Exception:
        raise HTTPException(status_code=400, detail="The image is not a valid base64-encoded picture")
    if request.model not in MODELS:
        MODELS[request.model] = YOLO(str(WEIGHTS[request.model]))
    started = time.perf_counter()
    result = MODELS[request.model](image, verbose=False)[0]
    seconds = time.perf_counter() - started
    detections = [
        Detection(x_min=x1, y_min=y1, x_max=x2, y_max=y2, class_name=result.names[int(cls)], confidence=conf)
        for (x1, y1, x2, y2), conf, cls in zip(
            result.boxes.xyxy.tolist(), result.boxes.conf.tolist(), result.boxes.cls.tolist()
        )
    ]
    return PredictResponse(detections=detections, time=round(seconds, 4), model=request.model)
