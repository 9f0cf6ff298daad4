"""``GET /model/metadata``: what model this service runs (MAX-compatible, plus backend details)."""

from __future__ import annotations

from flask_restx import Api, Namespace, Resource, fields

from api.context import holder
from api.errors import error_model


def register(api: Api, ns: Namespace) -> None:
    metadata = api.model(
        "ModelMetadata",
        {
            "id": fields.String(required=True, example="ssd_mobilenet_v1"),
            "name": fields.String(required=True, example="SSD MobileNet v1"),
            "description": fields.String(required=True),
            "type": fields.String(required=True, example="Object Detection"),
            "source": fields.String(required=True),
            "license": fields.String(required=True, example="Apache-2.0"),
            "backend": fields.String(description="inference engine (tf, tflite or tflite-int8), once loaded"),
            "fallback": fields.String(
                description="why the requested backend is not the one serving (int8 failed its accuracy gate)"
            ),
            "format": fields.String(description="frozen_graph, saved_model or tflite, once loaded"),
            "input_size": fields.List(fields.Integer, description="network input (width, height)"),
            "version": fields.String(description="first 12 hex digits of the model archive's sha256"),
            "installed_at": fields.String(
                description="when the fetcher installed and verified the model (UTC, ISO 8601)"
            ),
        },
    )
    error = error_model(api)

    @ns.route("/metadata")
    class Metadata(Resource):
        @ns.doc("get_metadata")
        @ns.response(200, "Model metadata", metadata)
        @ns.response(500, "Internal error", error)
        def get(self):
            """Return the metadata of the served model."""
            return holder().model.info.to_json()
