"""The browser app at ``/app``: static files served by the service itself.

Everything the page needs ships in ``api/webapp/static/app`` and the Content-Security-Policy only
allows this origin, so it works air-gapped. ``WEBAPP_ENABLED=false`` leaves the routes out,
so ``/app`` then answers the usual JSON 404.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, Flask, redirect, send_from_directory

from config import Settings

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static" / "app"

#: Same origin only; ``blob:`` for the picked photo, ``mediastream:`` for the webcam preview.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def _blueprint() -> Blueprint:
    bp = Blueprint("webapp", __name__)

    # The page lives at /app (no slash) and names its files "app/<file>", so relative URLs
    # also work behind a reverse proxy that adds a path prefix.
    @bp.get("/app")
    def index():
        return send_from_directory(STATIC, "index.html")

    @bp.get("/app/")
    def index_slash():
        return redirect("../app", code=308)

    @bp.get("/app/<path:name>")
    def asset(name: str):
        return send_from_directory(STATIC, name)  # refuses paths that leave STATIC with a 404

    @bp.after_request
    def _headers(response):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return bp


def register(app: Flask, settings: Settings) -> None:
    """Serve the app unless the settings turn it off."""
    if not settings.webapp_enabled:
        log.info("web app disabled (WEBAPP_ENABLED=false): /app is not served")
        return
    app.register_blueprint(_blueprint())
