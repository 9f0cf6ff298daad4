"""Service settings: the one place that declares and reads them.

Each setting is declared once, as a field of :class:`Settings`: its environment variable is
the field name in capitals, its type says how the text is parsed, and ``setting()`` adds the
bounds. The fields the framework's own command line needs (the model, where it is installed,
the backend, the image limit, the log level) are declared in :class:`core.settings.ModelSettings`,
which :class:`Settings` extends. Every other module takes a :class:`Settings` (or the values it
needs) instead of calling ``os.environ``, so tests build settings explicitly and the README's
configuration table has one source to match. ``core`` never imports this module.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, fields
from pathlib import Path

from core.model.structure import DEFAULT_MAX_JPEG_SCANS
from core.model.wrapper import DEFAULT_THRESHOLD
from core.settings import BACKENDS, ConfigError, ModelSettings, Seconds, parse_fraction, parse_seconds, setting
from core.ssd.engines.base import usable_cpus

__all__ = ["BACKENDS", "ENV_VARS", "ConfigError", "Seconds", "Settings", "parse_fraction", "parse_seconds"]

ROOT = Path(__file__).resolve().parent
#: A browser origin as sent in the Origin header: scheme, host and optional port, nothing else.
_ORIGIN = re.compile(r"^https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?$")
#: Printable ASCII without spaces, so the key survives any HTTP header; long enough not to be guessed.
_API_KEY = re.compile(r"^[\x21-\x7e]{16,256}$")
#: A host name (an IP address is checked as one): nothing that breaks gunicorn's HOST:PORT syntax.
_HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")


@dataclass(frozen=True)
class Settings(ModelSettings):
    """Typed, validated configuration. Field docs are the README's configuration table; the model's
    own fields (``MODEL`` ... ``LOG_LEVEL``) are declared in :class:`core.settings.ModelSettings`."""

    #: Address gunicorn listens on: loopback by default; the Docker image sets 0.0.0.0.
    host: str = setting("127.0.0.1", case="lower")
    #: TCP port gunicorn listens on.
    port: int = setting(5000, minimum=1)
    #: Threshold used when a request gives none (MAX's default).
    default_threshold: float = setting(DEFAULT_THRESHOLD)
    #: Largest accepted request body in bytes; larger bodies get 413.
    max_upload_bytes: int = setting(10 * 1024 * 1024, minimum=1024)
    #: Most scans a (progressive) JPEG may have; more get 400 before decoding (each costs a pass over the image).
    max_jpeg_scans: int = setting(DEFAULT_MAX_JPEG_SCANS, minimum=1)
    #: MiB of memory a worker's requests may hold at once for decoded images (worst case per pixel mode).
    decode_budget_mb: int = setting(512, minimum=16)
    #: Seconds a request waits for decode budget before it gets 503 with Retry-After.
    decode_wait_seconds: int = setting(10, minimum=0)
    #: gunicorn worker processes; each loads its own copy of the model.
    workers: int = setting(1, minimum=1)
    #: Request threads per worker; they share the worker's model.
    threads: int = setting(4, minimum=1)
    #: Inferences a worker runs at once, one core each (0 = the cores divided by WORKERS).
    engine_threads: int = setting(0, minimum=0)
    #: Cores the network of a request may use when no other inference runs in its worker (LiteRT
    #: backends; 0 = the worker's engine threads, 1 = always one core).
    lone_request_threads: int = setting(0, minimum=0)
    #: Seconds a worker may stay silent before gunicorn restarts it.
    timeout: int = setting(120, minimum=1)
    #: Seconds in-flight requests get to finish after SIGTERM.
    graceful_timeout: int = setting(30, minimum=1)
    #: Serve the browser app at ``/app``; false removes the route (``/app`` answers 404).
    webapp_enabled: bool = setting(True)
    #: Browser origins (``https://host[:port]``) allowed to call the API cross-origin; empty: CORS off.
    cors_origins: tuple[str, ...] = setting((), case="lower")
    #: When set, the routes that run the model need it (``X-API-Key`` or ``Authorization: Bearer``): ``/model/predict``,
    #: ``/model/annotate``, ``/v1/vision/detection`` (also the ``api_key`` form field) and v2 ``infer``.
    api_key: str | None = setting(None, secret=True)
    #: Seconds an inference request waits for a model that is still loading before it gets 503.
    load_wait_seconds: int = setting(20, minimum=0)
    #: Seconds a client gets to send a request's whole header block, from the moment the server
    #: waits for it (a total deadline, not reset by each byte); missed: 408 and the connection closes.
    header_timeout_seconds: Seconds = setting(10.0)
    #: Seconds a client gets to send a request body, plus one second per ``BODY_MIN_RATE_BYTES``
    #: received (Apache mod_reqtimeout's ``body=…,MinRate=…``); missed: 408 and the connection closes.
    body_timeout_seconds: Seconds = setting(10.0)
    #: Average bytes per second a request body must arrive at to earn more time than ``BODY_TIMEOUT_SECONDS``.
    body_min_rate_bytes: int = setting(10240, minimum=1)
    #: Complete requests a worker keeps waiting for a free thread; more get 503 at once with ``Retry-After``.
    max_queue: int = setting(8, minimum=0)
    #: Seconds a request may wait for a thread; it then gets 503 without running (the client retries elsewhere).
    max_queue_wait_seconds: Seconds = setting(2.0)
    #: The ``Retry-After`` seconds sent with every 503 for overload.
    retry_after_seconds: int = setting(1, minimum=1)
    #: Bytes of requests still arriving a worker may hold at once (received, not declared); past it: 503.
    max_buffered_bytes: int = setting(64 * 1024 * 1024, minimum=1024)
    #: Where gunicorn workers share metrics; ``gunicorn.conf.py`` sets it to a fresh temporary directory.
    prometheus_multiproc_dir: Path | None = setting(None)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _valid_host(self.host):
            raise ConfigError(f"HOST must be an IP address or a host name, got {self.host!r}")
        if self.port > 65535:
            raise ConfigError(f"PORT must be in 1..65535, got {self.port}")
        if not 0.0 <= self.default_threshold <= 1.0:  # also false for NaN
            raise ConfigError(f"DEFAULT_THRESHOLD must be a number in [0, 1], got {self.default_threshold!r}")
        for origin in self.cors_origins:
            if not _ORIGIN.match(origin):
                raise ConfigError(f"CORS_ORIGINS entries must look like https://host[:port], got {origin!r}")
        if self.api_key is not None and not _API_KEY.match(self.api_key):
            raise ConfigError("API_KEY must be 16 to 256 printable ASCII characters without spaces")
        if self.prometheus_multiproc_dir is not None and not self.prometheus_multiproc_dir.is_dir():
            raise ConfigError(f"PROMETHEUS_MULTIPROC_DIR {self.prometheus_multiproc_dir} is not a directory")

    @property
    def effective_engine_threads(self) -> int:
        """ENGINE_THREADS, or the cores split evenly between the workers, so that WORKERS x engine
        threads never oversubscribes the machine (README, Performance)."""
        if self.engine_threads:
            return self.engine_threads
        return max(1, usable_cpus() // self.workers)

    @property
    def effective_lone_request_threads(self) -> int:
        """LONE_REQUEST_THREADS, or the worker's engine threads: a lone request may use the cores its
        worker would give concurrent ones, never more (in Kubernetes, the CPU limit ENGINE_THREADS names)."""
        return self.lone_request_threads or self.effective_engine_threads

    @property
    def bind(self) -> str:
        """``HOST:PORT`` as gunicorn takes it (an IPv6 address in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _valid_host(host: str) -> bool:
    """An IPv4 or IPv6 address, or a host name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOST_NAME.match(host))
    return True


#: Every environment variable the service reads; the README table must list each one.
ENV_VARS = tuple(f.name.upper() for f in fields(Settings))
