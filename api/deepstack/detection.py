"""``POST /v1/vision/detection``: DeepStack's object detection, on the same model as ``/model/predict``.

Request: multipart ``image``, optional ``min_confidence`` (form field or query parameter, default
0.4 as in DeepStack and CodeProject.AI) and ``api_key`` (the form field DeepStack clients send the
key in; ``api/middleware/security.py`` checks it). Answer: DeepStack's body plus the fields
CodeProject.AI adds. Boxes are integer pixels in the uploaded picture as a viewer shows it (EXIF
orientation applied), rounded to the nearest pixel.

At most :data:`MAX_PREDICTIONS` predictions, best first: Frigate's plugin writes them into a
20-row array and crashes on a 21st.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any

from flask import g
from flask_restx import Api, Namespace, Resource, fields

from api.context import holder, settings
from api.errors import deepstack_error_model
from api.forms import form_value, input_parser, read_fraction, read_image, reject_unknown_fields
from api.middleware.request_log import log_fields
from api.middleware.security import API_KEY_FIELD
from core.model.detection import Detection

#: DeepStack's and CodeProject.AI's default ``min_confidence``.
DEFAULT_MIN_CONFIDENCE = 0.4
#: Frigate's deepstack plugin keeps detections in ``np.zeros((20, 6))``: more rows raise IndexError.
MAX_PREDICTIONS = 20
FIELDS = frozenset({"image", "min_confidence", API_KEY_FIELD})
MODULE_ID = "object-detector"


def to_pixels(detection: Detection, size: tuple[int, int]) -> dict[str, Any]:
    """One DeepStack prediction: the normalised box times the picture's (width, height), rounded.

    DeepStack truncates its (already pixel) YOLO boxes with ``int()``; rounding is the closer
    answer for a normalised box, and keeps ``x_max`` <= width.
    """
    width, height = size
    ymin, xmin, ymax, xmax = detection.box
    return {
        "label": detection.label,
        "confidence": round(float(detection.score), 6),
        "x_min": round(xmin * width),
        "y_min": round(ymin * height),
        "x_max": round(xmax * width),
        "y_max": round(ymax * height),
    }


def summary(predictions: list[dict[str, Any]]) -> str:
    """CodeProject.AI's ``message``: "Found person, dog..." or "No objects found"."""
    if not predictions:
        return "No objects found"
    labels = list(dict.fromkeys(p["label"] for p in predictions))
    return "Found " + ", ".join(labels[:3]) + ("..." if len(labels) > 3 else "")


def register(api: Api, ns: Namespace) -> None:
    prediction = api.model(
        "DeepStackPrediction",
        {
            "label": fields.String(required=True, example="dog"),
            "confidence": fields.Float(required=True, example=0.93),
            "x_min": fields.Integer(required=True, example=120, description="pixels from the left edge"),
            "y_min": fields.Integer(required=True, example=40, description="pixels from the top edge"),
            "x_max": fields.Integer(required=True, example=480),
            "y_max": fields.Integer(required=True, example=400),
        },
    )
    response = api.model(
        "DeepStackDetection",
        {
            "success": fields.Boolean(required=True, example=True),
            "predictions": fields.List(
                fields.Nested(prediction),
                required=True,
                description=f"best first, at most {MAX_PREDICTIONS} (what Frigate can take)",
            ),
            "count": fields.Integer(required=True, description="number of predictions (CodeProject.AI)"),
            "message": fields.String(required=True, example="Found dog, person"),
            "inferenceMs": fields.Integer(required=True, description="time spent in the model"),
            "processMs": fields.Integer(required=True, description="decode + model + post-processing"),
            "analysisRoundTripMs": fields.Integer(required=True, description="time in the server"),
            "code": fields.Integer(required=True, example=200),
            "command": fields.String(required=True, example="detect"),
            "moduleId": fields.String(required=True, example=MODULE_ID),
            "moduleName": fields.String(required=True, example="Object Detector"),
            "requestId": fields.String(required=True, description="the X-Request-ID of this request"),
            "inferenceDevice": fields.String(required=True, example="CPU"),
            "timestampUTC": fields.String(required=True, example="Sun, 29 Nov 2026 23:30:00 GMT"),
            "duration": fields.Integer(required=True, example=0, description="always 0, as in DeepStack"),
        },
    )
    error = deepstack_error_model(api)
    parser = input_parser(DEFAULT_MIN_CONFIDENCE, "min_confidence", "DeepStack default")
    parser.add_argument(
        API_KEY_FIELD,
        location="form",
        required=False,
        help="The API key (when the service has API_KEY set), as DeepStack clients send it",
    )

    @ns.route("/detection")
    class VisionDetection(Resource):
        @ns.doc("deepstack_detection", description="Detect objects, answering like DeepStack / CodeProject.AI.")
        @ns.expect(parser)
        @ns.response(200, "Detections", response)
        @ns.response(400, "Bad input: not an image, corrupt, too many pixels, bad min_confidence", error)
        @ns.response(413, "Request body over the configured limit", error)
        @ns.response(503, "The model is not ready", error)
        def post(self):
            """Return the objects detected in the uploaded image, in DeepStack's format."""
            started = time.perf_counter()
            cfg = settings()
            threshold = read_fraction(form_value("min_confidence"), DEFAULT_MIN_CONFIDENCE, "min_confidence")
            form_value(API_KEY_FIELD)  # only one, like every field
            data = read_image()
            reject_unknown_fields(FIELDS)
            model = holder().get()
            decoded = model.decode(data, cfg.max_image_pixels)
            log_fields(image_pixels=decoded.original_size[0] * decoded.original_size[1])
            inference_started = time.perf_counter()
            detections = model.detect(decoded, threshold)[:MAX_PREDICTIONS]
            inference_ms = (time.perf_counter() - inference_started) * 1000
            predictions = [to_pixels(d, decoded.upright_size) for d in detections]
            process_ms = (time.perf_counter() - started) * 1000
            return (
                {
                    "success": True,
                    "predictions": predictions,
                    "count": len(predictions),
                    "message": summary(predictions),
                    "inferenceMs": round(inference_ms),
                    "processMs": round(process_ms),
                    "analysisRoundTripMs": round(process_ms),
                    "code": 200,
                    "command": "detect",
                    "moduleId": MODULE_ID,
                    "moduleName": "Object Detector",
                    "requestId": g.get("request_id", ""),
                    "inferenceDevice": "CPU",
                    "timestampUTC": formatdate(usegmt=True),
                    "duration": 0,
                },
                200,
                {"X-Processing-Time-Ms": f"{process_ms:.1f}"},
            )
