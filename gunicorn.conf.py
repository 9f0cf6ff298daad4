"""gunicorn settings, all derived from ``config.Settings`` so there is one source of truth.

No ``preload_app``: TensorFlow is not fork-safe, so each worker imports and loads the model
after the fork. The model loads in a background thread, so the worker heartbeat is never late;
``timeout`` still exceeds a cold start by a wide margin.
"""

import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from config import ConfigError, Settings

try:
    _settings = Settings.from_env()
except ConfigError as exc:
    # One line and exit code 2 (bad configuration, as on the command line), instead of gunicorn's
    # "Failed to read config file" and a traceback. SystemExit passes through gunicorn's handler.
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} ERROR app: cannot start: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(2) from None

wsgi_app = "app:serve()"  # create_app(), and a failed start exits with one line, not a traceback
bind = [_settings.bind]  # HOST: 127.0.0.1 unless set (the Docker image sets 0.0.0.0)
workers = _settings.workers
# gthread with a front that buffers whole requests under deadlines and sheds overload with 503
# (api/server/worker.py; docs/reliability.md). Slow clients cost a socket and a buffer, not a thread.
worker_class = "api.server.worker.BufferedThreadWorker"
threads = _settings.threads
# Connections a worker holds, most of them cheap while they arrive (HEADER_TIMEOUT_SECONDS bounds
# each); the container's open-files limit must exceed it (the worker stops accepting at that limit).
worker_connections = 1000
preload_app = False
timeout = _settings.timeout
graceful_timeout = _settings.graceful_timeout
keepalive = 5
loglevel = _settings.log_level.lower()
errorlog = "-"
# No runtime control socket: nothing here uses gunicornc, and several servers on one host
# (tests, CI) would otherwise fight over the same default path.
control_socket_disable = True
accesslog = None  # app.py logs one line per request


def on_starting(server):
    """Give the workers an empty metrics directory, once per master.

    Workers are separate processes: prometheus-client adds their metrics up from files in one
    directory, set here before any worker imports prometheus_client. Not at the top of this
    file: gunicorn runs the file again on SIGHUP (reload), and that must keep the counters.
    PROMETHEUS_MULTIPROC_DIR is read from the process environment only (not gunicorn's ``-e``),
    and this relies on ``preload_app = False`` (set below; do not override it).
    """
    configured = _settings.prometheus_multiproc_dir
    metrics_dir = configured or Path(tempfile.mkdtemp(prefix="objdet-metrics-"))
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    server.objdet_temp_metrics_dir = None if configured else metrics_dir  # the Arbiter outlives reloads


def child_exit(server, worker):
    """A worker ended (or was killed): drop its live gauges so they stop counting as ready."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, os.environ["PROMETHEUS_MULTIPROC_DIR"])


def on_exit(server):
    temp = getattr(server, "objdet_temp_metrics_dir", None)
    if temp:
        shutil.rmtree(temp, ignore_errors=True)


def post_fork(server, worker):
    """Two malloc arenas per worker, set before its threads start (core.model.budget says why)."""
    from core.model.budget import limit_malloc_arenas

    limit_malloc_arenas(2)


def post_worker_init(worker):
    """Make SIGTERM refuse new connections at once instead of leaving them hanging.

    While draining, a gthread worker stops accepting but keeps its copy of the listening socket
    open, so the kernel goes on completing handshakes nobody will serve. Closing that copy
    (the master has closed its own) makes new clients get "connection refused" and retry
    elsewhere. It runs on the worker's event loop, where gthread expects socket changes.
    """
    if not hasattr(worker, "method_queue"):  # only the gthread worker has this event loop
        return
    finish = worker.handle_exit

    def handle_exit(sig, frame):
        finish(sig, frame)
        worker.method_queue.defer(_close_listeners, worker)

    signal.signal(signal.SIGTERM, handle_exit)


def _close_listeners(worker):
    worker.set_accept_enabled(False)
    for listener in worker.sockets:
        listener.close()
