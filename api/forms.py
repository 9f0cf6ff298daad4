"""Reading the multipart form that ``/model/predict``, ``/model/annotate`` and DeepStack's
``/v1/vision/detection`` share, strictly: one ``image`` file, an optional threshold, nothing
misspelt, nothing sent twice.

A parameter may come in the form or in the query string, as MAX's reqparse (``location="values"``)
and CodeProject.AI accept it: MAX's README itself sends ``/model/predict?threshold=0.5``. Both
given with different values is ambiguous and refused."""

from __future__ import annotations

from flask import Request, request
from flask_restx import reqparse
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from api.context import settings
from api.errors import FormTooLarge
from api.middleware.request_log import log_fields
from config import parse_fraction
from core.errors import InvalidInput

#: The form fields ``/model/predict`` accepts.
FIELDS = frozenset({"image", "threshold"})
#: Parts a form may have: ours have three at most, so thousands of tiny fields are refused early.
MAX_FORM_PARTS = 16
#: Bytes a non-file field (``threshold``, ``format``) may hold in memory.
MAX_FORM_FIELD_BYTES = 256 * 1024  # above the parser's 64 KiB read size, which it also counts


class FormRequest(Request):
    """Flask's request, whose form limits say which limit was hit instead of "body too large".

    werkzeug raises the same bare 413 for a body over ``MAX_CONTENT_LENGTH``, a form over
    ``MAX_FORM_PARTS`` and a field over ``MAX_FORM_MEMORY_SIZE``; where it was raised tells them apart.
    """

    def _load_form_data(self) -> None:
        try:
            super()._load_form_data()
        except RequestEntityTooLarge as exc:
            reason = _form_limit(exc)
            if reason is None:
                raise
            raise FormTooLarge(reason) from None


def _form_limit(exc: BaseException) -> str | None:
    """Which form limit ``exc`` (a 413 from werkzeug's multipart parser) comes from, as a message."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return None
    code = tb.tb_frame.f_code
    if code.co_name == "next_event" and code.co_filename.endswith("multipart.py"):
        return (
            f"the form has more than {MAX_FORM_PARTS} parts; send one 'image' file and at most 'threshold' and 'format'"
        )
    if code.co_name in ("receive_data", "parse") and code.co_filename.endswith(("multipart.py", "formparser.py")):
        return f"a form field other than the image is longer than {MAX_FORM_FIELD_BYTES} bytes"
    return None


def read_fraction(raw: str | None, default: float, name: str = "threshold") -> float:
    """Parse a threshold parameter: a finite number in [0, 1]; absent means ``default``
    (an empty value is a mistake, not a request for the default)."""
    if raw is None:
        return default
    try:
        return parse_fraction(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number in [0, 1], got {raw[:40]!r}") from None


def read_threshold(raw: str | None, default: float) -> float:
    """The ``threshold`` parameter of MAX's routes."""
    return read_fraction(raw, default, "threshold")


def form_value(name: str) -> str | None:
    """The one value of parameter ``name``, from the form or the query string (None when absent).
    Sending it twice in one place is ambiguous, and so is sending two different values in both."""
    in_form = request.form.getlist(name)
    in_query = request.args.getlist(name)
    for where, values in (("form field", in_form), ("query parameter", in_query)):
        if len(values) > 1:
            raise InvalidInput(f"send the {where} {name!r} once, got {len(values)} values")
    if in_form and in_query and in_form[0] != in_query[0]:
        raise InvalidInput(
            f"{name!r} was sent in the query string ({in_query[0][:40]!r}) and in the form "
            f"({in_form[0][:40]!r}) with different values; send it once"
        )
    if in_form:
        return in_form[0]
    return in_query[0] if in_query else None


def reject_unknown_fields(allowed: frozenset[str]) -> None:
    """A misspelt field or query parameter (``treshold``) would otherwise be ignored silently and
    the default used."""
    unknown = sorted((set(request.form) | set(request.files) | set(request.args)) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown form field(s) or query parameter(s) {', '.join(map(repr, unknown))[:200]}; "
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


def input_parser(
    default_threshold: float, name: str = "threshold", setting: str = "DEFAULT_THRESHOLD"
) -> reqparse.RequestParser:
    """Swagger description of the form; parsing itself is done by the functions above.
    Swagger 2.0 gives a parameter one location, so the query form is in the description."""
    parser = reqparse.RequestParser()
    parser.add_argument(
        "image",
        type=FileStorage,
        location="files",
        required=True,
        help="An image file: JPEG, PNG, GIF (first frame), BMP, WebP or TIFF",
    )
    parser.add_argument(
        name,
        type=_threshold,
        location="form",
        required=False,
        default=default_threshold,
        help=f"Minimum probability of returned detections, in [0, 1] (default {default_threshold}, "
        f"the {setting} setting). Also accepted as a query parameter (?{name}=0.5); "
        "sent in both with different values is a 400.",
    )
    return parser


def read_form(extra: frozenset[str] = frozenset()) -> tuple[float, bytes]:
    """``/model/predict``'s form: the threshold (``DEFAULT_THRESHOLD`` when absent), then the image;
    a field that is neither, nor one of ``extra`` (which the caller reads itself), is refused."""
    threshold = read_threshold(form_value("threshold"), settings().default_threshold)
    data = read_image()
    reject_unknown_fields(FIELDS | extra)
    return threshold, data
