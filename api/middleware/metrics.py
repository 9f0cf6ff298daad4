"""``GET /metrics``: Prometheus metrics for HTTP requests, inference and the served model.

Under gunicorn every worker is a process with its own counters; ``gunicorn.conf.py`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory where prometheus-client keeps each worker's
values, and a scrape of any worker adds them all up.
"""

from __future__ import annotations

from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from api.middleware.request_log import elapsed_seconds
from config import Settings
from core.model.wrapper import ModelWrapper

_LABELS = ("endpoint", "method", "status")
#: Methods reported by name; anything else is "other", so clients cannot mint label values.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter("objdet_http_requests_total", "HTTP requests answered, by route and status", _LABELS)
REQUEST_SECONDS = Histogram(
    "objdet_http_request_duration_seconds", "Time to answer an HTTP request, by route and status, in seconds", _LABELS
)
#: Written by the gunicorn worker (``api.server.worker``), before a request reaches Flask.
SHED_REQUESTS = Counter(
    "objdet_http_shed_total",
    "Requests answered 503 by the worker without running them: queue_full, queue_wait, buffer_full, health_backlog",
    ("reason",),
)
DEADLINE_CLOSES = Counter(
    "objdet_http_deadline_closes_total",
    "Connections answered 408 and closed because a request's header or body missed its deadline",
    ("phase",),
)
MODEL_INFO = Gauge(
    "objdet_model_info",
    "The model being served (always 1; the labels carry the facts)",
    ("model", "name", "backend", "version"),
    multiprocess_mode="max",
)
MODEL_READY = Gauge(
    "objdet_model_ready", "1 when this worker's model is loaded and warmed up, else 0", multiprocess_mode="liveall"
)


def model_loaded(model: ModelWrapper) -> None:
    """Hook for ``ModelHolder(on_ready=...)``: publish the model's identity and this worker's readiness."""
    info = model.info.to_json()
    MODEL_INFO.labels(
        model=info["id"],
        name=info["name"],
        backend=str(info.get("backend", "unknown")),
        version=str(info.get("version", "unknown")),
    ).set(1)
    MODEL_READY.set(1)


def install(app: Flask, settings: Settings) -> None:
    """Count and time every response, and serve ``/metrics`` (open, like the health probes)."""

    @app.after_request
    def _observe(response: Response) -> Response:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        labels = (rule, method, str(response.status_code))
        REQUESTS.labels(*labels).inc()
        REQUEST_SECONDS.labels(*labels).observe(elapsed_seconds())
        return response

    def metrics() -> Response:
        registry = REGISTRY
        if settings.prometheus_multiproc_dir is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=str(settings.prometheus_multiproc_dir))
        return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])
