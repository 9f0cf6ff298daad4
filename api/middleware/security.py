"""Access control and browser hardening: the optional API key and the security headers.

One tuple, :data:`PROTECTED_RULES`, decides which operations need the key: the check and the
Swagger documentation both read it, so they cannot disagree. The check matches the routing rule
Flask resolved, not the raw path, so no spelling of the URL (double slashes, percent-escapes)
slips past it.
"""

from __future__ import annotations

import hmac
import re
from functools import cached_property
from typing import Any

from flask import Flask, Response, request
from flask_restx import Api

from api.errors import Unauthorized, error_definition
from config import Settings

#: Routes that run the model and so cost CPU: they need the key when ``API_KEY`` is set.
PROTECTED_RULES = (
    "/model/predict",
    "/model/annotate",
    "/v1/vision/detection",
    "/v2/models/<string:name>/infer",
    "/v2/models/<string:name>/versions/<string:version>/infer",
)
#: Routes whose clients (DeepStack's: Frigate, deepstack-python) send the key as a form field.
FORM_KEY_RULES = ("/v1/vision/detection",)
API_KEY_HEADER = "X-API-Key"
API_KEY_FIELD = "api_key"

#: Swagger UI (at ``/``, files under ``/swaggerui/``) renders with an inline script and inline styles.
_DOC_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: Everything else is data (JSON, images, metrics): nothing in it may load or run anything. Pages
#: that need more set their own policy first (the web app at ``/app`` does) and it is kept.
_DATA_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def content_security_policy(path: str) -> str:
    """The default CSP for a path: the relaxed one only where Swagger UI needs it."""
    if path == "/" or path.startswith("/swaggerui/"):
        return _DOC_CSP
    return _DATA_CSP


def presented_key(form_field: bool = False) -> str | None:
    """The key the client sent, from ``X-API-Key`` or ``Authorization: Bearer <key>``, or, where
    ``form_field`` allows it, the multipart field ``api_key`` (the form is read only then)."""
    key = request.headers.get(API_KEY_HEADER, "").strip()
    if key:
        return key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if form_field and request.mimetype == "multipart/form-data":
        values = request.form.getlist(API_KEY_FIELD)  # over MAX_UPLOAD_BYTES: 413 before any key check
        return (values[0].strip() or None) if len(values) == 1 else None
    return None


def key_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison, so response timing does not reveal how much of a guess was right."""
    return presented is not None and hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def install(app: Flask, settings: Settings) -> None:
    """Check the API key before a protected view reads the body, and add the headers to every response."""

    @app.before_request
    def _require_api_key() -> None:
        rule = request.url_rule
        if (
            settings.api_key
            and request.method != "OPTIONS"
            and rule is not None
            and rule.rule in PROTECTED_RULES
            and not key_matches(presented_key(rule.rule in FORM_KEY_RULES), settings.api_key)
        ):
            also = f", or as the form field {API_KEY_FIELD!r}" if rule.rule in FORM_KEY_RULES else ""
            raise Unauthorized(
                f"missing or wrong API key: send it in the {API_KEY_HEADER} header or as "
                f"'Authorization: Bearer <key>'{also}"
            )

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", content_security_policy(request.path))
        if response.status_code == 401:
            response.headers.setdefault("WWW-Authenticate", 'Bearer realm="object-detector"')
        return response


class SecuredApi(Api):
    """flask-restx ``Api`` whose Swagger spec documents the API key on exactly the protected operations."""

    @cached_property
    def __schema__(self) -> dict[str, Any]:
        schema = super().__schema__
        settings: Settings = self.app.extensions["settings"]
        if settings.api_key and "paths" in schema:
            document_api_key(schema)
        return schema


def document_api_key(schema: dict[str, Any]) -> None:
    """Add the two ways of sending the key, and the 401 answer, to the protected operations."""
    schema["securityDefinitions"] = {
        "apiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER},
        "bearer": {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "the key as 'Bearer <key>'",
        },
    }
    for rule in PROTECTED_RULES:
        path = swagger_path(rule)
        for operation in schema["paths"].get(path, {}).values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["security"] = [{"apiKey": []}, {"bearer": []}]
                operation["responses"]["401"] = {
                    "description": "Missing or wrong API key",
                    "schema": {"$ref": f"#/definitions/{error_definition(path)}"},  # the protocol's shape
                }


def swagger_path(rule: str) -> str:
    """A Flask rule as Swagger writes its path: ``/v2/models/<string:name>`` -> ``/v2/models/{name}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)
