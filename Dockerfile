# Object detector service image.
#
#   docker build -t object-detector .                                  # catalog default (ssd_mobilenet_v1), int8 on LiteRT
#   docker build --build-arg MODEL=ssd_mobilenet_v2 -t object-detector .
#   docker build --build-arg MODEL_URL=https://.../model.tar.gz --build-arg MODEL_SHA256=<hex> -t object-detector .
#   docker build --build-arg BACKEND=tflite -t object-detector:tflite .     # float on LiteRT, no TensorFlow
#   docker build --build-arg BACKEND=tf -t object-detector:tf .             # TensorFlow runs the graph
#
# The default BACKEND=tflite-int8 converts a frozen graph into float and calibrated int8 TFLite in
# the model stage (`python -m core optimize --int8`, calibrated on the CC0 photos in
# assets/calibration, no data set needed) and serves the int8 one without TensorFlow. If the int8
# model failed its accuracy gate against the float one, the service serves the float model and
# says so (log and /model/metadata "fallback").
#
# The model stage downloads the model through the project's verified fetcher, so a checksum
# mismatch fails the build; the runtime stage holds only the venv, the verified model and the code.
# Build args end up in the image's ENV and history: never put credentials in MODEL_URL here.

# Stage 1, on the machine that builds (never emulated): the model, fetched and verified, and for
# BACKEND=tflite* converted once, so every architecture's image carries the same verified files.
FROM --platform=$BUILDPLATFORM python:3.11-slim AS model

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
# The exact versions, with their hashes (make lock): a rebuild installs the same packages.
COPY requirements.lock requirements-tflite.lock /src/
# The fetcher needs no TensorFlow (numpy and Pillow come with the `core` package); the converter
# does, so BACKEND=tflite* adds it here, in its own layer that code changes do not invalidate.
ARG BACKEND=tflite-int8
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN python -m venv /opt/venv \
    && if [ "${BACKEND#tflite}" != "$BACKEND" ]; then \
           pip install --no-cache-dir --require-hashes -r /src/requirements.lock; \
       else \
           pip install --no-cache-dir --require-hashes -r /src/requirements-tflite.lock; \
       fi

WORKDIR /src
COPY config.py ./
COPY core/ core/
COPY assets/ assets/

ARG MODEL=ssd_mobilenet_v1
ARG MODEL_URL=""
ARG MODEL_SHA256=""
# The fetcher reads MODEL / MODEL_URL / MODEL_SHA256 from the environment exactly as the service
# will (config.Settings), so it installs into the directory the runtime looks in. It prints that
# directory last; only the directory goes on to the runtime stage (no lock files, no downloads).
# BACKEND=tflite converts a frozen graph to float TFLite here (`python -m core optimize`, which needs
# TensorFlow; recorded in the manifest), BACKEND=tflite-int8 to float and int8 (`--int8`), unless
# the model already is a .tflite (the published int8 one).
RUN installed="$(python -m core fetch --no-progress --assets-dir /src/assets | tail -n 1)" \
    && test -d "$installed" \
    && if [ -n "$(find "$installed" -name '*.tflite')" ]; then \
           true; \
       elif [ "$BACKEND" = tflite-int8 ]; then \
           python -m core optimize "$installed" --int8; \
       elif [ "$BACKEND" = tflite ]; then \
           python -m core optimize "$installed"; \
       fi \
    && mkdir -p /out/models \
    && mv "$installed" /out/models/ \
    && echo "model installed: $(ls /out/models)"


# Stage 2, for the target architecture: the runtime venv. BACKEND=tflite* leaves TensorFlow out
# (LiteRT serves the model and no worker imports TensorFlow): about 1 GB less.
FROM python:3.11-slim AS deps

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
COPY requirements.lock requirements-tflite.lock /src/
ARG BACKEND=tflite-int8
# TensorFlow's C++ headers (about 290 MB) only serve building extensions; the service never reads
# them. Its libraries ship with their full symbol tables: stripping them (binutils, in this stage
# only, which the runtime never contains; not version-pinned, as a pin would break when the base
# image moves to a new Debian) saves about 220 MB and changes no code (the dynamic symbols stay).
# pip and setuptools (about 26 MB) only install packages; the service never imports them.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN python -m venv /opt/venv \
    && if [ "${BACKEND#tflite}" != "$BACKEND" ]; then \
           pip install --no-cache-dir --require-hashes -r /src/requirements-tflite.lock; \
       else \
           apt-get update \
           && apt-get install -y --no-install-recommends binutils \
           && rm -rf /var/lib/apt/lists/* \
           && pip install --no-cache-dir --require-hashes -r /src/requirements.lock \
           && rm -rf /opt/venv/lib/python3*/site-packages/tensorflow/include \
           && strip --strip-unneeded /opt/venv/lib/python3*/site-packages/tensorflow/libtensorflow_cc.so.2 \
               /opt/venv/lib/python3*/site-packages/tensorflow/libtensorflow_framework.so.2; \
       fi \
    && python -m pip uninstall --yes --quiet pip setuptools


FROM python:3.11-slim AS runtime

ARG MODEL=ssd_mobilenet_v1
ARG MODEL_URL=""
ARG MODEL_SHA256=""
ARG BACKEND=tflite-int8
# The project's version (pyproject.toml); the release workflow passes the same, from the tag it checked.
ARG VERSION=2.0.0
ARG REVISION=unknown

LABEL org.opencontainers.image.title="object-detector" \
      org.opencontainers.image.description="REST object detection (SSD-MobileNet, COCO), IBM MAX Object Detector compatible" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim"

# The same MODEL* names as the build args: config.Settings derives <ASSETS_DIR>/models/<name>
# from them, which is where the model stage installed the model. HOME=/tmp because the root
# filesystem is read-only in Kubernetes and /tmp is the only writable place. HOST=0.0.0.0: in a
# container the service must listen on every interface to be reachable through -p or a Service
# (outside one, the default is loopback only).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    ASSETS_DIR=/app/assets \
    HOST=0.0.0.0 \
    PORT=5000 \
    MODEL=${MODEL} \
    MODEL_URL=${MODEL_URL} \
    MODEL_SHA256=${MODEL_SHA256} \
    BACKEND=${BACKEND}

# A fixed numeric UID so Kubernetes' runAsNonRoot can verify it; no home, no shell, no log entries.
RUN useradd --no-log-init --uid 10001 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin app

COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
# pyproject.toml: the API reads the project's version from it (Swagger's info.version).
COPY app.py config.py gunicorn.conf.py pyproject.toml LICENSE ./
COPY api/ api/
COPY core/ core/
COPY assets/ assets/
COPY --from=model /out/models/ assets/models/

# Files stay root-owned, so the service user cannot change its own code or model.
USER 10001:10001
EXPOSE 5000

# No curl in slim images: Python's urllib checks readiness (model loaded and warmed up).
# (Docker keeps HEALTHCHECK; podman keeps it only with `podman build --format docker`.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('PORT', '5000'), timeout=4)"]

ENTRYPOINT ["gunicorn", "-c", "gunicorn.conf.py"]
