"""``GET /model/labels``: every class the model can report (MAX-compatible)."""

from __future__ import annotations

from flask_restx import Api, Namespace, Resource, fields

from api.context import holder
from api.errors import error_model


def register(api: Api, ns: Namespace) -> None:
    label = api.model(
        "Label",
        {
            "id": fields.String(required=True, example="1"),
            "name": fields.String(required=True, example="person"),
        },
    )
    labels = api.model(
        "Labels",
        {
            "count": fields.Integer(required=True, example=80),
            "labels": fields.List(fields.Nested(label), required=True),
        },
    )
    error = error_model(api)

    @ns.route("/labels")
    class Labels(Resource):
        @ns.doc("get_labels")
        @ns.response(200, "The label map", labels)
        @ns.response(500, "Internal error", error)
        def get(self):
            """Return the labels the model can predict."""
            items = sorted(holder().model.labels.items())
            return {"count": len(items), "labels": [{"id": str(i), "name": n} for i, n in items]}
