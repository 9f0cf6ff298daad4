"""The WSGI application: ``create_app()`` builds a Flask app around one model per process.

gunicorn calls ``app:create_app()`` in each worker after forking (see ``gunicorn.conf.py``),
so every worker loads its own model and nothing TensorFlow-related crosses a fork.
"""
from __future__ import annotations

import logging
import time

from flask import Flask, g, request

from api import create_api
from config import Settings
from core.model import ModelWrapper
from core.registry import detector_for
from core.serving import ModelHolder

log = logging.getLogger("app")


def create_app(settings: Settings | None = None, model: ModelWrapper | None = None,
               background_load: bool = True) -> Flask:
    """Build the app. Tests pass a loaded ``model``; gunicorn passes nothing."""
    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        RESTX_MASK_SWAGGER=False,
        ERROR_404_HELP=False,
    )
    holder = ModelHolder(model or detector_for(settings))  # a missing model fails the start loudly
    app.extensions["settings"] = settings
    app.extensions["model_holder"] = holder
    create_api(app)
    _log_requests(app)
    holder.start(background=background_load)
    return app


def _log_requests(app: Flask) -> None:
    """One log line per request: what was asked, what was answered, how long it took."""

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _log(response):
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        log.info("%s %s %s %.1fms %sB", request.method, request.path, response.status_code,
                 elapsed, request.content_length or 0)
        return response
