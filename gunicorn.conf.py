"""gunicorn settings, all derived from ``config.Settings`` so there is one source of truth.

No ``preload_app``: TensorFlow is not fork-safe, so each worker imports and loads the model
after the fork. The model loads in a background thread, so the worker heartbeat is never late;
``timeout`` still exceeds a cold start by a wide margin.
"""
from config import Settings

_settings = Settings.from_env()

wsgi_app = "app:create_app()"
bind = [f"0.0.0.0:{_settings.port}"]
workers = _settings.workers
worker_class = "gthread"
threads = _settings.threads
preload_app = False
timeout = _settings.timeout
graceful_timeout = _settings.graceful_timeout
keepalive = 5
loglevel = _settings.log_level.lower()
errorlog = "-"
accesslog = None  # app.py logs one line per request
