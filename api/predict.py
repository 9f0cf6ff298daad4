"""``POST /model/predict``: detect objects in one uploaded image (MAX-compatible)."""
from __future__ import annotations

import time

from flask import request
from flask_restx import Api, Namespace, Resource, fields, reqparse
from werkzeug.datastructures import FileStorage

from api import holder, settings
from api.errors import error_model
from api.request_log import log_fields
from config import parse_fraction
from core.errors import InvalidInput


#: The form fields ``/model/predict`` accepts.
FIELDS = frozenset({"image", "threshold"})


def read_threshold(raw: str | None, default: float) -> float:
    """Parse the ``threshold`` form field: a finite number in [0, 1]; absent means ``default``
    (an empty value is a mistake, not a request for the default)."""
    if raw is None:
        return default
    try:
        return parse_fraction(raw)
    except ValueError:
        raise InvalidInput(f"threshold must be a number in [0, 1], got {raw[:40]!r}") from None


def form_value(name: str) -> str | None:
    """The one value of form field ``name`` (None when absent); sending it twice is ambiguous."""
    values = request.form.getlist(name)
    if len(values) > 1:
        raise InvalidInput(f"send the form field {name!r} once, got {len(values)} values")
    return values[0] if values else None


def reject_unknown_fields(allowed: frozenset[str]) -> None:
    """A misspelt field (``treshold``) would otherwise be ignored silently and the default used."""
    unknown = sorted((set(request.form) | set(request.files)) - allowed)
    if unknown:
        raise InvalidInput(f"unknown form field(s) {', '.join(map(repr, unknown))[:200]}; "
                           f"expected {', '.join(map(repr, sorted(allowed)))}")


def read_image() -> bytes:
    """The bytes of the single multipart ``image`` field."""
    if not request.mimetype.startswith("multipart/form-data"):
        raise InvalidInput("expected a multipart/form-data body with an 'image' file field")
    files = request.files.getlist("image")
    if not files:
        raise InvalidInput("missing the multipart file field 'image'")
    if len(files) > 1:
        raise InvalidInput("send exactly one file in the 'image' field")
    data = files[0].read()
    log_fields(image_bytes=len(data))
    return data


def _threshold(raw: str) -> float:
    """reqparse's type for the field: the same rule as :func:`read_threshold`."""
    return parse_fraction(raw)


#: Lets Swagger (and schema fuzzers) know the accepted range, not just "a number".
_threshold.__schema__ = {"type": "number", "minimum": 0.0, "maximum": 1.0}  # type: ignore[attr-defined]


def input_parser(default_threshold: float) -> reqparse.RequestParser:
    """Swagger description of the form; parsing itself is done by the functions above."""
    parser = reqparse.RequestParser()
    parser.add_argument("image", type=FileStorage, location="files", required=True,
                        help="An image file: JPEG, PNG, GIF (first frame), BMP, WebP or TIFF")
    parser.add_argument("threshold", type=_threshold, location="form", required=False, default=default_threshold,
                        help=f"Minimum probability of returned detections, in [0, 1] "
                             f"(default {default_threshold}, the DEFAULT_THRESHOLD setting)")
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
    parser = input_parser(api.app.extensions["settings"].default_threshold)

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
            threshold = read_threshold(form_value("threshold"), cfg.default_threshold)
            data = read_image()
            reject_unknown_fields(FIELDS)
            model = holder().get()
            started = time.perf_counter()
            decoded = model.decode(data, cfg.max_image_pixels)
            log_fields(image_pixels=decoded.original_size[0] * decoded.original_size[1])
            predictions = model.predict_json(decoded, threshold)
            elapsed_ms = (time.perf_counter() - started) * 1000
            return {"status": "ok", "predictions": predictions}, 200, {"X-Processing-Time-Ms": f"{elapsed_ms:.1f}"}
