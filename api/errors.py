"""The one place that maps exceptions to HTTP statuses and error bodies.

The status comes from one table, :data:`STATUS_BY_ERROR`, whatever the protocol. The body has the
shape the protocol's clients parse, chosen by path prefix (:data:`BODY_BY_PREFIX`):

* MAX (``/model``, everything else): ``{"status": "error", "message": "..."}``
* DeepStack (``/v1/vision/``): ``{"success": false, "error": "...", "duration": 0}``
* Open Inference Protocol v2 (``/v2``): ``{"error": "..."}`` (what tritonclient reads)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, has_request_context, request
from flask_restx import Api, fields
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import RequestRedirect

from core.errors import DetectorError, InvalidInput, ModelLoadError, ModelNotReady, Overloaded

log = logging.getLogger(__name__)


class Unauthorized(Exception):
    """The request lacks the API key, or sent a wrong one; the message says how to send it."""


class FormTooLarge(Exception):
    """The form has too many parts, or a non-file field is too long; the message says which limit."""


#: Exception class -> HTTP status. The first matching entry wins, so subclasses come first.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (Unauthorized, 401),
    (FormTooLarge, 413),
    (InvalidInput, 400),
    (ModelNotReady, 503),
    (Overloaded, 503),
    (ModelLoadError, 503),
    (DetectorError, 500),
)


def max_error_body(message: str) -> dict[str, Any]:
    return {"status": "error", "message": message}


def deepstack_error_body(message: str) -> dict[str, Any]:
    return {"success": False, "error": message, "duration": 0}


def v2_error_body(message: str) -> dict[str, Any]:
    return {"error": message}


#: Path prefix -> the error body of that protocol, and its Swagger definition. The first match
#: wins; MAX's shape (definition "Error") is the default.
BODY_BY_PREFIX: tuple[tuple[str, Callable[[str], dict[str, Any]], str], ...] = (
    ("/v1/vision/", deepstack_error_body, "DeepStackError"),
    ("/v2/", v2_error_body, "V2Error"),
)


def _protocol(path: str | None) -> tuple[Callable[[str], dict[str, Any]], str]:
    if path is None:
        path = request.path if has_request_context() else "/"
    path = path if path.endswith("/") else path + "/"  # "/v2" itself is v2's
    for prefix, body, definition in BODY_BY_PREFIX:
        if path.startswith(prefix):
            return body, definition
    return max_error_body, "Error"


def error_body(message: str, path: str | None = None) -> dict[str, Any]:
    """The error body for ``path`` (by default the current request's)."""
    return _protocol(path)[0](message)


def error_definition(path: str) -> str:
    """The Swagger definition of the error body for ``path`` (a Swagger path like ``/v2/models/{name}``)."""
    return _protocol(path)[1]


def to_response(exc: Exception) -> tuple[dict[str, Any], int]:
    """Body and status for any exception; unknown ones are logged and hidden behind a 500."""
    if isinstance(exc, RequestEntityTooLarge):
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return error_body(f"request body is larger than the limit of {limit} bytes"), 413
    if isinstance(exc, HTTPException):
        return error_body(exc.description or exc.name), exc.code or 500
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            if status >= 500:
                log.warning("%s: %s", type(exc).__name__, exc)
            return error_body(str(exc)), status
    log.exception("unhandled error", exc_info=exc)
    return error_body("internal server error"), 500


def register(app: Flask, api: Api) -> None:
    """Route every error, inside the REST API or outside it (404 on an unknown path), to JSON."""

    @api.errorhandler(Exception)
    def _api_error(exc: Exception):  # flask-restx serialises the body itself
        return (*to_response(exc), http_headers(exc))

    @app.errorhandler(Exception)
    def _app_error(exc: Exception):
        return (*to_response(exc), http_headers(exc))


def http_headers(exc: Exception) -> dict[str, str]:
    """Headers an HTTP error must keep, e.g. ``Allow`` on a 405 (RFC 9110); the body is ours."""
    if isinstance(exc, Overloaded):
        return {"Retry-After": str(exc.retry_after)}
    if not isinstance(exc, HTTPException):
        return {}
    headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
    if isinstance(exc, RequestRedirect):  # werkzeug builds it from the client's Host header
        headers["Location"] = relative_location(exc.new_url)
    return headers


def relative_location(url: str) -> str:
    """The path and query of ``url``: a redirect never names a host the client chose."""
    parts = urlsplit(url)
    path = "/" + parts.path.lstrip("/")  # never "//host": that would be another origin
    return f"{path}?{parts.query}" if parts.query else path


def error_model(api: Api):
    """Swagger schema of the error body, shared by every resource."""
    return api.model(
        "Error",
        {
            "status": fields.String(required=True, enum=["error"], example="error"),
            "message": fields.String(required=True, example="threshold must be a number in [0, 1]"),
        },
    )


def deepstack_error_model(api: Api):
    """Swagger schema of DeepStack's error body."""
    return api.model(
        "DeepStackError",
        {
            "success": fields.Boolean(required=True, example=False),
            "error": fields.String(required=True, example="min_confidence must be a number in [0, 1]"),
            "duration": fields.Integer(required=True, example=0),
        },
    )


def v2_error_model(api: Api):
    """Swagger schema of the Open Inference Protocol's error body."""
    return api.model("V2Error", {"error": fields.String(required=True, example="unknown model 'x'")})
