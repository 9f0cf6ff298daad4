"""``POST /model/annotate``: the uploaded picture, upright, with the detections drawn in.

Takes exactly the form of ``/model/predict``; answers with a JPEG, or a PNG when asked
(``format=png`` or ``Accept: image/png``). Errors stay JSON like everywhere else.
"""

from __future__ import annotations

import time

from flask import Response, request
from flask_restx import Api, Namespace, Resource

from api.context import decode_budget, holder, settings
from api.errors import error_model
from api.forms import form_value, input_parser, read_form
from api.middleware.request_log import log_fields
from core.errors import InvalidInput
from core.model.annotate import MIMETYPES, draw_detections, encode
from core.model.images import decode_cost, decode_image

_ALIASES = {"jpg": "jpeg"}
#: libjpeg's largest side; a wider or taller answer can only be a PNG.
JPEG_MAX_SIDE = 65_500


def read_format() -> str:
    """``jpeg`` or ``png``: the ``format`` form field if given, else the best match for ``Accept``."""
    raw = (form_value("format") or "").strip().lower()
    if raw:
        fmt = _ALIASES.get(raw, raw)
        if fmt not in MIMETYPES:
            raise InvalidInput(f"format must be jpeg or png, got {raw[:20]!r}")
        return fmt
    best = request.accept_mimetypes.best_match([MIMETYPES["jpeg"], MIMETYPES["png"]], default=MIMETYPES["jpeg"])
    return "png" if best == MIMETYPES["png"] else "jpeg"


def register(api: Api, ns: Namespace) -> None:
    error = error_model(api)
    parser = input_parser(api.app.extensions["settings"].default_threshold)
    parser.add_argument(
        "format",
        location="form",
        required=False,
        choices=("jpeg", "png"),
        help="Image format of the answer (default: from Accept, else jpeg)",
    )

    @ns.route("/annotate")
    class Annotate(Resource):
        @ns.doc("annotate", description="Draw the detected objects into the image.")
        @ns.expect(parser)
        @ns.produces([MIMETYPES["jpeg"], MIMETYPES["png"], "application/json"])  # JSON: the errors
        @ns.response(200, "The upright image, same size as the upload, with boxes, labels and scores")
        @ns.response(
            400, "Bad input: not an image, corrupt, too many pixels, missing field, bad threshold or format", error
        )
        @ns.response(413, "Request body over the configured limit", error)
        @ns.response(
            503, "The model is not ready, or the worker is busy decoding other large images (see Retry-After)", error
        )
        def post(self):
            """Return the uploaded image with its detections drawn in."""
            cfg = settings()
            threshold, data = read_form(frozenset({"format"}))
            fmt = read_format()
            model = holder().get()
            started = time.perf_counter()
            # Full resolution (no JPEG draft): the answer must match the upload's upright size.
            with decode_budget().reserve(decode_cost(data, cfg.max_image_pixels)):
                decoded = decode_image(data, cfg.max_image_pixels, max_jpeg_scans=cfg.max_jpeg_scans)
                log_fields(image_pixels=decoded.original_size[0] * decoded.original_size[1])
                if fmt == "jpeg" and max(decoded.size) > JPEG_MAX_SIDE:
                    width, height = decoded.size
                    raise InvalidInput(
                        f"the annotated image would be {width}x{height}; JPEG allows at most {JPEG_MAX_SIDE} "
                        "pixels a side: ask for format=png"
                    )
                detections = model.detect(decoded, threshold)
                body = encode(draw_detections(decoded.image, detections), fmt)
                del decoded
            elapsed_ms = (time.perf_counter() - started) * 1000
            return Response(
                body,
                mimetype=MIMETYPES[fmt],
                headers={
                    "X-Processing-Time-Ms": f"{elapsed_ms:.1f}",
                    "Content-Disposition": f"inline; filename=annotated.{'jpg' if fmt == 'jpeg' else 'png'}",
                    "Vary": "Accept",
                },
            )
