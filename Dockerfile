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
# The runtime is one squashed copy of python:3.11-slim with what a served model never uses deleted
# (stage `base`), so the deletions really leave the image. Sizes: docs/performance.md, "Image size".
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
# `python -m core prune` then removes the files the image's backend never reads (for a converted
# graph: the archive's frozen graph and SavedModel, 36 MB for SSDLite) and records them in the
# manifest, so the service verifies the rest and another BACKEND fails naming them (BACKEND=auto
# serves what is left). A BACKEND=auto build keeps every file. The int8 image keeps the float model
# too (18 MB): its fallback if int8 failed the accuracy gate, and BACKEND=tflite still works in it.
RUN installed="$(python -m core fetch --no-progress --assets-dir /src/assets | tail -n 1)" \
    && test -d "$installed" \
    && if [ -n "$(find "$installed" -name '*.tflite')" ]; then \
           true; \
       elif [ "$BACKEND" = tflite-int8 ]; then \
           python -m core optimize "$installed" --int8; \
       elif [ "$BACKEND" = tflite ]; then \
           python -m core optimize "$installed"; \
       fi \
    && if [ "$BACKEND" = tflite-int8 ]; then \
           python -m core prune "$installed" --backend tflite-int8 --backend tflite; \
       elif [ "$BACKEND" != auto ]; then \
           python -m core prune "$installed" --backend "$BACKEND"; \
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
# The LiteRT venv loses what serving a model through LiteRT's Interpreter never loads (checked in a
# running container: its imports and /proc/self/maps after every endpoint answered):
#   ai_edge_litert's WebGPU accelerator (libLiteRtWebGpuAccelerator.so, 19 MB; only the CompiledModel
#   API loads it, on a GPU), its tools/ (model benchmark and NPU plugin runner, 8 MB), vendors/
#   (NPU vendor plugins, 4.5 MB) and aot/ (ahead-of-time NPU compilation);
#   every package's tests/ (numpy's alone 13 MB), numpy's f2py and distutils (build tools) and
#   the *.pyi type stubs (read by type checkers only).
# The .pyc files stay: workers start faster with them (ready <= 1 s is a target).
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN python -m venv /opt/venv \
    && if [ "${BACKEND#tflite}" != "$BACKEND" ]; then \
           pip install --no-cache-dir --require-hashes -r /src/requirements-tflite.lock \
           && site="$(echo /opt/venv/lib/python3*/site-packages)" \
           && rm -rf "$site"/ai_edge_litert/libLiteRtWebGpuAccelerator.so "$site"/ai_edge_litert/tools \
               "$site"/ai_edge_litert/vendors "$site"/ai_edge_litert/aot "$site"/numpy/f2py "$site"/numpy/distutils \
           && find "$site" -depth -type d -name tests -exec rm -rf {} + \
           && find "$site" -name '*.pyi' -delete; \
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


# Stage 3: python:3.11-slim without what a served model never uses, squashed into the runtime
# below (FROM scratch + one COPY), so that what is deleted here is not in the image at all (a
# deletion in a layer on top of the base would only hide the files). The paths cover both layouts:
# the official image's Python in /usr/local, Debian's in /usr/lib (container-smoke's stand-in).
#   apt lists, caches and logs; docs, man and info pages; message translations (/usr/share/locale;
#     the C.UTF-8 locale itself is in /usr/lib/locale and stays);
#   pip, setuptools, wheel and the wheels ensurepip installs: installing packages happens in the
#     deps stage, never in a running container;
#   Python's test suite, IDLE, tkinter, turtledemo, lib2to3 (2to3) and pydoc's topic data.
# dpkg's database stays, so image scanners still see which Debian packages (and versions) are in.
FROM python:3.11-slim AS base

# A fixed numeric UID so Kubernetes' runAsNonRoot can verify it; no home, no shell, no log entries.
RUN useradd --no-log-init --uid 10001 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin app \
    && rm -rf /var/lib/apt/lists/* /var/cache/* /var/log/* \
        /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/* /usr/share/python-wheels \
        /usr/local/bin/pip* /usr/bin/pip* \
    && for lib in /usr/local/lib/python3.11 /usr/lib/python3.11 /usr/lib/python3; do \
           rm -rf "$lib/test" "$lib/idlelib" "$lib/tkinter" "$lib/turtledemo" "$lib/lib2to3" "$lib/pydoc_data" \
               "$lib/ensurepip" "$lib"/*-packages/pip "$lib"/*-packages/pip-* "$lib"/*-packages/setuptools \
               "$lib"/*-packages/setuptools-* "$lib"/*-packages/wheel "$lib"/*-packages/wheel-* \
               "$lib"/*-packages/pkg_resources "$lib"/*-packages/_distutils_hack \
               "$lib"/*-packages/distutils-precedence.pth; \
       done


FROM scratch AS runtime

# The squashed base: the base image's ENV does not carry over FROM scratch, so PATH and LANG are
# set again below (as python:3.11-slim sets them). DL3067 warns against copying a whole filesystem
# from a stage; here that is the point: it is the only way deleted base files leave the image.
# hadolint ignore=DL3067
COPY --from=base / /

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
    PATH=/opt/venv/bin:/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    HOME=/tmp \
    ASSETS_DIR=/app/assets \
    HOST=0.0.0.0 \
    PORT=5000 \
    MODEL=${MODEL} \
    MODEL_URL=${MODEL_URL} \
    MODEL_SHA256=${MODEL_SHA256} \
    BACKEND=${BACKEND}

COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
# pyproject.toml: the API reads the project's version from it (Swagger's info.version).
COPY app.py config.py gunicorn.conf.py pyproject.toml LICENSE ./
COPY api/ api/
COPY core/ core/
# The catalog and the label maps; not assets/calibration (2.8 MB), which only the model stage reads.
COPY assets/catalog.json assets/
COPY assets/labels/ assets/labels/
COPY --from=model /out/models/ assets/models/

# Files stay root-owned, so the service user cannot change its own code or model.
USER 10001:10001
EXPOSE 5000

# No curl in slim images: Python's urllib checks readiness (model loaded and warmed up).
# (Docker keeps HEALTHCHECK; podman keeps it only with `podman build --format docker`.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('PORT', '5000'), timeout=4)"]

ENTRYPOINT ["gunicorn", "-c", "gunicorn.conf.py"]
