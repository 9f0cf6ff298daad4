"""``/health/live`` and ``/health/ready``: the probes Kubernetes and Docker read.

Liveness only says the process answers; readiness says the model is loaded and warmed up,
so traffic is sent to a worker only when it can serve it.
"""

from __future__ import annotations

from flask_restx import Api, Namespace, Resource, fields

from api.context import holder


def register(api: Api, ns: Namespace) -> None:
    status = api.model(
        "Health",
        {
            "status": fields.String(required=True, enum=["ok", "loading", "failed"], example="ok"),
            "message": fields.String(description="why the model is not ready"),
        },
    )

    @ns.route("/live")
    class Live(Resource):
        @ns.doc("liveness")
        @ns.response(200, "The process answers", status)
        def get(self):
            """Liveness: the process is up and answering."""
            return {"status": "ok"}

    @ns.route("/ready")
    class Ready(Resource):
        @ns.doc("readiness")
        @ns.response(200, "The model is loaded and warmed up", status)
        @ns.response(503, "The model is loading, or failed to load", status)
        def get(self):
            """Readiness: the model is loaded and a warm-up inference has run."""
            h = holder()
            if h.ready:
                return {"status": "ok"}
            body = {"status": h.state}
            if h.error:
                body["message"] = h.error
            return body, 503
