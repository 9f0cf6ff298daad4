"""Building the REST API: every namespace attached to the Flask app, and the project's version for Swagger."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

from flask import Flask
from flask_restx import Api

from api import errors, health, webapp
from api.deepstack import detection
from api.max import annotate, labels, metadata, predict
from api.middleware.security import SecuredApi
from api.v2 import endpoints

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def project_version() -> str:
    """The project's one version, ``[project] version`` in pyproject.toml (copied into the image);
    the installed package's metadata when the file is not beside the code."""
    try:
        with PYPROJECT.open("rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except FileNotFoundError:
        return importlib.metadata.version("object-detector")


#: Swagger's ``info.version``: the project's version (the image label and the release tag agree).
API_VERSION = project_version()


def create_api(app: Flask) -> Api:
    """Build the API and attach every resource module to ``app``."""
    api = SecuredApi(
        app,
        version=API_VERSION,
        title="Object Detector",
        description=(
            "Detects objects in images with an SSD-MobileNet model trained on COCO. "
            "Answers the IBM MAX Object Detector API (/model), DeepStack's detection API (/v1/vision) "
            "and the Open Inference Protocol v2 (/v2)."
        ),
        doc="/",
    )
    errors.register(app, api)
    ns_model = api.namespace("model", description="Model information and inference")
    metadata.register(api, ns_model)
    labels.register(api, ns_model)
    predict.register(api, ns_model)
    annotate.register(api, ns_model)
    health.register(api, api.namespace("health", description="Probes for orchestrators"))
    detection.register(
        api, api.namespace("deepstack", path="/v1/vision", description="DeepStack / CodeProject.AI detection API")
    )
    endpoints.register(
        api,
        api.namespace("v2", path="/v2", description="Open Inference Protocol v2 (KServe, Triton) with binary tensors"),
        API_VERSION,
    )
    webapp.register(app, app.extensions["settings"])
    return api
