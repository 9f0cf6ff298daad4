"""The WSGI application: ``create_app()`` builds a Flask app around one model per process.

gunicorn calls ``app:create_app()`` in each worker after forking (see ``gunicorn.conf.py``),
so every worker loads its own model and nothing TensorFlow-related crosses a fork.
"""

from __future__ import annotations

import logging

from flask import Flask

from api.forms import MAX_FORM_FIELD_BYTES, MAX_FORM_PARTS, FormRequest
from api.middleware import cors, metrics, request_log, security
from api.rest import create_api
from config import ConfigError, Settings
from core.errors import ModelLoadError
from core.model.budget import DecodeBudget
from core.model.wrapper import ModelWrapper
from core.serving.factory import detector
from core.serving.holder import ModelHolder

log = logging.getLogger("app")


def build_model(settings: Settings) -> ModelWrapper:
    """The model the settings name, located now: a missing model fails the start with one clear line."""
    try:
        return detector(
            settings.source,
            settings.models_dir,
            backend=settings.backend,
            engine_threads=settings.effective_engine_threads,
            lone_threads=settings.effective_lone_request_threads,
        )
    except ModelLoadError as exc:  # the message names the directory and the command that fills it
        log.error("cannot start: %s", exc)
        raise


#: The exit code gunicorn's master reads as "a worker failed to boot": it then stops instead of
#: restarting the worker forever, and exits non-zero itself.
WORKER_BOOT_ERROR = 3


def serve() -> Flask:
    """gunicorn's entry point (``wsgi_app`` in ``gunicorn.conf.py``): :func:`create_app` from the
    environment. A start that cannot succeed (no verified model, a bad setting) has already said
    why in one ``cannot start:`` line; the worker then exits without gunicorn's traceback."""
    try:
        return create_app()
    except ConfigError as exc:  # gunicorn.conf.py refuses these first; kept for other launchers
        log.error("cannot start: %s", exc)
        raise SystemExit(WORKER_BOOT_ERROR) from None
    except ModelLoadError:
        raise SystemExit(WORKER_BOOT_ERROR) from None


def create_app(
    settings: Settings | None = None, model: ModelWrapper | None = None, background_load: bool = True
) -> Flask:
    """Build the app. Tests pass a loaded ``model``; gunicorn passes nothing."""
    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__)
    app.request_class = FormRequest
    # "//model/labels" is a 404, not a redirect: werkzeug would build its Location from the Host
    # header, and flask-restx answers a wrong method on such a path with a 500.
    app.url_map.merge_slashes = False
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        MAX_FORM_PARTS=MAX_FORM_PARTS,
        MAX_FORM_MEMORY_SIZE=MAX_FORM_FIELD_BYTES,
        RESTX_MASK_SWAGGER=False,
        ERROR_404_HELP=False,
        # api/errors.py writes every error body; flask-restx must not add a "message" key to
        # DeepStack's and v2's (MAX's has its own).
        ERROR_INCLUDE_MESSAGE=False,
    )
    holder = ModelHolder(
        model or build_model(settings), on_ready=metrics.model_loaded, wait_seconds=settings.load_wait_seconds
    )
    app.extensions["settings"] = settings
    app.extensions["model_holder"] = holder
    app.extensions["decode_budget"] = DecodeBudget(settings.decode_budget_mb << 20, settings.decode_wait_seconds)
    request_log.install(app)  # first: every later hook and error already has a request id
    cors.install(app, settings.cors_origins)
    security.install(app, settings)
    metrics.install(app, settings)
    create_api(app)
    holder.start(background=background_load)
    return app
