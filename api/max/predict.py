"""``POST /model/predict``: detect objects in one uploaded image (MAX-compatible)."""

from __future__ import annotations

import time

from flask_restx import Api, Namespace, Resource, fields

from api.context import decode_budget, holder, settings
from api.errors import error_model
from api.forms import input_parser, read_form
from api.middleware.request_log import log_fields
from core.model.images import decode_cost


def register(api: Api, ns: Namespace) -> None:
    prediction = api.model(
        "Prediction",
        {
            "label_id": fields.String(required=True, example="18", description="class id in the label map"),
            "label": fields.String(required=True, example="dog"),
            "probability": fields.Float(required=True, example=0.93),
            "detection_box": fields.List(
                fields.Float,
                required=True,
                min_items=4,
                max_items=4,
                example=[0.1, 0.2, 0.8, 0.9],
                description="[ymin, xmin, ymax, xmax], normalised to the upright image, in [0, 1]",
            ),
        },
    )
    response = api.model(
        "PredictResponse",
        {
            "status": fields.String(required=True, enum=["ok"], example="ok"),
            "predictions": fields.List(
                fields.Nested(prediction), required=True, description="sorted by probability, highest first"
            ),
        },
    )
    error = error_model(api)
    parser = input_parser(api.app.extensions["settings"].default_threshold)

    @ns.route("/predict")
    class Predict(Resource):
        @ns.doc("predict", description="Detect objects in an image.")
        @ns.expect(parser)
        @ns.response(200, "Detections", response)
        @ns.response(400, "Bad input: not an image, corrupt, too many pixels, missing field or bad threshold", error)
        @ns.response(413, "Request body over the configured limit", error)
        @ns.response(
            503, "The model is not ready, or the worker is busy decoding other large images (see Retry-After)", error
        )
        def post(self):
            """Return the objects detected in the uploaded image, best first."""
            cfg = settings()
            threshold, data = read_form()
            model = holder().get()
            started = time.perf_counter()
            with decode_budget().reserve(decode_cost(data, cfg.max_image_pixels, model.input_size)):
                decoded = model.decode(data, cfg.max_image_pixels, cfg.max_jpeg_scans)
                log_fields(image_pixels=decoded.original_size[0] * decoded.original_size[1])
                predictions = model.predict_json(decoded, threshold)
                del decoded
            elapsed_ms = (time.perf_counter() - started) * 1000
            return {"status": "ok", "predictions": predictions}, 200, {"X-Processing-Time-Ms": f"{elapsed_ms:.1f}"}
