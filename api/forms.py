"""Reading the multipart form that ``/model/predict`` and ``/model/annotate`` share, strictly:
one ``image`` file, an optional ``threshold``, nothing misspelt, nothing sent twice."""

from __future__ import annotations

from flask import request
from flask_restx import reqparse
from werkzeug.datastructures import FileStorage

from api.middleware.request_log import log_fields
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
        raise InvalidInput(
            f"unknown form field(s) {', '.join(map(repr, unknown))[:200]}; "
            f"expected {', '.join(map(repr, sorted(allowed)))}"
        )


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
    parser.add_argument(
        "image",
        type=FileStorage,
        location="files",
        required=True,
        help="An image file: JPEG, PNG, GIF (first frame), BMP, WebP or TIFF",
    )
    parser.add_argument(
        "threshold",
        type=_threshold,
        location="form",
        required=False,
        default=default_threshold,
        help=f"Minimum probability of returned detections, in [0, 1] "
        f"(default {default_threshold}, the DEFAULT_THRESHOLD setting)",
    )
    return parser
