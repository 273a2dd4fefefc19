# The lean back-end image: the same API, no PyTorch at run time.
#
# The model is exported at build time (ONNX and OpenVINO) in a builder stage that
# is the full back-end image, then only the exports, the package and the small
# runtimes are copied into a fresh base. Build the full image first:
#   docker build -f backend/Dockerfile -t deploy-ml-workshop/backend .
#   docker build -f backend/Dockerfile.lean -t deploy-ml-workshop/backend:lean .
#   docker run --rm -p 8000:8000 deploy-ml-workshop/backend:lean
#
# Build arguments:
#   BASE_IMAGE     any Debian-based image with python3 >= 3.11 and venv (default: official slim)
#   FULL_IMAGE     the full back-end image, used to export the models
#   EXPORT_MODELS  models exported into the image (public ones only when the full image has their weights)
ARG BASE_IMAGE=python:3.12-slim
ARG FULL_IMAGE=deploy-ml-workshop/backend:latest

FROM ${FULL_IMAGE} AS exporter
ARG EXPORT_MODELS=shapes
RUN workshop export ${EXPORT_MODELS} --engines openvino onnx

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
ARG SOURCE=https://github.com/deploy-ml-workshop/deploy-ml-workshop

LABEL org.opencontainers.image.title="deploy-ml-workshop back-end (lean)" \
      org.opencontainers.image.description="YOLO object detection API (FastAPI + OpenVINO / ONNX Runtime, no PyTorch)" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    WORKSHOP_WEIGHTS_DIR=/opt/weights \
    WORKSHOP_HOST=0.0.0.0 \
    WORKSHOP_PORT=8000 \
    WORKSHOP_ENGINE=openvino \
    WORKSHOP_PUBLIC_MODELS=""

RUN python3 -m venv "$VIRTUAL_ENV" && useradd --create-home --uid 10001 workshop

WORKDIR /app

# Dependencies first, in their own layer. OpenCV (headless: no GUI libraries) only
# resizes pictures exactly as Ultralytics does; same version as the full image's.
COPY pyproject.toml requirements/constraints.txt workshop/extras.py ./
RUN python extras.py pyproject.toml serve-lean > requirements.txt \
 && pip install -c constraints.txt -r requirements.txt \
        "opencv-python-headless==$(sed -n 's/^opencv-python==//p' constraints.txt)"

COPY README.md LICENSE ./
COPY workshop ./workshop
RUN pip install --no-deps . && rm -rf /app/build /app/*.egg-info

COPY --from=exporter --chown=workshop /opt/weights /opt/weights
USER workshop

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["workshop", "healthcheck", "http://127.0.0.1:8000/ready"]
CMD ["workshop", "serve"]
