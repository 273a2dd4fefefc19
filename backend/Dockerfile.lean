# The lean back-end image: the same API and the same answers, one runtime, no PyTorch.
#
# The models are exported at build time in a builder stage that is the full back-end image;
# then only those exports, the package and ONE runtime (ONNX Runtime by default: the faster
# one on the machine behind docs/benchmarks.md, and 78 MB where OpenVINO takes 180 MB) are put
# on a fresh base. No OpenCV either: the exported engines letterbox pictures without it.
# Build the full image first:
#   docker build -f backend/Dockerfile -t deploy-ml-workshop/backend .
#   docker build -f backend/Dockerfile.lean -t deploy-ml-workshop/backend:lean .
#   docker run --rm -p 8000:8000 deploy-ml-workshop/backend:lean
# Its size layer by layer: docker history deploy-ml-workshop/backend:lean (docs/benchmarks.md lists it).
#
# Build arguments:
#   BASE_IMAGE     any Debian-based image with python3 >= 3.11, venv and pip (default: official slim)
#   FULL_IMAGE     the full back-end image, used to export the models
#   EXPORT_MODELS  models exported into the image (public ones only when the full image has their weights)
#   ENGINE         the one runtime kept: onnx (ONNX Runtime) or openvino
ARG BASE_IMAGE=python:3.12-slim
ARG FULL_IMAGE=deploy-ml-workshop/backend:latest

FROM ${FULL_IMAGE} AS exporter
ARG EXPORT_MODELS=shapes
ARG ENGINE=onnx
# Only this runtime's exports go into the image: no weights, no other runtime's exports.
RUN workshop export ${EXPORT_MODELS} --engines ${ENGINE} \
 && mkdir -p /tmp/lean/exports \
 && cp -r "$WORKSHOP_WEIGHTS_DIR"/exports/*-${ENGINE} /tmp/lean/exports/

FROM ${BASE_IMAGE}
ARG ENGINE=onnx
ARG VERSION=0.1.0
ARG SOURCE=https://github.com/deploy-ml-workshop/deploy-ml-workshop

LABEL org.opencontainers.image.title="deploy-ml-workshop back-end (lean)" \
      org.opencontainers.image.description="YOLO object detection API (FastAPI + ONNX Runtime or OpenVINO, no PyTorch)" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"

# No WORKSHOP_ENGINE: the default, auto, runs every model on the one runtime installed here.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    WORKSHOP_WEIGHTS_DIR=/opt/weights \
    WORKSHOP_HOST=0.0.0.0 \
    WORKSHOP_PORT=8000 \
    WORKSHOP_PUBLIC_MODELS=""

# A virtual environment without pip (13 MB): the base image's pip installs into it (--python),
# so the venv goes on the PATH only once everything is installed.
RUN python3 -m venv --without-pip "$VIRTUAL_ENV" && useradd --create-home --uid 10001 workshop

WORKDIR /app

# Dependencies first, in their own layer, with only what serving needs: the lean extra minus
# the runtime not kept; uvicorn with its fast HTTP parser but not the rest of [standard]
# (uvloop, 14 MB, gains nothing measurable when the model's CPU time dominates every
# request; reload and websockets serve nothing here); no test suites (numpy's alone are 15 MB).
COPY pyproject.toml requirements/constraints.txt workshop/extras.py ./
RUN if [ "$ENGINE" = onnx ]; then drop=openvino; else drop=onnxruntime; fi \
 && python3 extras.py pyproject.toml serve-lean \
    | grep -v "^$drop" | sed 's/^uvicorn\[standard\]/uvicorn/' > requirements.txt \
 && echo "httptools" >> requirements.txt \
 && python3 -m pip --python "$VIRTUAL_ENV/bin/python" install -c constraints.txt -r requirements.txt \
 && find "$VIRTUAL_ENV" -depth -type d -name tests -prune -exec rm -rf {} + \
 && rm -rf "$VIRTUAL_ENV"/lib/python3*/site-packages/onnxruntime/transformers \
           "$VIRTUAL_ENV"/lib/python3*/site-packages/onnxruntime/quantization \
           "$VIRTUAL_ENV"/lib/python3*/site-packages/onnxruntime/tools

COPY README.md LICENSE ./
COPY workshop ./workshop
RUN python3 -m pip --python "$VIRTUAL_ENV/bin/python" install --no-deps . && rm -rf /app/build /app/*.egg-info

COPY --from=exporter --chown=workshop /tmp/lean/exports /opt/weights/exports
ENV PATH=/opt/venv/bin:$PATH
USER workshop

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["workshop", "healthcheck", "http://127.0.0.1:8000/ready"]
CMD ["workshop", "serve"]
