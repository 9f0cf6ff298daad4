"""The v2 routes: server and model metadata, health, readiness and inference.

The served model is named by its id (``GET /model/metadata`` ``id``, the MODEL setting or the
``custom-<sha>`` name of a pinned archive); any other name is a 404. Its one version is the first 12
hex digits of the archive's sha256 (``"1"`` when unknown).

Inputs (send exactly one):

* ``image``: BYTES, shape ``[1]``, an encoded image (JPEG, PNG, ...): raw bytes with binary data,
  base64 text in JSON ``data``;
* ``image_rgb``: UINT8, shape ``[H, W, 3]`` or ``[1, H, W, 3]``, decoded RGB pixels.

Outputs, best detection first: ``detection_boxes`` FP32 ``[N, 4]`` (ymin, xmin, ymax, xmax normalised
to the upright image, as MAX's ``detection_box``), ``detection_scores`` FP32 ``[N]``,
``detection_classes`` INT32 ``[N]`` (COCO ids, MAX's ``label_id``), ``detection_labels`` BYTES
``[N]`` and ``num_detections`` INT32 ``[1]``. Request parameter ``threshold`` (default: the
DEFAULT_THRESHOLD setting).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from flask import Response, request
from flask_restx import Api, Namespace, Resource, fields
from PIL import Image
from werkzeug.exceptions import NotFound

from api.context import holder, settings
from api.errors import v2_error_model
from api.middleware.request_log import log_fields
from api.v2.tensors import (
    HEADER_LENGTH,
    InferenceRequest,
    InputTensor,
    OutputTensor,
    encode_response,
    parse_request,
    read_bytes_element,
    read_uint8,
)
from core.errors import ImageTooLarge, InvalidInput
from core.model.detection import Detection
from core.model.images import DecodedImage

SERVER_NAME = "object-detector"
EXTENSIONS = ["binary_tensor_data"]
#: The engine's model format -> the v2 ``platform`` name (``<framework>_<format>``, as Triton writes them).
PLATFORMS = {"frozen_graph": "tensorflow_graphdef", "saved_model": "tensorflow_savedmodel", "tflite": "tflite_tflite"}
INPUTS: list[dict[str, Any]] = [
    {"name": "image", "datatype": "BYTES", "shape": [1]},
    {"name": "image_rgb", "datatype": "UINT8", "shape": [-1, -1, 3]},
]
OUTPUTS: list[dict[str, Any]] = [
    {"name": "detection_boxes", "datatype": "FP32", "shape": [-1, 4]},
    {"name": "detection_scores", "datatype": "FP32", "shape": [-1]},
    {"name": "detection_classes", "datatype": "INT32", "shape": [-1]},
    {"name": "detection_labels", "datatype": "BYTES", "shape": [-1]},
    {"name": "num_detections", "datatype": "INT32", "shape": [1]},
]
OUTPUT_NAMES = tuple(o["name"] for o in OUTPUTS)


def model_info() -> dict[str, Any]:
    return holder().model.info.to_json()


def versions(info: dict[str, Any]) -> list[str]:
    return [str(info.get("version") or "1")]


def served(name: str, version: str | None) -> dict[str, Any]:
    """The served model's info, or a 404 naming the one model this server has."""
    info = model_info()
    if name != info["id"]:
        raise NotFound(f"unknown model {name[:80]!r}; this server serves {info['id']!r}")
    if version is not None and version not in versions(info):
        raise NotFound(f"model {name!r} has no version {version[:40]!r}; it has {versions(info)}")
    return info


