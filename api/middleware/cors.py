"""Cross-origin access for the browsers of an allowlist of origins (``CORS_ORIGINS``); off when it is empty.

Hand-written because the policy is small: exact origins only (no wildcard, no credentials), a fixed
set of methods and request headers, and the response headers a client may read.
"""

from __future__ import annotations

from flask import Flask, Response, request

ALLOW_METHODS = "GET, POST"
ALLOW_HEADERS = "Content-Type, X-API-Key, Authorization, X-Request-ID"
EXPOSE_HEADERS = "X-Request-ID, X-Processing-Time-Ms"
#: Seconds a browser may cache a preflight answer.
MAX_AGE = "600"


def install(app: Flask, origins: tuple[str, ...]) -> None:
    """Answer preflights and label responses for the allowed origins; do nothing when there are none."""
    if not origins:
        return
    allowed = frozenset(origins)

    @app.before_request
    def _preflight() -> Response | None:
        # A preflight carries no credentials: answer it before the API-key check would refuse it.
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        if request.headers.get("Origin") not in allowed or request.url_rule is None:
            return None  # Flask's own answer (plain OPTIONS, or the JSON 404), without CORS headers
        response = app.make_response(("", 204))
        response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = MAX_AGE
        return response

    @app.after_request
    def _label(response: Response) -> Response:
        response.vary.add("Origin")  # the answer depends on the Origin: caches must keep them apart
        origin = request.headers.get("Origin")
        if origin in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        return response
