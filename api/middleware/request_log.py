"""Request ids and one structured JSON log line per request.

The id comes from the client's ``X-Request-ID`` when it is safe to echo and to log (bounded length,
plain characters), else it is generated; either way it goes back in the response header so a client
and an operator can find the same request in the logs.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request

REQUEST_ID_HEADER = "X-Request-ID"
#: What an incoming request id may look like: no spaces, quotes or control characters, at most 128.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

log = logging.getLogger("request")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"), default=str)


def request_id_from(header: str | None) -> str:
    """The client's id if it is safe to echo and log, else a new uuid4 (hex)."""
    if header and _SAFE_REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


def log_fields(**fields: Any) -> None:
    """Add facts to this request's log line (views call it, e.g. with the image size)."""
    g.setdefault("log_fields", {}).update(fields)


def elapsed_seconds() -> float:
    """Seconds since this request started (the metrics use the same clock)."""
    return time.perf_counter() - g.get("started", time.perf_counter())


def install(app: Flask) -> None:
    """Give every request an id and a start time, and log it as one JSON line when it is answered."""
    _use_json_lines(log)

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or request_id_from(None)  # set even if before_request never ran
        response.headers[REQUEST_ID_HEADER] = request_id
        fields = {
            "request_id": request_id,
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "latency_ms": round(elapsed_seconds() * 1000, 1),
            "body_bytes": request.content_length or 0,
            **g.get("log_fields", {}),
        }
        log.info("request", extra={"fields": fields})
        return response


def _use_json_lines(logger: logging.Logger) -> None:
    """Send ``logger`` to stderr as JSON lines, once per process however many apps are built."""
    if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False  # the plain root format would wrap the JSON in a second prefix
