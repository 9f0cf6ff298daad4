"""``POST /model/predict``: detect objects in one uploaded image (MAX-compatible)."""
from __future__ import annotations

import time

from flask import request
from flask_restx import Api, Namespace, Resource, fields, reqparse
from werkzeug.datastructures import FileStorage

from api import holder, settings
from api.errors import error_model
from config import parse_fraction
from core.errors import InvalidInput


def read_threshold(raw: str | None, default: float) -> float:
    """Parse the ``threshold`` form field: a finite number in [0, 1]."""
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse_fraction(raw)
    except ValueError:
        raise InvalidInput(f"threshold must be a number in [0, 1], got {raw[:40]!r}") from None


def read_image() -> bytes:
    """The bytes of the single multipart ``image`` field."""
    if not request.mimetype.startswith("multipart/form-data"):
        raise InvalidInput("expected a multipart/form-data body with an 'image' file field")
    files = request.files.getlist("image")
    if not files:
        raise InvalidInput("missing the multipart file field 'image'")
    if len(files) > 1:
        raise InvalidInput("send exactly one file in the 'image' field")
    return files[0].read()


def input_parser() -> reqparse.RequestParser:
    """Swagger description of the form; parsing itself is done by the functions above."""
    parser = reqparse.RequestParser()
    parser.add_argument("image", type=FileStorage, location="files", required=True,
                        help="An image file: JPEG, PNG, GIF (first frame), BMP, WebP or TIFF")
    parser.add_argument("threshold", type=float, location="form", required=False, default=0.7,
                        help="Minimum probability of returned detections, in [0, 1] (default 0.7)")
    return parser


def register(api: Api, ns: Namespace) -> None:
    prediction = api.model("Prediction", {
        "label_id": fields.String(required=True, example="18", description="class id in the label map"),
        "label": fields.String(required=True, example="dog"),
        "probability": fields.Float(required=True, example=0.93),
        "detection_box": fields.List(
            fields.Float, required=True, min_items=4, max_items=4, example=[0.1, 0.2, 0.8, 0.9],
            description="[ymin, xmin, ymax, xmax], normalised to the upright image, in [0, 1]",
        ),
    })
    response = api.model("PredictResponse", {
        "status": fields.String(required=True, enum=["ok"], example="ok"),
        "predictions": fields.List(fields.Nested(prediction), required=True,
                                   description="sorted by probability, highest first"),
    })
    error = error_model(api)
    parser = input_parser()

    @ns.route("/predict")
    class Predict(Resource):
        @ns.doc("predict", description="Detect objects in an image.")
        @ns.expect(parser)
        @ns.response(200, "Detections", response)
        @ns.response(400, "Bad input: not an image, corrupt, too many pixels, missing field or bad threshold", error)
        @ns.response(413, "Request body over the configured limit", error)
        @ns.response(503, "The model is not ready", error)
        def post(self):
            """Return the objects detected in the uploaded image, best first."""
            cfg = settings()
            threshold = read_threshold(request.form.get("threshold"), cfg.default_threshold)
            data = read_image()
            model = holder().get()
            started = time.perf_counter()
            predictions = model.predict_json(data, threshold, cfg.max_image_pixels)
            elapsed_ms = (time.perf_counter() - started) * 1000
            return {"status": "ok", "predictions": predictions}, 200, {"X-Processing-Time-Ms": f"{elapsed_ms:.1f}"}
