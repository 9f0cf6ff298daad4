"""The REST API (flask-restx): one module per resource, all under the ``/model`` namespace
(MAX's paths) plus ``/health``. Swagger UI is at ``/`` and the spec at ``/swagger.json``."""
from __future__ import annotations

from flask import Flask, current_app
from flask_restx import Api

from config import Settings
from core.serving import ModelHolder

API_VERSION = "1.0"


def holder() -> ModelHolder:
    """The current worker's model holder."""
    return current_app.extensions["model_holder"]


def settings() -> Settings:
    """The settings the app was built with."""
    return current_app.extensions["settings"]


def create_api(app: Flask) -> Api:
    """Build the API and attach every resource module to ``app``."""
    from api import annotate, errors, health, labels, metadata, predict, webapp

    api = Api(
        app,
        version=API_VERSION,
        title="Object Detector",
        description=(
            "Detects objects in images with an SSD-MobileNet model trained on COCO. "
            "Compatible with the IBM MAX Object Detector API."
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
    webapp.register(app, app.extensions["settings"])
    return api