def read_threshold(parameters: dict[str, Any], default: float) -> float:
    value = parameters.get("threshold", default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InvalidInput(f"parameters.threshold must be a number in [0, 1], got {str(value)[:40]!r}")
    return float(value)


def image_input(req: InferenceRequest) -> InputTensor:
    if len(req.inputs) != 1:
        raise InvalidInput(f"send exactly one input, 'image' or 'image_rgb'; got {len(req.inputs)}")
    (tensor,) = req.inputs
    expected = {i["name"]: i["datatype"] for i in INPUTS}
    if tensor.name not in expected:
        raise InvalidInput(f"unknown input {tensor.name[:40]!r}; expected 'image' (BYTES) or 'image_rgb' (UINT8)")
    if tensor.datatype != expected[tensor.name]:
        raise InvalidInput(f"input {tensor.name!r} must be {expected[tensor.name]}, got {tensor.datatype[:20]!r}")
    return tensor


def decoded_input(tensor: InputTensor, model, max_pixels: int) -> DecodedImage:
    """The upright RGB image of either input form; pixel limits are checked before allocating."""
    if tensor.name == "image":
        data = read_bytes_element(tensor)
        log_fields(image_bytes=len(data))
        return model.decode(data, max_pixels)
    shape = tensor.shape[1:] if len(tensor.shape) == 4 and tensor.shape[0] == 1 else tensor.shape
    if len(shape) != 3 or shape[2] != 3 or shape[0] < 1 or shape[1] < 1:
        raise InvalidInput(f"input 'image_rgb' must have shape [H, W, 3] or [1, H, W, 3], got {list(tensor.shape)}")
    height, width = shape[0], shape[1]
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image is too large: {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
        )
    pixels = read_uint8(tensor).reshape(height, width, 3)
    log_fields(image_bytes=pixels.nbytes)
    return DecodedImage(Image.fromarray(pixels, "RGB"), "RAW", (width, height))


def check_outputs(wanted: dict[str, bool | None] | None) -> None:
    unknown = sorted(set(wanted or ()) - set(OUTPUT_NAMES))
    if unknown:
        raise InvalidInput(f"unknown output(s) {[n[:40] for n in unknown]}; this model has {list(OUTPUT_NAMES)}")


def output_tensors(detections: list[Detection], wanted: dict[str, bool | None] | None) -> list[OutputTensor]:
    values = {
        "detection_boxes": np.array([d.box for d in detections], dtype=np.float32).reshape(-1, 4),
        "detection_scores": np.array([d.score for d in detections], dtype=np.float32),
        "detection_classes": np.array([d.label_id for d in detections], dtype=np.int32),
        "detection_labels": np.array([d.label.encode() for d in detections], dtype=object),
        "num_detections": np.array([len(detections)], dtype=np.int32),
    }
    types = {o["name"]: o["datatype"] for o in OUTPUTS}
    names = OUTPUT_NAMES if wanted is None else tuple(wanted)
    return [OutputTensor(name, types[name], values[name]) for name in names]


class AnyList(fields.Raw):
    """A JSON list of anything (a tensor's ``data``: flat or nested numbers, or strings)."""

    def schema(self):
        return {**super().schema(), "type": "array", "items": {}}


def register(api: Api, ns: Namespace, server_version: str) -> None:
    error = v2_error_model(api)
    tensor_meta = api.model(
        "V2TensorMetadata",
        {
            "name": fields.String(required=True),
            "datatype": fields.String(required=True),
            "shape": fields.List(fields.Integer, required=True, description="-1: any size"),
        },
    )
    server_meta = api.model(
        "V2ServerMetadata",
        {
            "name": fields.String(required=True, example=SERVER_NAME),
            "version": fields.String(required=True),
            "extensions": fields.List(fields.String, required=True, example=EXTENSIONS),
        },
    )
    model_meta = api.model(
        "V2ModelMetadata",
        {
            "name": fields.String(required=True),
            "versions": fields.List(fields.String),
            "platform": fields.String(required=True, example="tensorflow_graphdef"),
            "inputs": fields.List(fields.Nested(tensor_meta), required=True),
            "outputs": fields.List(fields.Nested(tensor_meta), required=True),
        },
    )
    live = api.model("V2Live", {"live": fields.Boolean(required=True)})
    ready = api.model("V2Ready", {"ready": fields.Boolean(required=True)})
    model_ready = api.model(
        "V2ModelReady", {"name": fields.String(required=True), "ready": fields.Boolean(required=True)}
    )
    input_parameters = api.model(
        "V2InputParameters",
        {"binary_data_size": fields.Integer(min=0, description="bytes of this input after the JSON header")},
    )
    infer_input = api.model(
        "V2InferInput",
        {
            "name": fields.String(required=True, enum=[i["name"] for i in INPUTS]),
            "datatype": fields.String(required=True, enum=[i["datatype"] for i in INPUTS]),
            "shape": fields.List(fields.Integer(min=0), required=True),
            "parameters": fields.Nested(input_parameters),
            "data": AnyList(description="row-major values (flat or nested); for 'image', one base64 string"),
        },
    )
    output_parameters = api.model("V2OutputParameters", {"binary_data": fields.Boolean()})
    requested_output = api.model(
        "V2RequestedOutput",
        {"name": fields.String(required=True, enum=list(OUTPUT_NAMES)), "parameters": fields.Nested(output_parameters)},
    )
    request_parameters = api.model(
        "V2InferParameters",
        {
            "threshold": fields.Float(min=0.0, max=1.0, description="minimum score (default DEFAULT_THRESHOLD)"),
            "binary_data_output": fields.Boolean(description="every output as binary data"),
        },
    )
    infer_request = api.model(
        "V2InferRequest",
        {
            "id": fields.String,
            "parameters": fields.Nested(request_parameters),
            "inputs": fields.List(fields.Nested(infer_input), required=True, min_items=1, max_items=1),
            "outputs": fields.List(fields.Nested(requested_output)),
        },
    )
    output = api.model(
        "V2Output",
        {
            "name": fields.String(required=True),
            "datatype": fields.String(required=True),
            "shape": fields.List(fields.Integer, required=True),
            "parameters": fields.Raw(description="binary_data_size, for an output sent as binary data"),
            "data": AnyList(description="row-major values, for an output sent as JSON"),
        },
    )
    infer_response = api.model(
        "V2InferResponse",
        {
            "model_name": fields.String(required=True),
            "model_version": fields.String,
            "id": fields.String,
            "outputs": fields.List(fields.Nested(output), required=True),
        },
    )

    @ns.route("", strict_slashes=False)
    class ServerMetadata(Resource):
        @ns.doc("v2_server_metadata")
        @ns.response(200, "Server name, version and protocol extensions", server_meta)
        def get(self):
            """Server metadata."""
            return {"name": SERVER_NAME, "version": server_version, "extensions": EXTENSIONS}

    @ns.route("/health/live")
    class Live(Resource):
        @ns.doc("v2_server_live")
        @ns.response(200, "The server answers", live)
        def get(self):
            """Server liveness."""
            return {"live": True}

    @ns.route("/health/ready")
    class Ready(Resource):
        @ns.doc("v2_server_ready")
        @ns.response(200, "The model is loaded and warmed up", ready)
        @ns.response(503, "The model is loading or failed to load", error)
        def get(self):
            """Server readiness: the model is loaded and warmed up."""
            h = holder()
            if h.ready:
                return {"ready": True}
            return {"error": f"the model is {h.state}" + (f": {h.error}" if h.error else "")}, 503

    @ns.route("/models/<string:name>", "/models/<string:name>/versions/<string:version>")
    class ModelMetadata(Resource):
        @ns.doc("v2_model_metadata")
        @ns.response(200, "The model's name, versions, platform, inputs and outputs", model_meta)
        @ns.response(404, "No such model or version", error)
        def get(self, name: str, version: str | None = None):
            """Model metadata."""
            info = served(name, version)
            return {
                "name": info["id"],
                "versions": versions(info),
                "platform": PLATFORMS.get(str(info.get("format")), "object-detector"),
                "inputs": INPUTS,
                "outputs": OUTPUTS,
            }

    @ns.route("/models/<string:name>/ready", "/models/<string:name>/versions/<string:version>/ready")
    class ModelReady(Resource):
        @ns.doc("v2_model_ready")
        @ns.response(200, "The model is ready", model_ready)
        @ns.response(404, "No such model or version", error)
        @ns.response(503, "The model is loading or failed to load", error)
        def get(self, name: str, version: str | None = None):
            """Model readiness."""
            info = served(name, version)
            h = holder()
            if h.ready:
                return {"name": info["id"], "ready": True}
            return {"error": f"model {info['id']!r} is {h.state}" + (f": {h.error}" if h.error else "")}, 503

    @ns.route("/models/<string:name>/infer", "/models/<string:name>/versions/<string:version>/infer")
    class Infer(Resource):
        @ns.doc(
            "v2_infer",
            description="Detect objects. JSON, or (binary tensor data extension) a JSON header of "
            f"{HEADER_LENGTH} bytes followed by the tensors' bytes; no Content-Type needed.",
        )
        @ns.expect(infer_request)
        @ns.produces(["application/json", "application/octet-stream"])
        @ns.response(200, "The detections as output tensors", infer_response)
        @ns.response(400, "Malformed request, bad tensor, not an image, too many pixels", error)
        @ns.response(404, "No such model or version", error)
        @ns.response(413, "Request body over the configured limit", error)
        @ns.response(503, "The model is not ready", error)
        def post(self, name: str, version: str | None = None):
            """Run inference."""
            info = served(name, version)
            encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise InvalidInput(f"Content-Encoding {encoding[:20]!r} is not supported: send the body uncompressed")
            cfg = settings()
            req = parse_request(request.get_data(cache=False), request.headers.get(HEADER_LENGTH))
            threshold = read_threshold(req.parameters, cfg.default_threshold)
            tensor = image_input(req)
            check_outputs(req.outputs)
            model = holder().get()
            started = time.perf_counter()
            decoded = decoded_input(tensor, model, cfg.max_image_pixels)
            log_fields(image_pixels=decoded.original_size[0] * decoded.original_size[1])
            outputs = output_tensors(model.detect(decoded, threshold), req.outputs)
            header: dict[str, Any] = {"model_name": info["id"]}
            if version is not None:
                header["model_version"] = version
            if req.id is not None:
                header["id"] = req.id
            body, headers = encode_response(header, outputs, req)
            headers["X-Processing-Time-Ms"] = f"{(time.perf_counter() - started) * 1000:.1f}"
            return Response(body, status=200, headers=headers)
